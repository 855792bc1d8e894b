"""Issue 12, item 12: connections without limits.

A connection that sends nothing, only the HTTP/2 preface, or a request a byte at a time,
held a server socket for good (gRPC's handshake timeout was 120 s, idle and age had no
limit; aiohttp kept a silent connection for an hour), and one streamed REST ingest had no
total size. These tests start a gRPC server and a REST bridge with small limits (the
real code, on the session stack's database and server) and attack them with raw sockets
and oversized or stalled bodies.

What a capped stream keeps: the lines before the cap (or the stall) are processed and
acknowledged as usual; the line that crosses it and everything after are not read. So
the stored rows are exactly the acknowledged ones, and the client resends from its first
unacknowledged line.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import asyncpg
import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.app import Runtime, server_options, start_server
from services.config import Settings
from tests.conftest import RunningStack
from tests.helpers import new_tenant, scoped_key

pytestmark = pytest.mark.integration

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
EMPTY_SETTINGS = b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"  # an HTTP/2 SETTINGS frame
# HEADERS on stream 1 without END_HEADERS: a request whose headers never finish.
OPEN_HEADERS = b"\x00\x00\x01\x01\x00\x00\x00\x00\x01\x82"
LIMIT_S = 1.0
# Closed within the limit plus scheduling slack; a noisy 2-core machine gets plenty.
BOUND_S = 8.0


def closed_within(port: int, payload: bytes, bound: float = BOUND_S) -> float:
    """Send ``payload`` on a fresh connection, then nothing: seconds until the server
    closes it (fails if it is still open after ``bound``)."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.settimeout(bound)
        started = time.monotonic()
        if payload:
            sock.sendall(payload)
        try:
            while sock.recv(65536):
                pass
        except TimeoutError:
            pytest.fail(f"the server kept the connection open for {bound} s")
        except ConnectionResetError:
            pass
        return time.monotonic() - started


@pytest.mark.unit
def test_server_options_carry_every_limit() -> None:
    options = dict(server_options(Settings()))
    for name in (
        "grpc.server_handshake_timeout_ms",
        "grpc.max_connection_idle_ms",
        "grpc.max_connection_age_ms",
        "grpc.max_connection_age_grace_ms",
        "grpc.keepalive_time_ms",
        "grpc.keepalive_timeout_ms",
        "grpc.http2.min_ping_interval_without_data_ms",
        "grpc.max_concurrent_streams",
        "grpc.max_receive_message_length",
    ):
        assert options[name] > 0, name


@pytest.fixture
async def limited_grpc(stack: RunningStack) -> AsyncIterator[int]:
    settings = stack.settings.model_copy(
        update={
            "grpc_handshake_timeout_s": LIMIT_S,
            "grpc_max_connection_idle_s": LIMIT_S,
            "grpc_max_connection_age_s": 3 * LIMIT_S,
            "grpc_max_connection_age_grace_s": LIMIT_S,
        }
    )
    runtime = Runtime.create(settings, stack.database_url)
    running = await start_server(runtime, ["registry"], port=0)
    try:
        yield running.port
    finally:
        await running.stop(0)
        await runtime.close()


@pytest.mark.parametrize(
    ("payload", "closed_by"),
    [
        (b"", "handshake timeout"),
        (PREFACE[:10], "handshake timeout"),
        (PREFACE, "handshake timeout (no SETTINGS)"),
        (PREFACE + EMPTY_SETTINGS, "idle limit"),
        (PREFACE + EMPTY_SETTINGS + OPEN_HEADERS, "age limit"),
    ],
    ids=["nothing", "half a preface", "preface only", "idle", "slowloris headers"],
)
async def test_grpc_closes_silent_and_slow_connections(
    limited_grpc: int, payload: bytes, closed_by: str
) -> None:
    seconds = await asyncio.to_thread(closed_within, limited_grpc, payload)
    assert seconds >= LIMIT_S * 0.5, f"closed before the {closed_by}: {seconds:.2f} s"
    # A well-behaved client is unaffected by the same limits.
    async with grpc.aio.insecure_channel(f"127.0.0.1:{limited_grpc}") as channel:
        reply = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=10
        )
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


# ---- the REST bridge ---------------------------------------------------------------

CAP = 16_000  # bytes of one streamed body


@pytest.fixture
async def limited_rest(stack: RunningStack) -> AsyncIterator[str]:
    from services.app import service_specs
    from services.rest.server import start_bridge

    bridge = await start_bridge(
        [service_specs()["telemetry"].descriptor],
        stack.grpc_target,
        host="127.0.0.1",
        port=0,
        max_stream_body_bytes=CAP,
        body_timeout_s=LIMIT_S,
        idle_timeout_s=LIMIT_S,
    )
    try:
        yield bridge.url
    finally:
        await bridge.stop()


