"""Where the gate's likelihoods come from: the serving backend when it computes them,
else the local model the GPU worker opens beside a remote engine (vLLM cannot score
with LoRA on CPU)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from services.config import Settings
from services.inference.backend_factory import LazyBackend
from services.inference.backends.base import Backend, Scorer
from services.inference.backends.vllm import VLLMBackend
from services.objects.store import LocalObjectStore
from workers.evaluation_activities import EvaluationActivities
from workers.worker import _gpu_activities

pytestmark = pytest.mark.unit


class _Scores:
    """Stands for the local model's scorer: only its identity matters here."""

    async def score(self, requests: Any, *, timeout_s: float) -> list[float]:
        return []


async def test_a_backend_that_cannot_score_borrows_the_workers_scorer() -> None:
    engine = VLLMBackend("http://127.0.0.1:9", objects=LocalObjectStore(Path("/objects")))
    assert not isinstance(engine, Scorer)
    local = _Scores()

    async def open_scorer() -> Scorer:
        return local

    async def open_backend() -> Backend:
        return engine

    given = EvaluationActivities(None, None, open_backend, scorer=open_scorer)  # type: ignore[arg-type]
    assert await given._scorer_for(engine) is local
    alone = EvaluationActivities(None, None, open_backend)  # type: ignore[arg-type]
    assert await alone._scorer_for(engine) is None  # the golden set decides then
    assert await alone._scorer_for(local) is local  # type: ignore[arg-type]


@pytest.mark.parametrize(("backend", "scores_locally"), [("vllm", True), ("local", False)])
async def test_the_gpu_worker_gives_a_remote_engines_gate_a_local_scorer(
    backend: str, scores_locally: bool
) -> None:
    settings = Settings(inference_backend=backend)
    activities, engine = _gpu_activities(settings, "postgresql+asyncpg://u@127.0.0.1:9/db")
    try:
        evaluation = next(a for a in activities if a.__name__ == "evaluate_candidate")
        owner: EvaluationActivities = evaluation.__self__  # type: ignore[attr-defined]
        assert (owner._scorer is not None) == scores_locally
        if scores_locally:
            lazy = owner._scorer.__self__  # type: ignore[union-attr]
            assert isinstance(lazy, LazyBackend) and lazy.name == "local"
    finally:
        await engine.dispose()
