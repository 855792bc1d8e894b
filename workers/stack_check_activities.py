"""Activities of the stack check: each reports which worker ran it, so a workflow can
prove that both task queues have live workers."""

from __future__ import annotations

import os
import socket

from temporalio import activity

from workers.device import detect_device
from workflows.stack_check import DESCRIBE_WORKER, DescribeWorkerInput, WorkerDescription


@activity.defn(name=DESCRIBE_WORKER)
async def describe_worker(inp: DescribeWorkerInput) -> WorkerDescription:
    return WorkerDescription(
        task_queue=activity.info().task_queue,
        worker=f"{socket.gethostname()}:{os.getpid()}",
        device=detect_device(),
        message=inp.message,
    )
