"""A GPU worker dies mid-training (SIGKILL, no goodbye): the train activity's heartbeats
stop, Temporal retries it on another worker, the retry resumes from the checkpoint the
dead worker uploaded to the object store, and the learning loop completes.

The session stack's own GPU worker is left alone (other tests use it): this test runs
its own `rlaas worker --queue gpu` processes, through the real CLI with the stack's
environment, on a task queue of their own (RLAAS_GPU_TASK_QUEUE), and points the loop's
`gpu_task_queue` at it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import IO, Any

import grpc
import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError

from rlaas.inference.v1 import inference_pb2 as inf
from rlaas.inference.v1 import inference_pb2_grpc
from rlaas.options.v1 import options_pb2
from rlaas.registry.v1 import registry_pb2 as reg
from rlaas.registry.v1 import registry_pb2_grpc
from rlaas.telemetry.v1 import telemetry_pb2 as tel
from rlaas.telemetry.v1 import telemetry_pb2_grpc
from tests.conftest import RunningStack
from tests.helpers import ROOT, md, new_tenant, scoped_key
from workers.training_activities import TrainAdapterOutput
from workflows.learning_loop import LearningLoopWorkflow
from workflows.learning_types import LoopConfig, LoopState, RolloutPlan
from workflows.queues import CPU_TASK_QUEUE
from workflows.training_run import training_run_workflow_id
from workflows.training_types import DpoSettings

pytestmark = pytest.mark.e2e

MAX_STEPS = 240
"""Long enough (~0.2 s a step on the tiny model, more on a loaded machine) to see a
checkpoint and kill the worker well before the end, even when the test's own polling is
starved of CPU."""
CHECKPOINT_EVERY = 2
HEARTBEAT_TIMEOUT_S = 5.0
TOPICS = ["billing", "refund", "shipping", "password", "invoice", "delivery", "account",
          "warranty", "upgrade", "cancellation", "coupon", "address"]  # fmt: skip


def rid() -> str:
    return str(uuid.uuid4())


def user(text: str) -> list[tel.ChatMessage]:
    return [tel.ChatMessage(role=tel.ChatMessage.ROLE_USER, content=text)]


class GpuWorker:
    """`rlaas worker --queue gpu` in its own process group, polling `queue`."""

    def __init__(self, stack: RunningStack, queue: str, log: Path) -> None:
        self.log = log
        self._out: IO[bytes] = log.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "infra.cli", "worker", "--queue", "gpu"],
            env={**stack.env, "RLAAS_GPU_TASK_QUEUE": queue},
            cwd=ROOT,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def kill(self) -> None:
        """SIGKILL the whole process group (idempotent)."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)
        self._out.close()

    def tail(self, n: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-n:]


async def _feed(channel: grpc.aio.Channel, operator_key: str) -> tuple[str, str, str, str]:
    """A tenant whose skill has a promoted v1 and edited answers to learn from:
    (tenant_id, admin key, infer key, v1 policy id)."""
    tenant_id, admin = await new_tenant(channel, operator_key, "gpu-crash")
    infer_key = await scoped_key(channel, admin, options_pb2.SCOPE_INFER)
    ingest_key = await scoped_key(channel, admin, options_pb2.SCOPE_INGEST)
    r = registry_pb2_grpc.RegistryServiceStub(channel)
    await r.CreateSkill(
        reg.CreateSkillRequest(skill=reg.Skill(skill_id="support_email"), request_id=rid()),
        metadata=md(admin),
    )
    v1 = await r.CreatePolicy(
        reg.CreatePolicyRequest(
            policy=reg.Policy(
                skill_id="support_email",
                base_model="tiny",
                generation_defaults=reg.GenerationConfig(max_tokens=6),
            ),
            request_id=rid(),
        ),
        metadata=md(admin),
    )
    await r.PromotePolicy(
        reg.PromotePolicyRequest(
            skill_id="support_email", policy_id=v1.policy.policy_id, reason="start",
            request_id=rid(),
        ),
        metadata=md(admin),
    )  # fmt: skip
    g = inference_pb2_grpc.InferenceServiceStub(channel)
    t = telemetry_pb2_grpc.TelemetryServiceStub(channel)
    # Distinct topics: the dataset builder drops near-duplicate pairs.
    for i, topic in enumerate(TOPICS):
        answer = await g.Infer(
            inf.InferRequest(
                skill="support_email", user_id=f"u{i}", thread_id=f"th{i}", request_id=rid(),
                messages=user(f"a question about my {topic}, ticket {i}"),
            ),
            metadata=md(infer_key),
        )  # fmt: skip
        await t.SubmitFeedback(
            tel.SubmitFeedbackRequest(
                interaction_id=answer.interaction_id, request_id=rid(),
                feedback=tel.Feedback(implicit=tel.ImplicitFeedback(
                    edited_text=f"thanks for asking about your {topic}; here is what we do",
                    sent=True)),
            ),
            metadata=md(ingest_key),
        )  # fmt: skip
    return tenant_id, admin, infer_key, v1.policy.policy_id


