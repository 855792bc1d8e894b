"""Activities of the stack check: each reports which worker ran it, so a workflow can
prove that both task queues have live workers."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

from temporalio import activity

from workers.device import detect_device


@dataclass
class DescribeWorkerInput:
    message: str


@dataclass
class WorkerDescription:
    task_queue: str
    worker: str  # host:pid of the process that ran the activity
    device: str
    message: str


@activity.defn
async def describe_worker(inp: DescribeWorkerInput) -> WorkerDescription:
    return WorkerDescription(
        task_queue=activity.info().task_queue,
        worker=f"{socket.gethostname()}:{os.getpid()}",
        device=detect_device(),
        message=inp.message,
    )
