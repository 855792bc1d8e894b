"""The SDK against the real `rlaas serve`: end to end delivery, and an outage that the
buffer rides out (bounded, drops counted) until a real server comes up on the port."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from rlaas.options.v1 import options_pb2
from rlaas.registry.v1 import registry_pb2, registry_pb2_grpc
from rlaas.telemetry.v1 import telemetry_pb2, telemetry_pb2_grpc
from rlaas_sdk import Client
from tests.conftest import RunningStack
from tests.helpers import ROOT, free_port, md

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def admin_channel(stack: RunningStack) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(stack.grpc_target) as channel:
        yield channel


@pytest.fixture(scope="module")
def ingest_key(stack: RunningStack, admin_channel: grpc.Channel) -> str:
    made = registry_pb2_grpc.RegistryServiceStub(admin_channel).CreateApiKey(
        registry_pb2.CreateApiKeyRequest(
            api_key=registry_pb2.ApiKey(display_name="sdk", scopes=[options_pb2.SCOPE_INGEST]),
            request_id=str(uuid.uuid4()),
        ),
        metadata=md(stack.admin_key),
        timeout=30,
    )
    return str(made.secret)


def create_skill(stack: RunningStack, channel: grpc.Channel) -> str:
    # Telemetry takes any well-formed skill name; it need not be registered first.
    return f"sdk_{uuid.uuid4().hex[:12]}"


def telemetry(channel: grpc.Channel) -> telemetry_pb2_grpc.TelemetryServiceStub:
    return telemetry_pb2_grpc.TelemetryServiceStub(channel)


def list_interactions(
    channel: grpc.Channel, key: str, **filters: str
) -> list[telemetry_pb2.Interaction]:
    out: list[telemetry_pb2.Interaction] = []
    token = ""
    while True:
        page = telemetry(channel).ListInteractions(
            telemetry_pb2.ListInteractionsRequest(page_size=1000, page_token=token, **filters),
            metadata=md(key),
            timeout=30,
        )
        out.extend(page.interactions)
        token = page.next_page_token
        if not token:
            return out


def test_log_and_feedback_are_stored_exactly_once(
    stack: RunningStack, admin_channel: grpc.Channel, ingest_key: str
) -> None:
    skill = create_skill(stack, admin_channel)
    with Client(stack.grpc_target, ingest_key, flush_interval_s=0.05) as client:
        iid = client.log(
            skill,
            input=[{"role": "user", "content": "Where is my refund?"}],
            output="It was issued yesterday.",
            user_id="u1",
            thread_id="t1",
        )
        client.feedback(iid, thumb=+1, rating=5, edited_text="It was issued.", sent=True)
        client.task_result(iid, resolved=True)
        events = client._buffer.snapshot()
        assert client.flush(timeout_s=30), client.stats
        assert client._buffer.snapshot() == []
        stats = client.stats
        assert (stats.sent, stats.duplicates, stats.rejected, stats.dropped) == (3, 0, 0, 0)
        # A resend after a lost ack carries the same request_ids: the server stores nothing.
        for event in events:
            client._buffer.put(event.request_id, event.request)
        assert client.flush(timeout_s=30), client.stats
        stats = client.stats
    assert (stats.sent, stats.duplicates, stats.rejected, stats.dropped) == (3, 3, 0, 0)
    got = telemetry(admin_channel).GetInteraction(
        telemetry_pb2.GetInteractionRequest(interaction_id=iid), metadata=md(ingest_key), timeout=30
    )
    assert got.interaction.interaction_id == iid
    assert got.interaction.skill == skill
    assert [o.text for o in got.outputs] == ["It was issued yesterday."]
    assert len(got.feedback) == 1
    assert got.feedback[0].explicit.thumb == telemetry_pb2.ExplicitFeedback.THUMB_UP
    assert got.feedback[0].implicit.sent is True
    assert len(got.task_results) == 1 and got.task_results[0].resolved
    listed = list_interactions(admin_channel, ingest_key, skill=skill)
    assert [i.interaction_id for i in listed] == [iid]


def test_outage_is_buffered_bounded_then_drained_exactly_once(
    stack: RunningStack, admin_channel: grpc.Channel, ingest_key: str, tmp_path: Path
) -> None:
    skill = create_skill(stack, admin_channel)
    thread = uuid.uuid4().hex
    port = free_port()  # nothing listens here yet
    client = Client(
        f"127.0.0.1:{port}",
        ingest_key,
        buffer_size=60,
        batch_size=25,
        flush_interval_s=0.05,
        initial_backoff_s=0.05,
        max_backoff_s=0.5,
    )
    proc: subprocess.Popen[bytes] | None = None
    server_log = (tmp_path / "serve.log").open("wb")
    try:
        ids = [
            client.log(skill, input=f"q{n}", output=f"a{n}", thread_id=thread) for n in range(100)
        ]
        for iid in ids[-10:]:
            client.feedback(iid, thumb=-1)
        assert client.flush(timeout_s=0.5) is False
        down = client.stats
        assert down.buffered == 60 and down.dropped == 50 and down.sent == 0
        assert down.retries > 0
        buffered = client._buffer.snapshot()
        kept = [
            e.request.create_interaction.interaction.interaction_id
            for e in buffered
            if e.kind == "create_interaction"
        ]
        # DROP_OLDEST evicts the oldest event not in flight; so mostly the newest are kept.
        assert len(kept) == 50 and set(kept) >= set(ids[-10:])
        lost = sorted(set(ids) - set(kept))
        keys = {e.request_id for e in buffered}

        env = {
            **stack.env,
            "RLAAS_GRPC_PORT": str(port),
            "RLAAS_DATABASE_URL": stack.database_url,
            "RLAAS_SERVICES": '["telemetry"]',
            "RLAAS_METRICS_PORT": str(free_port()),  # the stack's server holds the default
            "RLAAS_REST_PORT": "0",  # and its REST port
        }
        proc = subprocess.Popen(
            [sys.executable, "-m", "infra.cli", "serve"],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=server_log,
        )
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            health = health_pb2_grpc.HealthStub(channel)
            for _ in range(600):
                try:
                    reply = health.Check(health_pb2.HealthCheckRequest(), timeout=1)
                    if reply.status == health_pb2.HealthCheckResponse.SERVING:
                        break
                except grpc.RpcError:
                    pass
                assert proc.poll() is None, "rlaas serve exited early"
                time.sleep(0.1)

            assert client.flush(timeout_s=60), client.stats
            up = client.stats
            assert (up.sent, up.duplicates, up.rejected, up.buffered) == (60, 0, 0, 0)
            assert up.dropped == 50

            stored = list_interactions(channel, ingest_key, skill=skill, thread_id=thread)
            assert sorted(i.interaction_id for i in stored) == sorted(kept)  # once each
            assert {i.request_id for i in stored} <= keys
            for iid in ids[-10:]:
                got = telemetry(channel).GetInteraction(
                    telemetry_pb2.GetInteractionRequest(interaction_id=iid),
                    metadata=md(ingest_key),
                    timeout=30,
                )
                assert len(got.outputs) == 1 and len(got.feedback) == 1
                assert got.feedback[0].request_id in keys
            with pytest.raises(grpc.RpcError) as missing:
                telemetry(channel).GetInteraction(
                    telemetry_pb2.GetInteractionRequest(interaction_id=lost[0]),
                    metadata=md(ingest_key),
                    timeout=30,
                )
            assert missing.value.code() == grpc.StatusCode.NOT_FOUND  # dropped, never sent
    finally:
        client.close(timeout_s=1)
        if proc is not None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        server_log.close()
