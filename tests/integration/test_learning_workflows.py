"""The learning-loop and rollout workflows on the real Temporal dev server, with fake
activities registered under the real activity names (the workflows' decisions are under
test here; each real activity has tests of its own). Short timers stand in for the
time-skipping environment, which would need a test-server download."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from temporalio import activity
from temporalio.client import Client, WorkflowHandle
from temporalio.exceptions import ApplicationError
from temporalio.worker import Replayer, Worker

from tests.conftest import RunningStack
from workflows.evaluation import EvaluationWorkflow, evaluation_workflow_id
from workflows.learning_loop import LearningLoopWorkflow
from workflows.learning_types import (
    BaselineInput,
    BaselineOutput,
    BuildDatasetInput,
    BuildDatasetOutput,
    CountFeedbackInput,
    CountFeedbackOutput,
    EvaluateInput,
    EvaluateOutput,
    JudgeSpec,
    LoopConfig,
    LoopState,
    ObserveInput,
    ObserveOutput,
    RegisterCandidateInput,
    RegisterCandidateOutput,
    RolloutInput,
    RolloutPlan,
    RolloutResult,
    SetStageInput,
    SetStageOutput,
    TrainAdapterInput,
    TrainAdapterOutput,
    WarmGateInput,
    WarmGateOutput,
)
from workflows.rollout import RolloutWorkflow, rollout_workflow_id
from workflows.training_run import TrainingRunWorkflow, training_run_workflow_id

pytestmark = pytest.mark.integration


@dataclass
class Script:
    """What the fake activities answer, and what they were asked."""

    eval_passes: bool = True
    pairs: int = 32
    decide: Callable[[ObserveInput, int], str] = lambda inp, n: "accept"
    stages: list[str] = field(default_factory=list)
    trained: list[str] = field(default_factory=list)
    observed: int = 0
    version: int = 1
    rollout_ids: list[str] = field(default_factory=list)
    counted: int = 0
    evaluated: list[EvaluateInput] = field(default_factory=list)
    train_fails: int = 0
    """Iterations whose training fails for good (the first ones)."""
    warm_fails: bool = False
    warmed: list[tuple[str, str, int]] = field(default_factory=list)
    """Each warm-up: (policy, task queue, gates already run when it ran)."""

    def activities(self) -> list[Callable[..., object]]:
        @activity.defn(name="count_new_feedback")
        async def count(inp: CountFeedbackInput) -> CountFeedbackOutput:
            self.counted += 1
            return CountFeedbackOutput(count=100, watermark="now")

        @activity.defn(name="build_preference_dataset")
        async def build(inp: BuildDatasetInput) -> BuildDatasetOutput:
            if self.pairs < inp.min_pairs:
                return BuildDatasetOutput("", "", self.pairs)
            return BuildDatasetOutput(
                f"file:///datasets/{uuid.uuid4().hex}.parquet", "sha", self.pairs
            )

        @activity.defn(name="current_baseline")
        async def baseline(inp: BaselineInput) -> BaselineOutput:
            return BaselineOutput(f"{inp.skill_id}@v{self.version}")

        @activity.defn(name="train_adapter")
        async def train(inp: TrainAdapterInput) -> TrainAdapterOutput:
            self.trained.append(activity.info().task_queue)
            if len(self.trained) <= self.train_fails:
                raise ApplicationError("adapter too large", type="RESOURCE_EXHAUSTED:TOO_BIG",
                                       non_retryable=True)  # fmt: skip
            return TrainAdapterOutput(f"file:///adapters/{inp.run_id}", "0" * 64, 0.1, 8)

        @activity.defn(name="register_candidate")
        async def register(inp: RegisterCandidateInput) -> RegisterCandidateOutput:
            self.version += 1
            return RegisterCandidateOutput(f"{inp.skill_id}@v{self.version}")

        @activity.defn(name="evaluate_candidate")
        async def evaluate(inp: EvaluateInput) -> EvaluateOutput:
            self.evaluated.append(inp)
            reasons = [] if self.eval_passes else ["win-rate 0.41 below 0.55"]
            return EvaluateOutput(
                self.eval_passes, 0.7 if self.eval_passes else 0.41, 0.6, 0.8, 0.01, reasons
            )

        @activity.defn(name="set_rollout_stage")
        async def set_stage(inp: SetStageInput) -> SetStageOutput:
            self.stages.append(inp.stage if not inp.percent else f"{inp.stage}:{inp.percent:g}")
            self.rollout_ids.append(inp.rollout_id)
            return SetStageOutput(revision=len(self.stages))

        @activity.defn(name="observe_rollout")
        async def observe(inp: ObserveInput) -> ObserveOutput:
            self.observed += 1
            return ObserveOutput(self.observed, self.decide(inp, self.observed), "scripted")

        @activity.defn(name="warm_gate_answers")
        async def warm(inp: WarmGateInput) -> WarmGateOutput:
            self.warmed.append((inp.policy_id, activity.info().task_queue, len(self.evaluated)))
            if self.warm_fails:
                raise ApplicationError("engine down", non_retryable=True)
            return WarmGateOutput(answers=30, generated=30)

        return [count, build, baseline, train, register, evaluate, set_stage, observe, warm]


LOOP_WORKFLOWS = [LearningLoopWorkflow, RolloutWorkflow, TrainingRunWorkflow, EvaluationWorkflow]
"""What a worker on the loop's queue runs: the loop trains and gates in child workflows."""

