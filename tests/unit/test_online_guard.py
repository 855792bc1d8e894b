"""The rollout guard's judgement of one stage from per-arm samples: errors and latency
reject whatever the reward says; shadow accepts on runs; canaries on the reward test."""

from __future__ import annotations

import numpy as np
import pytest

from services.training.online import LATENCY_MIN_SAMPLES, ArmSample, Guard, judge

pytestmark = pytest.mark.unit


def arm(
    policy: str,
    n: int,
    *,
    errors: int = 0,
    latency_s: float = 0.1,
    rewards: list[float] | None = None,
) -> ArmSample:
    return ArmSample(
        policy,
        errors=np.asarray([i < errors for i in range(n)], dtype=bool),
        latencies_s=np.full(n, latency_s),
        rewards=np.asarray(rewards or [], dtype=float),
    )


def test_a_candidate_that_fails_more_often_is_rejected_in_any_stage() -> None:
    guard = Guard(min_samples=10)
    for stage in ("shadow", "canary"):
        verdict = judge(stage, arm("c", 12, errors=12), arm("b", 12), guard, min_shadow_runs=20)
        assert verdict.decision == "reject", verdict
        assert verdict.reason.startswith("error rate 100% vs baseline 0%")


def test_errors_wait_for_enough_requests_on_both_arms() -> None:
    verdict = judge("canary", arm("c", 9, errors=9), arm("b", 40), Guard(10), 0)
    assert verdict.decision == "continue"
    verdict = judge("canary", arm("c", 40, errors=40), arm("b", 9), Guard(10), 0)
    assert verdict.decision == "continue"


def test_errors_as_frequent_as_the_baseline_do_not_reject() -> None:
    verdict = judge("shadow", arm("c", 200, errors=10), arm("b", 200, errors=10), Guard(10), 50)
    assert verdict.decision == "accept", verdict


def test_an_outage_failing_both_arms_neither_rejects_nor_passes_the_shadow() -> None:
    # The engine down for everyone: not the candidate's fault, and no evidence for it.
    down = judge("shadow", arm("c", 60, errors=60), arm("b", 60, errors=60), Guard(10), 50)
    assert down.decision == "continue", down
    assert down.reason == "0/50 shadow runs answered (60 logged)"
    # Back up: the runs it answers count from then on.
    back = arm("c", 110, errors=60)
    verdict = judge("shadow", back, arm("b", 110, errors=60), Guard(10), 50)
    assert verdict.decision == "accept", verdict
    # In a canary no user reacts to a failed request: the reward test waits.
    canary = judge("canary", arm("c", 60, errors=60), arm("b", 60, errors=60), Guard(10), 0)
    assert canary.decision == "continue", canary


def test_the_tolerance_absorbs_a_small_increase() -> None:
    candidate, baseline = arm("c", 400, errors=40), arm("b", 400, errors=0)  # +10 points
    strict = judge("shadow", candidate, baseline, Guard(10), 50)
    assert strict.decision == "reject"
    tolerant = judge("shadow", candidate, baseline, Guard(10, max_error_rate_increase=0.15), 50)
    assert tolerant.decision == "accept", tolerant


def test_latency_is_judged_only_when_asked_and_with_enough_requests() -> None:
    n = LATENCY_MIN_SAMPLES
    slow, fast = arm("c", n, latency_s=2.0), arm("b", n, latency_s=0.5)
    assert judge("shadow", slow, fast, Guard(5), n).decision == "accept"  # not asked
    verdict = judge("shadow", slow, fast, Guard(5, max_latency_p95_increase_s=1.0), n)
    assert verdict.decision == "reject" and "p95 latency 2000 ms" in verdict.reason
    assert judge("shadow", slow, fast, Guard(5, max_latency_p95_increase_s=2.0), n).decision == (
        "accept"
    )
    few = judge(
        "shadow", arm("c", n - 1, latency_s=2.0), fast, Guard(5, max_latency_p95_increase_s=1.0), 1
    )
    assert few.decision == "accept"  # too few requests for a p95: not judged yet


def test_shadow_accepts_on_runs_canary_on_rewards() -> None:
    assert judge("shadow", arm("c", 4), arm("b", 4), Guard(10), 5).decision == "continue"
    assert judge("shadow", arm("c", 5), arm("b", 4), Guard(10), 5).decision == "accept"
    better = arm("c", 60, rewards=[0.9] * 30 + [0.8] * 30)
    worse = arm("b", 60, rewards=[0.3] * 30 + [0.4] * 30)
    assert judge("canary", better, worse, Guard(10), 0).decision == "accept"
    assert judge("canary", worse, better, Guard(10), 0).decision == "reject"
    # No reactions yet: the reward test keeps waiting.
    assert judge("canary", arm("c", 60), arm("b", 60), Guard(10), 0).decision == "continue"


def test_reward_interval_brackets_the_mean() -> None:
    sample = arm("c", 3, rewards=[0.2, 0.4, 0.6])
    low, high = sample.reward_interval()
    assert low < 0.4 < high and low >= 0.0 and high <= 1.0
    assert arm("c", 1, rewards=[0.5]).reward_interval() == (0.5, 0.5)
    assert arm("c", 0).reward_interval() == (0.0, 0.0)
