"""Telemetry ingest benchmark (issue 3).

Sustained events/s through IngestEventBatches (and, for comparison, the one-event-per-
message IngestEvents) into Postgres, idempotency and PII scrubbing on,
~1 KB events, against a raw asyncpg ``executemany ... ON CONFLICT DO NOTHING`` of the same
rows into a table of the same shape, on the same Postgres in the same run. Also: ack
latency p50/p99 (send -> result, per event) and rows added by replaying the whole
stream twice (must be 0). ``rlaas serve`` runs as its own process, as in production.
Results: bench/results/ingest.json.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import grpc
import numpy as np
from grpc_health.v1 import health_pb2, health_pb2_grpc

from infra import migrate
from rlaas.telemetry.v1 import telemetry_pb2 as pb
from rlaas.telemetry.v1 import telemetry_pb2_grpc
from services.config import Settings
from services.db.engine import create_engine, create_session_factory
from services.telemetry.events import EventPreparer, Limits
from services.telemetry.pii import Scrubber
from services.tenancy.bootstrap import bootstrap_operator
from services.tenancy.principal import Principal, Scope
from services.tenancy.service import TenancyService
from tests.helpers import free_port

RESULTS = Path(__file__).resolve().parent / "results" / "ingest.json"
N = int(os.environ.get("BENCH_EVENTS", "20000"))
STREAMS = int(os.environ.get("BENCH_STREAMS", "4"))
BATCH = int(os.environ.get("BENCH_BATCH", "500"))
ROOT = Path(__file__).resolve().parent.parent

FILLER = (
    "Hello, I ordered a standing desk three weeks ago and it still has not arrived. "
    "The tracking page has not changed since it left the warehouse. Could you check "
    "with the carrier and tell me when I can expect it? I need it before the move. "
)


def make_events(n: int, prefix: str = "bench") -> list[pb.CreateInteractionRequest]:
    events = []
    for i in range(n):
        pii = f" Reach me at user{i}@example.com." if i % 4 == 0 else ""
        text = (FILLER * 3)[: 900 - len(pii)] + pii
        r = pb.CreateInteractionRequest(request_id=f"{prefix}-{uuid.uuid4()}")
        r.interaction.interaction_id = f"b{i:08d}-{uuid.uuid4().hex[:8]}"
        r.interaction.skill = "support_email"
        r.interaction.user_id = f"user-{i % 500}"
        r.interaction.input.text = text
        events.append(r)
    return events


async def wait_serving(target: str) -> None:
    async with grpc.aio.insecure_channel(target) as channel:
        for _ in range(600):
            try:
                reply = await health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(), timeout=1
                )
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.aio.AioRpcError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError("server did not start")


async def stream_all(
    target: str, key: str, events: list[pb.CreateInteractionRequest], streams: int
) -> tuple[float, list[float], dict[str, int]]:
    """Send every event over `streams` concurrent streams; wall time, ack latencies."""
    shards = [events[i::streams] for i in range(streams)]
    latencies: list[float] = []
    outcomes: dict[str, int] = {}

    async def one(shard: list[pb.CreateInteractionRequest]) -> None:
        sent: dict[int, float] = {}

        async def gen() -> AsyncIterator[pb.IngestEventsRequest]:
            for seq, e in enumerate(shard):
                sent[seq] = time.perf_counter()
                yield pb.IngestEventsRequest(sequence=seq, create_interaction=e)

        async with grpc.aio.insecure_channel(target) as channel:
            call = telemetry_pb2_grpc.TelemetryServiceStub(channel).IngestEvents(
                gen(), metadata=(("authorization", f"Bearer {key}"),)
            )
            async for r in call:
                latencies.append((time.perf_counter() - sent[r.sequence]) * 1000)
                name = pb.IngestEventsResponse.Outcome.Name(r.outcome)
                outcomes[name] = outcomes.get(name, 0) + 1

    start = time.perf_counter()
    await asyncio.gather(*(one(s) for s in shards))
    return time.perf_counter() - start, latencies, outcomes


async def stream_batches(
    target: str, key: str, events: list[pb.CreateInteractionRequest], streams: int, size: int
) -> tuple[float, list[float], dict[str, int]]:
    """IngestEventBatches: `size` events per message; latency = send of the batch to
    its results."""
    shards = [events[i::streams] for i in range(streams)]
    latencies: list[float] = []
    outcomes: dict[str, int] = {}

    async def one(shard: list[pb.CreateInteractionRequest]) -> None:
        sent: list[float] = []

        async def gen() -> AsyncIterator[pb.IngestEventBatchesRequest]:
            for start in range(0, len(shard), size):
                chunk = shard[start : start + size]
                sent.append(time.perf_counter())
                yield pb.IngestEventBatchesRequest(
                    events=[
                        pb.IngestEventsRequest(sequence=start + j, create_interaction=e)
                        for j, e in enumerate(chunk)
                    ]
                )

        async with grpc.aio.insecure_channel(target) as channel:
            call = telemetry_pb2_grpc.TelemetryServiceStub(channel).IngestEventBatches(
                gen(), metadata=(("authorization", f"Bearer {key}"),)
            )
            index = 0
            async for response in call:
                elapsed = (time.perf_counter() - sent[index]) * 1000
                index += 1
                for r in response.results:
                    latencies.append(elapsed)
                    name = pb.IngestEventsResponse.Outcome.Name(r.outcome)
                    outcomes[name] = outcomes.get(name, 0) + 1

    start = time.perf_counter()
    await asyncio.gather(*(one(s) for s in shards))
    return time.perf_counter() - start, latencies, outcomes


async def lockstep(
    target: str, key: str, events: list[pb.CreateInteractionRequest], size: int
) -> list[float]:
    """Ack latency without queueing: one message in flight at a time on one stream."""
    latencies: list[float] = []
    got = asyncio.Event()

    async def gen() -> AsyncIterator[pb.IngestEventBatchesRequest]:
        for start in range(0, len(events), size):
            got.clear()
            sent = time.perf_counter()
            yield pb.IngestEventBatchesRequest(
                events=[
                    pb.IngestEventsRequest(create_interaction=e)
                    for e in events[start : start + size]
                ]
            )
            await got.wait()
            latencies.append((time.perf_counter() - sent) * 1000)

    async with grpc.aio.insecure_channel(target) as channel:
        call = telemetry_pb2_grpc.TelemetryServiceStub(channel).IngestEventBatches(
            gen(), metadata=(("authorization", f"Bearer {key}"),)
        )
        async for _ in call:
            got.set()
    return latencies


async def raw_baseline(
    url: str, tenant_id: str, events: list[pb.CreateInteractionRequest]
) -> float:
    """The same rows, prepared outside the timer, written by asyncpg executemany."""
    preparer = EventPreparer(
        Limits(256 * 1024, 65536, 256, __import__("datetime").timedelta(minutes=5),
               __import__("datetime").timedelta(days=30))
    )  # fmt: skip
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    scrubber = Scrubber()
    rows = []
    for e in events:
        copy = pb.CreateInteractionRequest()
        copy.CopyFrom(e)
        copy.request_id = "raw-" + e.request_id
        [p] = preparer.interaction(copy, tenant_id=tenant_id, scrubber=scrubber, now=now)
        rows.append(
            (tenant_id, p.event_type, p.event_id, p.interaction_id, p.request_id, p.fingerprint,
             p.message.SerializeToString(), json.dumps(p.pii_counts) if p.pii_counts else None,
             p.event_time, p.skill, p.user_id)
        )  # fmt: skip
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("CREATE TABLE raw_events (LIKE telemetry_events INCLUDING ALL)")
        start = time.perf_counter()
        await conn.executemany(
            "INSERT INTO raw_events (tenant_id, event_type, event_id, interaction_id, "
            "request_id, fingerprint, payload, pii_counts, event_time, skill, user_id) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9, $10, $11) "
            "ON CONFLICT DO NOTHING",
            rows,
        )
        return time.perf_counter() - start
    finally:
        await conn.close()


async def main() -> None:
    import pgserver

    with tempfile.TemporaryDirectory() as tmp:
        pg = pgserver.get_server(Path(tmp) / "pg", cleanup_mode="stop")
        url = pg.get_uri()
        await migrate.upgrade_async(url)
        operator = await bootstrap_operator(Settings(), url)
        assert operator is not None
        engine = create_engine(url, pool_size=1)
        # The bench's own server secret: the keys it makes here and `rlaas serve` share it.
        secret = secrets.token_urlsafe(32)
        tenancy = TenancyService(
            create_session_factory(engine), cache_ttl_s=0, server_secret=secret.encode()
        )
        admin = Principal("operator", operator.api_key.api_key_id, frozenset({Scope.ADMIN}), True)
        tenant = await tenancy.create_tenant(admin, display_name="bench", request_id="t")
        owner = Principal(tenant.tenant.tenant_id, "x", frozenset({Scope.ADMIN}))
        key = await tenancy.create_api_key(
            owner, display_name="ingest", scopes=[Scope.INGEST], request_id="k"
        )
        await engine.dispose()

        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("RLAAS_")}
        env |= {
            "RLAAS_DATABASE_URL": url, "RLAAS_GRPC_PORT": str(port), "RLAAS_METRICS_PORT": "0",
            "RLAAS_REST_PORT": "0", "RLAAS_SERVICES": '["telemetry"]', "RLAAS_LOG_LEVEL": "WARNING",
            "RLAAS_STATE_DIR": str(Path(tmp) / "state"), "RLAAS_SERVER_SECRET": secret,
        }  # fmt: skip
        server = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "infra.cli", "serve", env=env, cwd=ROOT,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        target = f"127.0.0.1:{port}"
        try:
            await wait_serving(target)
            events = make_events(N)
            single = make_events(N // 4, "single")
            await stream_all(target, key.secret, make_events(500, "warmup"), STREAMS)
            single_wall, single_lat, _ = await stream_all(target, key.secret, single, STREAMS)
            wall, latencies, first = await stream_batches(
                target, key.secret, events, STREAMS, BATCH
            )
            one_at_a_time = await lockstep(target, key.secret, make_events(300, "lock1"), 1)
            hundred_at_a_time = await lockstep(
                target, key.secret, make_events(3000, "lock100"), 100
            )
            replay = {}
            for i in range(2):
                _, _, replay[f"replay_{i + 1}"] = await stream_batches(
                    target, key.secret, events, STREAMS, BATCH
                )
            conn = await asyncpg.connect(url)
            stored = await conn.fetchval(
                "SELECT count(*) FROM telemetry_events WHERE request_id LIKE 'bench-%'"
            )
            await conn.close()
        finally:
            server.terminate()
            await server.wait()
        raw_s = await raw_baseline(url, tenant.tenant.tenant_id, events)
        pg.cleanup()

    ingest_rate = N / wall
    raw_rate = N / raw_s

    def pct(values: list[float]) -> dict[str, float]:
        arr = np.asarray(values)
        return {
            "p50": round(float(np.percentile(arr, 50)), 2),
            "p99": round(float(np.percentile(arr, 99)), 2),
        }

    report = {
        "benchmark": "telemetry ingest (idempotency + PII on) vs raw executemany ON CONFLICT",
        "events": N,
        "event_bytes": events[0].ByteSize(),
        "streams": STREAMS,
        "events_per_message": BATCH,
        "ingest_events_per_s": round(ingest_rate),
        "raw_executemany_on_conflict_rows_per_s": round(raw_rate),
        "ratio_vs_raw": round(ingest_rate / raw_rate, 3),
        "ack_latency_ms_at_saturation": pct(latencies),
        "ack_latency_ms_one_event_in_flight": pct(one_at_a_time),
        "ack_latency_ms_one_batch_of_100_in_flight": pct(hundred_at_a_time),
        "one_event_per_message": {
            "rpc": "IngestEvents",
            "events": len(single),
            "events_per_s": round(len(single) / single_wall),
            "ratio_vs_raw": round(len(single) / single_wall / raw_rate, 3),
            "ack_latency_ms_at_saturation": pct(single_lat),
        },
        "first_pass_outcomes": first,
        "replay_outcomes": replay,
        "rows_stored_for_events": stored,
        "duplicates_after_two_replays": stored - N,
        "machine": {"cpus": os.cpu_count()},
        "goals": {"ratio_vs_raw": ">= 0.5", "events_per_s": ">= 5000", "duplicates": "0"},
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
