"""TrainingRunWorkflow and EvaluationWorkflow on the real Temporal dev server, with fake
activities under the real activity names (the workflows' decisions are under test; the
real activities have tests of their own): train on the configured queue with a
heartbeat timeout, then register the candidate; cancelled while training, no policy;
cancelled while registering, the run still finishes with its policy; an evaluation
returns the verdict and its report's URI."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import CancelledError
from temporalio.worker import Worker

from services.activity_errors import permanent
from services.errors import FailedPrecondition
from services.training.workflow_resources import failure_status
from tests.conftest import RunningStack
from tests.integration.test_training_runs import error_reason
from workflows.evaluation import EvaluationWorkflow
from workflows.learning_types import (
    EvaluateInput,
    EvaluateOutput,
    EvaluationInput,
    RegisterCandidateInput,
    RegisterCandidateOutput,
    TrainAdapterInput,
    TrainAdapterOutput,
    TrainingRunInput,
    TrainingRunResult,
    TrainingRunStatus,
)
from workflows.training_run import TrainingRunWorkflow
from workflows.training_types import DpoSettings, LoraSettings

pytestmark = pytest.mark.integration


@dataclass
class Fakes:
    """The activities a run and an evaluation call: what they do and were asked."""

    train_blocks: bool = False
    register_blocks: bool = False
    train_error: str = ""
    trained: list[TrainAdapterInput] = field(default_factory=list)
    train_queues: list[str] = field(default_factory=list)
    train_cancelled: asyncio.Event = field(default_factory=asyncio.Event)
    registered: list[RegisterCandidateInput] = field(default_factory=list)
    registering: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    evaluated: list[EvaluateInput] = field(default_factory=list)

    def activities(self) -> list[Callable[..., Any]]:
        @activity.defn(name="train_adapter")
        async def train(inp: TrainAdapterInput) -> TrainAdapterOutput:
            self.trained.append(inp)
            self.train_queues.append(activity.info().task_queue)
            if self.train_error:
                error = FailedPrecondition(self.train_error, reason="INVALID_DATASET")
                raise permanent(error)  # as the real activity fails for good
            step = 0
            try:
                while self.train_blocks:
                    step += 1
                    activity.heartbeat({"step": step, "loss": 1.0 / step})
                    await asyncio.sleep(0.1)
            except asyncio.CancelledError:
                self.train_cancelled.set()
                raise
            return TrainAdapterOutput(
                f"file:///adapters/{inp.run_id}", "a" * 64, 0.25, 4,
                metrics={"total_steps": 4.0, "reward_margin": 0.5},
                lineage={"device": "cpu", "base_model": "tiny"},
            )  # fmt: skip

        @activity.defn(name="register_candidate")
        async def register(inp: RegisterCandidateInput) -> RegisterCandidateOutput:
            self.registering.set()
            if self.register_blocks:
                await self.release.wait()
            self.registered.append(inp)
            return RegisterCandidateOutput(f"{inp.skill_id}@v2")

        @activity.defn(name="evaluate_candidate")
        async def evaluate(inp: EvaluateInput) -> EvaluateOutput:
            self.evaluated.append(inp)
            return EvaluateOutput(
                True, 0.7, 0.55, 0.85, 0.01, [], f"file:///evals/{inp.evaluation_id}.json"
            )

        return [train, register, evaluate]


def run_input(gpu_queue: str) -> TrainingRunInput:
    train = TrainAdapterInput(
        "t", "support_email", f"tr-{uuid.uuid4().hex[:8]}", "file:///datasets/d.parquet",
        "support_email@v1", dataset_id="file:///datasets/d.parquet",
        parent_adapter_uri="file:///adapters/parent", lora=LoraSettings(rank=4),
        dpo=DpoSettings(max_steps=4),
    )  # fmt: skip
    return TrainingRunInput(train, gpu_queue, heartbeat_timeout_s=7)


@asynccontextmanager
async def workers(stack: RunningStack, fakes: Fakes) -> AsyncIterator[tuple[Client, str]]:
    """A workflow worker and a "GPU" activity worker on queues of this test's own."""
    client = await Client.connect(stack.settings.temporal_target)
    queue = f"q-{uuid.uuid4().hex[:8]}"
    async with (
        Worker(client, task_queue=queue, workflows=[TrainingRunWorkflow, EvaluationWorkflow],
               activities=fakes.activities()),
        Worker(client, task_queue=f"{queue}-gpu", activities=fakes.activities()),
    ):  # fmt: skip
        yield client, queue


async def start_run(client: Client, queue: str) -> WorkflowHandle[Any, TrainingRunResult]:
    return await client.start_workflow(
        TrainingRunWorkflow.run, run_input(f"{queue}-gpu"), id=f"run-test-{uuid.uuid4().hex[:8]}",
        task_queue=queue,
    )  # fmt: skip


