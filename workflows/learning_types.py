"""Inputs, outputs and state of the learning loop's workflows and activities. One
dataclass in and one out for each (fields can be added compatibly); big data travels by
object-store URI only, never inside a payload."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from workflows.queues import GPU_TASK_QUEUE
from workflows.training_types import DpoSettings, LoraSettings


@dataclass
class CanaryStep:
    percent: float
    """Share of traffic the candidate serves at this step, (0, 100]."""
    min_duration_s: float = 0.0
    """Time at this step before it may advance, even once the guard accepts."""


@dataclass
class RolloutPlan:
    shadow_requests: int = 20
    """Shadow runs to observe before the canary."""
    canary_percent: float = 10.0
    """The single canary step's percentage when `canary_steps` is empty."""
    canary_min_requests: int = 50
    """Canary answers needed before the sequential test may accept."""
    poll_interval_s: float = 30.0
    max_stage_s: float = 24 * 3600.0
    """A stage that decides nothing in this long ends in a rollback (fail safe)."""
    # Fields below were added later: their defaults reproduce the original behaviour.
    skip_shadow: bool = False
    shadow_min_s: float = 0.0
    """Time in shadow before it may advance, on top of `shadow_requests`."""
    shadow_sample_rate: float = 1.0
    """Fraction of requests dual-run in shadow, (0, 1]."""
    canary_steps: list[CanaryStep] = field(default_factory=list)
    """Increasing percentages; empty: one step at `canary_percent`."""
    auto_advance: bool = True
    """False: a stage whose guard is satisfied waits for the `promote` signal."""
    max_reward_drop: float = 0.0
    """Tolerance of the regression guard: only a larger drop of the mean reward rejects."""
    disable_auto_rollback: bool = False
    """A reject is reported (status reason) and holds the stage; it never rolls back."""
    max_error_rate_increase: float = 0.0
    """Tolerance of the error-rate rule: only a larger increase over the baseline's
    error rate rejects (the rule is always on)."""
    max_latency_p95_increase_s: float = 0.0
    """The p95 latency rule's margin over the baseline's, seconds; 0: not judged."""

    def steps(self) -> list[CanaryStep]:
        return list(self.canary_steps) or [CanaryStep(self.canary_percent)]


@dataclass
class JudgeSpec:
    """The pairwise LLM judge of an evaluation (``JudgeConfig``, checked by
    TrainingService): the evaluate activity builds it on the worker's backend."""

    judge_model: str = ""
    """Empty: the base model the backend serves; else a policy ``skill@vN`` of the
    tenant (its adapter on the same backend)."""
    judge_version: str = ""
    """The caller's label, recorded in the report (verdicts are cached under the
    judge's own content-hash version)."""
    rubric: list[dict[str, Any]] = field(default_factory=list)
    """``RubricCriterion`` fields (name, description, weight), given to the judge."""
    votes: int = 1
    """Judge prompts per pair, combined by consensus."""
    swap_positions: bool = False
    """Judge each pair in both orders too (position bias cancels out)."""


@dataclass
class LoopConfig:
    min_new_feedback: int = 50
    """Feedback events since the last iteration needed to start one."""
    check_interval_s: float = 300.0
    """How often the new feedback is counted while waiting."""
    min_interval_s: float = 0.0
    """Least time between the starts of two iterations (the loop's schedule); 0: none.
    With ``min_new_feedback`` 0 the loop iterates on this schedule alone."""
    min_pairs: int = 16
    max_iterations: int = 0
    """0: run until stopped."""
    iterations_per_run: int = 5
    """Iterations before continue-as-new (history stays small)."""
    lora: LoraSettings = field(default_factory=LoraSettings)
    """The trainer's LoRA settings (a dict of its fields in older histories)."""
    dpo: DpoSettings = field(default_factory=DpoSettings)
    """The trainer's DPO settings (a dict of its fields in older histories)."""
    gpu_task_queue: str = GPU_TASK_QUEUE
    """Task queue of the GPU workers that train (one per GPU pool)."""
    train_heartbeat_timeout_s: float = 120.0
    train_timeout_s: float = 6 * 3600.0
    rollout: RolloutPlan = field(default_factory=RolloutPlan)
    rubric: dict[str, Any] = field(default_factory=dict)
    """The evaluation gate (services.training.evaluation.PromotionRubric fields; empty:
    the evaluation worker's own rubric)."""
    train_checkpoint_every: int = 50
    """Optimiser steps between the training checkpoints a retried train activity
    resumes from (0: none)."""
    judge: JudgeSpec | None = None
    """The evaluation gate's judge; None: similarity to the golden references only."""
    eval_max_examples: int = 0
    """Golden prompts the gate evaluates; 0: the worker's default."""
    eval_safety_suites: list[str] = field(default_factory=list)
    """Safety suites the gate runs; empty: all of them."""
    eval_confidence_level: float = 0.0
    """Of the gate's win-rate interval; 0: 0.95."""
    eval_fraction: float = 0.25
    """Share of each iteration's pairs held out for its gate. More than a one-off
    build's 0.1: the gate's paired test needs examples to see a real improvement."""
    dataset: dict[str, Any] = field(default_factory=dict)
    """The loop's ``DatasetBuildConfig`` (proto JSON, checked at start); empty: the
    builder's defaults."""
    data_window_s: float = 0.0
    """Each build reads the telemetry of this long before the iteration; 0: all of it."""