async def _wait_for_checkpoint(
    client: Client, handle: WorkflowHandle[Any, Any], run: WorkflowHandle[Any, Any],
    worker: GpuWorker, within_s: float,
) -> dict[str, Any]:  # fmt: skip
    """The train activity's heartbeat details, as the server has them, once they name an
    uploaded checkpoint. The loop trains in a child training-run workflow (``run``),
    which exists once the dataset is built."""
    deadline = time.monotonic() + within_s
    while True:
        description = await handle.describe()
        try:
            pending_now = list((await run.describe()).raw_description.pending_activities)
        except RPCError:
            pending_now = []  # not started yet
        for pending in pending_now:
            if pending.activity_type.name == "train_adapter" and pending.heartbeat_details.payloads:
                [details] = client.data_converter.payload_converter.from_payloads(
                    list(pending.heartbeat_details.payloads)
                )
                if details.get("checkpoint_uri"):
                    return dict(details)
        why = ""
        if worker.proc.poll() is not None:
            why = "the GPU worker exited"
        elif description.close_time is not None:
            why = f"the loop ended ({description.status}): {await handle.result()}"
        elif time.monotonic() > deadline:
            why = f"no checkpoint heartbeat in {within_s} s"
        if why:
            raise AssertionError(f"{why}\npending: {pending_now}\nworker:\n{worker.tail()}")
        await asyncio.sleep(0.2)


async def _train_result(
    client: Client, handle: WorkflowHandle[Any, Any]
) -> tuple[TrainAdapterOutput, int]:
    """The train activity's completed result and the attempt that produced it, read from
    the workflow history."""
    scheduled: set[int] = set()
    attempts: dict[int, int] = {}
    async for event in handle.fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            attrs = event.activity_task_scheduled_event_attributes
            if attrs.activity_type.name == "train_adapter":
                scheduled.add(event.event_id)
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            started = event.activity_task_started_event_attributes
            if started.scheduled_event_id in scheduled:
                attempts[event.event_id] = started.attempt
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            done = event.activity_task_completed_event_attributes
            if done.scheduled_event_id in scheduled:
                [out] = client.data_converter.payload_converter.from_payloads(
                    list(done.result.payloads), [TrainAdapterOutput]
                )
                return out, attempts[done.started_event_id]
    raise AssertionError("train_adapter never completed")


