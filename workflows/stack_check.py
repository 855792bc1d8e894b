"""StackCheckWorkflow: one activity on the CPU queue, one on the GPU queue. It is how
`rlaas up`, the smoke job and the tests prove that Temporal and both workers are live.
Deterministic and free of I/O, like every workflow."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from temporalio import workflow

from workflows.queues import CPU_TASK_QUEUE, GPU_TASK_QUEUE

DESCRIBE_WORKER = "describe_worker"


@dataclass
class StackCheckInput:
    message: str
    gpu_task_queue: str = GPU_TASK_QUEUE
    """The GPU workers' queue (``RLAAS_GPU_TASK_QUEUE``)."""


@dataclass
class DescribeWorkerInput:
    message: str


@dataclass
class WorkerDescription:
    task_queue: str
    worker: str  # host:pid of the process that ran the activity
    device: str
    message: str


@dataclass
class StackCheckResult:
    cpu: WorkerDescription
    gpu: WorkerDescription


@workflow.defn
class StackCheckWorkflow:
    @workflow.run
    async def run(self, inp: StackCheckInput) -> StackCheckResult:
        results = []
        for queue in (CPU_TASK_QUEUE, inp.gpu_task_queue):
            results.append(
                await workflow.execute_activity(
                    DESCRIBE_WORKER,
                    DescribeWorkerInput(inp.message),
                    result_type=WorkerDescription,
                    task_queue=queue,
                    # Fail fast when a queue has no worker instead of waiting forever.
                    schedule_to_close_timeout=timedelta(seconds=60),
                )
            )
        workflow.logger.info("stack check passed")
        return StackCheckResult(cpu=results[0], gpu=results[1])
