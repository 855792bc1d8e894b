"""A workflow round-trips through the real Temporal server and both workers' queues."""

from __future__ import annotations

import os
import uuid

import pytest
from temporalio.client import Client

from tests.conftest import RunningStack
from workflows.queues import CPU_TASK_QUEUE, GPU_TASK_QUEUE
from workflows.stack_check import StackCheckInput, StackCheckResult, StackCheckWorkflow

pytestmark = pytest.mark.integration


async def test_stack_check_runs_on_both_queues(stack: RunningStack) -> None:
    client = await Client.connect(stack.settings.temporal_target)
    workflow_id = f"stack-check-{uuid.uuid4()}"
    result: StackCheckResult = await client.execute_workflow(
        StackCheckWorkflow.run,
        StackCheckInput("ping"),
        id=workflow_id,
        task_queue=CPU_TASK_QUEUE,
    )
    assert result.cpu.task_queue == CPU_TASK_QUEUE
    assert result.gpu.task_queue == GPU_TASK_QUEUE
    assert result.cpu.message == result.gpu.message == "ping"
    # Two different worker processes, neither of them this test process.
    cpu_pid, gpu_pid = (int(r.worker.rsplit(":", 1)[1]) for r in (result.cpu, result.gpu))
    assert cpu_pid != gpu_pid
    assert os.getpid() not in (cpu_pid, gpu_pid)
    assert result.gpu.device.startswith(("cpu", "cuda"))
    # The run is durable history in the server, visible to the UI and the CLI.
    described = await client.get_workflow_handle(workflow_id).describe()
    assert described.status is not None and described.status.name == "COMPLETED"
