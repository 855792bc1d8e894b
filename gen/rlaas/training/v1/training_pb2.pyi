import datetime

from google.api import annotations_pb2 as _annotations_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.rpc import status_pb2 as _status_pb2
from rlaas.options.v1 import options_pb2 as _options_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PairSource(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PAIR_SOURCE_UNSPECIFIED: _ClassVar[PairSource]
    PAIR_SOURCE_EDIT: _ClassVar[PairSource]
    PAIR_SOURCE_CORRECTION: _ClassVar[PairSource]
    PAIR_SOURCE_REWARD_RANKED: _ClassVar[PairSource]

class Accelerator(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ACCELERATOR_UNSPECIFIED: _ClassVar[Accelerator]
    ACCELERATOR_CPU: _ClassVar[Accelerator]
    ACCELERATOR_GPU: _ClassVar[Accelerator]

class TrainingMethod(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TRAINING_METHOD_UNSPECIFIED: _ClassVar[TrainingMethod]
    TRAINING_METHOD_SFT: _ClassVar[TrainingMethod]
    TRAINING_METHOD_DPO: _ClassVar[TrainingMethod]
    TRAINING_METHOD_IPO: _ClassVar[TrainingMethod]

class DatasetFormat(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DATASET_FORMAT_UNSPECIFIED: _ClassVar[DatasetFormat]
    DATASET_FORMAT_DPO_JSONL: _ClassVar[DatasetFormat]
    DATASET_FORMAT_OPENAI_CHAT_JSONL: _ClassVar[DatasetFormat]
    DATASET_FORMAT_ANTHROPIC_JSONL: _ClassVar[DatasetFormat]
    DATASET_FORMAT_PARQUET: _ClassVar[DatasetFormat]

class DatasetSplit(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DATASET_SPLIT_UNSPECIFIED: _ClassVar[DatasetSplit]
    DATASET_SPLIT_TRAIN: _ClassVar[DatasetSplit]
    DATASET_SPLIT_EVAL: _ClassVar[DatasetSplit]
PAIR_SOURCE_UNSPECIFIED: PairSource
PAIR_SOURCE_EDIT: PairSource
PAIR_SOURCE_CORRECTION: PairSource
PAIR_SOURCE_REWARD_RANKED: PairSource
ACCELERATOR_UNSPECIFIED: Accelerator
ACCELERATOR_CPU: Accelerator
ACCELERATOR_GPU: Accelerator
TRAINING_METHOD_UNSPECIFIED: TrainingMethod
TRAINING_METHOD_SFT: TrainingMethod
TRAINING_METHOD_DPO: TrainingMethod
TRAINING_METHOD_IPO: TrainingMethod
DATASET_FORMAT_UNSPECIFIED: DatasetFormat
DATASET_FORMAT_DPO_JSONL: DatasetFormat
DATASET_FORMAT_OPENAI_CHAT_JSONL: DatasetFormat
DATASET_FORMAT_ANTHROPIC_JSONL: DatasetFormat
DATASET_FORMAT_PARQUET: DatasetFormat
DATASET_SPLIT_UNSPECIFIED: DatasetSplit
DATASET_SPLIT_TRAIN: DatasetSplit
DATASET_SPLIT_EVAL: DatasetSplit

class RubricCriterion(_message.Message):
    __slots__ = ("name", "description", "weight")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    weight: float
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., weight: _Optional[float] = ...) -> None: ...

class JudgeConfig(_message.Message):
    __slots__ = ("judge_model", "judge_version", "rubric", "votes", "swap_positions")
    JUDGE_MODEL_FIELD_NUMBER: _ClassVar[int]
    JUDGE_VERSION_FIELD_NUMBER: _ClassVar[int]
    RUBRIC_FIELD_NUMBER: _ClassVar[int]
    VOTES_FIELD_NUMBER: _ClassVar[int]
    SWAP_POSITIONS_FIELD_NUMBER: _ClassVar[int]
    judge_model: str
    judge_version: str
    rubric: _containers.RepeatedCompositeFieldContainer[RubricCriterion]
    votes: int
    swap_positions: bool
    def __init__(self, judge_model: _Optional[str] = ..., judge_version: _Optional[str] = ..., rubric: _Optional[_Iterable[_Union[RubricCriterion, _Mapping]]] = ..., votes: _Optional[int] = ..., swap_positions: _Optional[bool] = ...) -> None: ...

class RewardConfig(_message.Message):
    __slots__ = ("version", "thumb_weight", "rating_weight", "edit_similarity_weight", "sent_weight", "time_to_send_weight", "escalation_weight", "follow_up_weight", "task_correct_weight", "task_f1_weight", "task_resolved_weight", "judge_weight", "judge")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    THUMB_WEIGHT_FIELD_NUMBER: _ClassVar[int]
    RATING_WEIGHT_FIELD_NUMBER: _ClassVar[int]
    EDIT_SIMILARITY_WEIGHT_FIELD_NUMBER: _ClassVar[int]
    SENT_WEIGHT_FIELD_NUMBER: _ClassVar[int]
    TIME_TO_SEND_WEIGHT_FIELD_NUMBER: _ClassVar[int]
    ESCALATION_WEIGHT_FIELD_NUMBER: _ClassVar[int]
    FOLLOW_UP_WEIGHT_FIELD_NUMBER: _ClassVar[int]
    TASK_CORRECT_WEIGHT_FIELD_NUMBER: _ClassVar[int]
    TASK_F1_WEIGHT_FIELD_NUMBER: _ClassVar[int]
    TASK_RESOLVED_WEIGHT_FIELD_NUMBER: _ClassVar[int]
    JUDGE_WEIGHT_FIELD_NUMBER: _ClassVar[int]
    JUDGE_FIELD_NUMBER: _ClassVar[int]
    version: str
    thumb_weight: float
    rating_weight: float
    edit_similarity_weight: float
    sent_weight: float
    time_to_send_weight: float
    escalation_weight: float
    follow_up_weight: float
    task_correct_weight: float
    task_f1_weight: float
    task_resolved_weight: float
    judge_weight: float
    judge: JudgeConfig
    def __init__(self, version: _Optional[str] = ..., thumb_weight: _Optional[float] = ..., rating_weight: _Optional[float] = ..., edit_similarity_weight: _Optional[float] = ..., sent_weight: _Optional[float] = ..., time_to_send_weight: _Optional[float] = ..., escalation_weight: _Optional[float] = ..., follow_up_weight: _Optional[float] = ..., task_correct_weight: _Optional[float] = ..., task_f1_weight: _Optional[float] = ..., task_resolved_weight: _Optional[float] = ..., judge_weight: _Optional[float] = ..., judge: _Optional[_Union[JudgeConfig, _Mapping]] = ...) -> None: ...

class DatasetBuildConfig(_message.Message):
    __slots__ = ("reward_config", "pair_sources", "min_reward_margin", "max_pairs", "eval_fraction", "seed", "policy_ids")
    REWARD_CONFIG_FIELD_NUMBER: _ClassVar[int]
    PAIR_SOURCES_FIELD_NUMBER: _ClassVar[int]
    MIN_REWARD_MARGIN_FIELD_NUMBER: _ClassVar[int]
    MAX_PAIRS_FIELD_NUMBER: _ClassVar[int]
    EVAL_FRACTION_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    POLICY_IDS_FIELD_NUMBER: _ClassVar[int]
    reward_config: RewardConfig
    pair_sources: _containers.RepeatedScalarFieldContainer[PairSource]
    min_reward_margin: float
    max_pairs: int
    eval_fraction: float
    seed: int
    policy_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, reward_config: _Optional[_Union[RewardConfig, _Mapping]] = ..., pair_sources: _Optional[_Iterable[_Union[PairSource, str]]] = ..., min_reward_margin: _Optional[float] = ..., max_pairs: _Optional[int] = ..., eval_fraction: _Optional[float] = ..., seed: _Optional[int] = ..., policy_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class LoraConfig(_message.Message):
    __slots__ = ("rank", "alpha", "dropout", "target_modules", "qlora")
    RANK_FIELD_NUMBER: _ClassVar[int]
    ALPHA_FIELD_NUMBER: _ClassVar[int]
    DROPOUT_FIELD_NUMBER: _ClassVar[int]
    TARGET_MODULES_FIELD_NUMBER: _ClassVar[int]
    QLORA_FIELD_NUMBER: _ClassVar[int]
    rank: int
    alpha: float
    dropout: float
    target_modules: _containers.RepeatedScalarFieldContainer[str]
    qlora: bool
    def __init__(self, rank: _Optional[int] = ..., alpha: _Optional[float] = ..., dropout: _Optional[float] = ..., target_modules: _Optional[_Iterable[str]] = ..., qlora: _Optional[bool] = ...) -> None: ...

class TrainingHyperparameters(_message.Message):
    __slots__ = ("learning_rate", "num_epochs", "max_steps", "batch_size", "gradient_accumulation_steps", "beta", "max_length", "max_prompt_length", "warmup_ratio", "seed", "sft_warmup_epochs", "early_stop_loss")
    LEARNING_RATE_FIELD_NUMBER: _ClassVar[int]
    NUM_EPOCHS_FIELD_NUMBER: _ClassVar[int]
    MAX_STEPS_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    GRADIENT_ACCUMULATION_STEPS_FIELD_NUMBER: _ClassVar[int]
    BETA_FIELD_NUMBER: _ClassVar[int]
    MAX_LENGTH_FIELD_NUMBER: _ClassVar[int]
    MAX_PROMPT_LENGTH_FIELD_NUMBER: _ClassVar[int]
    WARMUP_RATIO_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    SFT_WARMUP_EPOCHS_FIELD_NUMBER: _ClassVar[int]
    EARLY_STOP_LOSS_FIELD_NUMBER: _ClassVar[int]
    learning_rate: float
    num_epochs: float
    max_steps: int
    batch_size: int
    gradient_accumulation_steps: int
    beta: float
    max_length: int
    max_prompt_length: int
    warmup_ratio: float
    seed: int
    sft_warmup_epochs: float
    early_stop_loss: float
    def __init__(self, learning_rate: _Optional[float] = ..., num_epochs: _Optional[float] = ..., max_steps: _Optional[int] = ..., batch_size: _Optional[int] = ..., gradient_accumulation_steps: _Optional[int] = ..., beta: _Optional[float] = ..., max_length: _Optional[int] = ..., max_prompt_length: _Optional[int] = ..., warmup_ratio: _Optional[float] = ..., seed: _Optional[int] = ..., sft_warmup_epochs: _Optional[float] = ..., early_stop_loss: _Optional[float] = ...) -> None: ...

class TrainingConfig(_message.Message):
    __slots__ = ("method", "lora", "hyperparameters", "accelerator")
    METHOD_FIELD_NUMBER: _ClassVar[int]
    LORA_FIELD_NUMBER: _ClassVar[int]
    HYPERPARAMETERS_FIELD_NUMBER: _ClassVar[int]
    ACCELERATOR_FIELD_NUMBER: _ClassVar[int]
    method: TrainingMethod
    lora: LoraConfig
    hyperparameters: TrainingHyperparameters
    accelerator: Accelerator
    def __init__(self, method: _Optional[_Union[TrainingMethod, str]] = ..., lora: _Optional[_Union[LoraConfig, _Mapping]] = ..., hyperparameters: _Optional[_Union[TrainingHyperparameters, _Mapping]] = ..., accelerator: _Optional[_Union[Accelerator, str]] = ...) -> None: ...

class EvaluationGate(_message.Message):
    __slots__ = ("min_win_rate", "require_ci_above_half", "max_p_value", "max_safety_failure_rate", "max_length_ratio", "max_repetition_increase", "max_safety_regression")
    MIN_WIN_RATE_FIELD_NUMBER: _ClassVar[int]
    REQUIRE_CI_ABOVE_HALF_FIELD_NUMBER: _ClassVar[int]
    MAX_P_VALUE_FIELD_NUMBER: _ClassVar[int]
    MAX_SAFETY_FAILURE_RATE_FIELD_NUMBER: _ClassVar[int]
    MAX_LENGTH_RATIO_FIELD_NUMBER: _ClassVar[int]
    MAX_REPETITION_INCREASE_FIELD_NUMBER: _ClassVar[int]
    MAX_SAFETY_REGRESSION_FIELD_NUMBER: _ClassVar[int]
    min_win_rate: float
    require_ci_above_half: bool
    max_p_value: float
    max_safety_failure_rate: float
    max_length_ratio: float
    max_repetition_increase: float
    max_safety_regression: int
    def __init__(self, min_win_rate: _Optional[float] = ..., require_ci_above_half: _Optional[bool] = ..., max_p_value: _Optional[float] = ..., max_safety_failure_rate: _Optional[float] = ..., max_length_ratio: _Optional[float] = ..., max_repetition_increase: _Optional[float] = ..., max_safety_regression: _Optional[int] = ...) -> None: ...

class EvaluationConfig(_message.Message):
    __slots__ = ("dataset_id", "max_examples", "judge", "safety_suites", "confidence_level", "gate")
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    MAX_EXAMPLES_FIELD_NUMBER: _ClassVar[int]
    JUDGE_FIELD_NUMBER: _ClassVar[int]
    SAFETY_SUITES_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_LEVEL_FIELD_NUMBER: _ClassVar[int]
    GATE_FIELD_NUMBER: _ClassVar[int]
    dataset_id: str
    max_examples: int
    judge: JudgeConfig
    safety_suites: _containers.RepeatedScalarFieldContainer[str]
    confidence_level: float
    gate: EvaluationGate
    def __init__(self, dataset_id: _Optional[str] = ..., max_examples: _Optional[int] = ..., judge: _Optional[_Union[JudgeConfig, _Mapping]] = ..., safety_suites: _Optional[_Iterable[str]] = ..., confidence_level: _Optional[float] = ..., gate: _Optional[_Union[EvaluationGate, _Mapping]] = ...) -> None: ...

class CanaryStep(_message.Message):
    __slots__ = ("percent", "duration")
    PERCENT_FIELD_NUMBER: _ClassVar[int]
    DURATION_FIELD_NUMBER: _ClassVar[int]
    percent: float
    duration: _duration_pb2.Duration
    def __init__(self, percent: _Optional[float] = ..., duration: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class RegressionGuard(_message.Message):
    __slots__ = ("min_samples", "max_reward_drop", "max_error_rate_increase", "max_latency_p95_increase", "disable_auto_rollback")
    MIN_SAMPLES_FIELD_NUMBER: _ClassVar[int]
    MAX_REWARD_DROP_FIELD_NUMBER: _ClassVar[int]
    MAX_ERROR_RATE_INCREASE_FIELD_NUMBER: _ClassVar[int]
    MAX_LATENCY_P95_INCREASE_FIELD_NUMBER: _ClassVar[int]
    DISABLE_AUTO_ROLLBACK_FIELD_NUMBER: _ClassVar[int]
    min_samples: int
    max_reward_drop: float
    max_error_rate_increase: float
    max_latency_p95_increase: _duration_pb2.Duration
    disable_auto_rollback: bool
    def __init__(self, min_samples: _Optional[int] = ..., max_reward_drop: _Optional[float] = ..., max_error_rate_increase: _Optional[float] = ..., max_latency_p95_increase: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., disable_auto_rollback: _Optional[bool] = ...) -> None: ...

class RolloutPlan(_message.Message):
    __slots__ = ("shadow_duration", "shadow_sample_rate", "canary_steps", "auto_advance", "guard")
    SHADOW_DURATION_FIELD_NUMBER: _ClassVar[int]
    SHADOW_SAMPLE_RATE_FIELD_NUMBER: _ClassVar[int]
    CANARY_STEPS_FIELD_NUMBER: _ClassVar[int]
    AUTO_ADVANCE_FIELD_NUMBER: _ClassVar[int]
    GUARD_FIELD_NUMBER: _ClassVar[int]
    shadow_duration: _duration_pb2.Duration
    shadow_sample_rate: float
    canary_steps: _containers.RepeatedCompositeFieldContainer[CanaryStep]
    auto_advance: bool
    guard: RegressionGuard
    def __init__(self, shadow_duration: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., shadow_sample_rate: _Optional[float] = ..., canary_steps: _Optional[_Iterable[_Union[CanaryStep, _Mapping]]] = ..., auto_advance: _Optional[bool] = ..., guard: _Optional[_Union[RegressionGuard, _Mapping]] = ...) -> None: ...

class PreferenceDataset(_message.Message):
    __slots__ = ("dataset_id", "skill_id", "display_name", "start_time", "end_time", "build_config", "state", "version", "content_sha256", "storage_uri", "pair_count", "train_pair_count", "eval_pair_count", "interaction_count", "skipped_interaction_count", "mean_reward_margin", "pair_counts_by_source", "error", "tenant_id", "learning_loop_id", "create_time", "complete_time")
    class State(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STATE_UNSPECIFIED: _ClassVar[PreferenceDataset.State]
        STATE_BUILDING: _ClassVar[PreferenceDataset.State]
        STATE_READY: _ClassVar[PreferenceDataset.State]
        STATE_FAILED: _ClassVar[PreferenceDataset.State]
    STATE_UNSPECIFIED: PreferenceDataset.State
    STATE_BUILDING: PreferenceDataset.State
    STATE_READY: PreferenceDataset.State
    STATE_FAILED: PreferenceDataset.State
    class PairCountsBySourceEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    SKILL_ID_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    BUILD_CONFIG_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    CONTENT_SHA256_FIELD_NUMBER: _ClassVar[int]
    STORAGE_URI_FIELD_NUMBER: _ClassVar[int]
    PAIR_COUNT_FIELD_NUMBER: _ClassVar[int]
    TRAIN_PAIR_COUNT_FIELD_NUMBER: _ClassVar[int]
    EVAL_PAIR_COUNT_FIELD_NUMBER: _ClassVar[int]
    INTERACTION_COUNT_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_INTERACTION_COUNT_FIELD_NUMBER: _ClassVar[int]
    MEAN_REWARD_MARGIN_FIELD_NUMBER: _ClassVar[int]
    PAIR_COUNTS_BY_SOURCE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    LEARNING_LOOP_ID_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    COMPLETE_TIME_FIELD_NUMBER: _ClassVar[int]
    dataset_id: str
    skill_id: str
    display_name: str
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    build_config: DatasetBuildConfig
    state: PreferenceDataset.State
    version: int
    content_sha256: str
    storage_uri: str
    pair_count: int
    train_pair_count: int
    eval_pair_count: int
    interaction_count: int
    skipped_interaction_count: int
    mean_reward_margin: float
    pair_counts_by_source: _containers.ScalarMap[str, int]
    error: _status_pb2.Status
    tenant_id: str
    learning_loop_id: str
    create_time: _timestamp_pb2.Timestamp
    complete_time: _timestamp_pb2.Timestamp
    def __init__(self, dataset_id: _Optional[str] = ..., skill_id: _Optional[str] = ..., display_name: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., build_config: _Optional[_Union[DatasetBuildConfig, _Mapping]] = ..., state: _Optional[_Union[PreferenceDataset.State, str]] = ..., version: _Optional[int] = ..., content_sha256: _Optional[str] = ..., storage_uri: _Optional[str] = ..., pair_count: _Optional[int] = ..., train_pair_count: _Optional[int] = ..., eval_pair_count: _Optional[int] = ..., interaction_count: _Optional[int] = ..., skipped_interaction_count: _Optional[int] = ..., mean_reward_margin: _Optional[float] = ..., pair_counts_by_source: _Optional[_Mapping[str, int]] = ..., error: _Optional[_Union[_status_pb2.Status, _Mapping]] = ..., tenant_id: _Optional[str] = ..., learning_loop_id: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., complete_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CreatePreferenceDatasetRequest(_message.Message):
    __slots__ = ("preference_dataset", "request_id")
    PREFERENCE_DATASET_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    preference_dataset: PreferenceDataset
    request_id: str
    def __init__(self, preference_dataset: _Optional[_Union[PreferenceDataset, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class CreatePreferenceDatasetResponse(_message.Message):
    __slots__ = ("preference_dataset",)
    PREFERENCE_DATASET_FIELD_NUMBER: _ClassVar[int]
    preference_dataset: PreferenceDataset
    def __init__(self, preference_dataset: _Optional[_Union[PreferenceDataset, _Mapping]] = ...) -> None: ...

class GetPreferenceDatasetRequest(_message.Message):
    __slots__ = ("dataset_id",)
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    dataset_id: str
    def __init__(self, dataset_id: _Optional[str] = ...) -> None: ...

class GetPreferenceDatasetResponse(_message.Message):
    __slots__ = ("preference_dataset",)
    PREFERENCE_DATASET_FIELD_NUMBER: _ClassVar[int]
    preference_dataset: PreferenceDataset
    def __init__(self, preference_dataset: _Optional[_Union[PreferenceDataset, _Mapping]] = ...) -> None: ...

class ListPreferenceDatasetsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "skill_id", "state")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    SKILL_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    skill_id: str
    state: PreferenceDataset.State
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., skill_id: _Optional[str] = ..., state: _Optional[_Union[PreferenceDataset.State, str]] = ...) -> None: ...

class ListPreferenceDatasetsResponse(_message.Message):
    __slots__ = ("preference_datasets", "next_page_token")
    PREFERENCE_DATASETS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    preference_datasets: _containers.RepeatedCompositeFieldContainer[PreferenceDataset]
    next_page_token: str
    def __init__(self, preference_datasets: _Optional[_Iterable[_Union[PreferenceDataset, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ExportDatasetRequest(_message.Message):
    __slots__ = ("dataset_id", "format", "split", "request_id")
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    SPLIT_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    dataset_id: str
    format: DatasetFormat
    split: DatasetSplit
    request_id: str
    def __init__(self, dataset_id: _Optional[str] = ..., format: _Optional[_Union[DatasetFormat, str]] = ..., split: _Optional[_Union[DatasetSplit, str]] = ..., request_id: _Optional[str] = ...) -> None: ...

class ExportDatasetResponse(_message.Message):
    __slots__ = ("uri", "format", "row_count", "size_bytes", "sha256")
    URI_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    ROW_COUNT_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    uri: str
    format: DatasetFormat
    row_count: int
    size_bytes: int
    sha256: str
    def __init__(self, uri: _Optional[str] = ..., format: _Optional[_Union[DatasetFormat, str]] = ..., row_count: _Optional[int] = ..., size_bytes: _Optional[int] = ..., sha256: _Optional[str] = ...) -> None: ...

class TrainingProgress(_message.Message):
    __slots__ = ("step", "total_steps", "epoch", "loss", "eval_loss", "reward_margin", "reward_accuracy", "learning_rate", "update_time", "stopped_early")
    STEP_FIELD_NUMBER: _ClassVar[int]
    TOTAL_STEPS_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    LOSS_FIELD_NUMBER: _ClassVar[int]
    EVAL_LOSS_FIELD_NUMBER: _ClassVar[int]
    REWARD_MARGIN_FIELD_NUMBER: _ClassVar[int]
    REWARD_ACCURACY_FIELD_NUMBER: _ClassVar[int]
    LEARNING_RATE_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    STOPPED_EARLY_FIELD_NUMBER: _ClassVar[int]
    step: int
    total_steps: int
    epoch: float
    loss: float
    eval_loss: float
    reward_margin: float
    reward_accuracy: float
    learning_rate: float
    update_time: _timestamp_pb2.Timestamp
    stopped_early: bool
    def __init__(self, step: _Optional[int] = ..., total_steps: _Optional[int] = ..., epoch: _Optional[float] = ..., loss: _Optional[float] = ..., eval_loss: _Optional[float] = ..., reward_margin: _Optional[float] = ..., reward_accuracy: _Optional[float] = ..., learning_rate: _Optional[float] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., stopped_early: _Optional[bool] = ...) -> None: ...

class TrainingLineage(_message.Message):
    __slots__ = ("dataset_id", "dataset_sha256", "reward_config", "judge_version", "base_model", "reference_model", "parent_policy_id", "parent_adapter_uri", "parent_adapter_sha256", "adapter_uri", "adapter_sha256", "produced_policy_id", "workflow_id", "trainer_version", "device", "dataset_version")
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    DATASET_SHA256_FIELD_NUMBER: _ClassVar[int]
    REWARD_CONFIG_FIELD_NUMBER: _ClassVar[int]
    JUDGE_VERSION_FIELD_NUMBER: _ClassVar[int]
    BASE_MODEL_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_MODEL_FIELD_NUMBER: _ClassVar[int]
    PARENT_POLICY_ID_FIELD_NUMBER: _ClassVar[int]
    PARENT_ADAPTER_URI_FIELD_NUMBER: _ClassVar[int]
    PARENT_ADAPTER_SHA256_FIELD_NUMBER: _ClassVar[int]
    ADAPTER_URI_FIELD_NUMBER: _ClassVar[int]
    ADAPTER_SHA256_FIELD_NUMBER: _ClassVar[int]
    PRODUCED_POLICY_ID_FIELD_NUMBER: _ClassVar[int]
    WORKFLOW_ID_FIELD_NUMBER: _ClassVar[int]
    TRAINER_VERSION_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    DATASET_VERSION_FIELD_NUMBER: _ClassVar[int]
    dataset_id: str
    dataset_sha256: str
    reward_config: RewardConfig
    judge_version: str
    base_model: str
    reference_model: str
    parent_policy_id: str
    parent_adapter_uri: str
    parent_adapter_sha256: str
    adapter_uri: str
    adapter_sha256: str
    produced_policy_id: str
    workflow_id: str
    trainer_version: str
    device: str
    dataset_version: int
    def __init__(self, dataset_id: _Optional[str] = ..., dataset_sha256: _Optional[str] = ..., reward_config: _Optional[_Union[RewardConfig, _Mapping]] = ..., judge_version: _Optional[str] = ..., base_model: _Optional[str] = ..., reference_model: _Optional[str] = ..., parent_policy_id: _Optional[str] = ..., parent_adapter_uri: _Optional[str] = ..., parent_adapter_sha256: _Optional[str] = ..., adapter_uri: _Optional[str] = ..., adapter_sha256: _Optional[str] = ..., produced_policy_id: _Optional[str] = ..., workflow_id: _Optional[str] = ..., trainer_version: _Optional[str] = ..., device: _Optional[str] = ..., dataset_version: _Optional[int] = ...) -> None: ...

class TrainingRun(_message.Message):
    __slots__ = ("training_run_id", "skill_id", "display_name", "dataset_id", "config", "parent_policy_id", "base_model", "labels", "state", "progress", "lineage", "error", "tenant_id", "learning_loop_id", "create_time", "start_time", "end_time")
    class State(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STATE_UNSPECIFIED: _ClassVar[TrainingRun.State]
        STATE_QUEUED: _ClassVar[TrainingRun.State]
        STATE_RUNNING: _ClassVar[TrainingRun.State]
        STATE_SUCCEEDED: _ClassVar[TrainingRun.State]
        STATE_FAILED: _ClassVar[TrainingRun.State]
        STATE_CANCELLED: _ClassVar[TrainingRun.State]
    STATE_UNSPECIFIED: TrainingRun.State
    STATE_QUEUED: TrainingRun.State
    STATE_RUNNING: TrainingRun.State
    STATE_SUCCEEDED: TrainingRun.State
    STATE_FAILED: TrainingRun.State
    STATE_CANCELLED: TrainingRun.State
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    TRAINING_RUN_ID_FIELD_NUMBER: _ClassVar[int]
    SKILL_ID_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    PARENT_POLICY_ID_FIELD_NUMBER: _ClassVar[int]
    BASE_MODEL_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    LINEAGE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    LEARNING_LOOP_ID_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    training_run_id: str
    skill_id: str
    display_name: str
    dataset_id: str
    config: TrainingConfig
    parent_policy_id: str
    base_model: str
    labels: _containers.ScalarMap[str, str]
    state: TrainingRun.State
    progress: TrainingProgress
    lineage: TrainingLineage
    error: _status_pb2.Status
    tenant_id: str
    learning_loop_id: str
    create_time: _timestamp_pb2.Timestamp
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    def __init__(self, training_run_id: _Optional[str] = ..., skill_id: _Optional[str] = ..., display_name: _Optional[str] = ..., dataset_id: _Optional[str] = ..., config: _Optional[_Union[TrainingConfig, _Mapping]] = ..., parent_policy_id: _Optional[str] = ..., base_model: _Optional[str] = ..., labels: _Optional[_Mapping[str, str]] = ..., state: _Optional[_Union[TrainingRun.State, str]] = ..., progress: _Optional[_Union[TrainingProgress, _Mapping]] = ..., lineage: _Optional[_Union[TrainingLineage, _Mapping]] = ..., error: _Optional[_Union[_status_pb2.Status, _Mapping]] = ..., tenant_id: _Optional[str] = ..., learning_loop_id: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CreateTrainingRunRequest(_message.Message):
    __slots__ = ("training_run", "request_id")
    TRAINING_RUN_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    training_run: TrainingRun
    request_id: str
    def __init__(self, training_run: _Optional[_Union[TrainingRun, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class CreateTrainingRunResponse(_message.Message):
    __slots__ = ("training_run",)
    TRAINING_RUN_FIELD_NUMBER: _ClassVar[int]
    training_run: TrainingRun
    def __init__(self, training_run: _Optional[_Union[TrainingRun, _Mapping]] = ...) -> None: ...

class GetTrainingRunRequest(_message.Message):
    __slots__ = ("training_run_id",)
    TRAINING_RUN_ID_FIELD_NUMBER: _ClassVar[int]
    training_run_id: str
    def __init__(self, training_run_id: _Optional[str] = ...) -> None: ...

class GetTrainingRunResponse(_message.Message):
    __slots__ = ("training_run",)
    TRAINING_RUN_FIELD_NUMBER: _ClassVar[int]
    training_run: TrainingRun
    def __init__(self, training_run: _Optional[_Union[TrainingRun, _Mapping]] = ...) -> None: ...

class ListTrainingRunsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "skill_id", "state")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    SKILL_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    skill_id: str
    state: TrainingRun.State
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., skill_id: _Optional[str] = ..., state: _Optional[_Union[TrainingRun.State, str]] = ...) -> None: ...

class ListTrainingRunsResponse(_message.Message):
    __slots__ = ("training_runs", "next_page_token")
    TRAINING_RUNS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    training_runs: _containers.RepeatedCompositeFieldContainer[TrainingRun]
    next_page_token: str
    def __init__(self, training_runs: _Optional[_Iterable[_Union[TrainingRun, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class CancelTrainingRunRequest(_message.Message):
    __slots__ = ("training_run_id", "request_id")
    TRAINING_RUN_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    training_run_id: str
    request_id: str
    def __init__(self, training_run_id: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class CancelTrainingRunResponse(_message.Message):
    __slots__ = ("training_run",)
    TRAINING_RUN_FIELD_NUMBER: _ClassVar[int]
    training_run: TrainingRun
    def __init__(self, training_run: _Optional[_Union[TrainingRun, _Mapping]] = ...) -> None: ...

class RubricScore(_message.Message):
    __slots__ = ("criterion", "candidate_score", "baseline_score")
    CRITERION_FIELD_NUMBER: _ClassVar[int]
    CANDIDATE_SCORE_FIELD_NUMBER: _ClassVar[int]
    BASELINE_SCORE_FIELD_NUMBER: _ClassVar[int]
    criterion: str
    candidate_score: float
    baseline_score: float
    def __init__(self, criterion: _Optional[str] = ..., candidate_score: _Optional[float] = ..., baseline_score: _Optional[float] = ...) -> None: ...

class SafetyResult(_message.Message):
    __slots__ = ("suite", "case_count", "failure_count", "failure_rate", "passed", "failures", "baseline_failures")
    SUITE_FIELD_NUMBER: _ClassVar[int]
    CASE_COUNT_FIELD_NUMBER: _ClassVar[int]
    FAILURE_COUNT_FIELD_NUMBER: _ClassVar[int]
    FAILURE_RATE_FIELD_NUMBER: _ClassVar[int]
    PASSED_FIELD_NUMBER: _ClassVar[int]
    FAILURES_FIELD_NUMBER: _ClassVar[int]
    BASELINE_FAILURES_FIELD_NUMBER: _ClassVar[int]
    suite: str
    case_count: int
    failure_count: int
    failure_rate: float
    passed: bool
    failures: _containers.RepeatedCompositeFieldContainer[SafetyFailure]
    baseline_failures: _containers.RepeatedCompositeFieldContainer[SafetyFailure]
    def __init__(self, suite: _Optional[str] = ..., case_count: _Optional[int] = ..., failure_count: _Optional[int] = ..., failure_rate: _Optional[float] = ..., passed: _Optional[bool] = ..., failures: _Optional[_Iterable[_Union[SafetyFailure, _Mapping]]] = ..., baseline_failures: _Optional[_Iterable[_Union[SafetyFailure, _Mapping]]] = ...) -> None: ...

class SafetyFailure(_message.Message):
    __slots__ = ("case_id", "reason")
    CASE_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    case_id: str
    reason: str
    def __init__(self, case_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class MetricComparison(_message.Message):
    __slots__ = ("name", "candidate_value", "baseline_value")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CANDIDATE_VALUE_FIELD_NUMBER: _ClassVar[int]
    BASELINE_VALUE_FIELD_NUMBER: _ClassVar[int]
    name: str
    candidate_value: float
    baseline_value: float
    def __init__(self, name: _Optional[str] = ..., candidate_value: _Optional[float] = ..., baseline_value: _Optional[float] = ...) -> None: ...

class EvaluationSample(_message.Message):
    __slots__ = ("prompt", "candidate_text", "baseline_text", "verdict", "rationale")
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    CANDIDATE_TEXT_FIELD_NUMBER: _ClassVar[int]
    BASELINE_TEXT_FIELD_NUMBER: _ClassVar[int]
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    RATIONALE_FIELD_NUMBER: _ClassVar[int]
    prompt: str
    candidate_text: str
    baseline_text: str
    verdict: int
    rationale: str
    def __init__(self, prompt: _Optional[str] = ..., candidate_text: _Optional[str] = ..., baseline_text: _Optional[str] = ..., verdict: _Optional[int] = ..., rationale: _Optional[str] = ...) -> None: ...

class WinRateEstimate(_message.Message):
    __slots__ = ("scorer", "scorer_version", "wins", "losses", "ties", "win_rate", "win_rate_ci_lower", "win_rate_ci_upper", "p_value")
    SCORER_FIELD_NUMBER: _ClassVar[int]
    SCORER_VERSION_FIELD_NUMBER: _ClassVar[int]
    WINS_FIELD_NUMBER: _ClassVar[int]
    LOSSES_FIELD_NUMBER: _ClassVar[int]
    TIES_FIELD_NUMBER: _ClassVar[int]
    WIN_RATE_FIELD_NUMBER: _ClassVar[int]
    WIN_RATE_CI_LOWER_FIELD_NUMBER: _ClassVar[int]
    WIN_RATE_CI_UPPER_FIELD_NUMBER: _ClassVar[int]
    P_VALUE_FIELD_NUMBER: _ClassVar[int]
    scorer: str
    scorer_version: str
    wins: int
    losses: int
    ties: int
    win_rate: float
    win_rate_ci_lower: float
    win_rate_ci_upper: float
    p_value: float
    def __init__(self, scorer: _Optional[str] = ..., scorer_version: _Optional[str] = ..., wins: _Optional[int] = ..., losses: _Optional[int] = ..., ties: _Optional[int] = ..., win_rate: _Optional[float] = ..., win_rate_ci_lower: _Optional[float] = ..., win_rate_ci_upper: _Optional[float] = ..., p_value: _Optional[float] = ...) -> None: ...

class JudgeSummary(_message.Message):
    __slots__ = ("judge_version", "judge_version_label", "judge_model", "verdict_count", "cache_hits", "invalid_verdict_count")
    JUDGE_VERSION_FIELD_NUMBER: _ClassVar[int]
    JUDGE_VERSION_LABEL_FIELD_NUMBER: _ClassVar[int]
    JUDGE_MODEL_FIELD_NUMBER: _ClassVar[int]
    VERDICT_COUNT_FIELD_NUMBER: _ClassVar[int]
    CACHE_HITS_FIELD_NUMBER: _ClassVar[int]
    INVALID_VERDICT_COUNT_FIELD_NUMBER: _ClassVar[int]
    judge_version: str
    judge_version_label: str
    judge_model: str
    verdict_count: int
    cache_hits: int
    invalid_verdict_count: int
    def __init__(self, judge_version: _Optional[str] = ..., judge_version_label: _Optional[str] = ..., judge_model: _Optional[str] = ..., verdict_count: _Optional[int] = ..., cache_hits: _Optional[int] = ..., invalid_verdict_count: _Optional[int] = ...) -> None: ...

class EvaluationResult(_message.Message):
    __slots__ = ("example_count", "wins", "losses", "ties", "win_rate", "win_rate_ci_lower", "win_rate_ci_upper", "confidence_level", "p_value", "rubric_scores", "safety_results", "metrics", "passed", "failure_reasons", "samples", "report_uri", "win_rates", "judge")
    EXAMPLE_COUNT_FIELD_NUMBER: _ClassVar[int]
    WINS_FIELD_NUMBER: _ClassVar[int]
    LOSSES_FIELD_NUMBER: _ClassVar[int]
    TIES_FIELD_NUMBER: _ClassVar[int]
    WIN_RATE_FIELD_NUMBER: _ClassVar[int]
    WIN_RATE_CI_LOWER_FIELD_NUMBER: _ClassVar[int]
    WIN_RATE_CI_UPPER_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_LEVEL_FIELD_NUMBER: _ClassVar[int]
    P_VALUE_FIELD_NUMBER: _ClassVar[int]
    RUBRIC_SCORES_FIELD_NUMBER: _ClassVar[int]
    SAFETY_RESULTS_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    PASSED_FIELD_NUMBER: _ClassVar[int]
    FAILURE_REASONS_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_FIELD_NUMBER: _ClassVar[int]
    REPORT_URI_FIELD_NUMBER: _ClassVar[int]
    WIN_RATES_FIELD_NUMBER: _ClassVar[int]
    JUDGE_FIELD_NUMBER: _ClassVar[int]
    example_count: int
    wins: int
    losses: int
    ties: int
    win_rate: float
    win_rate_ci_lower: float
    win_rate_ci_upper: float
    confidence_level: float
    p_value: float
    rubric_scores: _containers.RepeatedCompositeFieldContainer[RubricScore]
    safety_results: _containers.RepeatedCompositeFieldContainer[SafetyResult]
    metrics: _containers.RepeatedCompositeFieldContainer[MetricComparison]
    passed: bool
    failure_reasons: _containers.RepeatedScalarFieldContainer[str]
    samples: _containers.RepeatedCompositeFieldContainer[EvaluationSample]
    report_uri: str
    win_rates: _containers.RepeatedCompositeFieldContainer[WinRateEstimate]
    judge: JudgeSummary
    def __init__(self, example_count: _Optional[int] = ..., wins: _Optional[int] = ..., losses: _Optional[int] = ..., ties: _Optional[int] = ..., win_rate: _Optional[float] = ..., win_rate_ci_lower: _Optional[float] = ..., win_rate_ci_upper: _Optional[float] = ..., confidence_level: _Optional[float] = ..., p_value: _Optional[float] = ..., rubric_scores: _Optional[_Iterable[_Union[RubricScore, _Mapping]]] = ..., safety_results: _Optional[_Iterable[_Union[SafetyResult, _Mapping]]] = ..., metrics: _Optional[_Iterable[_Union[MetricComparison, _Mapping]]] = ..., passed: _Optional[bool] = ..., failure_reasons: _Optional[_Iterable[str]] = ..., samples: _Optional[_Iterable[_Union[EvaluationSample, _Mapping]]] = ..., report_uri: _Optional[str] = ..., win_rates: _Optional[_Iterable[_Union[WinRateEstimate, _Mapping]]] = ..., judge: _Optional[_Union[JudgeSummary, _Mapping]] = ...) -> None: ...

class Evaluation(_message.Message):
    __slots__ = ("evaluation_id", "skill_id", "candidate_policy_id", "baseline_policy_id", "config", "training_run_id", "display_name", "state", "result", "error", "tenant_id", "learning_loop_id", "create_time", "start_time", "end_time")
    class State(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STATE_UNSPECIFIED: _ClassVar[Evaluation.State]
        STATE_QUEUED: _ClassVar[Evaluation.State]
        STATE_RUNNING: _ClassVar[Evaluation.State]
        STATE_SUCCEEDED: _ClassVar[Evaluation.State]
        STATE_FAILED: _ClassVar[Evaluation.State]
    STATE_UNSPECIFIED: Evaluation.State
    STATE_QUEUED: Evaluation.State
    STATE_RUNNING: Evaluation.State
    STATE_SUCCEEDED: Evaluation.State
    STATE_FAILED: Evaluation.State
    EVALUATION_ID_FIELD_NUMBER: _ClassVar[int]
    SKILL_ID_FIELD_NUMBER: _ClassVar[int]
    CANDIDATE_POLICY_ID_FIELD_NUMBER: _ClassVar[int]
    BASELINE_POLICY_ID_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    TRAINING_RUN_ID_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    LEARNING_LOOP_ID_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    evaluation_id: str
    skill_id: str
    candidate_policy_id: str
    baseline_policy_id: str
    config: EvaluationConfig
    training_run_id: str
    display_name: str
    state: Evaluation.State
    result: EvaluationResult
    error: _status_pb2.Status
    tenant_id: str
    learning_loop_id: str
    create_time: _timestamp_pb2.Timestamp
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    def __init__(self, evaluation_id: _Optional[str] = ..., skill_id: _Optional[str] = ..., candidate_policy_id: _Optional[str] = ..., baseline_policy_id: _Optional[str] = ..., config: _Optional[_Union[EvaluationConfig, _Mapping]] = ..., training_run_id: _Optional[str] = ..., display_name: _Optional[str] = ..., state: _Optional[_Union[Evaluation.State, str]] = ..., result: _Optional[_Union[EvaluationResult, _Mapping]] = ..., error: _Optional[_Union[_status_pb2.Status, _Mapping]] = ..., tenant_id: _Optional[str] = ..., learning_loop_id: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CreateEvaluationRequest(_message.Message):
    __slots__ = ("evaluation", "request_id")
    EVALUATION_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    evaluation: Evaluation
    request_id: str
    def __init__(self, evaluation: _Optional[_Union[Evaluation, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class CreateEvaluationResponse(_message.Message):
    __slots__ = ("evaluation",)
    EVALUATION_FIELD_NUMBER: _ClassVar[int]
    evaluation: Evaluation
    def __init__(self, evaluation: _Optional[_Union[Evaluation, _Mapping]] = ...) -> None: ...

class GetEvaluationRequest(_message.Message):
    __slots__ = ("evaluation_id",)
    EVALUATION_ID_FIELD_NUMBER: _ClassVar[int]
    evaluation_id: str
    def __init__(self, evaluation_id: _Optional[str] = ...) -> None: ...

class GetEvaluationResponse(_message.Message):
    __slots__ = ("evaluation",)
    EVALUATION_FIELD_NUMBER: _ClassVar[int]
    evaluation: Evaluation
    def __init__(self, evaluation: _Optional[_Union[Evaluation, _Mapping]] = ...) -> None: ...

class ListEvaluationsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "skill_id", "candidate_policy_id", "state")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    SKILL_ID_FIELD_NUMBER: _ClassVar[int]
    CANDIDATE_POLICY_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    skill_id: str
    candidate_policy_id: str
    state: Evaluation.State
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., skill_id: _Optional[str] = ..., candidate_policy_id: _Optional[str] = ..., state: _Optional[_Union[Evaluation.State, str]] = ...) -> None: ...

class ListEvaluationsResponse(_message.Message):
    __slots__ = ("evaluations", "next_page_token")
    EVALUATIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    evaluations: _containers.RepeatedCompositeFieldContainer[Evaluation]
    next_page_token: str
    def __init__(self, evaluations: _Optional[_Iterable[_Union[Evaluation, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class LearningLoopConfig(_message.Message):
    __slots__ = ("interval", "min_new_feedback", "max_iterations", "data_window", "min_pairs", "dataset", "training", "evaluation", "rollout")
    INTERVAL_FIELD_NUMBER: _ClassVar[int]
    MIN_NEW_FEEDBACK_FIELD_NUMBER: _ClassVar[int]
    MAX_ITERATIONS_FIELD_NUMBER: _ClassVar[int]
    DATA_WINDOW_FIELD_NUMBER: _ClassVar[int]
    MIN_PAIRS_FIELD_NUMBER: _ClassVar[int]
    DATASET_FIELD_NUMBER: _ClassVar[int]
    TRAINING_FIELD_NUMBER: _ClassVar[int]
    EVALUATION_FIELD_NUMBER: _ClassVar[int]
    ROLLOUT_FIELD_NUMBER: _ClassVar[int]
    interval: _duration_pb2.Duration
    min_new_feedback: int
    max_iterations: int
    data_window: _duration_pb2.Duration
    min_pairs: int
    dataset: DatasetBuildConfig
    training: TrainingConfig
    evaluation: EvaluationConfig
    rollout: RolloutPlan
    def __init__(self, interval: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., min_new_feedback: _Optional[int] = ..., max_iterations: _Optional[int] = ..., data_window: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., min_pairs: _Optional[int] = ..., dataset: _Optional[_Union[DatasetBuildConfig, _Mapping]] = ..., training: _Optional[_Union[TrainingConfig, _Mapping]] = ..., evaluation: _Optional[_Union[EvaluationConfig, _Mapping]] = ..., rollout: _Optional[_Union[RolloutPlan, _Mapping]] = ...) -> None: ...

class LearningLoopIteration(_message.Message):
    __slots__ = ("iteration", "dataset_id", "training_run_id", "candidate_policy_id", "evaluation_id", "rollout_id", "outcome", "error", "start_time", "end_time", "reason", "win_rate", "win_rate_ci_lower", "win_rate_ci_upper", "evaluation_passed")
    class Outcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        OUTCOME_UNSPECIFIED: _ClassVar[LearningLoopIteration.Outcome]
        OUTCOME_PROMOTED: _ClassVar[LearningLoopIteration.Outcome]
        OUTCOME_REJECTED: _ClassVar[LearningLoopIteration.Outcome]
        OUTCOME_ROLLED_BACK: _ClassVar[LearningLoopIteration.Outcome]
        OUTCOME_SKIPPED: _ClassVar[LearningLoopIteration.Outcome]
        OUTCOME_FAILED: _ClassVar[LearningLoopIteration.Outcome]
        OUTCOME_STOPPED: _ClassVar[LearningLoopIteration.Outcome]
    OUTCOME_UNSPECIFIED: LearningLoopIteration.Outcome
    OUTCOME_PROMOTED: LearningLoopIteration.Outcome
    OUTCOME_REJECTED: LearningLoopIteration.Outcome
    OUTCOME_ROLLED_BACK: LearningLoopIteration.Outcome
    OUTCOME_SKIPPED: LearningLoopIteration.Outcome
    OUTCOME_FAILED: LearningLoopIteration.Outcome
    OUTCOME_STOPPED: LearningLoopIteration.Outcome
    ITERATION_FIELD_NUMBER: _ClassVar[int]
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    TRAINING_RUN_ID_FIELD_NUMBER: _ClassVar[int]
    CANDIDATE_POLICY_ID_FIELD_NUMBER: _ClassVar[int]
    EVALUATION_ID_FIELD_NUMBER: _ClassVar[int]
    ROLLOUT_ID_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    WIN_RATE_FIELD_NUMBER: _ClassVar[int]
    WIN_RATE_CI_LOWER_FIELD_NUMBER: _ClassVar[int]
    WIN_RATE_CI_UPPER_FIELD_NUMBER: _ClassVar[int]
    EVALUATION_PASSED_FIELD_NUMBER: _ClassVar[int]
    iteration: int
    dataset_id: str
    training_run_id: str
    candidate_policy_id: str
    evaluation_id: str
    rollout_id: str
    outcome: LearningLoopIteration.Outcome
    error: _status_pb2.Status
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    reason: str
    win_rate: float
    win_rate_ci_lower: float
    win_rate_ci_upper: float
    evaluation_passed: bool
    def __init__(self, iteration: _Optional[int] = ..., dataset_id: _Optional[str] = ..., training_run_id: _Optional[str] = ..., candidate_policy_id: _Optional[str] = ..., evaluation_id: _Optional[str] = ..., rollout_id: _Optional[str] = ..., outcome: _Optional[_Union[LearningLoopIteration.Outcome, str]] = ..., error: _Optional[_Union[_status_pb2.Status, _Mapping]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., reason: _Optional[str] = ..., win_rate: _Optional[float] = ..., win_rate_ci_lower: _Optional[float] = ..., win_rate_ci_upper: _Optional[float] = ..., evaluation_passed: _Optional[bool] = ...) -> None: ...

class LearningLoop(_message.Message):
    __slots__ = ("learning_loop_id", "skill_id", "display_name", "config", "state", "phase", "iteration", "current_iteration", "recent_iterations", "error", "workflow_id", "tenant_id", "create_time", "update_time", "next_iteration_time")
    class State(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STATE_UNSPECIFIED: _ClassVar[LearningLoop.State]
        STATE_RUNNING: _ClassVar[LearningLoop.State]
        STATE_PAUSED: _ClassVar[LearningLoop.State]
        STATE_COMPLETED: _ClassVar[LearningLoop.State]
        STATE_FAILED: _ClassVar[LearningLoop.State]
        STATE_STOPPED: _ClassVar[LearningLoop.State]
    STATE_UNSPECIFIED: LearningLoop.State
    STATE_RUNNING: LearningLoop.State
    STATE_PAUSED: LearningLoop.State
    STATE_COMPLETED: LearningLoop.State
    STATE_FAILED: LearningLoop.State
    STATE_STOPPED: LearningLoop.State
    class Phase(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        PHASE_UNSPECIFIED: _ClassVar[LearningLoop.Phase]
        PHASE_WAITING: _ClassVar[LearningLoop.Phase]
        PHASE_BUILDING_DATASET: _ClassVar[LearningLoop.Phase]
        PHASE_TRAINING: _ClassVar[LearningLoop.Phase]
        PHASE_EVALUATING: _ClassVar[LearningLoop.Phase]
        PHASE_ROLLING_OUT: _ClassVar[LearningLoop.Phase]
    PHASE_UNSPECIFIED: LearningLoop.Phase
    PHASE_WAITING: LearningLoop.Phase
    PHASE_BUILDING_DATASET: LearningLoop.Phase
    PHASE_TRAINING: LearningLoop.Phase
    PHASE_EVALUATING: LearningLoop.Phase
    PHASE_ROLLING_OUT: LearningLoop.Phase
    LEARNING_LOOP_ID_FIELD_NUMBER: _ClassVar[int]
    SKILL_ID_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    PHASE_FIELD_NUMBER: _ClassVar[int]
    ITERATION_FIELD_NUMBER: _ClassVar[int]
    CURRENT_ITERATION_FIELD_NUMBER: _ClassVar[int]
    RECENT_ITERATIONS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    WORKFLOW_ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    NEXT_ITERATION_TIME_FIELD_NUMBER: _ClassVar[int]
    learning_loop_id: str
    skill_id: str
    display_name: str
    config: LearningLoopConfig
    state: LearningLoop.State
    phase: LearningLoop.Phase
    iteration: int
    current_iteration: LearningLoopIteration
    recent_iterations: _containers.RepeatedCompositeFieldContainer[LearningLoopIteration]
    error: _status_pb2.Status
    workflow_id: str
    tenant_id: str
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    next_iteration_time: _timestamp_pb2.Timestamp
    def __init__(self, learning_loop_id: _Optional[str] = ..., skill_id: _Optional[str] = ..., display_name: _Optional[str] = ..., config: _Optional[_Union[LearningLoopConfig, _Mapping]] = ..., state: _Optional[_Union[LearningLoop.State, str]] = ..., phase: _Optional[_Union[LearningLoop.Phase, str]] = ..., iteration: _Optional[int] = ..., current_iteration: _Optional[_Union[LearningLoopIteration, _Mapping]] = ..., recent_iterations: _Optional[_Iterable[_Union[LearningLoopIteration, _Mapping]]] = ..., error: _Optional[_Union[_status_pb2.Status, _Mapping]] = ..., workflow_id: _Optional[str] = ..., tenant_id: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., next_iteration_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class StartLearningLoopRequest(_message.Message):
    __slots__ = ("learning_loop", "request_id")
    LEARNING_LOOP_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    learning_loop: LearningLoop
    request_id: str
    def __init__(self, learning_loop: _Optional[_Union[LearningLoop, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class StartLearningLoopResponse(_message.Message):
    __slots__ = ("learning_loop",)
    LEARNING_LOOP_FIELD_NUMBER: _ClassVar[int]
    learning_loop: LearningLoop
    def __init__(self, learning_loop: _Optional[_Union[LearningLoop, _Mapping]] = ...) -> None: ...

class GetLearningLoopRequest(_message.Message):
    __slots__ = ("learning_loop_id",)
    LEARNING_LOOP_ID_FIELD_NUMBER: _ClassVar[int]
    learning_loop_id: str
    def __init__(self, learning_loop_id: _Optional[str] = ...) -> None: ...

class GetLearningLoopResponse(_message.Message):
    __slots__ = ("learning_loop",)
    LEARNING_LOOP_FIELD_NUMBER: _ClassVar[int]
    learning_loop: LearningLoop
    def __init__(self, learning_loop: _Optional[_Union[LearningLoop, _Mapping]] = ...) -> None: ...

class ListLearningLoopsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "skill_id", "state")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    SKILL_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    skill_id: str
    state: LearningLoop.State
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., skill_id: _Optional[str] = ..., state: _Optional[_Union[LearningLoop.State, str]] = ...) -> None: ...

class ListLearningLoopsResponse(_message.Message):
    __slots__ = ("learning_loops", "next_page_token")
    LEARNING_LOOPS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    learning_loops: _containers.RepeatedCompositeFieldContainer[LearningLoop]
    next_page_token: str
    def __init__(self, learning_loops: _Optional[_Iterable[_Union[LearningLoop, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class PauseLearningLoopRequest(_message.Message):
    __slots__ = ("learning_loop_id", "reason", "request_id")
    LEARNING_LOOP_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    learning_loop_id: str
    reason: str
    request_id: str
    def __init__(self, learning_loop_id: _Optional[str] = ..., reason: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class PauseLearningLoopResponse(_message.Message):
    __slots__ = ("learning_loop",)
    LEARNING_LOOP_FIELD_NUMBER: _ClassVar[int]
    learning_loop: LearningLoop
    def __init__(self, learning_loop: _Optional[_Union[LearningLoop, _Mapping]] = ...) -> None: ...

class ResumeLearningLoopRequest(_message.Message):
    __slots__ = ("learning_loop_id", "request_id")
    LEARNING_LOOP_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    learning_loop_id: str
    request_id: str
    def __init__(self, learning_loop_id: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class ResumeLearningLoopResponse(_message.Message):
    __slots__ = ("learning_loop",)
    LEARNING_LOOP_FIELD_NUMBER: _ClassVar[int]
    learning_loop: LearningLoop
    def __init__(self, learning_loop: _Optional[_Union[LearningLoop, _Mapping]] = ...) -> None: ...

class StopLearningLoopRequest(_message.Message):
    __slots__ = ("learning_loop_id", "reason", "request_id")
    LEARNING_LOOP_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    learning_loop_id: str
    reason: str
    request_id: str
    def __init__(self, learning_loop_id: _Optional[str] = ..., reason: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class StopLearningLoopResponse(_message.Message):
    __slots__ = ("learning_loop",)
    LEARNING_LOOP_FIELD_NUMBER: _ClassVar[int]
    learning_loop: LearningLoop
    def __init__(self, learning_loop: _Optional[_Union[LearningLoop, _Mapping]] = ...) -> None: ...

class ArmMetrics(_message.Message):
    __slots__ = ("policy_id", "request_count", "rewarded_count", "mean_reward", "mean_reward_ci_lower", "mean_reward_ci_upper", "error_rate", "latency_p50", "latency_p95")
    POLICY_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_COUNT_FIELD_NUMBER: _ClassVar[int]
    REWARDED_COUNT_FIELD_NUMBER: _ClassVar[int]
    MEAN_REWARD_FIELD_NUMBER: _ClassVar[int]
    MEAN_REWARD_CI_LOWER_FIELD_NUMBER: _ClassVar[int]
    MEAN_REWARD_CI_UPPER_FIELD_NUMBER: _ClassVar[int]
    ERROR_RATE_FIELD_NUMBER: _ClassVar[int]
    LATENCY_P50_FIELD_NUMBER: _ClassVar[int]
    LATENCY_P95_FIELD_NUMBER: _ClassVar[int]
    policy_id: str
    request_count: int
    rewarded_count: int
    mean_reward: float
    mean_reward_ci_lower: float
    mean_reward_ci_upper: float
    error_rate: float
    latency_p50: _duration_pb2.Duration
    latency_p95: _duration_pb2.Duration
    def __init__(self, policy_id: _Optional[str] = ..., request_count: _Optional[int] = ..., rewarded_count: _Optional[int] = ..., mean_reward: _Optional[float] = ..., mean_reward_ci_lower: _Optional[float] = ..., mean_reward_ci_upper: _Optional[float] = ..., error_rate: _Optional[float] = ..., latency_p50: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., latency_p95: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class Rollout(_message.Message):
    __slots__ = ("rollout_id", "skill_id", "candidate_policy_id", "evaluation_id", "plan", "baseline_policy_id", "stage", "state", "canary_percent", "canary_step_index", "arm_metrics", "rollback_reason", "automatic_rollback", "deployment_revision", "learning_loop_id", "tenant_id", "create_time", "stage_start_time", "next_stage_time", "update_time", "complete_time", "status_message", "awaiting_promotion")
    class Stage(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STAGE_UNSPECIFIED: _ClassVar[Rollout.Stage]
        STAGE_SHADOW: _ClassVar[Rollout.Stage]
        STAGE_CANARY: _ClassVar[Rollout.Stage]
        STAGE_FULL: _ClassVar[Rollout.Stage]
        STAGE_ROLLED_BACK: _ClassVar[Rollout.Stage]
    STAGE_UNSPECIFIED: Rollout.Stage
    STAGE_SHADOW: Rollout.Stage
    STAGE_CANARY: Rollout.Stage
    STAGE_FULL: Rollout.Stage
    STAGE_ROLLED_BACK: Rollout.Stage
    class State(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STATE_UNSPECIFIED: _ClassVar[Rollout.State]
        STATE_RUNNING: _ClassVar[Rollout.State]
        STATE_PAUSED: _ClassVar[Rollout.State]
        STATE_COMPLETED: _ClassVar[Rollout.State]
    STATE_UNSPECIFIED: Rollout.State
    STATE_RUNNING: Rollout.State
    STATE_PAUSED: Rollout.State
    STATE_COMPLETED: Rollout.State
    ROLLOUT_ID_FIELD_NUMBER: _ClassVar[int]
    SKILL_ID_FIELD_NUMBER: _ClassVar[int]
    CANDIDATE_POLICY_ID_FIELD_NUMBER: _ClassVar[int]
    EVALUATION_ID_FIELD_NUMBER: _ClassVar[int]
    PLAN_FIELD_NUMBER: _ClassVar[int]
    BASELINE_POLICY_ID_FIELD_NUMBER: _ClassVar[int]
    STAGE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    CANARY_PERCENT_FIELD_NUMBER: _ClassVar[int]
    CANARY_STEP_INDEX_FIELD_NUMBER: _ClassVar[int]
    ARM_METRICS_FIELD_NUMBER: _ClassVar[int]
    ROLLBACK_REASON_FIELD_NUMBER: _ClassVar[int]
    AUTOMATIC_ROLLBACK_FIELD_NUMBER: _ClassVar[int]
    DEPLOYMENT_REVISION_FIELD_NUMBER: _ClassVar[int]
    LEARNING_LOOP_ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    STAGE_START_TIME_FIELD_NUMBER: _ClassVar[int]
    NEXT_STAGE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    COMPLETE_TIME_FIELD_NUMBER: _ClassVar[int]
    STATUS_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    AWAITING_PROMOTION_FIELD_NUMBER: _ClassVar[int]
    rollout_id: str
    skill_id: str
    candidate_policy_id: str
    evaluation_id: str
    plan: RolloutPlan
    baseline_policy_id: str
    stage: Rollout.Stage
    state: Rollout.State
    canary_percent: float
    canary_step_index: int
    arm_metrics: _containers.RepeatedCompositeFieldContainer[ArmMetrics]
    rollback_reason: str
    automatic_rollback: bool
    deployment_revision: int
    learning_loop_id: str
    tenant_id: str
    create_time: _timestamp_pb2.Timestamp
    stage_start_time: _timestamp_pb2.Timestamp
    next_stage_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    complete_time: _timestamp_pb2.Timestamp
    status_message: str
    awaiting_promotion: bool
    def __init__(self, rollout_id: _Optional[str] = ..., skill_id: _Optional[str] = ..., candidate_policy_id: _Optional[str] = ..., evaluation_id: _Optional[str] = ..., plan: _Optional[_Union[RolloutPlan, _Mapping]] = ..., baseline_policy_id: _Optional[str] = ..., stage: _Optional[_Union[Rollout.Stage, str]] = ..., state: _Optional[_Union[Rollout.State, str]] = ..., canary_percent: _Optional[float] = ..., canary_step_index: _Optional[int] = ..., arm_metrics: _Optional[_Iterable[_Union[ArmMetrics, _Mapping]]] = ..., rollback_reason: _Optional[str] = ..., automatic_rollback: _Optional[bool] = ..., deployment_revision: _Optional[int] = ..., learning_loop_id: _Optional[str] = ..., tenant_id: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., stage_start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., next_stage_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., complete_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., status_message: _Optional[str] = ..., awaiting_promotion: _Optional[bool] = ...) -> None: ...

class CreateRolloutRequest(_message.Message):
    __slots__ = ("rollout", "request_id")
    ROLLOUT_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    rollout: Rollout
    request_id: str
    def __init__(self, rollout: _Optional[_Union[Rollout, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class CreateRolloutResponse(_message.Message):
    __slots__ = ("rollout",)
    ROLLOUT_FIELD_NUMBER: _ClassVar[int]
    rollout: Rollout
    def __init__(self, rollout: _Optional[_Union[Rollout, _Mapping]] = ...) -> None: ...

class GetRolloutRequest(_message.Message):
    __slots__ = ("rollout_id",)
    ROLLOUT_ID_FIELD_NUMBER: _ClassVar[int]
    rollout_id: str
    def __init__(self, rollout_id: _Optional[str] = ...) -> None: ...

class GetRolloutResponse(_message.Message):
    __slots__ = ("rollout",)
    ROLLOUT_FIELD_NUMBER: _ClassVar[int]
    rollout: Rollout
    def __init__(self, rollout: _Optional[_Union[Rollout, _Mapping]] = ...) -> None: ...

class ListRolloutsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "skill_id", "state")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    SKILL_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    skill_id: str
    state: Rollout.State
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., skill_id: _Optional[str] = ..., state: _Optional[_Union[Rollout.State, str]] = ...) -> None: ...

class ListRolloutsResponse(_message.Message):
    __slots__ = ("rollouts", "next_page_token")
    ROLLOUTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    rollouts: _containers.RepeatedCompositeFieldContainer[Rollout]
    next_page_token: str
    def __init__(self, rollouts: _Optional[_Iterable[_Union[Rollout, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class PromoteRolloutRequest(_message.Message):
    __slots__ = ("rollout_id", "target_stage", "reason", "request_id")
    ROLLOUT_ID_FIELD_NUMBER: _ClassVar[int]
    TARGET_STAGE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    rollout_id: str
    target_stage: Rollout.Stage
    reason: str
    request_id: str
    def __init__(self, rollout_id: _Optional[str] = ..., target_stage: _Optional[_Union[Rollout.Stage, str]] = ..., reason: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class PromoteRolloutResponse(_message.Message):
    __slots__ = ("rollout",)
    ROLLOUT_FIELD_NUMBER: _ClassVar[int]
    rollout: Rollout
    def __init__(self, rollout: _Optional[_Union[Rollout, _Mapping]] = ...) -> None: ...

class RollbackRolloutRequest(_message.Message):
    __slots__ = ("rollout_id", "reason", "request_id")
    ROLLOUT_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    rollout_id: str
    reason: str
    request_id: str
    def __init__(self, rollout_id: _Optional[str] = ..., reason: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class RollbackRolloutResponse(_message.Message):
    __slots__ = ("rollout",)
    ROLLOUT_FIELD_NUMBER: _ClassVar[int]
    rollout: Rollout
    def __init__(self, rollout: _Optional[_Union[Rollout, _Mapping]] = ...) -> None: ...

class PauseRolloutRequest(_message.Message):
    __slots__ = ("rollout_id", "reason", "request_id")
    ROLLOUT_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    rollout_id: str
    reason: str
    request_id: str
    def __init__(self, rollout_id: _Optional[str] = ..., reason: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class PauseRolloutResponse(_message.Message):
    __slots__ = ("rollout",)
    ROLLOUT_FIELD_NUMBER: _ClassVar[int]
    rollout: Rollout
    def __init__(self, rollout: _Optional[_Union[Rollout, _Mapping]] = ...) -> None: ...

class ResumeRolloutRequest(_message.Message):
    __slots__ = ("rollout_id", "request_id")
    ROLLOUT_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    rollout_id: str
    request_id: str
    def __init__(self, rollout_id: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class ResumeRolloutResponse(_message.Message):
    __slots__ = ("rollout",)
    ROLLOUT_FIELD_NUMBER: _ClassVar[int]
    rollout: Rollout
    def __init__(self, rollout: _Optional[_Union[Rollout, _Mapping]] = ...) -> None: ...