FAST = RolloutPlan(
    shadow_requests=1, canary_percent=10, canary_min_requests=1, poll_interval_s=0.05
)


def loop_state(queue: str, **config: object) -> LoopState:
    settings: dict[str, object] = dict(
        min_new_feedback=1,
        check_interval_s=0.05,
        min_pairs=8,
        rollout=FAST,
        gpu_task_queue=f"{queue}-gpu",
    )
    cfg = LoopConfig(**{**settings, **config})  # type: ignore[arg-type]  # fmt: skip
    return LoopState(
        tenant_id="t", skill_id="support_email", loop_id=f"loop-{uuid.uuid4().hex[:8]}", config=cfg
    )


async def run_loop(
    stack: RunningStack, script: Script, state: LoopState
) -> tuple[LoopState, Client, str]:
    client = await Client.connect(stack.settings.temporal_target)
    queue = state.config.gpu_task_queue.removesuffix("-gpu")
    async with (
        Worker(client, task_queue=queue, workflows=[
                   LearningLoopWorkflow, RolloutWorkflow, TrainingRunWorkflow, EvaluationWorkflow,
               ], activities=script.activities()),
        Worker(client, task_queue=state.config.gpu_task_queue, activities=script.activities()),
    ):  # fmt: skip
        result: LoopState = await client.execute_workflow(
            LearningLoopWorkflow.run, state, id=state.loop_id, task_queue=queue
        )
    return result, client, state.loop_id


async def test_gate_pass_rolls_out_and_promotes(stack: RunningStack) -> None:
    script = Script()
    queue = f"q-{uuid.uuid4().hex[:8]}"
    result, _, _ = await run_loop(stack, script, loop_state(queue, max_iterations=1))
    assert [h.outcome for h in result.history] == ["promoted"]
    assert result.history[0].candidate_policy_id == "support_email@v2"
    assert script.stages == ["shadow", "canary:10", "promote"]
    assert script.trained == [f"{queue}-gpu"]  # training ran on the GPU queue


async def test_an_iteration_trains_and_gates_as_resources_and_records_its_times(
    stack: RunningStack,
) -> None:
    """The iteration's training run and gate are child workflows under the ids that
    TrainingService reads (GetTrainingRun/GetEvaluation), tied back to the loop by
    their memo; the iteration records their ids, the gate's verdict and its times."""
    script = Script()
    result, client, loop_id = await run_loop(
        stack, script, loop_state(f"q-{uuid.uuid4().hex[:8]}", max_iterations=1)
    )
    [h] = result.history
    assert h.training_run_id == f"{loop_id}-1" and h.evaluation_id == f"{loop_id}-1-eval"
    assert (h.evaluation_passed, h.win_rate, h.win_rate_ci_low, h.win_rate_ci_high) == (
        True, 0.7, 0.6, 0.8,
    )  # fmt: skip
    assert "" < h.start_time <= h.end_time and not h.error_type
    run = await client.get_workflow_handle(
        training_run_workflow_id("t", h.training_run_id)
    ).describe()
    assert run.workflow_type == "TrainingRunWorkflow" and run.status is not None
    memo = await run.memo()
    assert memo["learning_loop_id"] == loop_id and memo["loop_run"]["iteration"] == 1
    assert memo["loop_run"]["parent_policy_id"] == "support_email@v1"
    gate = await client.get_workflow_handle(evaluation_workflow_id("t", h.evaluation_id)).describe()
    assert (await gate.memo())["candidate_policy_id"] == h.candidate_policy_id == "support_email@v2"
    [evaluated] = script.evaluated
    assert evaluated.evaluation_id == h.evaluation_id  # its report is stored under its id


