"""The router, statistically: splits are right (chi-square), sticky per user, the bandit
learns and respects its caps, and logged propensities match observed frequencies."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from scipy.stats import chisquare

from rlaas.registry.v1 import registry_pb2 as reg
from rlaas.telemetry.v1 import telemetry_pb2 as tel
from services.errors import FailedPrecondition
from services.inference.router import Router, RouterSettings

pytestmark = pytest.mark.unit
Reason = tel.RoutingDecision.Reason
USERS = [f"user-{i}" for i in range(20_000)]


def deployment(**traffic: object) -> reg.Deployment:
    return reg.Deployment(
        skill_id="support_email",
        baseline_policy_id="support_email@v1",
        revision=7,
        traffic=reg.TrafficConfig(**traffic),
    )


def test_canary_share_is_right_and_sticky_and_ramps_monotonically() -> None:
    router = Router()
    d = deployment(canary=reg.CanaryTraffic(policy_id="support_email@v2", percent=20))
    first = {u: router.route("t", d, user_id=u, request_id="r").policy_id for u in USERS}
    counts = Counter(first.values())
    assert chisquare([counts["support_email@v2"], counts["support_email@v1"]],
                     [0.2 * len(USERS), 0.8 * len(USERS)]).pvalue > 0.001  # fmt: skip
    # Sticky: the same user lands on the same arm every time.
    assert all(
        router.route("t", d, user_id=u, request_id="x").policy_id == first[u] for u in USERS[:500]
    )
    # Ramping 20% -> 50% only moves users into the canary.
    d.traffic.canary.percent = 50
    ramped = {u: router.route("t", d, user_id=u, request_id="r").policy_id for u in USERS}
    assert all(ramped[u] == "support_email@v2" for u, p in first.items() if p == "support_email@v2")
    r = router.route("t", d, user_id=USERS[0], request_id="r")
    assert r.probability == 0.5 and r.revision == 7
    assert r.reason in (Reason.REASON_CANARY, Reason.REASON_BASELINE)


def test_ab_split_matches_weights() -> None:
    arms = [reg.TrafficArm(policy_id=f"s@v{i}", weight=w) for i, w in enumerate([1, 2, 1], 1)]
    d = deployment(ab_split=reg.AbSplitTraffic(arms=arms))
    routes = [Router().route("t", d, user_id=u, request_id="r") for u in USERS]
    counts = Counter(r.policy_id for r in routes)
    observed = [counts["s@v1"], counts["s@v2"], counts["s@v3"]]
    assert chisquare(observed, [len(USERS) * s for s in (0.25, 0.5, 0.25)]).pvalue > 0.001
    assert {r.policy_id: r.probability for r in routes} == {"s@v1": 0.25, "s@v2": 0.5, "s@v3": 0.25}
    # Another tenant's users are split independently (different hash space).
    other = Counter(
        Router().route("u", d, user_id=u, request_id="r").policy_id for u in USERS[:2000]
    )
    mine = Counter(r.policy_id for r in routes[:2000])
    assert other != mine


def test_bandit_learns_the_better_arm_within_its_cap() -> None:
    rng = np.random.default_rng(7)
    router = Router(RouterSettings(default_max_exploration=0.3), rng=np.random.default_rng(1))
    d = deployment(bandit=reg.BanditTraffic(arms=[reg.TrafficArm(policy_id="good@v2")]))
    true_rate = {"support_email@v1": 0.3, "good@v2": 0.8}
    late: Counter[str] = Counter()
    for step in range(4000):
        r = router.route("t", d, user_id="", request_id=str(step), now=0.0)
        reward = float(rng.random() < true_rate[r.policy_id])
        router.bandit.record_reward("t", "support_email", r.policy_id, reward)
        if step >= 3000:
            late[r.policy_id] += 1
    share_good = late["good@v2"] / 1000
    assert 0.2 < share_good <= 0.3 + 0.05  # nearly all exploration goes to the better arm
    assert late["support_email@v1"] / 1000 >= 0.7 - 0.05  # the baseline keeps its minimum


def test_bandit_budget_and_kill_switch() -> None:
    d = deployment(bandit=reg.BanditTraffic(arms=[reg.TrafficArm(policy_id="c@v2", weight=50)],
                                            max_exploration=1.0))  # fmt: skip
    router = Router(RouterSettings(max_explorations_per_hour=25))
    routes = [router.route("t", d, user_id="", request_id=str(i), now=3600.0) for i in range(500)]
    assert sum(r.policy_id == "c@v2" for r in routes) == 25
    # The budget is per tenant and per hour.
    assert any(router.route("u", d, user_id="", request_id=str(i), now=3600.0).policy_id == "c@v2"
               for i in range(50))  # fmt: skip
    assert any(router.route("t", d, user_id="", request_id=str(i), now=7300.0).policy_id == "c@v2"
               for i in range(50))  # fmt: skip
    killed = Router(RouterSettings(kill_switch=True))
    assert {killed.route("t", d, user_id="", request_id=str(i)).policy_id for i in range(100)} == {
        "support_email@v1"
    }


def test_bandit_propensities_match_observed_frequencies() -> None:
    router = Router(RouterSettings(default_max_exploration=0.5), rng=np.random.default_rng(3))
    d = deployment(bandit=reg.BanditTraffic(arms=[reg.TrafficArm(policy_id="b@v2"),
                                                  reg.TrafficArm(policy_id="c@v3")]))  # fmt: skip
    for arm, (a, b) in {"support_email@v1": (30, 20), "b@v2": (35, 15), "c@v3": (20, 30)}.items():
        p = router.bandit.posterior("t", "support_email", arm, 1.0)
        p.alpha, p.beta = a, b
    routes = [router.route("t", d, user_id="", request_id=str(i), now=0.0) for i in range(6000)]
    counts = Counter(r.policy_id for r in routes)
    for arm, n in counts.items():
        logged = np.mean([r.probability for r in routes if r.policy_id == arm])
        assert abs(n / len(routes) - logged) < 0.03, (arm, n / len(routes), logged)


def test_pinned_shadow_and_missing_baseline() -> None:
    d = deployment(shadow=reg.ShadowTraffic(policy_ids=["s@v9"], sample_rate=0.25))
    pinned = Router().route("t", d, user_id="u", request_id="r", pinned_policy_id="s@v3")
    assert (pinned.policy_id, pinned.reason, pinned.probability) == (
        "s@v3",
        Reason.REASON_PINNED,
        1.0,
    )
    shadowed = [
        bool(Router().route("t", d, user_id=u, request_id="r").shadow_policy_ids) for u in USERS
    ]
    assert abs(sum(shadowed) / len(USERS) - 0.25) < 0.02
    with pytest.raises(FailedPrecondition):
        Router().route("t", None, user_id="u", request_id="r")
    with pytest.raises(FailedPrecondition):
        Router().route("t", reg.Deployment(skill_id="x"), user_id="u", request_id="r")