async def test_a_killed_gpu_worker_resumes_training_from_its_checkpoint(
    stack: RunningStack, channel: grpc.aio.Channel, tmp_path: Path
) -> None:
    tenant_id, admin, infer_key, v1 = await _feed(channel, stack.admin_key)
    suffix = uuid.uuid4().hex[:8]
    queue, loop_id = f"rlaas-gpu-crash-{suffix}", f"loop-crash-{suffix}"
    state = LoopState(
        tenant_id=tenant_id, skill_id="support_email", loop_id=loop_id,
        config=LoopConfig(
            min_new_feedback=1, check_interval_s=1, min_pairs=8, max_iterations=1,
            dpo=DpoSettings(max_steps=MAX_STEPS, batch_size=2, learning_rate=5e-3, seed=1),
            gpu_task_queue=queue, train_checkpoint_every=CHECKPOINT_EVERY,
            train_heartbeat_timeout_s=HEARTBEAT_TIMEOUT_S,
            rollout=RolloutPlan(shadow_requests=1000, poll_interval_s=1, max_stage_s=5),
        ),
    )  # fmt: skip
    client = await Client.connect(stack.settings.temporal_target)
    first = GpuWorker(stack, queue, tmp_path / "gpu-worker-1.log")
    second: GpuWorker | None = None
    handle = None
    try:
        handle = await client.start_workflow(
            LearningLoopWorkflow.run, state, id=loop_id, task_queue=CPU_TASK_QUEUE
        )
        run = client.get_workflow_handle(training_run_workflow_id(tenant_id, f"{loop_id}-1"))
        seen = await _wait_for_checkpoint(client, handle, run, first, within_s=90)
        assert seen["checkpoint_step"] >= CHECKPOINT_EVERY, seen
        assert seen["step"] < MAX_STEPS, f"training ended before the kill: {seen}"
        first.kill()
        assert first.proc.returncode == -signal.SIGKILL
        second = GpuWorker(stack, queue, tmp_path / "gpu-worker-2.log")
        try:
            result: LoopState = await asyncio.wait_for(handle.result(), timeout=120)
        except TimeoutError:
            raise AssertionError(f"the loop did not finish:\n{second.tail()}") from None
    finally:
        first.kill()
        if second is not None:
            second.kill()
        if handle is not None:
            with contextlib.suppress(Exception):
                await handle.terminate("test over")

    [summary] = result.history
    assert summary.outcome in ("promoted", "rolled_back", "rejected_by_eval"), summary
    assert summary.training_run_id == f"{loop_id}-1"
    trained, attempt = await _train_result(client, run)
    assert attempt >= 2
    # The retry went on from the dead worker's checkpoint (at least the one the server
    # had heard of), not from step 0, and trained to the same end.
    assert trained.resumed_from_step >= seen["checkpoint_step"] > 0
    assert trained.resumed_from_step % CHECKPOINT_EVERY == 0
    assert trained.steps == MAX_STEPS
    assert trained.lineage["resumed_from_step"] == trained.resumed_from_step
    assert trained.lineage["training_config"]["checkpoint_every"] == CHECKPOINT_EVERY
    assert trained.adapter_uri == summary.adapter_uri
    # The adapter is stored: the run's checkpoints are gone (a half-written temporary
    # file of the killed upload may remain; the store never lists those).
    checkpoints = stack.settings.objects_dir / "checkpoints" / tenant_id / "support_email"
    left = [p for p in checkpoints.rglob("*") if p.is_file() and not p.name.startswith(".tmp-")]
    assert left == []

    r = registry_pb2_grpc.RegistryServiceStub(channel)
    candidate = await r.GetPolicy(
        reg.GetPolicyRequest(policy_id=summary.candidate_policy_id), metadata=md(admin)
    )
    assert candidate.policy.policy_id == "support_email@v2"
    assert candidate.policy.parent_policy_id == v1
    assert candidate.policy.adapter.sha256 == trained.adapter_sha256
    pinned = await inference_pb2_grpc.InferenceServiceStub(channel).Infer(
        inf.InferRequest(
            skill="support_email", policy_id=candidate.policy.policy_id, request_id=rid(),
            messages=user("hello"),
        ),
        metadata=md(infer_key),
    )  # fmt: skip
    assert pinned.policy_id == candidate.policy.policy_id