async def test_a_failed_step_fails_its_iteration_and_the_loop_goes_on(
    stack: RunningStack,
) -> None:
    script = Script(train_fails=1)
    result, _, _ = await run_loop(
        stack, script, loop_state(f"q-{uuid.uuid4().hex[:8]}", max_iterations=2)
    )
    failed, next_one = result.history
    assert failed.outcome == "failed" and failed.candidate_policy_id == ""
    # The step's own error, as services.activity_errors reads it back.
    assert failed.error_type == "RESOURCE_EXHAUSTED:TOO_BIG"
    assert failed.error_message == failed.reason == "adapter too large"
    assert failed.end_time and not next_one.error_type
    assert next_one.outcome == "promoted" and len(script.trained) == 2


async def test_the_baseline_answers_the_gates_prompts_while_the_loop_waits(
    stack: RunningStack,
) -> None:
    """Each wait for feedback starts the then baseline's warm-up where the model is,
    and its gate runs after it: the gate reads those answers from the cache."""
    queue = f"q-{uuid.uuid4().hex[:8]}"
    script = Script()
    result, client, workflow_id = await run_loop(stack, script, loop_state(queue, max_iterations=2))
    assert [h.outcome for h in result.history] == ["promoted", "promoted"]
    assert script.warmed == [
        ("support_email@v1", f"{queue}-gpu", 0), ("support_email@v2", f"{queue}-gpu", 1),
    ]  # fmt: skip
    replayer = Replayer(workflows=[LearningLoopWorkflow, RolloutWorkflow, TrainingRunWorkflow,
                                   EvaluationWorkflow])  # fmt: skip
    async for history in client.list_workflows(f"WorkflowId = '{workflow_id}'").map_histories():
        await replayer.replay_workflow(history)


async def test_a_failed_warm_up_leaves_the_gate_to_answer(stack: RunningStack) -> None:
    script = Script(warm_fails=True)
    result, _, _ = await run_loop(
        stack, script, loop_state(f"q-{uuid.uuid4().hex[:8]}", max_iterations=1)
    )
    assert [h.outcome for h in result.history] == ["promoted"] and len(script.warmed) == 1
    assert len(script.evaluated) == 1


async def test_gate_fail_never_rolls_out(stack: RunningStack) -> None:
    script = Script(eval_passes=False)
    judge = JudgeSpec(judge_model="support_email@v1", votes=2, swap_positions=True)
    state = loop_state(f"q-{uuid.uuid4().hex[:8]}", max_iterations=1, judge=judge)
    result, _, _ = await run_loop(stack, script, state)
    assert result.history[0].outcome == "rejected_by_eval"
    assert "below" in result.history[0].reason
    assert script.stages == []
    # The loop's gate evaluates with the judge its config names.
    [evaluated] = script.evaluated
    assert evaluated.judge == judge and evaluated.candidate_policy_id == "support_email@v2"


async def test_canary_regression_rolls_back(stack: RunningStack) -> None:
    script = Script(decide=lambda inp, n: "accept" if inp.stage == "shadow" else "reject")
    result, _, _ = await run_loop(
        stack, script, loop_state(f"q-{uuid.uuid4().hex[:8]}", max_iterations=1)
    )
    assert result.history[0].outcome == "rolled_back"
    assert script.stages == ["shadow", "canary:10", "rollback"]


async def test_not_enough_data_skips_training(stack: RunningStack) -> None:
    script = Script(pairs=3)
    result, _, _ = await run_loop(
        stack, script, loop_state(f"q-{uuid.uuid4().hex[:8]}", max_iterations=1)
    )
    assert result.history[0].outcome == "not_enough_data" and script.trained == []


