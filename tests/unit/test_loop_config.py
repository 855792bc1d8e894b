"""StartLearningLoop's config reaches the trainer, and bad values fail the start."""

from __future__ import annotations

import pytest

from rlaas.training.v1 import training_pb2 as pb
from services.errors import InvalidArgument
from services.training.loops import RECIPE, _config, effective_config
from workflows.training_types import DpoSettings, LoraSettings

pytestmark = pytest.mark.unit


def test_training_config_maps_to_trainer_settings() -> None:
    proto = pb.LearningLoopConfig(
        min_pairs=32,
        training=pb.TrainingConfig(
            method=pb.TRAINING_METHOD_IPO,
            lora=pb.LoraConfig(rank=16, alpha=32, target_modules=["q_proj", "k_proj"]),
            hyperparameters=pb.TrainingHyperparameters(learning_rate=5e-5, num_epochs=2, beta=0.2),
        ),
    )
    cfg = _config(proto)
    assert cfg.min_pairs == 32
    assert cfg.lora == LoraSettings(rank=16, alpha=32.0, target_modules=("q_proj", "k_proj"))
    # Unset fields take the platform's recipe, then the trainer's defaults; a set one
    # wins.
    assert cfg.dpo == DpoSettings(loss="ipo", learning_rate=5e-5, epochs=2.0, beta=0.2,
                                  **RECIPE)  # fmt: skip
    default = _config(pb.LearningLoopConfig())
    assert default.lora == LoraSettings()
    assert default.dpo == DpoSettings(**RECIPE)
    warm_start = pb.TrainingConfig(
        method=pb.TRAINING_METHOD_DPO,
        hyperparameters=pb.TrainingHyperparameters(sft_warmup_epochs=1),
    )
    asked = _config(pb.LearningLoopConfig(training=warm_start)).dpo
    assert (asked.sft_warmup_epochs, asked.sft_warmup_below_similarity) == (1.0, 0.0)
    # Unset, the data decides (RECIPE's rule); an explicit 0 means never.
    assert default.dpo.sft_warmup_below_similarity == 0.5
    never = pb.TrainingConfig(
        method=pb.TRAINING_METHOD_DPO,
        hyperparameters=pb.TrainingHyperparameters(sft_warmup_epochs=0),
    )
    assert _config(pb.LearningLoopConfig(training=never)).dpo.sft_warmup_below_similarity == 0.0
    # Early stopping is on unless a request turns it off.
    assert default.dpo.early_stop_loss == 0.1
    no_stop = pb.TrainingConfig(
        method=pb.TRAINING_METHOD_DPO,
        hyperparameters=pb.TrainingHyperparameters(early_stop_loss=0),
    )
    assert _config(pb.LearningLoopConfig(training=no_stop)).dpo.early_stop_loss == 0.0


def test_the_effective_config_leaves_the_warm_start_to_the_data_when_unset() -> None:
    out = effective_config(pb.LearningLoopConfig())
    assert not out.training.hyperparameters.HasField("sft_warmup_epochs")
    # Sent back as a request, it keeps the rule rather than turning it off.
    assert _config(out).dpo == DpoSettings(**RECIPE)
    warm = pb.LearningLoopConfig(training=pb.TrainingConfig(
        method=pb.TRAINING_METHOD_DPO,
        hyperparameters=pb.TrainingHyperparameters(sft_warmup_epochs=0)))  # fmt: skip
    assert effective_config(warm).training.hyperparameters.HasField("sft_warmup_epochs")


@pytest.mark.parametrize(
    "training",
    [
        pb.TrainingConfig(method=pb.TRAINING_METHOD_SFT),
        pb.TrainingConfig(
            method=pb.TRAINING_METHOD_DPO,
            hyperparameters=pb.TrainingHyperparameters(beta=-1.0),
        ),
    ],
)
def test_bad_training_config_fails_the_start(training: pb.TrainingConfig) -> None:
    with pytest.raises(InvalidArgument) as info:
        _config(pb.LearningLoopConfig(training=training))
    assert info.value.violations[0].field.startswith("learning_loop.config.training")


def test_evaluation_gate_maps_to_the_promotion_rubric() -> None:
    from services.training.evaluation import PromotionRubric

    gate = pb.EvaluationGate(min_win_rate=0.6, require_ci_above_half=True, max_p_value=0.1)
    cfg = _config(pb.LearningLoopConfig(evaluation=pb.EvaluationConfig(gate=gate)))
    rubric = PromotionRubric(**cfg.rubric)
    assert (rubric.min_win_rate, rubric.require_ci_above_half, rubric.max_p_value) == (
        0.6,
        True,
        0.1,
    )
    assert rubric.max_safety_failure_rate == 0.0  # the contract's default: no failure allowed
    assert _config(pb.LearningLoopConfig()).rubric == {}  # no gate: the worker's rubric
    with pytest.raises(InvalidArgument) as info:
        _config(pb.LearningLoopConfig(evaluation=pb.EvaluationConfig(
            gate=pb.EvaluationGate(min_win_rate=1.5, max_safety_failure_rate=-0.1))))  # fmt: skip
    assert [v.field for v in info.value.violations] == [
        "learning_loop.config.evaluation.gate.min_win_rate",
        "learning_loop.config.evaluation.gate.max_safety_failure_rate",
    ]


