"""Serving-engine benchmark, for each real engine (`python -m bench.engines [vllm]
[triton]`, both by default), each on a real embedded stack started with
RLAAS_INFERENCE_BACKEND=<engine> (so `rlaas up` starts the engine) and the default model.

- gateway vs engine: the same greedy requests (32 tokens) through the gateway (gRPC
  Infer: auth, routing, guardrails, template, telemetry to Postgres, then the engine)
  and straight to the engine (the gateway's own client for it), at concurrency 1 and 8;
  tokens/s and p50/p99 latency. Goal: the gateway keeps >= 0.95x the engine's tokens/s
  and adds <= 2 ms at p50. The two paths alternate, round by round (and which goes
  first), so machine noise hits them alike.
- mixed adapters: concurrency 8 straight to the engine, every request on one adapter vs
  round-robin over four (mixed-adapter batches); tokens/s ratio.
- adapter cold load: the first request naming a new adapter (the engine fetches it from
  the object store, checks its hash, loads it) minus the next one.

Results go to bench/results/engine_<engine>.json. About 6 minutes per engine on 2 cores,
much of it the engine's start.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc

from bench.backends import make_adapters
from bench.gateway import pct
from bench.stack import embedded_stack
from infra.operator_key import temporary_operator_key
from rlaas.inference.v1 import inference_pb2 as inf
from rlaas.inference.v1 import inference_pb2_grpc
from rlaas.registry.v1 import registry_pb2 as reg
from rlaas.registry.v1 import registry_pb2_grpc
from rlaas.telemetry.v1 import telemetry_pb2 as tel
from rlaas_sdk.adapters import upload_requests
from services.config import Settings
from services.inference.backend_factory import base_model_dir, open_backend
from services.inference.backends.base import AdapterRef, GenerationRequest

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
ENGINES = ("vllm", "triton")
REQUESTS = int(os.environ.get("BENCH_REQUESTS", "16"))
TOKENS = int(os.environ.get("BENCH_TOKENS", "32"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
COLD_LOADS = 4
SKILL = "bench"
QUESTIONS = [
    "What is the capital of France?",
    "Write one sentence about the sea.",
    "Name three colours.",
    "How do I boil an egg?",
]

Call = Callable[[int], Awaitable[tuple[float, int]]]
"""Request i -> (latency ms, completion tokens)."""


def rid() -> str:
    return str(uuid.uuid4())


async def series(call: Call, concurrency: int) -> dict[str, Any]:
    """REQUESTS calls, at most ``concurrency`` in flight."""
    gate = asyncio.Semaphore(concurrency)
    latencies: list[float] = []
    tokens = 0

    async def one(i: int) -> None:
        nonlocal tokens
        async with gate:
            ms, n = await call(i)
        latencies.append(ms)
        tokens += n

    start = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(REQUESTS)))
    wall = time.perf_counter() - start
    return {"tokens_per_s": tokens / wall, "latencies": latencies, "tokens": tokens}


def summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "tokens_per_s": round(statistics.median(r["tokens_per_s"] for r in runs), 2),
        **pct([ms for r in runs for ms in r["latencies"]]),
        "completion_tokens": sum(r["tokens"] for r in runs),
    }


async def measure(settings: Settings, model_dir: Path) -> dict[str, Any]:
    key, cleanup = await temporary_operator_key(settings, minutes=60, purpose="engine bench")
    auth = (("authorization", f"Bearer {key}"),)
    channel = grpc.aio.insecure_channel(settings.grpc_target)
    registry = registry_pb2_grpc.RegistryServiceStub(channel)
    gateway = inference_pb2_grpc.InferenceServiceStub(channel)
    engine = await open_backend(settings)  # the client the gateway itself uses
    try:
        await registry.CreateSkill(
            reg.CreateSkillRequest(skill=reg.Skill(skill_id=SKILL), request_id=rid()),
            metadata=auth,
        )
        with tempfile.TemporaryDirectory() as tmp:
            made = make_adapters(model_dir, Path(tmp), 4 + COLD_LOADS)
            uploaded = [
                (await registry.UploadAdapter(
                    upload_requests(Path(tmp) / f"adapter-{i}"), metadata=auth)).adapter
                for i in range(len(made))
            ]  # fmt: skip
        refs = [AdapterRef(f"a{i}", u.artifact_uri, u.sha256) for i, u in enumerate(uploaded)]
        base = await registry.CreatePolicy(
            reg.CreatePolicyRequest(policy=reg.Policy(skill_id=SKILL, base_model="smol"),
                                    request_id=rid()), metadata=auth)  # fmt: skip
        policy_id = base.policy.policy_id
        await registry.PromotePolicy(  # the skill serves only once it has a baseline
            reg.PromotePolicyRequest(
                skill_id=SKILL, policy_id=policy_id, reason="bench baseline", request_id=rid()
            ),
            metadata=auth,
        )

        def messages(i: int) -> list[dict[str, str]]:
            return [{"role": "user", "content": QUESTIONS[i % len(QUESTIONS)]}]

        async def direct(i: int, adapter: AdapterRef | None = None) -> tuple[float, int]:
            start = time.perf_counter()
            out = await engine.generate(
                GenerationRequest(messages(i), adapter=adapter, max_new_tokens=TOKENS),
                timeout_s=300,
            )
            return (time.perf_counter() - start) * 1000, out.completion_tokens

        async def through_gateway(i: int) -> tuple[float, int]:
            request = inf.InferRequest(
                skill=SKILL, policy_id=policy_id, request_id=rid(), bypass_cache=True,
                messages=[tel.ChatMessage(role=tel.ChatMessage.ROLE_USER, content=m["content"])
                          for m in messages(i)],
                generation=reg.GenerationConfig(max_tokens=TOKENS, temperature=0.0),
            )  # fmt: skip
            start = time.perf_counter()
            out = await gateway.Infer(request, metadata=auth, timeout=300)
            return (time.perf_counter() - start) * 1000, out.usage.completion_tokens

        for i in range(4):  # warm-up: both paths, every adapter in play loaded
            await through_gateway(i)
            await direct(i, refs[i])

        paths: dict[str, dict[str, list[dict[str, Any]]]] = {}
        for concurrency in (1, 8):
            runs: dict[str, list[dict[str, Any]]] = {"engine": [], "gateway": []}
            for round_ in range(ROUNDS):
                # Which path goes first alternates too: a series can leave the engine
                # in a state (batches, caches) the next one starts from.
                order = [("engine", direct), ("gateway", through_gateway)]
                for name, call in order if round_ % 2 == 0 else order[::-1]:
                    runs[name].append(await series(call, concurrency))
            paths[f"concurrency_{concurrency}"] = runs

        mixed: dict[str, list[dict[str, Any]]] = {"one_adapter": [], "four_adapters": []}
        for _ in range(ROUNDS):
            mixed["one_adapter"].append(await series(lambda i: direct(i, refs[0]), 8))
            mixed["four_adapters"].append(await series(lambda i: direct(i, refs[i % 4]), 8))

        cold, warm = [], []
        for ref in refs[4:]:
            cold.append((await direct(0, ref))[0])
            warm.append((await direct(0, ref))[0])
    finally:
        await engine.close()
        await channel.close()
        await cleanup()

    gateway_vs_engine = {}
    for name, runs in paths.items():
        e, g = summary(runs["engine"]), summary(runs["gateway"])
        gateway_vs_engine[name] = {
            "engine": e, "gateway": g,
            "throughput_ratio": round(g["tokens_per_s"] / e["tokens_per_s"], 3),
            "added_p50_ms": round(g["p50_ms"] - e["p50_ms"], 2),
        }  # fmt: skip
    one, four = summary(mixed["one_adapter"]), summary(mixed["four_adapters"])
    return {
        "gateway_vs_engine": gateway_vs_engine,
        "mixed_adapters": {
            "one_adapter": one,
            "four_adapters": four,
            "throughput_ratio": round(four["tokens_per_s"] / one["tokens_per_s"], 3),
        },
        "adapter_cold_load": {
            "loads": len(cold),
            "cold_p50_ms": round(statistics.median(cold), 1),
            "warm_p50_ms": round(statistics.median(warm), 1),
            "added_p50_ms": round(
                statistics.median(c - w for c, w in zip(cold, warm, strict=True)), 1
            ),
        },
    }


def bench(name: str) -> None:
    started = time.perf_counter()
    with embedded_stack(f"rlaas-bench-{name}-", RLAAS_INFERENCE_BACKEND=name) as settings:
        up_s = time.perf_counter() - started
        results = asyncio.run(measure(settings, base_model_dir(settings)))
    report = {
        "benchmark": f"{name} engine through the gateway vs direct; adapters",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "settings": {
            "requests_per_series": REQUESTS,
            "max_tokens": TOKENS,
            "rounds": ROUNDS,
            "greedy": True,
            "model": settings.base_model_name,
        },
        "stack_up_with_engine_s": round(up_s, 1),
        **results,
        "goals": {"gateway_throughput_ratio_min": 0.95, "gateway_added_p50_ms_max": 2.0},
    }
    out = RESULTS / f"engine_{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: report[k] for k in ("gateway_vs_engine", "mixed_adapters",
                                             "adapter_cold_load")}, indent=2))  # fmt: skip
    print(f"wrote {out}")


def main() -> None:
    names = sys.argv[1:] or list(ENGINES)
    unknown = sorted(set(names) - set(ENGINES))
    if unknown:
        raise SystemExit(f"unknown engine(s) {unknown}; choose from {ENGINES}")
    for name in names:
        bench(name)


if __name__ == "__main__":
    main()
