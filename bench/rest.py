"""REST bridge benchmark (issue 6): the same call over HTTP/JSON through the bridge and
directly over gRPC, same server, same run.

One server (telemetry + registry, a real Postgres from pgserver) and its REST bridge in
this process, as `rlaas serve` runs them. Two calls:
- ``GetCallerIdentity`` (auth from the key cache, no database): what is left is transport,
  so the ratio shows the bridge's own cost at its largest;
- ``CreateInteraction`` (a ~1 KB event written to Postgres with idempotency and PII
  scrubbing): a typical write, where the bridge's cost is a share of real work.
Sequential calls, gRPC and REST interleaved call by call so that drift hits both alike;
the client (grpc.aio / aiohttp with keep-alive) shares the process, so both columns
include the client's own cost. Results: bench/results/rest.json.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import numpy as np

from infra import migrate
from rlaas.registry.v1 import registry_pb2 as reg
from rlaas.registry.v1 import registry_pb2_grpc
from rlaas.telemetry.v1 import telemetry_pb2 as tel
from rlaas.telemetry.v1 import telemetry_pb2_grpc
from services.app import Runtime, service_specs, start_server
from services.config import LogFormat, Settings
from services.logs import configure_logging
from services.rest.server import start_bridge
from services.tenancy.bootstrap import bootstrap_operator

RESULTS = Path(__file__).resolve().parent / "results" / "rest.json"
CALLS = int(os.environ.get("BENCH_CALLS", "1000"))
WARMUP = 100


def pct(values: list[float]) -> dict[str, float]:
    arr = np.asarray(values)
    return {
        "p50_ms": round(float(np.percentile(arr, 50)), 3),
        "p99_ms": round(float(np.percentile(arr, 99)), 3),
        "mean_ms": round(float(arr.mean()), 3),
    }


def compare(grpc_ms: list[float], rest_ms: list[float]) -> dict[str, Any]:
    g, r = pct(grpc_ms), pct(rest_ms)
    return {
        "grpc_direct": g,
        "rest_bridge": r,
        "added_p50_ms": round(r["p50_ms"] - g["p50_ms"], 3),
        "added_p99_ms": round(r["p99_ms"] - g["p99_ms"], 3),
        "p50_ratio": round(r["p50_ms"] / g["p50_ms"], 2),
        "p99_ratio": round(r["p99_ms"] / g["p99_ms"], 2),
    }


def interaction_json(request_id: str) -> dict[str, Any]:
    text = "Hello, my order 4411 has not arrived yet. Could you check where it is? " * 6
    return {
        "interaction": {
            "skill": "bench",
            "userId": "user-1",
            "input": {"messages": [{"role": "ROLE_USER", "content": text}]},
            "labels": {"channel": "email"},
        },
        "output": {"text": "Thanks for writing. Your order ships today. " * 6},
        "requestId": request_id,
    }


async def main() -> None:
    import pgserver
    from google.protobuf import json_format

    configure_logging(Settings(log_format=LogFormat.JSON, log_level="WARNING"))
    with tempfile.TemporaryDirectory() as tmp:
        pg = pgserver.get_server(Path(tmp) / "pg", cleanup_mode="stop")
        url = pg.get_uri()
        await migrate.upgrade_async(url)
        operator = await bootstrap_operator(Settings(), url)
        assert operator is not None
        settings = Settings(
            services=["telemetry", "registry"], state_dir=Path(tmp) / "state", log_level="WARNING"
        )
        runtime = Runtime.create(settings, url)
        server = await start_server(runtime, port=0)
        specs = service_specs()
        bridge = await start_bridge(
            [specs[n].descriptor for n in settings.services],
            f"127.0.0.1:{server.port}",
            host="127.0.0.1",
            port=0,
        )
        key = operator.secret
        metadata = (("authorization", f"Bearer {key}"),)
        headers = {"authorization": f"Bearer {key}"}
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.port}")
        registry = registry_pb2_grpc.RegistryServiceStub(channel)
        telemetry = telemetry_pb2_grpc.TelemetryServiceStub(channel)
        await registry.CreateSkill(
            reg.CreateSkillRequest(skill=reg.Skill(skill_id="bench"), request_id="s"),
            metadata=metadata,
        )
        async with aiohttp.ClientSession(bridge.url, headers=headers) as http:

            async def grpc_identity() -> None:
                await registry.GetCallerIdentity(reg.GetCallerIdentityRequest(), metadata=metadata)

            async def rest_identity() -> None:
                async with http.get("/v1/caller") as reply:
                    assert reply.status == 200, await reply.text()
                    await reply.json()

            async def grpc_interaction() -> None:
                request = json_format.ParseDict(
                    interaction_json(str(uuid.uuid4())), tel.CreateInteractionRequest()
                )
                await telemetry.CreateInteraction(request, metadata=metadata)

            async def rest_interaction() -> None:
                body = interaction_json(str(uuid.uuid4()))
                async with http.post("/v1/interactions", json=body) as reply:
                    assert reply.status == 200, await reply.text()
                    await reply.json()

            series: dict[str, Any] = {}
            for name, direct, bridged in (
                ("GetCallerIdentity", grpc_identity, rest_identity),
                ("CreateInteraction", grpc_interaction, rest_interaction),
            ):
                for _ in range(WARMUP):
                    await direct()
                    await bridged()
                g_ms: list[float] = []
                r_ms: list[float] = []
                for _ in range(CALLS):
                    for fn, out in ((direct, g_ms), (bridged, r_ms)):
                        start = time.perf_counter()
                        await fn()
                        out.append((time.perf_counter() - start) * 1000)
                series[name] = compare(g_ms, r_ms)

        await channel.close()
        await bridge.stop()
        await server.stop(0)
        await runtime.close()
        pg.cleanup()

    report = {
        "benchmark": "REST bridge overhead vs direct gRPC, same call, same server, same run",
        "calls_per_series": CALLS,
        "method": "sequential, gRPC and REST interleaved; client in the same process",
        "calls": series,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