def test_the_gates_guards_are_set_checked_and_reported() -> None:
    from services.training.evaluation import PromotionRubric

    gate = pb.EvaluationGate(max_length_ratio=3, max_repetition_increase=0, max_safety_regression=0)
    cfg = _config(pb.LearningLoopConfig(evaluation=pb.EvaluationConfig(gate=gate)))
    rubric = PromotionRubric(**cfg.rubric)
    # Explicit zeros are kept: "no more repetition than the baseline" is a real ask.
    assert (rubric.max_length_ratio, rubric.max_repetition_increase,
            rubric.max_safety_regression) == (3.0, 0.0, 0)  # fmt: skip
    some = pb.EvaluationConfig(gate=pb.EvaluationGate(min_win_rate=0.6))
    unset = PromotionRubric(**_config(pb.LearningLoopConfig(evaluation=some)).rubric)
    assert (unset.max_length_ratio, unset.max_repetition_increase,
            unset.max_safety_regression) == (2.0, 0.1, 1)  # fmt: skip
    shown = effective_config(pb.LearningLoopConfig()).evaluation.gate
    assert (shown.max_length_ratio, shown.max_repetition_increase,
            shown.max_safety_regression) == (2.0, 0.1, 1)  # fmt: skip
    bad = pb.EvaluationGate(max_length_ratio=0.5, max_repetition_increase=float("nan"),
                            max_safety_regression=-1)  # fmt: skip
    with pytest.raises(InvalidArgument) as info:
        _config(pb.LearningLoopConfig(evaluation=pb.EvaluationConfig(gate=bad)))
    assert [v.field for v in info.value.violations] == [
        f"learning_loop.config.evaluation.gate.{name}"
        for name in ("max_length_ratio", "max_repetition_increase", "max_safety_regression")
    ]


def test_dataset_config_and_window_are_kept_and_checked() -> None:
    from google.protobuf import json_format

    from workers.dataset_activities import _build_config
    from workflows.learning_types import BuildDatasetInput

    dataset = pb.DatasetBuildConfig(
        max_pairs=40, min_reward_margin=0.2, seed=7, pair_sources=[pb.PAIR_SOURCE_EDIT],
        reward_config=pb.RewardConfig(edit_similarity_weight=2.0),
    )  # fmt: skip
    proto = pb.LearningLoopConfig(dataset=dataset)
    proto.data_window.FromSeconds(3600)
    cfg = _config(proto, skill_id="support_email")
    assert cfg.data_window_s == 3600 and cfg.eval_fraction == 0.25  # the loop's own default
    assert json_format.ParseDict(cfg.dataset, pb.DatasetBuildConfig()) == dataset
    # What the build activity makes of it.
    reward, options = _build_config(
        BuildDatasetInput("t", "support_email", "", "", 16, build_config=cfg.dataset)
    )
    assert (options.max_pairs, options.min_reward_margin, options.seed) == (40, 0.2, 7)
    assert options.pair_sources == ("PAIR_SOURCE_EDIT",)
    assert reward.edit_similarity_weight == 2.0
    # Unset: all of the telemetry, the builder's defaults.
    default = _config(pb.LearningLoopConfig())
    assert (default.dataset, default.data_window_s) == ({}, 0.0)


def test_bad_dataset_config_fails_the_start_naming_each_field() -> None:
    proto = pb.LearningLoopConfig(
        dataset=pb.DatasetBuildConfig(
            max_pairs=-1, min_reward_margin=2.0, pair_sources=[pb.PairSource.ValueType(42)],
            reward_config=pb.RewardConfig(judge_weight=1.0),
        ),
    )  # fmt: skip
    proto.data_window.FromMilliseconds(10)
    with pytest.raises(InvalidArgument) as info:
        _config(proto, skill_id="support_email")
    fields = {v.field for v in info.value.violations}
    path = "learning_loop.config.dataset"
    assert fields == {
        f"{path}.max_pairs", f"{path}.min_reward_margin", f"{path}.pair_sources[0]",
        f"{path}.reward_config.judge_weight", "learning_loop.config.data_window",
    }  # fmt: skip