async def test_continue_as_new_carries_state_and_history_replays(stack: RunningStack) -> None:
    script = Script()
    state = loop_state(f"q-{uuid.uuid4().hex[:8]}", max_iterations=3, iterations_per_run=2)
    result, client, workflow_id = await run_loop(stack, script, state)
    assert result.iteration == 3 and len(result.history) == 3
    assert [h.candidate_policy_id for h in result.history] == [
        f"support_email@v{i}" for i in (2, 3, 4)
    ]
    # Determinism: the recorded histories replay against today's workflow code.
    replayer = Replayer(workflows=[LearningLoopWorkflow, RolloutWorkflow, TrainingRunWorkflow,
                                   EvaluationWorkflow])  # fmt: skip
    async for history in client.list_workflows(f"WorkflowId = '{workflow_id}'").map_histories():
        await replayer.replay_workflow(history)


async def test_a_scheduled_loop_iterates_on_its_interval_without_counting_feedback(
    stack: RunningStack,
) -> None:
    import time

    script = Script(pairs=3)  # each iteration ends quickly: not enough data
    state = loop_state(
        f"q-{uuid.uuid4().hex[:8]}", max_iterations=2, min_new_feedback=0, min_interval_s=2.0
    )
    started = time.monotonic()
    result, client, workflow_id = await run_loop(stack, script, state)
    assert time.monotonic() - started >= 2.0  # the second start waited for the schedule
    assert [h.outcome for h in result.history] == ["not_enough_data"] * 2
    assert script.counted == 0  # the schedule alone decides: no feedback counted
    assert result.last_iteration_start
    replayer = Replayer(workflows=[LearningLoopWorkflow, RolloutWorkflow, TrainingRunWorkflow,
                                   EvaluationWorkflow])  # fmt: skip
    async for history in client.list_workflows(f"WorkflowId = '{workflow_id}'").map_histories():
        await replayer.replay_workflow(history)


async def test_pausing_the_loop_pauses_its_rollout(stack: RunningStack) -> None:
    import asyncio

    script = Script(decide=lambda inp, n: "continue")  # the rollout never decides alone
    state = loop_state(f"q-{uuid.uuid4().hex[:8]}", max_iterations=1)
    client = await Client.connect(stack.settings.temporal_target)
    queue = state.config.gpu_task_queue.removesuffix("-gpu")
    async with (
        Worker(client, task_queue=queue, workflows=[
                   LearningLoopWorkflow, RolloutWorkflow, TrainingRunWorkflow, EvaluationWorkflow,
               ], activities=script.activities()),
        Worker(client, task_queue=state.config.gpu_task_queue, activities=script.activities()),
    ):  # fmt: skip
        loop = await client.start_workflow(
            LearningLoopWorkflow.run, state, id=state.loop_id, task_queue=queue
        )
        for _ in range(200):
            if script.rollout_ids:
                break
            await asyncio.sleep(0.05)
        child = client.get_workflow_handle(rollout_workflow_id("t", script.rollout_ids[0]))

        async def paused() -> bool:
            return (await child.query(RolloutWorkflow.status)).paused

        await loop.signal(LearningLoopWorkflow.pause)
        for _ in range(100):
            if await paused():
                break
            await asyncio.sleep(0.05)
        assert await paused() and (await loop.query(LearningLoopWorkflow.status)).paused
        await loop.signal(LearningLoopWorkflow.resume)
        for _ in range(100):
            if not await paused():
                break
            await asyncio.sleep(0.05)
        assert not await paused()
        await child.signal(RolloutWorkflow.rollback, "done")
        result: LoopState = await loop.result()
        assert result.history[0].outcome == "rolled_back"
        replayer = Replayer(workflows=LOOP_WORKFLOWS)
        async for history in client.list_workflows(
            f"WorkflowId = '{state.loop_id}'"
        ).map_histories():
            await replayer.replay_workflow(history)


async def _wait_for(predicate: Callable[[], object], what: str) -> None:
    import asyncio

    for _ in range(200):
        if predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


async def test_stopping_a_waiting_loop_ends_it_before_any_training(stack: RunningStack) -> None:
    script = Script()
    # Never enough feedback: the loop waits until it is stopped.
    state = loop_state(f"q-{uuid.uuid4().hex[:8]}", min_new_feedback=10_000)
    client = await Client.connect(stack.settings.temporal_target)
    queue = state.config.gpu_task_queue.removesuffix("-gpu")
    async with Worker(
        client, task_queue=queue, workflows=LOOP_WORKFLOWS, activities=script.activities(),
    ):  # fmt: skip
        loop = await client.start_workflow(
            LearningLoopWorkflow.run, state, id=state.loop_id, task_queue=queue
        )
        await _wait_for(lambda: script.counted, "the first feedback count")
        await loop.signal(LearningLoopWorkflow.stop, "tenant is leaving")
        result: LoopState = await loop.result()
    assert result.stopped and result.iteration == 0 and not result.history
    assert not script.trained
    replayer = Replayer(workflows=[LearningLoopWorkflow, RolloutWorkflow, TrainingRunWorkflow,
                                   EvaluationWorkflow])  # fmt: skip
    async for history in client.list_workflows(f"WorkflowId = '{state.loop_id}'").map_histories():
        await replayer.replay_workflow(history)