@dataclass
class IterationSummary:
    iteration: int
    outcome: str  # "promoted" | "rolled_back" | "rejected_by_eval" | "not_enough_data" | "stopped"
    candidate_policy_id: str = ""
    dataset_uri: str = ""
    adapter_uri: str = ""
    win_rate: float = 0.0
    reason: str = ""
    rollout_id: str = ""
    dataset_id: str = ""
    training_run_id: str = ""
    """The iteration's TrainingRun resource (runs recorded before it have none)."""
    evaluation_id: str = ""
    """The iteration's Evaluation resource (likewise)."""
    evaluation_passed: bool = False
    win_rate_ci_low: float = 0.0
    win_rate_ci_high: float = 0.0
    start_time: str = ""
    """When (ISO) the iteration started building its dataset."""
    end_time: str = ""
    """When (ISO) it ended; empty while in progress."""
    error_type: str = ""
    """A failed step's ApplicationError type (services.activity_errors reads it back
    into a status code and reason); with ``error_message``."""
    error_message: str = ""


@dataclass
class LoopState:
    tenant_id: str
    skill_id: str
    loop_id: str
    config: LoopConfig = field(default_factory=LoopConfig)
    iteration: int = 0
    feedback_watermark: str = ""
    """Create time (ISO) of the newest feedback already used."""
    history: list[IterationSummary] = field(default_factory=list)
    paused: bool = False
    last_iteration_start: str = ""
    """When (ISO) the latest iteration started; the schedule counts from it."""
    stopped: bool = False
    """Stopped by the `stop` signal: the loop ends at the next step boundary."""


# ---- activity payloads -------------------------------------------------------------


@dataclass
class CountFeedbackInput:
    tenant_id: str
    skill_id: str
    since: str


@dataclass
class CountFeedbackOutput:
    count: int
    watermark: str


@dataclass
class BuildDatasetInput:
    tenant_id: str
    skill_id: str
    since: str
    until: str
    min_pairs: int
    eval_fraction: float = 0.0
    """Share of the pairs held out (by thread and prompt) for the gate; 0: the
    builder's default."""
    build_config: dict[str, Any] = field(default_factory=dict)
    """The loop's ``DatasetBuildConfig`` as proto JSON; empty: the builder's defaults."""
    window_s: float = 0.0
    """Read the telemetry of this long before ``until``; 0: all of it."""


@dataclass
class BuildDatasetOutput:
    dataset_uri: str  # "" when there were not enough pairs
    dataset_sha256: str
    pairs: int
    reward_config_version: str = ""
    dataset_id: str = ""
    """The PreferenceDataset recorded for it (GetPreferenceDataset)."""


