"""Records the workflow histories that tests/integration/test_workflow_replay.py replays
against today's workflow code. Run it against a Temporal dev server with the code of the
release whose histories must keep replaying, then commit the JSON files:

    temporal server start-dev --port 17233 --headless &
    python -m tests.data.histories.record localhost:17233

Histories recorded by older code are the point: re-recording them with new code would
test nothing."""

from __future__ import annotations

import asyncio
import sys
import uuid
from pathlib import Path

from temporalio.client import Client, WorkflowHandle
from temporalio.worker import Worker

from tests.integration.test_learning_workflows import FAST, Script, loop_state
from workflows.evaluation import EvaluationWorkflow
from workflows.learning_loop import LearningLoopWorkflow
from workflows.learning_types import RolloutInput
from workflows.rollout import RolloutWorkflow
from workflows.training_run import TrainingRunWorkflow

HERE = Path(__file__).resolve().parent


def _recorded(name: str) -> bool:
    """Histories recorded by older code stay as they are: that is the point."""
    if (HERE / f"{name}.json").exists():
        print("kept", name)
        return True
    return False


async def _save(handle: WorkflowHandle, name: str) -> None:
    await handle.result()
    history = await handle.fetch_history()
    (HERE / f"{name}.json").write_text(history.to_json())
    print("recorded", name)


async def _wait_stage(handle: WorkflowHandle, stage: str) -> None:
    for _ in range(200):
        if (await handle.query(RolloutWorkflow.status)).stage == stage:
            return
        await asyncio.sleep(0.05)
    raise TimeoutError(stage)


async def main(target: str) -> None:
    client = await Client.connect(target)

    async def rollout(name: str, script: Script, signals: list[str]) -> None:
        if _recorded(name):
            return
        queue = f"rec-{uuid.uuid4().hex[:8]}"
        async with Worker(
            client, task_queue=queue, workflows=[RolloutWorkflow], activities=script.activities()
        ):
            handle = await client.start_workflow(
                RolloutWorkflow.run,
                RolloutInput("t", "s", f"ro-{name}", "s@v2", "s@v1", FAST),
                id=f"rec-{name}-{uuid.uuid4().hex[:8]}",
                task_queue=queue,
            )
            if signals:
                await _wait_stage(handle, "shadow")
                for signal in signals:
                    await handle.signal(signal)
                    await asyncio.sleep(0.3)
            await _save(handle, name)

    await rollout("rollout_promoted", Script(), [])
    await rollout(
        "rollout_canary_rejected",
        Script(decide=lambda inp, n: "accept" if inp.stage == "shadow" else "reject"),
        [],
    )
    await rollout(
        "rollout_paused_then_promoted",
        Script(decide=lambda inp, n: "continue"),
        ["pause", "resume", "promote"],
    )
    await rollout("rollout_manual_rollback", Script(decide=lambda inp, n: "continue"), ["rollback"])

    if not _recorded("loop_iteration_promoted"):
        await _loop(client, "loop_iteration_promoted", Script(), max_iterations=1)
    # Since LOOP_CHILD_RESOURCES: the run and the gate as child workflows, and a failed
    # step failing only its iteration.
    if not _recorded("loop_iteration_failed_then_promoted"):
        await _loop(client, "loop_iteration_failed_then_promoted", Script(train_fails=1),
                    max_iterations=2)  # fmt: skip
    # Since GATE_WARM_UP: the baseline's warm-up at each wait, awaited before the gate.
    if not _recorded("loop_gate_warm_up"):
        await _loop(client, "loop_gate_warm_up", Script(), max_iterations=2)


async def _loop(client: Client, name: str, script: Script, max_iterations: int) -> None:
    state = loop_state(f"rec-{uuid.uuid4().hex[:8]}", max_iterations=max_iterations)
    queue = state.config.gpu_task_queue.removesuffix("-gpu")
    async with (
        Worker(client, task_queue=queue, workflows=[LearningLoopWorkflow, RolloutWorkflow,
                                                    TrainingRunWorkflow, EvaluationWorkflow],
               activities=script.activities()),
        Worker(client, task_queue=state.config.gpu_task_queue, activities=script.activities()),
    ):  # fmt: skip
        handle = await client.start_workflow(
            LearningLoopWorkflow.run, state, id=state.loop_id, task_queue=queue
        )
        await _save(handle, name)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "localhost:17233"))
