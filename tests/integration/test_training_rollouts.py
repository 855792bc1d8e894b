"""TrainingService's rollout RPCs through the real server, the real CPU worker (real
activities against the registry) and Temporal: create, read, list, promote, roll back,
pause and resume; errors with their codes and fields; tenant isolation; request_id
replay; and rollouts started by a learning loop, visible through the same RPCs."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import grpc
import pytest
from google.protobuf import duration_pb2
from temporalio.client import Client
from temporalio.worker import Worker

from rlaas.inference.v1 import inference_pb2 as inf
from rlaas.inference.v1 import inference_pb2_grpc
from rlaas.options.v1 import options_pb2
from rlaas.registry.v1 import registry_pb2 as reg
from rlaas.registry.v1 import registry_pb2_grpc
from rlaas.telemetry.v1 import telemetry_pb2 as tel
from rlaas.training.v1 import training_pb2 as pb
from rlaas.training.v1 import training_pb2_grpc
from tests.conftest import RunningStack
from tests.helpers import md, new_tenant, rich_error, scoped_key
from tests.integration.test_learning_workflows import LOOP_WORKFLOWS, Script, loop_state
from workflows.learning_loop import LearningLoopWorkflow

pytestmark = pytest.mark.integration

T = TypeVar("T")
# Nothing advances by itself: each test drives the stages.
MANUAL = pb.RolloutPlan(canary_steps=[pb.CanaryStep(percent=20), pb.CanaryStep(percent=60)])


def rid() -> str:
    return str(uuid.uuid4())


@dataclass
class Skill:
    tenant_id: str
    key: str
    skill_id: str
    baseline: str
    candidate: str
    registry: registry_pb2_grpc.RegistryServiceStub
    training: training_pb2_grpc.TrainingServiceStub

    def md(self) -> tuple[tuple[str, str], ...]:
        return md(self.key)

    async def create(self, plan: pb.RolloutPlan | None = MANUAL, **kw: str) -> pb.Rollout:
        rollout = pb.Rollout(candidate_policy_id=self.candidate, plan=plan, **kw)
        request = pb.CreateRolloutRequest(rollout=rollout, request_id=rid())
        return (await self.training.CreateRollout(request, metadata=self.md())).rollout

    async def get(self, rollout_id: str) -> pb.Rollout:
        request = pb.GetRolloutRequest(rollout_id=rollout_id)
        return (await self.training.GetRollout(request, metadata=self.md())).rollout

    async def deployment(self) -> reg.Deployment:
        request = reg.GetDeploymentRequest(skill_id=self.skill_id)
        return (await self.registry.GetDeployment(request, metadata=self.md())).deployment

    async def new_candidate(self) -> str:
        made = await self.registry.CreatePolicy(
            reg.CreatePolicyRequest(policy=_policy(self.skill_id, "next"), request_id=rid()),
            metadata=self.md(),
        )
        return made.policy.policy_id


def _policy(skill_id: str, description: str) -> reg.Policy:
    return reg.Policy(skill_id=skill_id, base_model="tiny", description=description,
                      generation_defaults=reg.GenerationConfig(max_tokens=4))  # fmt: skip


async def skill(
    channel: grpc.aio.Channel, stack: RunningStack, name: str, *, baseline: bool = True
) -> Skill:
    """A fresh tenant with a skill, its baseline v1 (promoted) and a CANDIDATE v2."""
    tenant_id, admin = await new_tenant(channel, stack.admin_key, name)
    r = registry_pb2_grpc.RegistryServiceStub(channel)
    skill_id = "support_email"
    await r.CreateSkill(
        reg.CreateSkillRequest(skill=reg.Skill(skill_id=skill_id), request_id=rid()),
        metadata=md(admin),
    )
    ids = []
    for description in ("baseline", "candidate"):
        made = await r.CreatePolicy(
            reg.CreatePolicyRequest(policy=_policy(skill_id, description), request_id=rid()),
            metadata=md(admin),
        )
        ids.append(made.policy.policy_id)
    if baseline:
        await r.PromotePolicy(
            reg.PromotePolicyRequest(skill_id=skill_id, policy_id=ids[0], reason="first",
                                     request_id=rid()),
            metadata=md(admin),
        )  # fmt: skip
    return Skill(tenant_id, admin, skill_id, ids[0], ids[1], r,
                 training_pb2_grpc.TrainingServiceStub(channel))  # fmt: skip


async def eventually(read: Callable[[], Awaitable[T]], ok: Callable[[T], bool]) -> T:
    """Traffic changes are activities that run after the RPC answered."""
    deadline = time.monotonic() + 30
    while True:
        value = await read()
        if ok(value):
            return value
        assert time.monotonic() < deadline, f"never became true: {value}"
        await asyncio.sleep(0.2)


async def fails(call: Awaitable[object]) -> tuple[grpc.StatusCode, str | None, list[str]]:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    err = rich_error(info.value)
    return err.code, err.reason, [f for f, _ in err.field_violations]


async def test_create_promote_through_the_steps_to_full(
    stack: RunningStack, channel: grpc.aio.Channel
) -> None:
    s = await skill(channel, stack, "rollouts-promote")
    t = s.training
    created = await s.create()
    assert created.state == pb.Rollout.STATE_RUNNING and created.stage == pb.Rollout.STAGE_SHADOW
    assert (created.skill_id, created.baseline_policy_id) == (s.skill_id, s.baseline)
    assert created.tenant_id == s.tenant_id and created.HasField("create_time")
    assert [c.percent for c in created.plan.canary_steps] == [20, 60]
    ro = created.rollout_id
    shadowed = await eventually(s.deployment, lambda d: d.traffic.HasField("shadow"))
    assert list(shadowed.traffic.shadow.policy_ids) == [s.candidate]

    def promote(target: int = 0, request_id: str = "") -> Awaitable[pb.PromoteRolloutResponse]:
        request = pb.PromoteRolloutRequest(
            rollout_id=ro,
            target_stage=target,
            reason="looks good",
            request_id=request_id or rid(),
        )
        return t.PromoteRollout(request, metadata=s.md())

    step0 = (await promote()).rollout
    assert (step0.stage, step0.canary_step_index, step0.canary_percent) == (
        pb.Rollout.STAGE_CANARY, 0, 20,
    )  # fmt: skip
    canary = await eventually(s.deployment, lambda d: d.traffic.HasField("canary"))
    assert (canary.traffic.canary.policy_id, canary.traffic.canary.percent) == (s.candidate, 20)
    # The caller's reason is what the audit log records for the traffic change.
    audit = await s.registry.ListAuditEvents(reg.ListAuditEventsRequest(page_size=1),
                                             metadata=s.md())  # fmt: skip
    assert audit.audit_events[0].reason == "looks good"
    # A retried promote (same request_id) does not advance twice.
    again = rid()
    step1 = (await promote(request_id=again)).rollout
    assert (step1.canary_step_index, step1.canary_percent) == (1, 60)
    assert (await promote(request_id=again)).rollout.canary_step_index == 1
    await eventually(s.deployment, lambda d: d.traffic.canary.percent == 60)
    assert (await fails(promote(pb.Rollout.STAGE_CANARY)))[:2] == (
        grpc.StatusCode.FAILED_PRECONDITION, "TARGET_NOT_AFTER_CURRENT",
    )  # fmt: skip

    full = (await promote(pb.Rollout.STAGE_FULL)).rollout
    assert (full.stage, full.state) == (pb.Rollout.STAGE_FULL, pb.Rollout.STATE_COMPLETED)
    assert full.HasField("complete_time") and full.deployment_revision > 0
    deployment = await s.deployment()
    assert deployment.baseline_policy_id == s.candidate
    assert deployment.traffic.WhichOneof("strategy") is None
    assert deployment.revision == full.deployment_revision
    policy = await s.registry.GetPolicy(reg.GetPolicyRequest(policy_id=s.candidate),
                                        metadata=s.md())  # fmt: skip
    assert policy.policy.state == reg.Policy.STATE_ACTIVE
    # What the router serves now: the candidate.
    infer_key = await scoped_key(channel, s.key, options_pb2.SCOPE_INFER)
    hello = tel.ChatMessage(role=tel.ChatMessage.ROLE_USER, content="hello")
    await asyncio.sleep(1.0)  # the documented propagation bound
    answer = await inference_pb2_grpc.InferenceServiceStub(channel).Infer(
        inf.InferRequest(skill=s.skill_id, user_id="u1", request_id=rid(), messages=[hello]),
        metadata=md(infer_key),
    )
    assert answer.policy_id == s.candidate
    # Finished: no more commands.
    code, reason, _ = await fails(promote())
    assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "ROLLOUT_DONE")
    rollback = pb.RollbackRolloutRequest(rollout_id=ro, reason="too late", request_id=rid())
    code, _, _ = await fails(t.RollbackRollout(rollback, metadata=s.md()))
    assert code == grpc.StatusCode.FAILED_PRECONDITION


async def test_rollback_pause_resume(stack: RunningStack, channel: grpc.aio.Channel) -> None:
    s = await skill(channel, stack, "rollouts-rollback")
    t = s.training
    plan = pb.RolloutPlan(shadow_duration=duration_pb2.Duration(seconds=0),
                          canary_steps=[pb.CanaryStep(percent=30)])  # fmt: skip
    created = await s.create(plan)
    ro = created.rollout_id
    assert (created.stage, created.canary_percent) == (pb.Rollout.STAGE_CANARY, 30)
    await eventually(s.deployment, lambda d: d.traffic.canary.policy_id == s.candidate)

    paused = await t.PauseRollout(
        pb.PauseRolloutRequest(rollout_id=ro, request_id=rid()), metadata=s.md()
    )
    assert paused.rollout.state == pb.Rollout.STATE_PAUSED
    again = await t.PauseRollout(
        pb.PauseRolloutRequest(rollout_id=ro, request_id=rid()), metadata=s.md()
    )
    assert again.rollout.state == pb.Rollout.STATE_PAUSED
    resumed = await t.ResumeRollout(
        pb.ResumeRolloutRequest(rollout_id=ro, request_id=rid()), metadata=s.md()
    )
    assert resumed.rollout.state == pb.Rollout.STATE_RUNNING
    assert resumed.rollout.stage == pb.Rollout.STAGE_CANARY

    request = pb.RollbackRolloutRequest(rollout_id=ro, reason="users complain", request_id=rid())
    rolled = (await t.RollbackRollout(request, metadata=s.md())).rollout
    assert (rolled.stage, rolled.state) == (
        pb.Rollout.STAGE_ROLLED_BACK,
        pb.Rollout.STATE_COMPLETED,
    )
    assert (rolled.rollback_reason, rolled.automatic_rollback) == ("users complain", False)
    deployment = await s.deployment()
    assert deployment.baseline_policy_id == s.baseline
    assert (
        deployment.traffic.WhichOneof("strategy") is None
        and not deployment.traffic.shadow.policy_ids
    )
    # Rolling back again answers the same rollout; pausing a finished one is refused.
    request.request_id = rid()
    assert (await t.RollbackRollout(request, metadata=s.md())).rollout == rolled
    code, _, _ = await fails(
        t.PauseRollout(pb.PauseRolloutRequest(rollout_id=ro, request_id=rid()), metadata=s.md())
    )
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    # The skill is free for the next rollout.
    s.candidate = await s.new_candidate()
    assert (await s.create()).state == pb.Rollout.STATE_RUNNING


async def test_errors_name_their_fields(stack: RunningStack, channel: grpc.aio.Channel) -> None:
    s = await skill(channel, stack, "rollouts-errors")
    t = s.training

    def create(rollout: pb.Rollout, request_id: str = "x") -> Awaitable[object]:
        request = pb.CreateRolloutRequest(rollout=rollout, request_id=request_id)
        return t.CreateRollout(request, metadata=s.md())

    bad = grpc.StatusCode.INVALID_ARGUMENT
    assert (await fails(create(pb.Rollout())))[::2] == (bad, ["rollout.candidate_policy_id"])
    ok = pb.Rollout(candidate_policy_id=s.candidate)
    assert (await fails(create(ok, "")))[::2] == (bad, ["request_id"])
    steps = pb.RolloutPlan(canary_steps=[pb.CanaryStep(percent=p) for p in (30, 150, 10)])
    code, _, fields = await fails(create(pb.Rollout(candidate_policy_id=s.candidate, plan=steps)))
    assert (code, fields) == (bad, ["rollout.plan.canary_steps[1].percent",
                                    "rollout.plan.canary_steps[2].percent"])  # fmt: skip
    assert (await fails(t.GetRollout(pb.GetRolloutRequest(), metadata=s.md())))[::2] == (
        bad, ["rollout_id"],
    )  # fmt: skip

    missing = pb.Rollout(candidate_policy_id=f"{s.skill_id}@v9")
    assert (await fails(create(missing, rid())))[0] == grpc.StatusCode.NOT_FOUND
    code, reason, _ = await fails(create(pb.Rollout(candidate_policy_id=s.baseline), rid()))
    assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "POLICY_NOT_CANDIDATE")
    evaluated = pb.Rollout(candidate_policy_id=s.candidate, evaluation_id="ev-1")
    assert (await fails(create(evaluated, rid())))[0] == grpc.StatusCode.NOT_FOUND
    unrolled = await skill(channel, stack, "rollouts-no-baseline", baseline=False)
    code, reason, _ = await fails(unrolled.create())
    assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "NO_BASELINE")

    first = await s.create()
    ro = first.rollout_id
    s.candidate = await s.new_candidate()
    code, reason, _ = await fails(s.create())
    assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "ROLLOUT_IN_PROGRESS")

    promote = pb.PromoteRolloutRequest(rollout_id=ro, request_id=rid())
    assert (await fails(t.PromoteRollout(promote, metadata=s.md())))[::2] == (bad, ["reason"])
    promote.reason, promote.target_stage = "go", pb.Rollout.STAGE_SHADOW
    assert (await fails(t.PromoteRollout(promote, metadata=s.md())))[::2] == (
        bad, ["target_stage"],
    )  # fmt: skip
    rollback = pb.RollbackRolloutRequest(rollout_id=ro, reason="x")
    assert (await fails(t.RollbackRollout(rollback, metadata=s.md())))[::2] == (
        bad, ["request_id"],
    )  # fmt: skip
    absent = pb.PauseRolloutRequest(rollout_id="ro-nope", request_id=rid())
    assert (await fails(t.PauseRollout(absent, metadata=s.md())))[0] == grpc.StatusCode.NOT_FOUND
    infer_only = await scoped_key(channel, s.key, options_pb2.SCOPE_INFER)
    code, _, _ = await fails(
        t.GetRollout(pb.GetRolloutRequest(rollout_id=ro), metadata=md(infer_only))
    )
    assert code == grpc.StatusCode.PERMISSION_DENIED
    await t.RollbackRollout(
        pb.RollbackRolloutRequest(rollout_id=ro, reason="test over", request_id=rid()),
        metadata=s.md(),
    )


async def test_replay_reuse_isolation_and_list(
    stack: RunningStack, channel: grpc.aio.Channel
) -> None:
    s = await skill(channel, stack, "rollouts-replay")
    t = s.training
    request = pb.CreateRolloutRequest(
        rollout=pb.Rollout(candidate_policy_id=s.candidate, plan=MANUAL), request_id=rid()
    )
    created = (await t.CreateRollout(request, metadata=s.md())).rollout
    again = (await t.CreateRollout(request, metadata=s.md())).rollout
    assert again.rollout_id == created.rollout_id
    request.rollout.plan.auto_advance = True
    code, reason, _ = await fails(t.CreateRollout(request, metadata=s.md()))
    assert (code, reason) == (grpc.StatusCode.ALREADY_EXISTS, "REQUEST_ID_REUSED")

    # Another tenant sees nothing of it, and cannot reach the candidate either.
    _, other_key = await new_tenant(channel, stack.admin_key, "rollouts-replay-b")
    other = md(other_key)
    get = pb.GetRolloutRequest(rollout_id=created.rollout_id)
    assert (await fails(t.GetRollout(get, metadata=other)))[0] == grpc.StatusCode.NOT_FOUND
    rollback = pb.RollbackRolloutRequest(
        rollout_id=created.rollout_id, reason="x", request_id=rid()
    )
    code, _, _ = await fails(t.RollbackRollout(rollback, metadata=other))
    assert code == grpc.StatusCode.NOT_FOUND
    assert not (await t.ListRollouts(pb.ListRolloutsRequest(), metadata=other)).rollouts
    steal = pb.CreateRolloutRequest(rollout=request.rollout, request_id=rid())
    assert (await fails(t.CreateRollout(steal, metadata=other)))[0] == grpc.StatusCode.NOT_FOUND

    # A second, newer rollout once the first is rolled back: newest first, filters, pages.
    await t.RollbackRollout(
        pb.RollbackRolloutRequest(rollout_id=created.rollout_id, reason="next", request_id=rid()),
        metadata=s.md(),
    )
    s.candidate = await s.new_candidate()
    newer = await s.create()

    async def listed(**kw: object) -> pb.ListRolloutsResponse:
        return await t.ListRollouts(pb.ListRolloutsRequest(**kw), metadata=s.md())

    everything = await eventually(lambda: listed(), lambda r: len(r.rollouts) == 2)
    assert [r.rollout_id for r in everything.rollouts] == [newer.rollout_id, created.rollout_id]
    first_page = await listed(page_size=1)
    assert [r.rollout_id for r in first_page.rollouts] == [newer.rollout_id]
    second = await listed(page_size=1, page_token=first_page.next_page_token)
    assert [r.rollout_id for r in second.rollouts] == [created.rollout_id]
    assert not second.next_page_token
    running = await listed(state=pb.Rollout.STATE_RUNNING)
    assert [r.rollout_id for r in running.rollouts] == [newer.rollout_id]
    assert not (await listed(skill_id="other_skill")).rollouts
    assert len((await listed(skill_id=s.skill_id)).rollouts) == 2
    await t.RollbackRollout(
        pb.RollbackRolloutRequest(rollout_id=newer.rollout_id, reason="over", request_id=rid()),
        metadata=s.md(),
    )


async def test_loop_rollouts_are_visible_through_the_rollout_rpcs(
    stack: RunningStack, channel: grpc.aio.Channel
) -> None:
    """A learning loop's iteration (fake activities, so no training) starts its rollout
    under the tenant's rollout id form: GetRollout and ListRollouts see it."""
    s = await skill(channel, stack, "rollouts-loop")
    script = Script(decide=lambda inp, n: "continue")
    state = loop_state(f"q-{uuid.uuid4().hex[:8]}", max_iterations=1)
    state.tenant_id, state.skill_id = s.tenant_id, s.skill_id
    queue = state.config.gpu_task_queue.removesuffix("-gpu")
    client = await Client.connect(stack.settings.temporal_target)
    async with (
        Worker(client, task_queue=queue, workflows=LOOP_WORKFLOWS,
               activities=script.activities()),
        Worker(client, task_queue=state.config.gpu_task_queue, activities=script.activities()),
    ):  # fmt: skip
        loop = await client.start_workflow(
            LearningLoopWorkflow.run, state, id=state.loop_id, task_queue=queue
        )
        rollout_id = f"{state.loop_id}-1-rollout"

        async def found() -> pb.ListRolloutsResponse:
            return await s.training.ListRollouts(pb.ListRolloutsRequest(), metadata=s.md())

        listed = await eventually(found, lambda r: len(r.rollouts) == 1)
        got = listed.rollouts[0]
        assert got.rollout_id == rollout_id and got.learning_loop_id == state.loop_id
        assert got.candidate_policy_id == f"{s.skill_id}@v2"
        assert got.stage == pb.Rollout.STAGE_SHADOW and got.state == pb.Rollout.STATE_RUNNING
        assert (await s.get(rollout_id)).plan.canary_steps[0].percent == 10
        rolled = await s.training.RollbackRollout(
            pb.RollbackRolloutRequest(rollout_id=rollout_id, reason="stop", request_id=rid()),
            metadata=s.md(),
        )
        assert rolled.rollout.stage == pb.Rollout.STAGE_ROLLED_BACK
        result = await loop.result()
    assert result.history[0].outcome == "rolled_back"
    assert result.history[0].rollout_id == rollout_id
