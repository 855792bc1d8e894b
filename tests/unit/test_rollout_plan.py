"""The contract's RolloutPlan -> the workflow's plan (one function, used by
CreateRollout and StartLearningLoop), and bad values failing the request."""

from __future__ import annotations

import pytest
from google.protobuf import duration_pb2

from rlaas.training.v1 import training_pb2 as pb
from services.errors import InvalidArgument
from services.training.loops import _config
from services.training.rollouts import DEFAULT_CANARY_STEPS, plan_from_proto, plan_to_proto
from workflows.learning_types import CanaryStep, RolloutPlan

pytestmark = pytest.mark.unit


def seconds(s: float) -> duration_pb2.Duration:
    d = duration_pb2.Duration()
    d.FromNanoseconds(int(s * 1e9))
    return d


def test_no_plan_means_server_defaults_advancing_by_themselves() -> None:
    plan = plan_from_proto(None, "rollout.plan")
    assert plan.auto_advance and not plan.skip_shadow and not plan.disable_auto_rollback
    assert [s.percent for s in plan.steps()] == list(DEFAULT_CANARY_STEPS)
    assert plan.canary_min_requests == RolloutPlan().canary_min_requests
    assert plan.max_reward_drop == 0.0


def test_full_plan_maps_every_field() -> None:
    proto = pb.RolloutPlan(
        shadow_duration=seconds(90),
        shadow_sample_rate=0.25,
        canary_steps=[
            pb.CanaryStep(percent=10, duration=seconds(60)),
            pb.CanaryStep(percent=50),
            pb.CanaryStep(percent=100, duration=seconds(1.5)),
        ],
        auto_advance=False,
        guard=pb.RegressionGuard(
            min_samples=8, max_reward_drop=0.05, max_error_rate_increase=0.02,
            max_latency_p95_increase=seconds(0.25), disable_auto_rollback=True,
        ),
    )  # fmt: skip
    plan = plan_from_proto(proto, "rollout.plan")
    assert (plan.skip_shadow, plan.shadow_min_s, plan.shadow_sample_rate) == (False, 90.0, 0.25)
    assert plan.canary_steps == [CanaryStep(10, 60.0), CanaryStep(50, 0.0), CanaryStep(100, 1.5)]
    assert plan.auto_advance is False
    assert (plan.canary_min_requests, plan.max_reward_drop) == (8, 0.05)
    assert (plan.max_error_rate_increase, plan.max_latency_p95_increase_s) == (0.02, 0.25)
    assert plan.disable_auto_rollback is True
    # ... and back, as GetRollout shows it.
    assert plan_to_proto(plan) == proto


def test_zero_shadow_duration_skips_shadow_unset_keeps_it() -> None:
    skipped = plan_from_proto(pb.RolloutPlan(shadow_duration=seconds(0)), "p")
    assert skipped.skip_shadow and skipped.shadow_min_s == 0
    kept = plan_from_proto(pb.RolloutPlan(auto_advance=True), "p")
    assert not kept.skip_shadow and kept.shadow_min_s == 0
    # A plan given without auto_advance waits for PromoteRollout at every stage.
    assert plan_from_proto(pb.RolloutPlan(), "p").auto_advance is False
    assert plan_to_proto(skipped).HasField("shadow_duration")
    assert not plan_to_proto(kept).HasField("shadow_duration")


def test_workflow_plan_without_steps_keeps_its_single_canary() -> None:
    assert [s.percent for s in RolloutPlan(canary_percent=20).steps()] == [20]


