"""Foundation benchmark: what the RPC path (auth interceptor, canonical log line,
tracing, error mapping) costs per call.

One process, one real Postgres (pgserver), one real grpc.aio server on a socket. The
baseline is the gRPC health Check on the same server in the same run (no auth, no
tracing): the ratio and the added milliseconds are what the platform's own plumbing
adds. Results go to bench/results/foundation.json.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import grpc
import numpy as np
from grpc_health.v1 import health_pb2, health_pb2_grpc

from infra import migrate
from rlaas.registry.v1 import registry_pb2, registry_pb2_grpc
from services.app import Runtime, start_server
from services.config import LogFormat, Settings
from services.logs import configure_logging
from services.tenancy.bootstrap import bootstrap_operator

RESULTS = Path(__file__).resolve().parent / "results" / "foundation.json"
CALLS = int(os.environ.get("BENCH_CALLS", "2000"))
WARMUP = 200


def _summary(samples_ms: list[float]) -> dict[str, float]:
    arr = np.asarray(samples_ms)
    return {
        "p50_ms": round(float(np.percentile(arr, 50)), 4),
        "p99_ms": round(float(np.percentile(arr, 99)), 4),
        "mean_ms": round(float(arr.mean()), 4),
        "rps_sequential": round(1000.0 / statistics.fmean(samples_ms), 1),
    }


async def _measure(call: Callable[[], Awaitable[object]]) -> list[float]:
    for _ in range(WARMUP):
        await call()
    samples = []
    for _ in range(CALLS):
        start = time.perf_counter()
        await call()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


async def _run_one(database_url: str, cache_ttl_s: float, key: str) -> dict[str, dict[str, float]]:
    settings = Settings(
        services=["registry"], auth_cache_ttl_s=cache_ttl_s, log_format=LogFormat.JSON
    )
    runtime = Runtime.create(settings, database_url)
    running = await start_server(runtime, port=0)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            health = health_pb2_grpc.HealthStub(channel)
            registry = registry_pb2_grpc.RegistryServiceStub(channel)
            md = (("authorization", f"Bearer {key}"),)
            # Interleave the two so machine noise hits both alike.
            base, full = [], []
            for _ in range(2):
                base += await _measure(lambda: health.Check(health_pb2.HealthCheckRequest()))
                full += await _measure(
                    lambda: registry.GetCallerIdentity(
                        registry_pb2.GetCallerIdentityRequest(), metadata=md
                    )
                )
    finally:
        await running.stop(0)
        await runtime.close()
    return {"baseline_health_check": _summary(base), "authenticated_rpc": _summary(full)}


async def main() -> None:
    import pgserver

    with tempfile.TemporaryDirectory() as tmp:
        server = pgserver.get_server(Path(tmp) / "pg", cleanup_mode="stop")
        url = server.get_uri()
        await migrate.upgrade_async(url)
        created = await bootstrap_operator(Settings(), url)
        assert created is not None
        cached = await _run_one(url, 60.0, created.secret)
        uncached = await _run_one(url, 0.0, created.secret)
        server.cleanup()

    def overhead(run: dict[str, dict[str, float]]) -> dict[str, float]:
        b, f = run["baseline_health_check"], run["authenticated_rpc"]
        return {
            "added_p50_ms": round(f["p50_ms"] - b["p50_ms"], 4),
            "added_p99_ms": round(f["p99_ms"] - b["p99_ms"], 4),
            "p50_ratio": round(f["p50_ms"] / b["p50_ms"], 3),
        }

    report = {
        "benchmark": "foundation: per-RPC cost of auth + logging + tracing",
        "calls_per_series": CALLS * 2,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "key_cache_on": {**cached, "overhead": overhead(cached)},
        "key_cache_off_db_lookup_every_call": {**uncached, "overhead": overhead(uncached)},
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


def run() -> None:
    # The per-RPC log line goes to /dev/null: we measure producing it, not a terminal.
    with open(os.devnull, "w") as sink, contextlib.redirect_stderr(sink):
        configure_logging(Settings(log_format=LogFormat.JSON, log_level="INFO"))
        asyncio.run(main())


if __name__ == "__main__":
    run()