@dataclass
class TrainAdapterInput:
    """The input of the ``train_adapter`` activity (workers.training_activities), from
    a training run and from a learning loop's iteration alike. Data travels by URI only.
    Older learning-loop histories hold a ``TrainInput`` of the first five fields and
    ``lora``/``dpo`` dicts, which decode into it."""

    tenant_id: str
    skill_id: str
    run_id: str
    dataset_uri: str
    """Parquet with columns prompt (text or JSON chat) / chosen / rejected."""
    parent_policy_id: str = ""
    dataset_id: str = ""
    dataset_version: int = 0
    dataset_sha256: str = ""
    """Expected sha256 of the Parquet bytes; checked when given."""
    golden_dataset_uri: str = ""
    """Golden replay pairs (same format), mixed in at ``dpo.replay_fraction``."""
    parent_adapter_uri: str = ""
    """Adapter directory to continue from (it is then also the DPO reference)."""
    parent_adapter_sha256: str = ""
    reward_config_version: str = ""
    judge_version: str = ""
    lora: LoraSettings = field(default_factory=LoraSettings)
    dpo: DpoSettings = field(default_factory=DpoSettings)
    checkpoint_every: int = 50
    """Optimiser steps between checkpoints uploaded to the object store (0: none)."""


@dataclass
class TrainAdapterOutput:
    """The output of ``train_adapter``. Older learning-loop histories hold a
    ``TrainOutput`` of the first four fields, which decodes into it."""

    adapter_uri: str
    """Directory URI: adapter_config.json + adapter_model.safetensors (+ metrics.json,
    loss_curve.png, lineage.json)."""
    adapter_sha256: str
    """sha256 of adapter_model.safetensors."""
    final_loss: float
    steps: int
    metrics_uri: str = ""
    loss_curve_uri: str = ""
    lineage_uri: str = ""
    resumed_from_step: int = 0
    metrics: dict[str, float] = field(default_factory=dict)
    lineage: dict[str, Any] = field(default_factory=dict)


@dataclass
class RegisterCandidateInput:
    tenant_id: str
    skill_id: str
    parent_policy_id: str
    adapter_uri: str
    adapter_sha256: str
    run_id: str


@dataclass
class RegisterCandidateOutput:
    policy_id: str


@dataclass
class EvaluateInput:
    tenant_id: str
    skill_id: str
    candidate_policy_id: str
    baseline_policy_id: str
    rubric: dict[str, Any] = field(default_factory=dict)
    """PromotionRubric fields; empty: the worker's rubric."""
    # Fields below were added for standalone evaluations; their defaults keep what the
    # learning loop always asked for.
    evaluation_id: str = ""
    """Names the report (one per evaluation); empty: one report per candidate."""
    max_examples: int = 0
    """Golden prompts to evaluate; 0: the worker's default."""
    confidence_level: float = 0.0
    """Of the win-rate interval; 0: 0.95."""
    safety_suites: list[str] = field(default_factory=list)
    """Safety suites to run; empty: all of them."""
    judge: JudgeSpec | None = None
    """The pairwise judge; None: scored by similarity to the references only."""
    dataset_uri: str = ""
    """Object-store URI of a preference dataset's Parquet whose eval split gives the
    prompts (chosen answers as references); empty: the skill's golden set."""
    dataset_id: str = ""
    """The dataset's id, for the report."""
    dataset_sha256: str = ""
    """The dataset's content sha256; checked when given."""
    golden_guard: bool = False
    """A learning loop's gate, with ``dataset_uri``: the dataset's held-out pairs decide
    (by their likelihoods, where the backend can score) and, on a skill with a golden
    set, the answers on the golden set guard against regression
    (services.training.evaluation.outcomes_of_margins says why)."""


@dataclass
class WarmGateInput:
    """A policy's answers to the gate's packaged prompts, cached before its gate needs
    them (services.training.gate_answers)."""

    tenant_id: str
    skill_id: str
    policy_id: str
    max_examples: int = 0
    """Golden prompts the gate will answer; 0: the worker's default."""
    safety_suites: list[str] = field(default_factory=list)
    """Safety suites the gate will run; empty: all of them."""


@dataclass
class WarmGateOutput:
    answers: int
    """Packaged prompts the policy now has a cached answer to."""
    generated: int
    """Of those, answered by this run (the rest were cached already)."""


@dataclass
class EvaluateOutput:
    passed: bool
    win_rate: float
    ci_low: float
    ci_high: float
    p_value: float
    reasons: list[str] = field(default_factory=list)
    report_uri: str = ""


@dataclass
class BaselineInput:
    tenant_id: str
    skill_id: str


@dataclass
class BaselineOutput:
    policy_id: str