async def wait_for(event: asyncio.Event) -> None:
    await asyncio.wait_for(event.wait(), 20)


async def test_trains_on_the_gpu_queue_then_registers_the_candidate(stack: RunningStack) -> None:
    fakes = Fakes()
    async with workers(stack, fakes) as (client, queue):
        handle = await start_run(client, queue)
        result = await handle.result()
        status: TrainingRunStatus = await handle.query(TrainingRunWorkflow.status)
    assert result.policy_id == "support_email@v2"
    assert result.trained.metrics["total_steps"] == 4 and result.trained.lineage["device"] == "cpu"
    assert (status.phase, status.policy_id) == ("succeeded", "support_email@v2")
    [trained] = fakes.trained
    assert fakes.train_queues == [f"{queue}-gpu"]
    assert trained.parent_adapter_uri == "file:///adapters/parent"
    assert (trained.lora, trained.dpo) == (LoraSettings(rank=4), DpoSettings(max_steps=4))
    [registered] = fakes.registered
    assert registered.parent_policy_id == "support_email@v1"
    assert registered.adapter_uri == f"file:///adapters/{trained.run_id}"
    assert (registered.adapter_sha256, registered.run_id) == ("a" * 64, trained.run_id)
    # The train activity has a heartbeat timeout: a dead worker is noticed and retried.
    async for event in handle.fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            attrs = event.activity_task_scheduled_event_attributes
            if attrs.activity_type.name == "train_adapter":
                assert attrs.heartbeat_timeout.ToTimedelta().total_seconds() == 7
                assert attrs.task_queue.name == f"{queue}-gpu"


async def test_cancelled_while_training_ends_cancelled_without_a_policy(
    stack: RunningStack,
) -> None:
    fakes = Fakes(train_blocks=True)
    async with workers(stack, fakes) as (client, queue):
        handle = await start_run(client, queue)
        # Running, with progress in the activity's heartbeat.
        for _ in range(200):
            described = await handle.describe()
            pending = list(described.raw_description.pending_activities)
            if pending and pending[0].heartbeat_details.payloads:
                break
            await asyncio.sleep(0.05)
        status: TrainingRunStatus = await handle.query(TrainingRunWorkflow.status)
        assert status.phase == "training"
        await handle.cancel()
        with pytest.raises(WorkflowFailureError) as info:
            await handle.result()
        assert isinstance(info.value.cause, CancelledError)
        assert (await handle.describe()).status == WorkflowExecutionStatus.CANCELED
        await wait_for(fakes.train_cancelled)  # the training itself stopped
    assert fakes.registered == [] and not fakes.registering.is_set()


async def test_cancelled_while_registering_still_produces_its_policy(
    stack: RunningStack,
) -> None:
    fakes = Fakes(register_blocks=True)
    async with workers(stack, fakes) as (client, queue):
        handle = await start_run(client, queue)
        await wait_for(fakes.registering)
        await handle.cancel()
        await asyncio.sleep(0.3)  # the workflow has seen the cancel by now
        fakes.release.set()
        result = await handle.result()
    assert result.policy_id == "support_email@v2" and len(fakes.registered) == 1
    assert (await handle.describe()).status == WorkflowExecutionStatus.COMPLETED


async def test_a_training_error_fails_the_run_with_the_activity_s_reason(
    stack: RunningStack,
) -> None:
    fakes = Fakes(train_error="dataset d has no pairs")
    async with workers(stack, fakes) as (client, queue):
        handle = await start_run(client, queue)
        with pytest.raises(WorkflowFailureError) as info:
            await handle.result()
    status = failure_status(info.value)
    assert status.message == "dataset d has no pairs"
    assert status.code == 9  # FAILED_PRECONDITION: the data can never train
    assert error_reason(status) == "INVALID_DATASET"
    assert len(fakes.trained) == 1 and fakes.registered == []  # non-retryable: one attempt


async def test_evaluation_returns_the_verdict_and_the_report_uri(stack: RunningStack) -> None:
    fakes = Fakes()
    evaluate = EvaluateInput(
        "t", "support_email", "support_email@v2", "support_email@v1", {"min_win_rate": 0.6},
        evaluation_id="ev-1", max_examples=4, confidence_level=0.9, safety_suites=["jailbreak"],
    )  # fmt: skip
    async with workers(stack, fakes) as (client, queue):
        handle = await client.start_workflow(
            EvaluationWorkflow.run, EvaluationInput(evaluate, f"{queue}-gpu"),
            id=f"eval-test-{uuid.uuid4().hex[:8]}", task_queue=queue,
        )  # fmt: skip
        verdict = await handle.result()
        status = await handle.query(EvaluationWorkflow.status)
    assert verdict.passed and verdict.report_uri == "file:///evals/ev-1.json"
    assert status.phase == "succeeded"
    assert fakes.evaluated == [evaluate]
