"""What a rollout's guard sees online: per arm, the requests served, which of them
failed, their latencies and the rewards users' signals gave them; and the judgement of
one stage from those (reward, error rate, p95 latency against the baseline).

No Temporal and no gRPC here: the `observe_rollout` activity reads the samples and
calls `judge`; the tests call both directly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import cast

import numpy as np
from scipy import stats
from sqlalchemy import Select, Table, and_, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from rlaas.telemetry.v1 import telemetry_pb2 as tel
from services.db.models import TelemetryEvent
from services.rewards.engines import compute_reward, reward_config_for
from services.telemetry.store import decode
from services.training.preferences import load_interactions
from services.training.sequential import msprt

_T = cast(Table, TelemetryEvent.__table__)
# Below this many requests per arm a p95 is mostly noise: the latency rule waits.
LATENCY_MIN_SAMPLES = 20


@dataclass
class ArmSample:
    """One arm's requests in a window. ``errors[i]`` and ``latencies_s[i]`` describe
    the same request; ``rewards`` holds only the requests users reacted to."""

    policy_id: str
    errors: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    latencies_s: np.ndarray = field(default_factory=lambda: np.zeros(0))
    rewards: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @property
    def requests(self) -> int:
        return len(self.errors)

    @property
    def error_rate(self) -> float:
        return float(self.errors.mean()) if len(self.errors) else 0.0

    def latency_quantile(self, q: float) -> float:
        return float(np.quantile(self.latencies_s, q)) if len(self.latencies_s) else 0.0

    def reward_interval(self, level: float = 0.95) -> tuple[float, float]:
        """Student-t interval of the mean reward; (mean, mean) below two samples."""
        n = len(self.rewards)
        if n == 0:
            return 0.0, 0.0
        mean = float(self.rewards.mean())
        if n < 2 or not self.rewards.std():
            return mean, mean
        low, high = stats.t.interval(level, n - 1, loc=mean, scale=stats.sem(self.rewards))
        return max(float(low), 0.0), min(float(high), 1.0)


@dataclass(frozen=True)
class Guard:
    """The plan's rules, as the judge applies them."""

    min_samples: int
    max_reward_drop: float = 0.0
    max_error_rate_increase: float = 0.0
    max_latency_p95_increase_s: float = 0.0
    """0: latency is reported, not judged."""


@dataclass(frozen=True)
class Verdict:
    decision: str  # "continue" | "accept" | "reject"
    reason: str


def _served_query(
    tenant_id: str, skill: str, since: datetime, policy_ids: Sequence[str], shadow_of: str
) -> Select:
    """Interactions the gateway served for ``policy_ids`` since ``since`` (shadow runs
    only for ``shadow_of``), each with its output rows."""
    i, o = _T.alias("i"), _T.alias("o")
    source = i.c.source == tel.INTERACTION_SOURCE_GATEWAY
    if shadow_of:
        source = or_(
            source,
            and_(i.c.source == tel.INTERACTION_SOURCE_SHADOW, i.c.policy_id == shadow_of),
        )
    return (
        select(
            i.c.event_id,
            i.c.policy_id,
            i.c.source,
            i.c.payload,
            i.c.create_time,
            o.c.payload.label("output"),
            o.c.create_time.label("output_time"),
        )
        .select_from(
            i.outerjoin(
                o,
                and_(
                    o.c.tenant_id == i.c.tenant_id,
                    o.c.interaction_id == i.c.event_id,
                    o.c.event_type == tel.EVENT_TYPE_OUTPUT,
                ),
            )
        )
        .where(
            i.c.tenant_id == tenant_id,
            i.c.event_type == tel.EVENT_TYPE_INTERACTION,
            i.c.skill == skill,
            i.c.create_time >= since,
            i.c.policy_id.in_(list(policy_ids)),
            source,
        )
    )


