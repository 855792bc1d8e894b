"""Rollouts as TrainingService exposes them: a rollout is a RolloutWorkflow; Temporal is
the source of truth for its state. As with learning loops, the workflow id carries the
tenant (`rollout/<tenant>/<rollout_id>`), so a caller only ever reaches its own
tenant's rollouts, and the rollout id derives from the request_id, so a retried create
finds the rollout it started. Rollouts that a learning loop starts use the same id form
and are read the same way.

`plan_from_proto` is the one conversion of the contract's RolloutPlan into the
workflow's plan; CreateRollout and StartLearningLoop both use it."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from google.protobuf import duration_pb2
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import SignalWorkflowExecutionRequest
from temporalio.client import (
    Client,
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
    WorkflowFailureError,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from rlaas.registry.v1 import registry_pb2 as reg
from rlaas.training.v1 import training_pb2 as pb
from services.db import idempotency
from services.errors import (
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    RequestIdReused,
)
from services.paging import next_page_token, page_request
from services.registry.service import RegistryCore
from services.registry.validation import parse_policy_id, require_reason
from services.tenancy.principal import Principal, Scope
from services.training.workflow_resources import can_exist
from workflows.learning_types import (
    ArmStats,
    CanaryStep,
    RolloutInput,
    RolloutPlan,
    RolloutResult,
    RolloutStatus,
)
from workflows.queues import CPU_TASK_QUEUE
from workflows.rollout import RolloutWorkflow, rollout_workflow_id

DEFAULT_CANARY_STEPS = (5.0, 25.0, 50.0)
"""The contract's default canary (RolloutPlan.canary_steps)."""
_FINISH_WAIT_S = 20.0
"""How long promote-to-full and rollback wait for the workflow to finish before
answering with the state as it is."""

_STAGES = {
    "shadow": pb.Rollout.STAGE_SHADOW,
    "canary": pb.Rollout.STAGE_CANARY,
    "full": pb.Rollout.STAGE_FULL,
    "rolled_back": pb.Rollout.STAGE_ROLLED_BACK,
}
_PROMOTE_TARGETS = {
    pb.Rollout.STAGE_UNSPECIFIED: "next",
    pb.Rollout.STAGE_CANARY: "canary",
    pb.Rollout.STAGE_FULL: "full",
}


# ---- the plan -----------------------------------------------------------------------


def _seconds(d: duration_pb2.Duration) -> float:
    return d.seconds + d.nanos / 1e9


def _shadow(proto: pb.RolloutPlan, plan: RolloutPlan, field: str) -> list[FieldViolation]:
    out = []
    if proto.HasField("shadow_duration"):
        seconds = _seconds(proto.shadow_duration)
        if seconds < 0:
            out.append(FieldViolation(f"{field}.shadow_duration", "must not be negative"))
        # An explicit zero skips shadow; unset keeps it, gated by shadow runs alone.
        plan.skip_shadow, plan.shadow_min_s = seconds == 0, max(seconds, 0.0)
    rate = proto.shadow_sample_rate
    if rate:
        if not 0 < rate <= 1:
            out.append(FieldViolation(f"{field}.shadow_sample_rate", f"{rate} is not in (0, 1]"))
        plan.shadow_sample_rate = rate
    return out


def _steps(proto: pb.RolloutPlan, plan: RolloutPlan, field: str) -> list[FieldViolation]:
    out, previous = [], 0.0
    for i, step in enumerate(proto.canary_steps):
        path = f"{field}.canary_steps[{i}]"
        if not 0 < step.percent <= 100:  # NaN fails too
            out.append(FieldViolation(f"{path}.percent", f"{step.percent} is not in (0, 100]"))
        elif step.percent <= previous:
            out.append(FieldViolation(
                f"{path}.percent",
                f"{step.percent} must be greater than the previous step's {previous}",
            ))  # fmt: skip
        else:
            previous = step.percent
        if step.HasField("duration") and _seconds(step.duration) < 0:
            out.append(FieldViolation(f"{path}.duration", "must not be negative"))
    if proto.canary_steps:
        plan.canary_steps = [
            CanaryStep(s.percent, max(_seconds(s.duration), 0.0)) for s in proto.canary_steps
        ]
    return out


