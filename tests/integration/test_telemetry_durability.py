"""Telemetry under failure and over time: a server killed mid-stream, the Parquet lake,
the reward wait window."""

from __future__ import annotations

import asyncio
import signal
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import grpc
import pyarrow.parquet as pq
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from sqlalchemy import event

from rlaas.telemetry.v1 import telemetry_pb2 as pb
from services.config import Settings
from services.db.engine import create_engine, create_session_factory
from services.telemetry.core import TelemetryCore
from services.telemetry.events import GatewayFields
from services.telemetry.store import Outcome
from tests.conftest import RunningStack
from tests.helpers import ROOT, free_port, md
from tests.integration.test_telemetry import (
    Tenant,
    as_stream,
    db_rows,
    feedback,
    interaction,
    make_tenant,
    rid,
    stub,
)

pytestmark = pytest.mark.integration

ACCEPTED = pb.IngestEventsResponse.OUTCOME_ACCEPTED
DUPLICATE = pb.IngestEventsResponse.OUTCOME_DUPLICATE


async def _start_serve(stack: RunningStack, port: int) -> asyncio.subprocess.Process:
    env = {
        **stack.env,
        "RLAAS_GRPC_PORT": str(port),
        "RLAAS_DATABASE_URL": stack.database_url,
        "RLAAS_METRICS_PORT": "0",
        "RLAAS_REST_PORT": "0",  # the stack's server holds its REST port
        "RLAAS_SERVICES": '["telemetry", "registry"]',
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "infra.cli", "serve", env=env, cwd=ROOT,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for _ in range(300):
            try:
                reply = await health.Check(health_pb2.HealthCheckRequest(), timeout=1)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return proc
            except grpc.aio.AioRpcError:
                pass
            await asyncio.sleep(0.1)
    proc.kill()
    raise AssertionError("rlaas serve did not start")


async def test_server_killed_mid_stream_then_resend_stores_each_event_once(
    stack: RunningStack, channel: grpc.aio.Channel
) -> None:
    t = await make_tenant(stack, channel, "crash")
    events = []
    for i in range(400):
        r = interaction(text=f"crash test {i} " + "x" * 800)
        r.interaction.interaction_id = f"crash-{uuid.uuid4().hex[:12]}"
        events.append(r)
    stream = as_stream(*events)
    port = free_port()
    target = f"127.0.0.1:{port}"
    server = await _start_serve(stack, port)

    acked: set[str] = set()
    try:
        async with grpc.aio.insecure_channel(target) as ch:

            async def gen() -> AsyncIterator[pb.IngestEventsRequest]:
                for e in stream:
                    yield e

            call = stub(ch).IngestEvents(gen(), metadata=md(t.ingest))
            with pytest.raises(grpc.aio.AioRpcError) as info:
                async for result in call:
                    acked.add(result.request_id)
                    if len(acked) == 50:
                        server.send_signal(signal.SIGKILL)  # no graceful anything
            assert info.value.code() == grpc.StatusCode.UNAVAILABLE
        await server.wait()
        assert 50 <= len(acked) < len(stream)

        # The client does what the SDK does: resend everything not known to be stored.
        server = await _start_serve(stack, port)
        async with grpc.aio.insecure_channel(target) as ch:

            async def again() -> AsyncIterator[pb.IngestEventsRequest]:
                for e in stream:
                    yield e

            results = [r async for r in stub(ch).IngestEvents(again(), metadata=md(t.ingest))]
    finally:
        if server.returncode is None:
            server.kill()
            await server.wait()
    assert len(results) == len(stream)
    assert all(r.outcome in (ACCEPTED, DUPLICATE) for r in results)
    # Everything acknowledged before the crash is recognised as already stored.
    assert all(r.outcome == DUPLICATE for r in results if r.request_id in acked)
    rows = await db_rows(stack, t.tenant_id)
    assert len(rows) == len(events)
    assert {r["request_id"] for r in rows} == {e.request_id for e in events}


def _path(uri: str) -> Path:
    return Path(unquote(urlparse(uri).path))


async def test_export_to_parquet_and_compaction(
    stack: RunningStack, channel: grpc.aio.Channel
) -> None:
    t = await make_tenant(stack, channel, "lake")
    s, key = stub(channel), md(t.ingest)
    iids = []
    for i in range(5):
        r = interaction(skill="billing", text=f"lake {i}", user_id=f"u{i}")
        r.output.text = f"answer {i}"
        iids.append((await s.CreateInteraction(r, metadata=key)).interaction.interaction_id)
    for iid in iids[:3]:
        await s.SubmitFeedback(feedback(iid, rating=4, comment="ok"), metadata=key)
    await s.RecordTaskResult(
        pb.RecordTaskResultRequest(
            interaction_id=iids[0], task_result=pb.TaskResult(resolved=True), request_id=rid()
        ),
        metadata=key,
    )
    now = datetime.now(UTC)

    def export_request(start: datetime, end: datetime) -> pb.ExportEventsRequest:
        req = pb.ExportEventsRequest(request_id=rid())
        req.start_time.FromDatetime(start)
        req.end_time.FromDatetime(end)
        return req

    start, end = now - timedelta(hours=1), now + timedelta(minutes=1)
    exported = await s.ExportEvents(export_request(start, end), metadata=key)
    assert (exported.interaction_count, exported.output_count) == (5, 5)
    assert (exported.feedback_count, exported.task_result_count) == (3, 1)
    by_type = {pb.EventType.Name(f.event_type): f for f in exported.files}
    table = pq.read_table(_path(by_type["EVENT_TYPE_INTERACTION"].uri))
    assert table.num_rows == 5 == by_type["EVENT_TYPE_INTERACTION"].row_count
    assert {"event_id", "skill", "user_id", "input_text", "create_time", "record"} <= set(
        table.column_names
    )
    assert sorted(table.column("event_id").to_pylist()) == sorted(iids)
    assert str(table.schema.field("create_time").type) == "timestamp[us, tz=UTC]"
    fb = pq.read_table(_path(by_type["EVENT_TYPE_FEEDBACK"].uri))
    assert fb.column("rating").to_pylist() == [4, 4, 4]
    path = _path(by_type["EVENT_TYPE_OUTPUT"].uri)
    assert f"tenant={t.tenant_id}/event_type=output/date={now.date().isoformat()}" in str(path)

    # Deterministic: the same range rewrites the same files.
    again = await s.ExportEvents(export_request(start, end), metadata=key)
    assert [f.uri for f in again.files] == [f.uri for f in exported.files]
    # An overlapping export adds small files with the same rows ...
    await s.ExportEvents(export_request(start - timedelta(minutes=5), end), metadata=key)
    partition = path.parent
    assert len(list(partition.glob("*.parquet"))) == 2

    compact = pb.CompactExportsRequest(request_id=rid())
    compact.start_time.FromDatetime(start)
    compact.end_time.FromDatetime(end)
    merged = await s.CompactExports(compact, metadata=key)
    assert merged.input_file_count == 8 and merged.partition_count == 4
    assert merged.row_count == 5 + 5 + 3 + 1  # no row lost, none doubled
    assert [p.name for p in partition.glob("*.parquet")] == ["compacted.parquet"]
    assert pq.read_table(partition / "compacted.parquet").num_rows == 5
    # Compacting again is a no-op.
    noop = await s.CompactExports(compact, metadata=key)
    assert (noop.input_file_count, noop.partition_count) == (0, 0)

    bad = export_request(end, start)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await s.ExportEvents(bad, metadata=key)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_reward_wait_window(stack: RunningStack, channel: grpc.aio.Channel) -> None:
    t: Tenant = await make_tenant(stack, channel, "window")
    s = stub(channel)
    created = await s.CreateInteraction(interaction(skill="drafts"), metadata=md(t.ingest))
    iid = created.interaction.interaction_id
    engine = create_engine(stack.database_url, pool_size=1)
    core = TelemetryCore(Settings(auth_cache_ttl_s=0), engine, create_session_factory(engine))
    try:
        # Default window (24 h): not yet rewardable; it is once the window has passed.
        assert iid not in await core.rewardable_interactions(t.tenant_id, "drafts")
        later = datetime.now(UTC) + timedelta(days=1, minutes=1)
        assert iid in await core.rewardable_interactions(t.tenant_id, "drafts", now=later)
        update = pb.UpdateTelemetrySettingsRequest(
            settings=pb.TelemetrySettings(pii_scrubbing_enabled=True), request_id=rid()
        )
        update.settings.reward_wait_window.FromSeconds(0)
        await s.UpdateTelemetrySettings(update, metadata=md(t.admin))
        assert iid in await core.rewardable_interactions(t.tenant_id, "drafts")
    finally:
        await engine.dispose()


async def test_a_served_answer_is_stored_in_one_statement(
    stack: RunningStack, channel: grpc.aio.Channel
) -> None:
    """The gateway logs every answer before returning it, so its write is on the
    request's path: one INSERT, no transaction around it (three round trips instead of
    one). Only an output id a client chose can collide on its own and needs one."""
    t: Tenant = await make_tenant(stack, channel, "one-statement")
    engine = create_engine(stack.database_url, pool_size=1)
    statements: list[str] = []

    @event.listens_for(engine.sync_engine, "connect")
    def watch(dbapi_connection: Any, _: Any) -> None:
        dbapi_connection.driver_connection.add_query_logger(
            lambda logged: statements.append(logged.query.split(None, 1)[0].rstrip(";").upper())
        )

    core = TelemetryCore(Settings(), engine, create_session_factory(engine))
    gateway = GatewayFields(
        source=pb.INTERACTION_SOURCE_GATEWAY, routing=pb.RoutingDecision(), fingerprint=b"f"
    )

    def served() -> pb.CreateInteractionRequest:
        request = interaction(skill="drafts")
        request.output.CopyFrom(pb.Output(output_id=uuid.uuid4().hex, text="On its way."))
        return request

    try:
        # Warm: the tenant's settings cached, the connection's type codecs introspected.
        await core.log_gateway_interaction(t.tenant_id, served(), gateway)
        statements.clear()
        written = await core.log_gateway_interaction(t.tenant_id, served(), gateway)
        assert written.outcome is Outcome.ACCEPTED
        assert statements == ["INSERT"], statements
        rows = await db_rows(stack, t.tenant_id, f"interaction_id = '{written.interaction_id}'")
        assert sorted(r["event_type"] for r in rows) == [
            pb.EVENT_TYPE_INTERACTION,
            pb.EVENT_TYPE_OUTPUT,
        ]

        # A client's own output id: the store wraps the insert in a transaction.
        chosen = interaction(skill="drafts")
        chosen.output.CopyFrom(pb.Output(output_id=uuid.uuid4().hex, text="Sent."))
        prepared = core.preparer.interaction(
            chosen, tenant_id=t.tenant_id, scrubber=None, now=datetime.now(UTC)
        )
        statements.clear()
        [written] = await core.store.write(t.tenant_id, [prepared])
        assert written.outcome is Outcome.ACCEPTED
        assert statements[0] == "BEGIN" and "INSERT" in statements
    finally:
        await engine.dispose()