@pytest.mark.parametrize(
    ("proto", "fields"),
    [
        (pb.RolloutPlan(canary_steps=[pb.CanaryStep(percent=0)]), ["canary_steps[0].percent"]),
        (pb.RolloutPlan(canary_steps=[pb.CanaryStep(percent=101)]), ["canary_steps[0].percent"]),
        (pb.RolloutPlan(canary_steps=[pb.CanaryStep(percent=-5)]), ["canary_steps[0].percent"]),
        (
            pb.RolloutPlan(canary_steps=[pb.CanaryStep(percent=float("nan"))]),
            ["canary_steps[0].percent"],
        ),
        (
            pb.RolloutPlan(canary_steps=[pb.CanaryStep(percent=50), pb.CanaryStep(percent=50)]),
            ["canary_steps[1].percent"],
        ),
        (
            pb.RolloutPlan(
                canary_steps=[
                    pb.CanaryStep(percent=20),
                    pb.CanaryStep(percent=10),
                    pb.CanaryStep(percent=30, duration=seconds(-1)),
                ]
            ),
            ["canary_steps[1].percent", "canary_steps[2].duration"],
        ),
        (pb.RolloutPlan(shadow_duration=seconds(-1)), ["shadow_duration"]),
        (pb.RolloutPlan(shadow_sample_rate=1.5), ["shadow_sample_rate"]),
        (pb.RolloutPlan(guard=pb.RegressionGuard(min_samples=-1)), ["guard.min_samples"]),
        (pb.RolloutPlan(guard=pb.RegressionGuard(max_reward_drop=1.5)), ["guard.max_reward_drop"]),
        (
            pb.RolloutPlan(guard=pb.RegressionGuard(max_error_rate_increase=1.5)),
            ["guard.max_error_rate_increase"],
        ),
        (
            pb.RolloutPlan(guard=pb.RegressionGuard(max_error_rate_increase=float("nan"))),
            ["guard.max_error_rate_increase"],
        ),
        (
            pb.RolloutPlan(guard=pb.RegressionGuard(max_latency_p95_increase=seconds(-0.2))),
            ["guard.max_latency_p95_increase"],
        ),
    ],
)
def test_bad_plans_name_every_bad_field(proto: pb.RolloutPlan, fields: list[str]) -> None:
    with pytest.raises(InvalidArgument) as info:
        plan_from_proto(proto, "rollout.plan")
    assert [v.field for v in info.value.violations] == [f"rollout.plan.{f}" for f in fields]


def test_learning_loop_rollout_uses_the_same_mapping() -> None:
    cfg = _config(pb.LearningLoopConfig())
    assert cfg.rollout == plan_from_proto(None, "x")
    cfg = _config(
        pb.LearningLoopConfig(
            rollout=pb.RolloutPlan(
                shadow_duration=seconds(5),
                canary_steps=[pb.CanaryStep(percent=50)],
                auto_advance=True,
                guard=pb.RegressionGuard(min_samples=8),
            )
        )
    )
    assert cfg.rollout.steps() == [CanaryStep(50)] and cfg.rollout.canary_min_requests == 8
    assert cfg.rollout.shadow_min_s == 5 and cfg.rollout.auto_advance
    with pytest.raises(InvalidArgument) as info:
        _config(pb.LearningLoopConfig(rollout=pb.RolloutPlan(canary_steps=[pb.CanaryStep()])))
    assert info.value.violations[0].field == "learning_loop.config.rollout.canary_steps[0].percent"


def test_loop_gate_takes_sample_suites_and_level_and_refuses_a_dataset() -> None:
    cfg = _config(
        pb.LearningLoopConfig(
            evaluation=pb.EvaluationConfig(
                max_examples=8, safety_suites=["jailbreak", "jailbreak"], confidence_level=0.9
            )
        )
    )
    assert (cfg.eval_max_examples, cfg.eval_safety_suites, cfg.eval_confidence_level) == (
        8, ["jailbreak"], 0.9,
    )  # fmt: skip
    with pytest.raises(InvalidArgument) as info:
        _config(
            pb.LearningLoopConfig(
                evaluation=pb.EvaluationConfig(
                    dataset_id="ds-1", max_examples=-1, safety_suites=["nope"],
                    confidence_level=1.5,
                )
            )
        )  # fmt: skip
    assert [v.field for v in info.value.violations] == [
        f"learning_loop.config.evaluation.{f}"
        for f in ("dataset_id", "max_examples", "confidence_level", "safety_suites[0]")
    ]


def test_loop_schedule_follows_the_contract() -> None:
    default = _config(pb.LearningLoopConfig())
    # Unset: at least a day between iteration starts, on the schedule alone.
    assert (default.min_interval_s, default.min_new_feedback) == (24 * 3600.0, 0)
    assert default.check_interval_s == 300.0
    quick = _config(pb.LearningLoopConfig(interval=seconds(2), min_new_feedback=64))
    assert (quick.min_interval_s, quick.check_interval_s, quick.min_new_feedback) == (2, 2, 64)
    with pytest.raises(InvalidArgument) as info:
        _config(pb.LearningLoopConfig(interval=seconds(0.5), min_new_feedback=-1))
    assert [v.field for v in info.value.violations] == [
        "learning_loop.config.interval",
        "learning_loop.config.min_new_feedback",
    ]