def _guard(guard: pb.RegressionGuard, plan: RolloutPlan, field: str) -> list[FieldViolation]:
    out = []
    if guard.min_samples < 0:
        out.append(FieldViolation(f"{field}.min_samples", "must not be negative"))
    elif guard.min_samples:
        plan.canary_min_requests = guard.min_samples
    if not 0 <= guard.max_reward_drop <= 1:
        out.append(FieldViolation(
            f"{field}.max_reward_drop", f"{guard.max_reward_drop} is not in [0, 1]"
        ))  # fmt: skip
    plan.max_reward_drop = guard.max_reward_drop
    if not 0 <= guard.max_error_rate_increase <= 1:
        out.append(FieldViolation(
            f"{field}.max_error_rate_increase",
            f"{guard.max_error_rate_increase} is not in [0, 1]",
        ))  # fmt: skip
    plan.max_error_rate_increase = guard.max_error_rate_increase
    if guard.HasField("max_latency_p95_increase"):
        margin = _seconds(guard.max_latency_p95_increase)
        if margin < 0:
            out.append(FieldViolation(f"{field}.max_latency_p95_increase", "must not be negative"))
        plan.max_latency_p95_increase_s = max(margin, 0.0)
    plan.disable_auto_rollback = guard.disable_auto_rollback
    return out


def plan_from_proto(proto: pb.RolloutPlan | None, field: str) -> RolloutPlan:
    """The contract's plan as the workflow's, checked now (a bad value must fail the
    request, not the rollout hours later). None (no plan given): the server defaults,
    advancing automatically. ``field`` is the plan's path in the request, for errors."""
    plan = RolloutPlan(canary_steps=[CanaryStep(p) for p in DEFAULT_CANARY_STEPS])
    if proto is None:
        return plan
    plan.auto_advance = proto.auto_advance
    violations = [*_shadow(proto, plan, field), *_steps(proto, plan, field)]
    if proto.HasField("guard"):
        violations += _guard(proto.guard, plan, f"{field}.guard")
    if violations:
        raise InvalidArgument(violations)
    return plan


def plan_to_proto(plan: RolloutPlan) -> pb.RolloutPlan:
    """The workflow's plan as the contract shows it (GetRollout's `plan`)."""
    out = pb.RolloutPlan(
        shadow_sample_rate=plan.shadow_sample_rate,
        auto_advance=plan.auto_advance,
        guard=pb.RegressionGuard(
            min_samples=plan.canary_min_requests,
            max_reward_drop=plan.max_reward_drop,
            max_error_rate_increase=plan.max_error_rate_increase,
            disable_auto_rollback=plan.disable_auto_rollback,
        ),
    )
    if plan.max_latency_p95_increase_s:
        out.guard.max_latency_p95_increase.FromNanoseconds(
            round(plan.max_latency_p95_increase_s * 1e9)
        )
    if plan.skip_shadow or plan.shadow_min_s:
        out.shadow_duration.FromNanoseconds(round(plan.shadow_min_s * 1e9))
    for step in plan.steps():
        added = out.canary_steps.add(percent=step.percent)
        if step.min_duration_s:
            added.duration.FromNanoseconds(round(step.min_duration_s * 1e9))
    return out


def _plan_from_memo(value: object) -> RolloutPlan:
    """A plan stored in a workflow memo (a JSON object); fields unknown to this code are
    ignored, so memos written by a newer server still read."""
    if not isinstance(value, dict):
        return RolloutPlan()
    known = {f.name for f in dataclasses.fields(RolloutPlan)} - {"canary_steps"}
    plan = RolloutPlan(**{k: v for k, v in value.items() if k in known})
    plan.canary_steps = [CanaryStep(**s) for s in value.get("canary_steps") or []]
    return plan


# ---- the service --------------------------------------------------------------------


def _rollout_id(request_id: str) -> str:
    """From the request_id alone (not the body), so that reusing a request_id for a
    different rollout is found, whatever the body names."""
    return f"ro-{hashlib.sha256(request_id.encode()).hexdigest()[:16]}"


@dataclass(frozen=True)
class _Seen:
    """What Temporal says of one rollout workflow."""

    described: WorkflowExecutionDescription
    memo: Mapping[str, Any]
    status: RolloutStatus | None  # while running
    result: RolloutResult | None  # once completed


