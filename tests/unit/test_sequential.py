"""The rollout's always-valid test: catches regressions, passes improvements, and keeps
its false-alarm rate when checked after every sample."""

from __future__ import annotations

import numpy as np
import pytest

from services.training.sequential import msprt

pytestmark = pytest.mark.unit


def stream(rng: np.random.Generator, p: float, n: int) -> np.ndarray:
    return (rng.random(n) < p).astype(float)


def first_decision(rng: np.random.Generator, p_candidate: float, p_baseline: float) -> str:
    c, b = stream(rng, p_candidate, 2000), stream(rng, p_baseline, 2000)
    for n in range(20, 2001, 10):  # peek every 10 requests
        d = msprt(c[:n], b[:n], max_samples=2000)
        if d.decision != "continue":
            return d.decision
    return "continue"


def test_regression_is_rejected_and_improvement_accepted() -> None:
    rng = np.random.default_rng(0)
    assert [first_decision(rng, 0.4, 0.7) for _ in range(20)].count("reject") >= 19
    assert [first_decision(rng, 0.8, 0.5) for _ in range(20)].count("accept") >= 19


def test_false_alarms_stay_below_alpha_despite_peeking() -> None:
    rng = np.random.default_rng(1)
    outcomes = [first_decision(rng, 0.6, 0.6) for _ in range(200)]
    false_rejects = outcomes.count("reject") / len(outcomes)
    assert false_rejects <= 0.05  # alpha, although we looked ~200 times per run


def test_too_few_samples_continue() -> None:
    d = msprt(np.zeros(5), np.ones(5))
    assert d.decision == "continue"


def test_a_drop_within_the_tolerance_is_not_a_regression() -> None:
    """RegressionGuard.max_reward_drop: only a larger drop counts."""
    rng = np.random.default_rng(2)
    candidate, baseline = stream(rng, 0.75, 1500), stream(rng, 0.8, 1500)
    assert msprt(candidate, baseline).decision == "reject"
    assert msprt(candidate, baseline, tolerance=0.1).decision != "reject"
    assert msprt(stream(rng, 0.5, 1500), baseline, tolerance=0.1).decision == "reject"
