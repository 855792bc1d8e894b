"""The learning loop's small activities (CPU queue): how much new feedback there is,
which policy is the baseline, registering a trained adapter as a candidate, moving a
rollout's traffic, and judging a rollout stage from online data. Each is idempotent: a
retry repeats the same request_id, which the registry replays.

Training (GPU queue), dataset building and evaluation live in their own modules."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from rlaas.registry.v1 import registry_pb2 as reg
from services.activity_errors import permanent
from services.errors import DomainError, FailedPrecondition
from services.objects.store import ObjectStore
from services.registry.audit import Actor
from services.registry.service import RegistryCore
from services.training import online
from workflows.learning_types import (
    ArmStats,
    BaselineInput,
    BaselineOutput,
    CountFeedbackInput,
    CountFeedbackOutput,
    ObserveInput,
    ObserveOutput,
    RegisterCandidateInput,
    RegisterCandidateOutput,
    SetStageInput,
    SetStageOutput,
)

CONTROLLER = "learning-loop"

_NEW_FEEDBACK = """
SELECT count(*) AS n, max(f.create_time) AS newest
FROM telemetry_events f
JOIN telemetry_events i
  ON i.tenant_id = f.tenant_id AND i.event_type = 1 AND i.event_id = f.interaction_id
WHERE f.tenant_id = $1 AND f.event_type = 3 AND i.skill = $2 AND f.create_time > $3
"""
# Requests per arm before the error rule may judge a shadow stage (whose own minimum
# counts runs, and may be set far higher).
_SHADOW_ERROR_MIN = 10


def _since(value: str) -> datetime:
    return datetime.fromisoformat(value) if value else datetime(1970, 1, 1, tzinfo=UTC)


def _stats(arm: online.ArmSample) -> ArmStats:
    low, high = arm.reward_interval()
    return ArmStats(
        policy_id=arm.policy_id,
        requests=arm.requests,
        rewarded=len(arm.rewards),
        mean_reward=float(arm.rewards.mean()) if len(arm.rewards) else 0.0,
        mean_reward_ci_lower=low,
        mean_reward_ci_upper=high,
        error_rate=arm.error_rate,
        latency_p50_s=arm.latency_quantile(0.5),
        latency_p95_s=arm.latency_quantile(0.95),
    )


class LearningActivities:
    def __init__(
        self,
        engine: AsyncEngine,
        sessions: async_sessionmaker[AsyncSession],
        objects: ObjectStore,
    ) -> None:
        self._engine = engine
        self._registry = RegistryCore(sessions, objects)

    async def _fetch(self, sql: str, *args: object) -> list:
        async with self._engine.connect() as sa_conn:
            conn = (await sa_conn.get_raw_connection()).driver_connection
            assert conn is not None
            return list(await conn.fetch(sql, *args))

    @activity.defn(name="count_new_feedback")
    async def count_new_feedback(self, inp: CountFeedbackInput) -> CountFeedbackOutput:
        [row] = await self._fetch(_NEW_FEEDBACK, inp.tenant_id, inp.skill_id, _since(inp.since))
        newest = row["newest"].isoformat() if row["newest"] else inp.since
        return CountFeedbackOutput(count=int(row["n"]), watermark=newest)

    @activity.defn(name="current_baseline")
    async def current_baseline(self, inp: BaselineInput) -> BaselineOutput:
        deployment = await self._registry.deployment(inp.tenant_id, inp.skill_id)
        if deployment is None or not deployment.baseline_policy_id:
            raise permanent(
                FailedPrecondition(
                    f"skill {inp.skill_id!r} has no baseline policy to improve on",
                    reason="NO_BASELINE",
                )
            )
        return BaselineOutput(deployment.baseline_policy_id)

    @activity.defn(name="register_candidate")
    async def register_candidate(self, inp: RegisterCandidateInput) -> RegisterCandidateOutput:
        parent = await self._registry.policy(inp.tenant_id, inp.parent_policy_id)
        candidate = reg.Policy()
        candidate.CopyFrom(parent)
        for output_only in (
            "policy_id",
            "version",
            "tenant_id",
            "state",
            "content_sha256",
            "creator_api_key_id",
            "create_time",
            "state_change_time",
        ):
            candidate.ClearField(output_only)  # fmt: skip
        candidate.parent_policy_id = inp.parent_policy_id
        candidate.description = f"trained by run {inp.run_id} from {inp.parent_policy_id}"
        candidate.adapter.CopyFrom(
            reg.Adapter(
                artifact_uri=inp.adapter_uri, sha256=inp.adapter_sha256, training_run_id=inp.run_id
            )
        )
        candidate.labels["training_run_id"] = inp.run_id
        try:
            created = await self._registry.create_policy(
                Actor(inp.tenant_id, display_name=CONTROLLER),
                candidate,
                request_id=f"candidate-{inp.run_id}",
            )
        except DomainError as err:  # the adapter is unreadable or does not match: final
            raise permanent(err) from err
        return RegisterCandidateOutput(created.policy_id)

    @activity.defn(name="set_rollout_stage")
    async def set_rollout_stage(self, inp: SetStageInput) -> SetStageOutput:
        actor = Actor(inp.tenant_id, display_name=CONTROLLER)
        # One registry change per stage and canary step (step 0 keeps the id it always had).
        request_id = f"{inp.rollout_id}-{inp.stage}" + (f"-{inp.step}" if inp.step else "")
        if inp.stage == "shadow":
            traffic = reg.TrafficConfig(
                shadow=reg.ShadowTraffic(
                    policy_ids=[inp.candidate_policy_id], sample_rate=inp.sample_rate or 1.0
                )
            )
            deployment = await self._registry.set_traffic(
                actor,
                inp.skill_id,
                traffic,
                reason=inp.reason,
                request_id=request_id,
                rollout_id=inp.rollout_id,
            )
        elif inp.stage == "canary":
            traffic = reg.TrafficConfig(
                canary=reg.CanaryTraffic(policy_id=inp.candidate_policy_id, percent=inp.percent)
            )
            deployment = await self._registry.set_traffic(
                actor,
                inp.skill_id,
                traffic,
                reason=inp.reason,
                request_id=request_id,
                rollout_id=inp.rollout_id,
            )
        elif inp.stage == "promote":
            deployment, _ = await self._registry.promote_policy(
                actor, inp.skill_id, inp.candidate_policy_id, reason=inp.reason,
                request_id=request_id, rollout_id=inp.rollout_id,
            )  # fmt: skip
        elif inp.stage == "rollback":
            # The candidate that was rolled back is RETIRED with the same change.
            deployment = await self._registry.rollback_deployment(
                actor, inp.skill_id, to_revision=inp.to_revision, reason=inp.reason,
                request_id=request_id, rollout_id=inp.rollout_id,
                retire=[inp.candidate_policy_id],
            )  # fmt: skip
        else:
            raise ApplicationError(f"unknown stage {inp.stage!r}", non_retryable=True)
        return SetStageOutput(deployment.revision)

    @activity.defn(name="observe_rollout")
    async def observe_rollout(self, inp: ObserveInput) -> ObserveOutput:
        shadow = inp.stage == "shadow"
        candidate, baseline = await online.arm_samples(
            self._engine, inp.tenant_id, inp.skill_id,
            candidate_policy_id=inp.candidate_policy_id,
            baseline_policy_id=inp.baseline_policy_id,
            since=_since(inp.since), shadow=shadow,
        )  # fmt: skip
        guard = online.Guard(
            # In shadow `min_requests` counts runs; the error rule needs a few per arm.
            min_samples=min(inp.min_requests, _SHADOW_ERROR_MIN) if shadow else inp.min_requests,
            max_reward_drop=inp.tolerance,
            max_error_rate_increase=inp.max_error_rate_increase,
            max_latency_p95_increase_s=inp.max_latency_p95_increase_s,
        )
        verdict = online.judge(inp.stage, candidate, baseline, guard, inp.min_requests)
        # The candidate's count is what the stage waits for: runs in shadow, rated
        # answers in a canary.
        count = candidate.requests if shadow else len(candidate.rewards)
        return ObserveOutput(
            count, verdict.decision, verdict.reason, [_stats(candidate), _stats(baseline)]
        )

    def all(self) -> list[Callable[..., Any]]:
        return [
            self.count_new_feedback,
            self.current_baseline,
            self.register_candidate,
            self.set_rollout_stage,
            self.observe_rollout,
        ]