def event_line(request_id: str, size: int = 500) -> bytes:
    interaction = {
        "skill": "support_email",
        "input": {"messages": [{"role": "ROLE_USER", "content": "x" * size}]},
    }
    line = {"createInteraction": {"interaction": interaction, "requestId": request_id}}
    return json.dumps(line).encode() + b"\n"


async def ingest_key(stack: RunningStack, channel: grpc.aio.Channel, name: str) -> tuple[str, str]:
    from rlaas.options.v1 import options_pb2

    tenant_id, admin = await new_tenant(channel, stack.admin_key, name)
    return tenant_id, await scoped_key(channel, admin, options_pb2.SCOPE_INGEST)


async def stored_request_ids(stack: RunningStack, tenant_id: str) -> set[str]:
    conn = await asyncpg.connect(stack.database_url)
    try:
        rows = await conn.fetch(
            "SELECT request_id FROM telemetry_events WHERE tenant_id = $1", tenant_id
        )
    finally:
        await conn.close()
    return {r["request_id"] for r in rows}


def parse(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


async def test_rest_refuses_a_declared_body_over_the_cap(
    stack: RunningStack, channel: grpc.aio.Channel, limited_rest: str
) -> None:
    tenant_id, key = await ingest_key(stack, channel, "rest-cap-declared")
    body = b"".join(event_line(str(uuid.uuid4())) for _ in range(3 * CAP // 500))
    headers = {"authorization": f"Bearer {key}"}
    async with (
        aiohttp.ClientSession(limited_rest) as http,
        http.post("/v1/events:ingest", data=body, headers=headers) as reply,
    ):
        assert reply.status == 413
        error = await reply.json()
    assert error["code"] == grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]
    assert str(CAP) in error["message"]
    assert await stored_request_ids(stack, tenant_id) == set()  # nothing was read


async def test_rest_stream_over_the_cap_keeps_exactly_what_it_acknowledged(
    stack: RunningStack, channel: grpc.aio.Channel, limited_rest: str
) -> None:
    tenant_id, key = await ingest_key(stack, channel, "rest-cap-chunked")
    lines = [event_line(str(uuid.uuid4())) for _ in range(3 * CAP // 500)]

    async def chunked() -> AsyncIterator[bytes]:  # no Content-Length: chunked encoding
        for line in lines:
            yield line

    headers = {"authorization": f"Bearer {key}"}
    async with (
        aiohttp.ClientSession(limited_rest) as http,
        http.post("/v1/events:ingest", data=chunked(), headers=headers) as reply,
    ):
        status, replies = reply.status, parse(await reply.text())
    acked = [r["result"] for r in replies if "result" in r]
    errors = [r["error"] for r in replies if "error" in r]
    fitting = 0
    while sum(len(line) for line in lines[: fitting + 1]) <= CAP:
        fitting += 1
    # Every whole line under the cap went through, and was answered; then the error.
    assert len(acked) == fitting and 0 < fitting < len(lines), (fitting, replies[-2:])
    assert all(a["outcome"] == "OUTCOME_ACCEPTED" for a in acked)
    assert [e["code"] for e in errors] == [grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]]
    assert "error" in replies[-1]
    assert status == 200  # acknowledgements were sent before the cap was reached
    # Nothing accepted is lost, nothing unacknowledged is stored.
    assert await stored_request_ids(stack, tenant_id) == {a["requestId"] for a in acked}


async def test_rest_stream_that_stalls_ends_with_what_it_sent(
    stack: RunningStack, channel: grpc.aio.Channel, limited_rest: str
) -> None:
    tenant_id, key = await ingest_key(stack, channel, "rest-stall")
    sent = [str(uuid.uuid4()) for _ in range(2)]

    async def stalling() -> AsyncIterator[bytes]:
        for request_id in sent:
            yield event_line(request_id)
        yield event_line(str(uuid.uuid4()))[:100]  # half a line, then silence
        await asyncio.sleep(BOUND_S)

    headers = {"authorization": f"Bearer {key}"}
    started = time.monotonic()
    async with (
        aiohttp.ClientSession(limited_rest) as http,
        http.post("/v1/events:ingest", data=stalling(), headers=headers) as reply,
    ):
        replies = parse(await reply.text())
    assert time.monotonic() - started < BOUND_S
    acked = [r["result"]["requestId"] for r in replies if "result" in r]
    assert acked == sent
    assert replies[-1]["error"]["code"] == grpc.StatusCode.DEADLINE_EXCEEDED.value[0]
    assert await stored_request_ids(stack, tenant_id) == set(sent)


@pytest.mark.parametrize(
    "payload",
    [b"", b"POST /v1/events:ingest HTTP/1.1\r\nHost: x\r\n"],
    ids=["nothing", "headers never finish"],
)
async def test_rest_closes_idle_and_slow_header_connections(
    limited_rest: str, payload: bytes
) -> None:
    port = int(limited_rest.rsplit(":", 1)[1])
    seconds = await asyncio.to_thread(closed_within, port, payload)
    assert seconds >= LIMIT_S * 0.5, seconds