async def arm_samples(
    engine: AsyncEngine,
    tenant_id: str,
    skill: str,
    *,
    candidate_policy_id: str,
    baseline_policy_id: str,
    since: datetime,
    shadow: bool,
) -> tuple[ArmSample, ArmSample]:
    """(candidate, baseline) since ``since``. In shadow the candidate's requests are
    its shadow runs (users never saw them); otherwise both arms are what users were
    served. An errored request is one whose output finished with ERROR (the gateway
    logs failed generations that way). Tenant-scoped: every query filters on it."""
    arms = (candidate_policy_id, baseline_policy_id)
    query = _served_query(tenant_id, skill, since, arms, candidate_policy_id if shadow else "")
    failed: dict[str, bool] = {}
    seen: dict[str, tuple[str, float]] = {}
    async with engine.connect() as conn:
        for row in (await conn.execute(query)).all():
            is_shadow = row.source == tel.INTERACTION_SOURCE_SHADOW
            if row.policy_id == candidate_policy_id and shadow != is_shadow:
                continue  # in shadow, the candidate's live canary traffic is not this stage's
            if row.event_id not in seen:
                interaction = decode(tel.EVENT_TYPE_INTERACTION, row.payload, row.create_time)
                assert isinstance(interaction, tel.Interaction)
                seen[row.event_id] = (
                    row.policy_id,
                    interaction.timings.total.ToNanoseconds() / 1e9,
                )
                failed.setdefault(row.event_id, False)
            if row.output is not None:
                output = decode(tel.EVENT_TYPE_OUTPUT, row.output, row.output_time)
                assert isinstance(output, tel.Output)
                if output.finish_reason == tel.FINISH_REASON_ERROR:
                    failed[row.event_id] = True
    samples = {arm: ArmSample(arm) for arm in arms}
    for arm in arms:
        ids = [event_id for event_id, (policy, _) in seen.items() if policy == arm]
        samples[arm].errors = np.asarray([failed[e] for e in ids], dtype=bool)
        samples[arm].latencies_s = np.asarray([seen[e][1] for e in ids], dtype=float)
    if not shadow:
        # The skill's reward engine over every signal users sent (edits, send/discard,
        # time to send, ratings, task outcomes): the reward the loop trains on. Answers
        # nobody reacted to have none.
        config = reward_config_for(skill)
        views = await load_interactions(engine, tenant_id, skill, start_time=since, policy_ids=arms)
        rewards: dict[str, list[float]] = {arm: [] for arm in arms}
        for view in views:
            reward = compute_reward(view, config)
            if reward is not None:
                rewards[view.interaction.policy_id].append(reward.value)
        for arm in arms:
            samples[arm].rewards = np.asarray(rewards[arm], dtype=float)
    return samples[candidate_policy_id], samples[baseline_policy_id]


def _error_verdict(candidate: ArmSample, baseline: ArmSample, guard: Guard) -> Verdict | None:
    """A reject when the candidate fails significantly more often than the baseline
    (beyond the tolerance), by the same always-valid test as the reward, on the
    per-request success indicator; None otherwise (errors never accept a stage)."""
    if not candidate.errors.any():
        return None
    decision = msprt(
        (~candidate.errors).astype(float),
        (~baseline.errors).astype(float),
        min_samples=guard.min_samples,
        tolerance=guard.max_error_rate_increase,
    )
    if decision.decision != "reject":
        return None
    return Verdict(
        "reject",
        f"error rate {candidate.error_rate:.0%} vs baseline {baseline.error_rate:.0%} "
        f"({candidate.requests}/{baseline.requests} requests; {decision.reason})",
    )


def _latency_verdict(candidate: ArmSample, baseline: ArmSample, guard: Guard) -> Verdict | None:
    """A reject when the candidate's observed p95 exceeds the baseline's by more than
    the plan allows, once both arms have enough requests for a p95 to mean something.
    A threshold on the observed quantiles (not a significance test): the margin is the
    user's, stated in seconds."""
    if not guard.max_latency_p95_increase_s:
        return None
    n = max(guard.min_samples, LATENCY_MIN_SAMPLES)
    if candidate.requests < n or baseline.requests < n:
        return None
    cand, base = candidate.latency_quantile(0.95), baseline.latency_quantile(0.95)
    if cand - base <= guard.max_latency_p95_increase_s:
        return None
    return Verdict(
        "reject",
        f"p95 latency {cand * 1000:.0f} ms vs baseline {base * 1000:.0f} ms "
        f"(allowed +{guard.max_latency_p95_increase_s * 1000:.0f} ms)",
    )


def judge(
    stage: str, candidate: ArmSample, baseline: ArmSample, guard: Guard, min_shadow_runs: int
) -> Verdict:
    """One look at a stage. A reject on errors or latency wins over anything the reward
    says. Shadow accepts after ``min_shadow_runs`` runs; a canary accepts (or rejects)
    when the reward test decides."""
    for rule in (_error_verdict, _latency_verdict):
        verdict = rule(candidate, baseline, guard)
        if verdict is not None:
            return verdict
    if stage == "shadow":
        # Only answered runs are evidence: while the engine is down both arms fail alike
        # (no reject above), and a shadow that saw nothing must not pass either.
        runs = int((~candidate.errors).sum())
        if runs >= min_shadow_runs:
            return Verdict(
                "accept",
                f"{runs} shadow runs answered, {candidate.error_rate:.0%} of "
                f"{candidate.requests} failed",
            )
        return Verdict(
            "continue",
            f"{runs}/{min_shadow_runs} shadow runs answered ({candidate.requests} logged)",
        )
    decision = msprt(
        candidate.rewards,
        baseline.rewards,
        min_samples=guard.min_samples,
        tolerance=guard.max_reward_drop,
    )
    return Verdict(decision.decision, decision.reason)
