"""Temporal workers: ``rlaas worker --queue cpu|gpu``."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable, Sequence
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client
from temporalio.worker import Worker

from services.config import Settings
from services.temporal import connect
from workers.device import detect_device
from workers.stack_check_activities import describe_worker
from workflows.evaluation import EvaluationWorkflow
from workflows.learning_loop import LearningLoopWorkflow
from workflows.queues import CPU_TASK_QUEUE, GPU_TASK_QUEUE
from workflows.rollout import RolloutWorkflow
from workflows.stack_check import StackCheckWorkflow
from workflows.training_run import TrainingRunWorkflow

log = structlog.get_logger(__name__)


def build_worker(
    client: Client,
    kind: str,
    activities: Sequence[Callable[..., Any]] = (),
    *,
    gpu_task_queue: str = GPU_TASK_QUEUE,
    identity: str | None = None,
) -> Worker:
    """``gpu_task_queue``: the queue a GPU worker polls (``RLAAS_GPU_TASK_QUEUE``).
    ``identity``: how the worker appears to Temporal (default: the client's)."""
    if kind == "cpu":
        return Worker(
            client,
            task_queue=CPU_TASK_QUEUE,
            workflows=[
                StackCheckWorkflow,
                LearningLoopWorkflow,
                RolloutWorkflow,
                TrainingRunWorkflow,
                EvaluationWorkflow,
            ],
            activities=[describe_worker, *activities],
            identity=identity,
        )
    if kind == "gpu":
        # One GPU job at a time per worker: training saturates the device.
        return Worker(
            client,
            task_queue=gpu_task_queue,
            activities=[describe_worker, *activities],
            max_concurrent_activities=1,
            identity=identity,
        )
    raise ValueError(f"unknown worker kind {kind!r}; use 'cpu' or 'gpu'")


def _gpu_activities(
    settings: Settings, database_url: str
) -> tuple[list[Callable[..., Any]], AsyncEngine]:
    """What runs where the model is: training and evaluation (model opened lazily)."""
    from services.db.engine import create_engine, create_session_factory
    from services.inference.backend_factory import LazyBackend
    from services.objects.store import object_store
    from services.registry.service import RegistryCore
    from workers.evaluation_activities import EvaluationActivities
    from workers.training_activities import TrainingActivities

    engine = create_engine(database_url, pool_size=2)
    objects = object_store(settings)
    backend = LazyBackend(settings)
    training = TrainingActivities(
        objects, settings.state_dir.resolve() / "models", settings.model_dir
    )
    # The gate's likelihoods: the serving engine's own where it computes them (the
    # local backend), else the local backend on the same weights, opened on first use.
    scorer = None
    if settings.inference_backend != "local":
        local = LazyBackend(settings.model_copy(update={"inference_backend": "local"}))
        scorer = local.get_scorer
    evaluation = EvaluationActivities(
        RegistryCore(create_session_factory(engine), objects), objects, backend.get,
        scorer=scorer,
    )  # fmt: skip
    activities: list[Callable[..., Any]] = [
        training.train_adapter, evaluation.evaluate_candidate, evaluation.warm_gate_answers,
    ]  # fmt: skip
    return activities, engine


async def run_worker(settings: Settings, kind: str, database_url: str) -> None:
    client = await connect(settings)
    activities: list[Callable[..., Any]] = []
    engine = None
    if kind == "cpu":
        from services.db.engine import create_engine, create_session_factory
        from services.objects.store import object_store
        from workers.dataset_activities import DatasetActivities
        from workers.learning_activities import LearningActivities

        engine = create_engine(database_url, pool_size=4)
        objects = object_store(settings)
        activities = [
            *LearningActivities(engine, create_session_factory(engine), objects).all(),
            DatasetActivities(engine, objects).build_preference_dataset,
        ]
    else:
        activities, engine = _gpu_activities(settings, database_url)
    # A GPU worker names its device: TrainingService refuses QLoRA and GPU runs unless
    # a poller of the training queue has CUDA.
    identity = f"{client.identity} {detect_device()}" if kind == "gpu" else None
    worker = build_worker(
        client, kind, activities, gpu_task_queue=settings.gpu_task_queue, identity=identity
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with worker:
        log.info("worker_started", kind=kind, task_queue=worker.task_queue)
        await stop.wait()
        log.info("worker_stopping", kind=kind)
    if engine is not None:
        await engine.dispose()
    log.info("worker_stopped", kind=kind)