@dataclass
class SetStageInput:
    tenant_id: str
    skill_id: str
    stage: str  # "shadow" | "canary" | "promote" | "rollback"
    candidate_policy_id: str
    percent: float = 0.0
    rollout_id: str = ""
    reason: str = ""
    step: int = 0
    """Canary step index: each step is its own registry change (own request_id)."""
    sample_rate: float = 1.0
    """Shadow sample rate."""
    to_revision: int = 0
    """Rollback: the deployment revision to restore (0: the previous one)."""


@dataclass
class SetStageOutput:
    revision: int


@dataclass
class ObserveInput:
    tenant_id: str
    skill_id: str
    candidate_policy_id: str
    baseline_policy_id: str
    since: str
    stage: str
    min_requests: int = 20
    """Shadow runs (shadow stage) or rated answers per arm (canary) before deciding."""
    tolerance: float = 0.0
    """Reward drop that does not count as a regression (mSPRT tolerance)."""
    max_error_rate_increase: float = 0.0
    max_latency_p95_increase_s: float = 0.0


@dataclass
class ArmStats:
    """One arm of a rollout stage as the guard last saw it (GetRollout's arm_metrics)."""

    policy_id: str
    requests: int = 0
    rewarded: int = 0
    mean_reward: float = 0.0
    mean_reward_ci_lower: float = 0.0
    mean_reward_ci_upper: float = 0.0
    error_rate: float = 0.0
    latency_p50_s: float = 0.0
    latency_p95_s: float = 0.0


@dataclass
class ObserveOutput:
    candidate_requests: int
    decision: str  # "continue" | "accept" | "reject"
    reason: str = ""
    arms: list[ArmStats] = field(default_factory=list)
    """Candidate first, then the baseline."""


@dataclass
class RolloutInput:
    tenant_id: str
    skill_id: str
    rollout_id: str
    candidate_policy_id: str
    baseline_policy_id: str
    plan: RolloutPlan = field(default_factory=RolloutPlan)


@dataclass
class RolloutResult:
    outcome: str  # "promoted" | "rolled_back"
    stage_reached: str
    reason: str = ""
    automatic_rollback: bool = False
    """The regression guard rolled it back, not a caller."""
    revision: int = 0
    """The deployment revision the rollout last wrote."""
    arms: list[ArmStats] = field(default_factory=list)
    """The last stage's arms as the guard last saw them."""


@dataclass
class RolloutStatus:
    stage: str  # "starting" | "shadow" | "canary" | "full" | "rolled_back"
    paused: bool
    reason: str = ""
    canary_step: int = 0
    """0-based index of the current canary step."""
    canary_percent: float = 0.0
    """Current canary percentage (0 outside the canary)."""
    stage_start: str = ""
    """When the current stage (or canary step) began, ISO 8601."""
    awaiting_promote: bool = False
    """The stage is done (or its regression reported) and waits for `promote`/`rollback`."""
    automatic_rollback: bool = False
    revision: int = 0
    """The deployment revision the rollout last wrote."""
    arms: list[ArmStats] = field(default_factory=list)
    """The current stage's arms as the guard last saw them."""


@dataclass
class LoopStatus:
    phase: str
    iteration: int
    paused: bool
    history: list[IterationSummary] = field(default_factory=list)
    stopped: bool = False
    current: IterationSummary | None = None
    """The iteration in progress, as far as it got."""
    update_time: str = ""
    """When (ISO) the phase last changed."""


# ---- training runs and evaluations as resources --------------------------------------


@dataclass
class TrainingRunInput:
    train: TrainAdapterInput
    task_queue: str = "rlaas-gpu"
    """Where the train activity runs (the model-bearing workers' queue)."""
    heartbeat_timeout_s: float = 120.0
    timeout_s: float = 6 * 3600.0
    max_attempts: int = 3
    """Of the train activity (a retry resumes from the last checkpoint)."""


@dataclass
class TrainingRunStatus:
    phase: str  # "training" | "registering" | "succeeded"
    policy_id: str = ""


@dataclass
class TrainingRunResult:
    trained: TrainAdapterOutput
    policy_id: str
    """The CANDIDATE registered for the adapter."""


@dataclass
class EvaluationInput:
    evaluate: EvaluateInput
    task_queue: str = "rlaas-gpu"
    """Where the evaluate activity runs (it generates with both policies)."""
    timeout_s: float = 2 * 3600.0


@dataclass
class EvaluationStatus:
    phase: str  # "evaluating" | "succeeded"