async def test_stopping_the_loop_rolls_back_its_rollout(stack: RunningStack) -> None:
    script = Script(decide=lambda inp, n: "continue")  # the rollout never decides alone
    state = loop_state(f"q-{uuid.uuid4().hex[:8]}")  # no max_iterations: only stop ends it
    client = await Client.connect(stack.settings.temporal_target)
    queue = state.config.gpu_task_queue.removesuffix("-gpu")
    async with (
        Worker(client, task_queue=queue, workflows=[
                   LearningLoopWorkflow, RolloutWorkflow, TrainingRunWorkflow, EvaluationWorkflow,
               ], activities=script.activities()),
        Worker(client, task_queue=state.config.gpu_task_queue, activities=script.activities()),
    ):  # fmt: skip
        loop = await client.start_workflow(
            LearningLoopWorkflow.run, state, id=state.loop_id, task_queue=queue
        )
        await _wait_for(lambda: script.rollout_ids, "the rollout")
        child = client.get_workflow_handle(
            rollout_workflow_id("t", script.rollout_ids[0]), result_type=RolloutResult
        )
        await loop.signal(LearningLoopWorkflow.stop, "tenant is leaving")
        result: LoopState = await loop.result()
        rolled: RolloutResult = await child.result()
    # The candidate never reached full traffic: the baseline keeps serving.
    assert rolled.outcome == "rolled_back" and rolled.reason == "tenant is leaving"
    assert "promote" not in script.stages and script.stages[-1] == "rollback"
    assert result.stopped and [h.outcome for h in result.history] == ["rolled_back"]
    assert len(script.trained) == 1  # no second iteration started
    replayer = Replayer(workflows=[LearningLoopWorkflow, RolloutWorkflow, TrainingRunWorkflow,
                                   EvaluationWorkflow])  # fmt: skip
    async for history in client.list_workflows(f"WorkflowId = '{state.loop_id}'").map_histories():
        await replayer.replay_workflow(history)


async def rollout(stack: RunningStack, script: Script) -> tuple[WorkflowHandle, Worker, str]:
    client = await Client.connect(stack.settings.temporal_target)
    queue = f"q-{uuid.uuid4().hex[:8]}"
    worker = Worker(
        client, task_queue=queue, workflows=[RolloutWorkflow], activities=script.activities()
    )
    return client, worker, queue  # type: ignore[return-value]


@pytest.mark.parametrize("signal", ["promote", "rollback"])
async def test_rollout_signals_and_status(stack: RunningStack, signal: str) -> None:
    import asyncio

    script = Script(decide=lambda inp, n: "continue")
    client = await Client.connect(stack.settings.temporal_target)
    queue = f"q-{uuid.uuid4().hex[:8]}"
    async with Worker(
        client, task_queue=queue, workflows=[RolloutWorkflow], activities=script.activities()
    ):
        handle = await client.start_workflow(
            RolloutWorkflow.run,
            RolloutInput("t", "s", "r1", "s@v2", "s@v1", FAST),
            id=f"rollout-{uuid.uuid4().hex[:8]}",
            task_queue=queue,
        )
        for _ in range(100):
            if (await handle.query(RolloutWorkflow.status)).stage == "shadow":
                break
            await asyncio.sleep(0.05)
        await handle.signal(RolloutWorkflow.pause)
        assert (await handle.query(RolloutWorkflow.status)).paused is True
        await handle.signal(RolloutWorkflow.resume)
        await handle.signal(signal)
        result: RolloutResult = await handle.result()
    if signal == "promote":
        assert (result.outcome, script.stages) == ("promoted", ["shadow", "promote"])
    else:
        assert (result.outcome, script.stages) == ("rolled_back", ["shadow", "rollback"])
        assert result.reason == "manual rollback"