class RolloutService:
    def __init__(
        self,
        client_factory: Callable[[], Awaitable[Client]],
        registry: RegistryCore,
        *,
        poll_interval_s: float | None = None,
    ) -> None:
        self._client_factory = client_factory
        self._client: Client | None = None
        self._registry = registry
        self._poll_interval_s = poll_interval_s

    async def _temporal(self) -> Client:
        if self._client is None:
            self._client = await self._client_factory()
        return self._client

    # ---- create -------------------------------------------------------------------

    async def create(self, caller: Principal, rollout: pb.Rollout, request_id: str) -> pb.Rollout:
        caller.require(Scope.DEPLOY)
        idempotency.validate_request_id(request_id)
        parse_policy_id(rollout.candidate_policy_id, "rollout.candidate_policy_id")
        plan = plan_from_proto(rollout.plan if rollout.HasField("plan") else None, "rollout.plan")
        if self._poll_interval_s is not None:
            plan.poll_interval_s = self._poll_interval_s
        digest = hashlib.sha256(rollout.SerializeToString(deterministic=True)).hexdigest()
        rollout_id = _rollout_id(request_id)
        # A retry finds its rollout before anything is checked again: by now the
        # candidate may well be ACTIVE because this very rollout promoted it.
        if await self._replayed(caller.tenant_id, rollout_id, digest, request_id):
            return await self.get(caller, rollout_id)
        inp = await self._checked_input(caller.tenant_id, rollout, rollout_id, plan)
        client = await self._temporal()
        try:
            await client.start_workflow(
                RolloutWorkflow.run, inp, id=rollout_workflow_id(caller.tenant_id, rollout_id),
                task_queue=CPU_TASK_QUEUE,
                memo={"request_sha256": digest, "skill_id": inp.skill_id,
                      "candidate_policy_id": inp.candidate_policy_id,
                      "baseline_policy_id": inp.baseline_policy_id,
                      "evaluation_id": rollout.evaluation_id,
                      "plan": dataclasses.asdict(plan)},
            )  # fmt: skip
        except WorkflowAlreadyStartedError:  # a concurrent retry started it first
            await self._replayed(caller.tenant_id, rollout_id, digest, request_id)
        return await self.get(caller, rollout_id)

    async def _replayed(
        self, tenant_id: str, rollout_id: str, digest: str, request_id: str
    ) -> bool:
        """True if this request_id already created a rollout with this body;
        ALREADY_EXISTS (REQUEST_ID_REUSED) if it created a different one."""
        described = await self._describe(tenant_id, rollout_id)
        if described is None:
            return False
        if (await described.memo()).get("request_sha256") != digest:
            raise RequestIdReused("rollout")
        return True

    async def _checked_input(
        self, tenant_id: str, rollout: pb.Rollout, rollout_id: str, plan: RolloutPlan
    ) -> RolloutInput:
        """The workflow's input once the candidate, its skill and the evaluation pass
        the contract's preconditions."""
        candidate = await self._registry.policy(tenant_id, rollout.candidate_policy_id)
        if candidate.state != reg.Policy.STATE_CANDIDATE:
            raise FailedPrecondition(
                f"policy {candidate.policy_id} is {reg.Policy.State.Name(candidate.state)}; "
                "only a CANDIDATE can be rolled out",
                reason="POLICY_NOT_CANDIDATE",
            )
        if rollout.evaluation_id:
            # Evaluations are not stored as resources yet (they run inside learning
            # loops), so no evaluation id can name one.
            raise NotFound("evaluation", rollout.evaluation_id)
        deployment = await self._registry.deployment(tenant_id, candidate.skill_id)
        if deployment is None or not deployment.baseline_policy_id:
            raise FailedPrecondition(
                f"skill {candidate.skill_id!r} has no baseline to roll out against; "
                "promote a first policy with RegistryService.PromotePolicy",
                reason="NO_BASELINE",
            )
        unfinished = await self._unfinished(tenant_id, candidate.skill_id)
        if unfinished:
            raise FailedPrecondition(
                f"skill {candidate.skill_id!r} already has an unfinished rollout "
                f"({unfinished}); roll it back or let it finish first",
                reason="ROLLOUT_IN_PROGRESS",
                metadata={"rollout_id": unfinished},
            )
        return RolloutInput(tenant_id, candidate.skill_id, rollout_id, candidate.policy_id,
                            deployment.baseline_policy_id, plan)  # fmt: skip

    async def _unfinished(self, tenant_id: str, skill_id: str) -> str:
        """The id of a RUNNING or PAUSED rollout of the skill, or "". (Read from
        Temporal's visibility store, which trails a just-started workflow by moments.)"""
        query = f"{self._tenant_query(tenant_id)} AND ExecutionStatus = 'Running'"
        client = await self._temporal()
        prefix = rollout_workflow_id(tenant_id, "")
        async for execution in client.list_workflows(query):
            if (await execution.memo()).get("skill_id") == skill_id:
                return execution.id.removeprefix(prefix)
        return ""

    @staticmethod
    def _tenant_query(tenant_id: str) -> str:
        prefix = rollout_workflow_id(tenant_id, "").replace("\\", "\\\\").replace("'", "\\'")
        return f"WorkflowType = 'RolloutWorkflow' AND WorkflowId STARTS_WITH '{prefix}'"

    # ---- read ---------------------------------------------------------------------

    async def _describe(
        self, tenant_id: str, rollout_id: str
    ) -> WorkflowExecutionDescription | None:
        if not can_exist(rollout_id):
            return None
        client = await self._temporal()
        try:
            return await client.get_workflow_handle(
                rollout_workflow_id(tenant_id, rollout_id)
            ).describe()
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                return None
            raise

    async def _seen(self, caller: Principal, rollout_id: str) -> _Seen:
        caller.require_any(Scope.TRAIN, Scope.DEPLOY)
        if not rollout_id:
            raise InvalidArgument.field("rollout_id", "is required")
        described = await self._describe(caller.tenant_id, rollout_id)
        if described is None:
            raise NotFound("rollout", rollout_id)
        client = await self._temporal()
        handle = client.get_workflow_handle_for(
            RolloutWorkflow.run, described.id, run_id=described.run_id
        )
        status = result = None
        if described.status == WorkflowExecutionStatus.RUNNING:
            status = await handle.query(RolloutWorkflow.status)
        elif described.status == WorkflowExecutionStatus.COMPLETED:
            result = await handle.result()
        return _Seen(described, await described.memo(), status, result)

    async def get(self, caller: Principal, rollout_id: str) -> pb.Rollout:
        seen = await self._seen(caller, rollout_id)
        return _to_proto(caller.tenant_id, rollout_id, seen)

    async def list(
        self, caller: Principal, *, skill_id: str = "", state: int = 0,
        page_size: int = 0, page_token: str = "",
    ) -> tuple[list[pb.Rollout], str]:  # fmt: skip
        """Newest first; the page token is the (create time, id) of the last one."""
        caller.require(Scope.TRAIN)
        page = page_request(page_size, page_token)
        client = await self._temporal()
        prefix = rollout_workflow_id(caller.tenant_id, "")
        found: list[tuple[str, str]] = []
        async for execution in client.list_workflows(self._tenant_query(caller.tenant_id)):
            if skill_id and (await execution.memo()).get("skill_id") != skill_id:
                continue
            found.append((execution.start_time.isoformat(), execution.id.removeprefix(prefix)))
        found.sort(reverse=True)
        if page.after:
            after = tuple(str(x) for x in page.after)
            found = [key for key in found if key < after]
        out: list[tuple[tuple[str, str], pb.Rollout]] = []
        for key in found:
            rollout = await self.get(caller, key[1])
            if not state or rollout.state == state:
                out.append((key, rollout))
                if len(out) > page.size:
                    break
        token = next_page_token(out, page.size, lambda item: list(item[0]))
        return [r for _, r in out[: page.size]], token

    # ---- commands -----------------------------------------------------------------

    async def promote(
        self, caller: Principal, rollout_id: str, target_stage: int, reason: str, request_id: str
    ) -> pb.Rollout:
        caller.require(Scope.DEPLOY)
        reason = require_reason(reason)
        idempotency.validate_request_id(request_id)
        target = _PROMOTE_TARGETS.get(target_stage)
        if target is None:
            raise InvalidArgument.field("target_stage", "must be CANARY, FULL or unspecified")
        current = await self.get(caller, rollout_id)
        if current.state == pb.Rollout.STATE_COMPLETED:
            raise FailedPrecondition(f"rollout {rollout_id} is COMPLETED", reason="ROLLOUT_DONE")
        if target == "canary" and current.stage != pb.Rollout.STAGE_SHADOW:
            raise FailedPrecondition(
                f"rollout {rollout_id} is already past shadow; promote to FULL or to the next step",
                reason="TARGET_NOT_AFTER_CURRENT",
            )
        await self._signal(caller, rollout_id, "promote", [target, reason], request_id)
        return await self._after(caller, rollout_id, finishes=target == "full")

    async def rollback(
        self, caller: Principal, rollout_id: str, reason: str, request_id: str
    ) -> pb.Rollout:
        caller.require(Scope.DEPLOY)
        reason = require_reason(reason)
        idempotency.validate_request_id(request_id)
        current = await self.get(caller, rollout_id)
        if current.stage == pb.Rollout.STAGE_ROLLED_BACK:
            return current  # rolled back already: unchanged
        if current.stage == pb.Rollout.STAGE_FULL:
            raise FailedPrecondition(
                f"rollout {rollout_id} already reached FULL; use "
                "RegistryService.RollbackDeployment to return to the earlier baseline",
                reason="ROLLOUT_DONE",
            )
        if current.state == pb.Rollout.STATE_COMPLETED:
            raise FailedPrecondition(
                f"rollout {rollout_id} ended: {current.status_message}", reason="ROLLOUT_DONE"
            )
        await self._signal(caller, rollout_id, "rollback", [reason], request_id)
        return await self._after(caller, rollout_id, finishes=True)

    async def pause(self, caller: Principal, rollout_id: str, request_id: str) -> pb.Rollout:
        return await self._toggle(caller, rollout_id, "pause", request_id)

    async def resume(self, caller: Principal, rollout_id: str, request_id: str) -> pb.Rollout:
        return await self._toggle(caller, rollout_id, "resume", request_id)

    async def _toggle(
        self, caller: Principal, rollout_id: str, signal: str, request_id: str
    ) -> pb.Rollout:
        caller.require(Scope.DEPLOY)
        idempotency.validate_request_id(request_id)
        current = await self.get(caller, rollout_id)
        if current.state == pb.Rollout.STATE_COMPLETED:
            raise FailedPrecondition(f"rollout {rollout_id} is COMPLETED", reason="ROLLOUT_DONE")
        await self._signal(caller, rollout_id, signal, [], request_id)
        return await self.get(caller, rollout_id)

    async def _signal(
        self, caller: Principal, rollout_id: str, signal: str, args: Sequence[Any], request_id: str
    ) -> None:
        """Signal with a request id derived from the caller's, so that Temporal drops a
        retried signal (a retried "promote to the next step" must not advance twice)."""
        client = await self._temporal()
        dedup = hashlib.sha256(f"{caller.tenant_id}\0{signal}\0{request_id}".encode()).hexdigest()
        req = SignalWorkflowExecutionRequest(
            namespace=client.namespace,
            workflow_execution=WorkflowExecution(
                workflow_id=rollout_workflow_id(caller.tenant_id, rollout_id)
            ),
            signal_name=signal,
            identity=client.identity,
            request_id=dedup,
        )
        if args:
            req.input.payloads.extend(await client.data_converter.encode(args))
        try:
            await client.workflow_service.signal_workflow_execution(req, retry=True)
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                raise
            # It finished between the read and the signal.
            raise FailedPrecondition(
                f"rollout {rollout_id} is COMPLETED", reason="ROLLOUT_DONE"
            ) from err

    async def _after(self, caller: Principal, rollout_id: str, *, finishes: bool) -> pb.Rollout:
        """The rollout once a command took effect: for a command that ends it, after the
        workflow finished (bounded wait), so the answer shows the final traffic."""
        if finishes:
            client = await self._temporal()
            handle = client.get_workflow_handle(rollout_workflow_id(caller.tenant_id, rollout_id))
            # Still finishing (or failed): the answer reports where it stands.
            with contextlib.suppress(TimeoutError, WorkflowFailureError):
                await asyncio.wait_for(handle.result(), _FINISH_WAIT_S)
        return await self.get(caller, rollout_id)


