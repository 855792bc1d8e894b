"""Which policy serves a request: the router. Pure logic over a deployment snapshot, no
I/O, so it is fast, deterministic where it must be, and testable statistically.

- Sticky assignment: a user's position in [0, 1) is a hash of (tenant, skill, user, salt);
  canary and A/B splits compare it to cumulative shares, so a user keeps their arm while
  the split stands, and raising a canary percentage only moves users *into* the canary.
- Thompson sampling for the bandit: each arm's reward rate has a Beta posterior; a draw
  from each picks the arm. A cap keeps at least (1 - max_exploration) of traffic on the
  baseline, a per-hour budget bounds exploration per tenant, and a kill switch sends all
  traffic to the baseline.
- Every decision carries the probability it was made with (the propensity), so the
  interactions it produces can be used for off-policy evaluation.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from rlaas.registry.v1 import registry_pb2 as reg
from rlaas.telemetry.v1 import telemetry_pb2 as tel
from services.errors import FailedPrecondition

Reason = tel.RoutingDecision.Reason
# Thompson draws used to estimate the probability of the arm a bandit chose.
_PROPENSITY_DRAWS = 512


@dataclass(frozen=True)
class Route:
    policy_id: str
    reason: int
    probability: float
    revision: int
    shadow_policy_ids: tuple[str, ...] = ()
    rollout_id: str = ""


Make = Callable[[str, int, float], Route]


def unit(*parts: str) -> float:
    """A stable position in [0, 1) for the given key (blake2b; not Python's hash, which
    is salted per process and would break stickiness across servers)."""
    digest = hashlib.blake2b("\x1f".join(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


@dataclass
class ArmPosterior:
    alpha: float = 1.0  # prior + rewards
    beta: float = 1.0  # prior + (1 - rewards)


@dataclass
class BanditState:
    """Beta posteriors per (tenant, skill, policy) and the exploration spent per tenant
    per hour. Rewards in [0, 1] are fractional Bernoulli observations."""

    posteriors: dict[tuple[str, str, str], ArmPosterior] = field(default_factory=dict)
    explored: dict[tuple[str, int], int] = field(default_factory=dict)

    def posterior(
        self, tenant_id: str, skill_id: str, policy_id: str, prior: float
    ) -> ArmPosterior:
        key = (tenant_id, skill_id, policy_id)
        if key not in self.posteriors:
            self.posteriors[key] = ArmPosterior(alpha=max(prior, 1e-3), beta=1.0)
        return self.posteriors[key]

    def record_reward(
        self, tenant_id: str, skill_id: str, policy_id: str, reward: float, prior: float = 1.0
    ) -> None:
        if not 0.0 <= reward <= 1.0:
            raise ValueError(f"reward must be within [0, 1], got {reward}")
        p = self.posterior(tenant_id, skill_id, policy_id, prior)
        p.alpha += reward
        p.beta += 1.0 - reward

    def spend(self, tenant_id: str, now: float) -> int:
        hour = int(now // 3600)
        key = (tenant_id, hour)
        self.explored[key] = self.explored.get(key, 0) + 1
        for stale in [k for k in self.explored if k[1] < hour - 1]:
            del self.explored[stale]
        return self.explored[key]

    def spent(self, tenant_id: str, now: float) -> int:
        return self.explored.get((tenant_id, int(now // 3600)), 0)


@dataclass
class RouterSettings:
    default_max_exploration: float = 0.2
    max_explorations_per_hour: int = 10_000
    kill_switch: bool = False


class Router:
    def __init__(
        self,
        settings: RouterSettings | None = None,
        bandit: BanditState | None = None,
        rng: np.random.Generator | None = None,
    ) -> None:
        self.settings = settings or RouterSettings()
        self.bandit = bandit or BanditState()
        self._rng = rng or np.random.default_rng()

    def route(
        self,
        tenant_id: str,
        deployment: reg.Deployment | None,
        *,
        user_id: str,
        request_id: str,
        pinned_policy_id: str = "",
        now: float | None = None,
        observed: Mapping[str, tuple[float, float]] | None = None,
    ) -> Route:
        """``observed``: shared reward sums per policy (from ``bandit_arms``); without
        it the bandit uses this router's in-memory posteriors (tests, simulations)."""
        if deployment is None or not deployment.baseline_policy_id:
            raise FailedPrecondition(
                "the skill has no deployment with a baseline policy yet; promote a policy first",
                reason="NO_DEPLOYMENT",
            )
        skill = deployment.skill_id
        baseline = deployment.baseline_policy_id
        revision = deployment.revision
        # Unknown users are not sticky: each request draws afresh.
        who = user_id or f"request:{request_id}"
        shadows = self._shadows(tenant_id, skill, who, request_id, deployment.traffic)

        def make(policy_id: str, reason: int, probability: float) -> Route:
            return Route(policy_id, reason, probability, revision, shadows, deployment.rollout_id)

        if pinned_policy_id:
            return make(pinned_policy_id, Reason.REASON_PINNED, 1.0)
        traffic = deployment.traffic
        strategy = traffic.WhichOneof("strategy")
        if strategy == "canary":
            share = min(max(traffic.canary.percent / 100.0, 0.0), 1.0)
            if unit(tenant_id, skill, who, "canary") < share:
                return make(traffic.canary.policy_id, Reason.REASON_CANARY, share)
            return make(baseline, Reason.REASON_BASELINE, 1.0 - share)
        if strategy == "ab_split":
            return self._ab(tenant_id, skill, who, traffic.ab_split, make)
        if strategy == "bandit":
            return self._thompson(tenant_id, skill, baseline, traffic.bandit, now, make, observed)
        return make(baseline, Reason.REASON_BASELINE, 1.0)

    @staticmethod
    def _ab(tenant_id: str, skill: str, who: str, split: reg.AbSplitTraffic, make: Make) -> Route:
        weights = [max(arm.weight, 0.0) for arm in split.arms]
        total = sum(weights)
        if total <= 0:
            raise FailedPrecondition("the A/B split has no positive weight", reason="BAD_TRAFFIC")
        u = unit(tenant_id, skill, who, "ab") * total
        cumulative = 0.0
        for arm, weight in zip(split.arms, weights, strict=True):
            cumulative += weight
            if u < cumulative:
                return make(arm.policy_id, Reason.REASON_AB_SPLIT, weight / total)
        last = split.arms[-1]
        return make(last.policy_id, Reason.REASON_AB_SPLIT, weights[-1] / total)

    def _thompson(
        self,
        tenant_id: str,
        skill: str,
        baseline: str,
        bandit: reg.BanditTraffic,
        now: float | None,
        make: Make,
        observed: Mapping[str, tuple[float, float]] | None = None,
    ) -> Route:
        now = time.time() if now is None else now
        cap = bandit.max_exploration or self.settings.default_max_exploration
        if self.settings.kill_switch or cap <= 0:
            return make(baseline, Reason.REASON_BASELINE, 1.0)
        if self.bandit.spent(tenant_id, now) >= self.settings.max_explorations_per_hour:
            return make(baseline, Reason.REASON_BASELINE, 1.0)
        priors: dict[str, float] = {baseline: 1.0}
        for arm in bandit.arms:
            priors[arm.policy_id] = arm.weight or 1.0
        arms = list(priors)
        if observed is not None:
            sums = [observed.get(a, (0.0, 0.0)) for a in arms]
            alphas = np.array([priors[a] + s[0] for a, s in zip(arms, sums, strict=True)])
            betas = np.array([1.0 + s[1] for s in sums])
        else:
            posts = [self.bandit.posterior(tenant_id, skill, a, priors[a]) for a in arms]
            alphas = np.array([p.alpha for p in posts])
            betas = np.array([p.beta for p in posts])
        # One draw decides; many draws estimate each arm's chance of winning a draw.
        draws = self._rng.beta(alphas, betas, size=(_PROPENSITY_DRAWS + 1, len(arms)))
        win_rates = np.bincount(draws[1:].argmax(axis=1), minlength=len(arms)) / _PROPENSITY_DRAWS
        explore = self._rng.random() < cap
        if not explore:
            # The baseline's minimum share: (1 - cap) of traffic never explores.
            p_baseline = (1 - cap) + cap * float(win_rates[0])
            return make(baseline, Reason.REASON_BASELINE, p_baseline)
        chosen = int(draws[0].argmax())
        p_chosen = cap * float(win_rates[chosen]) + ((1 - cap) if chosen == 0 else 0.0)
        if chosen != 0:
            self.bandit.spend(tenant_id, now)
        # An arm that (almost) never wins the estimate still has a tiny true propensity.
        return make(arms[chosen], Reason.REASON_BANDIT, max(p_chosen, 1.0 / _PROPENSITY_DRAWS))

    @staticmethod
    def _shadows(
        tenant_id: str, skill: str, who: str, request_id: str, traffic: reg.TrafficConfig
    ) -> tuple[str, ...]:
        if not traffic.HasField("shadow") or not traffic.shadow.policy_ids:
            return ()
        rate = traffic.shadow.sample_rate or 1.0
        if unit(tenant_id, skill, who, request_id, "shadow") >= rate:
            return ()
        return tuple(traffic.shadow.policy_ids)


def shares(route_counts: Mapping[str, int]) -> dict[str, float]:
    total = sum(route_counts.values()) or 1
    return {k: v / total for k, v in route_counts.items()}
