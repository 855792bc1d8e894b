"""StackCheckWorkflow: one activity on the CPU queue, one on the GPU queue. It is how
`rlaas up`, the smoke job and the tests prove that Temporal and both workers are live.
Deterministic and free of I/O, like every workflow."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workers.queues import CPU_TASK_QUEUE, GPU_TASK_QUEUE
    from workers.stack_check_activities import (
        DescribeWorkerInput,
        WorkerDescription,
        describe_worker,
    )


@dataclass
class StackCheckInput:
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
        for queue in (CPU_TASK_QUEUE, GPU_TASK_QUEUE):
            results.append(
                await workflow.execute_activity(
                    describe_worker,
                    DescribeWorkerInput(inp.message),
                    task_queue=queue,
                    # Fail fast when a queue has no worker instead of waiting forever.
                    schedule_to_close_timeout=timedelta(seconds=60),
                )
            )
        workflow.logger.info("stack check passed")
        return StackCheckResult(cpu=results[0], gpu=results[1])