# ---- to the contract ----------------------------------------------------------------


def _timestamp(out: pb.Rollout, name: str, value: datetime | str | None) -> None:
    if not value:
        return
    when = datetime.fromisoformat(value) if isinstance(value, str) else value
    getattr(out, name).FromDatetime(when)


def _to_proto(tenant_id: str, rollout_id: str, seen: _Seen) -> pb.Rollout:
    memo, described = seen.memo, seen.described
    plan = _plan_from_memo(memo.get("plan"))
    out = pb.Rollout(
        rollout_id=rollout_id, tenant_id=tenant_id,
        skill_id=str(memo.get("skill_id", "")),
        candidate_policy_id=str(memo.get("candidate_policy_id", "")),
        baseline_policy_id=str(memo.get("baseline_policy_id", "")),
        evaluation_id=str(memo.get("evaluation_id", "")),
        learning_loop_id=str(memo.get("learning_loop_id", "")),
        plan=plan_to_proto(plan),
    )  # fmt: skip
    _timestamp(out, "create_time", described.start_time)
    _timestamp(out, "complete_time", described.close_time)
    if seen.status is not None:
        _running(out, seen.status, plan)
    elif seen.result is not None:
        _finished(out, seen.result)
    else:  # failed, terminated, cancelled or timed out: over, without an outcome
        out.state = pb.Rollout.STATE_COMPLETED
        name = described.status.name.lower() if described.status else "ended"
        out.status_message = f"the rollout workflow {name}"
    return out


def _running(out: pb.Rollout, status: RolloutStatus, plan: RolloutPlan) -> None:
    out.state = pb.Rollout.STATE_PAUSED if status.paused else pb.Rollout.STATE_RUNNING
    # Before its first step the workflow is about to enter the plan's first stage.
    first = "canary" if plan.skip_shadow else "shadow"
    stage = first if status.stage == "starting" else status.stage
    out.stage = _STAGES.get(stage, pb.Rollout.STAGE_UNSPECIFIED)
    if out.stage == pb.Rollout.STAGE_CANARY:
        out.canary_step_index = status.canary_step
        out.canary_percent = status.canary_percent or plan.steps()[0].percent
    if out.stage == pb.Rollout.STAGE_ROLLED_BACK:
        out.rollback_reason = status.reason
        out.automatic_rollback = status.automatic_rollback
    out.status_message = status.reason
    out.awaiting_promotion = status.awaiting_promote
    out.deployment_revision = status.revision
    _arm_metrics(out, status.arms)
    _timestamp(out, "stage_start_time", status.stage_start)


def _arm_metrics(out: pb.Rollout, arms: list[ArmStats]) -> None:
    for arm in arms:
        metrics = out.arm_metrics.add(
            policy_id=arm.policy_id,
            request_count=arm.requests,
            rewarded_count=arm.rewarded,
            mean_reward=arm.mean_reward,
            mean_reward_ci_lower=arm.mean_reward_ci_lower,
            mean_reward_ci_upper=arm.mean_reward_ci_upper,
            error_rate=arm.error_rate,
        )
        metrics.latency_p50.FromNanoseconds(round(arm.latency_p50_s * 1e9))
        metrics.latency_p95.FromNanoseconds(round(arm.latency_p95_s * 1e9))


def _finished(out: pb.Rollout, result: RolloutResult) -> None:
    out.state = pb.Rollout.STATE_COMPLETED
    out.stage = (
        pb.Rollout.STAGE_FULL if result.outcome == "promoted" else pb.Rollout.STAGE_ROLLED_BACK
    )
    if result.outcome == "rolled_back":
        out.rollback_reason = result.reason
        out.automatic_rollback = result.automatic_rollback
    out.status_message = result.reason
    out.deployment_revision = result.revision
    _arm_metrics(out, result.arms)
    if out.HasField("complete_time"):
        out.stage_start_time.CopyFrom(out.complete_time)
