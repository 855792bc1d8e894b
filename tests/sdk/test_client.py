"""The client against a real refused port and an in-process fake server."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Iterator
from typing import Any

import grpc
import pytest

from rlaas.telemetry.v1 import telemetry_pb2
from rlaas_sdk import (
    Client,
    ClientClosedError,
    DropPolicy,
    InvalidArgumentError,
    RlaasError,
    UnavailableError,
)
from rlaas_sdk.client import _open_clients
from tests.helpers import free_port
from tests.sdk.fakes import FakeServer, start_fake_server

pytestmark = pytest.mark.unit

KEY = "rlaas_secret_key_do_not_log"


@pytest.fixture
def fake() -> Iterator[FakeServer]:
    server = start_fake_server()
    yield server
    server.server.stop(0)


def quick(target: str, **kw: Any) -> Client:
    options: dict[str, Any] = dict(
        flush_interval_s=60,  # only flush() sends, so tests see whole batches
        initial_backoff_s=0.001,
        max_backoff_s=0.01,
        timeout_s=5,
    )
    options.update(kw)
    return Client(target, KEY, **options)


@pytest.fixture
def offline() -> Iterator[Client]:
    client = quick(f"127.0.0.1:{free_port()}")
    yield client
    client.close(timeout_s=0)


# -- local validation --------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"thumb": 2},
        {"thumb": 0},
        {"thumb": True},
        {"rating": 0},
        {"rating": 6},
        {"rating": 4.5},
        {"time_to_send_ms": -1},
        {},  # no signal at all
    ],
)
def test_bad_feedback_is_refused_locally(offline: Client, kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        offline.feedback("abc", **kwargs)
    assert offline.stats.enqueued == 0


def test_bad_events_are_refused_locally(offline: Client) -> None:
    with pytest.raises(ValueError):
        offline.feedback("", thumb=1)
    with pytest.raises(ValueError):
        offline.log("", input="hi")
    with pytest.raises(ValueError):
        offline.log("skill", input="")
    with pytest.raises(ValueError):
        offline.log("skill", input=[{"role": "wizard", "content": "hi"}])
    with pytest.raises(ValueError):
        offline.log("skill", input=[{"role": "user", "text": "hi"}])
    with pytest.raises(ValueError):
        offline.log("skill", input="hi", metadata={"x": object()})
    with pytest.raises(ValueError):
        offline.task_result("abc", f1=1.5)
    with pytest.raises(ValueError):
        offline.task_result("abc")
    with pytest.raises(TypeError):
        offline.infer("skill", "hi", temprature=0.2)
    assert offline.stats.enqueued == 0


def test_constructor_rejects_bad_settings() -> None:
    target = f"127.0.0.1:{free_port()}"
    for kwargs in (
        {"buffer_size": 0},
        {"batch_size": 0},
        {"flush_interval_s": 0},
        {"max_attempts": 0},
        {"initial_backoff_s": 5.0, "max_backoff_s": 1.0},
        {"drop_policy": "drop_oldest"},
    ):
        with pytest.raises(ValueError):
            Client(target, KEY, **kwargs)
    with pytest.raises(ValueError):
        Client(target, "")


def test_events_are_built_as_the_contract_wants(offline: Client) -> None:
    iid = offline.log(
        "support_email",
        input=[{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}],
        output="hello",
        user_id="u1",
        thread_id="t1",
        policy_id="support_email@v2",
        metadata={"tier": "gold", "n": 3},
    )
    offline.feedback(iid, thumb=-1, rating=2, edited_text="hello there", sent=True)
    offline.feedback(iid, sent=False)
    offline.task_result(iid, resolved=True, f1=0.5)
    create, feedback, implicit_only, task = (e.request for e in offline._buffer.snapshot())
    made = create.create_interaction
    assert len(iid) == 32 and made.interaction.interaction_id == iid
    assert made.interaction.input.messages[0].role == telemetry_pb2.ChatMessage.ROLE_SYSTEM
    assert made.output.text == "hello" and made.output.policy_id == "support_email@v2"
    assert made.interaction.metadata["tier"] == "gold"
    assert made.interaction.HasField("event_time")
    fb = feedback.submit_feedback
    assert fb.interaction_id == iid
    assert fb.feedback.explicit.thumb == telemetry_pb2.ExplicitFeedback.THUMB_DOWN
    assert fb.feedback.explicit.rating == 2
    assert fb.feedback.implicit.sent is True
    only = implicit_only.submit_feedback.feedback
    assert not only.HasField("explicit") and only.implicit.HasField("sent")
    assert not only.implicit.HasField("escalated")  # presence: "not reported" != False
    result = task.record_task_result.task_result
    assert result.resolved and result.f1 == 0.5 and not result.HasField("correct")
    request_ids = {getattr(e.request, e.kind).request_id for e in offline._buffer.snapshot()}
    assert len(request_ids) == 4


# -- idempotency and delivery --------------------------------------------------------------


def test_request_ids_survive_failed_flushes(offline: Client) -> None:
    iid = offline.log("skill", input="q", output="a")
    offline.feedback(iid, thumb=1)
    offline.task_result(iid, correct=True)

    def buffered() -> list[tuple[int, str, bytes]]:
        return [
            (e.sequence, getattr(e.request, e.kind).request_id, e.request.SerializeToString())
            for e in offline._buffer.snapshot()
        ]

    before = buffered()
    for _ in range(3):
        assert offline.flush(timeout_s=0.2) is False
        assert buffered() == before  # same ids, same bytes, same order
    assert offline.stats.retries >= 3
    assert [rid for _, rid, _ in before] == [e.request_id for e in offline._buffer.snapshot()]


def test_acked_events_are_never_resent_and_keys_are_reused(fake: FakeServer) -> None:
    # Stream 1 stores 3 events of the batch, then its response is lost.
    fake.telemetry.abort_plan = {1: 2}
    client = quick(fake.target)
    try:
        ids = [client.log("skill", input=f"q{n}") for n in range(5)]
        keys = [e.request_id for e in client._buffer.snapshot()]
        assert client.flush(timeout_s=10) is True
        stats = client.stats
    finally:
        client.close()
    sent = fake.telemetry.received
    assert [rid for stream, rid in sent if stream == 1] == keys[:3]
    # Nothing of the batch was acknowledged, so all of it is resent, in order, with the
    # same keys: the server answers DUPLICATE for the three it already stored.
    assert [rid for stream, rid in sent if stream == 2] == keys
    assert sorted(fake.telemetry.stored) == sorted(keys)
    assert (stats.sent, stats.duplicates, stats.retries, stats.buffered) == (2, 3, 1, 0)
    stored = fake.telemetry.stored.values()
    assert {e.create_interaction.interaction.interaction_id for e in stored} == set(ids)
    assert fake.telemetry.metadata[0]["authorization"] == f"Bearer {KEY}"


def test_rejected_events_are_counted_and_not_retried(
    fake: FakeServer, caplog: pytest.LogCaptureFixture
) -> None:
    client = quick(fake.target)
    try:
        client.log("good", input="q")
        client.log(fake.telemetry.reject_skill, input="q")
        client.log("good", input="q")
        with caplog.at_level(logging.WARNING, logger="rlaas_sdk"):
            assert client.flush(timeout_s=10) is True
        stats = client.stats
    finally:
        client.close()
    assert (stats.sent, stats.rejected, stats.retries, stats.buffered) == (2, 1, 0, 0)
    assert fake.telemetry.streams == 1
    assert "INVALID_ARGUMENT" in caplog.text and "INVALID_FIELD" in caplog.text


def test_background_thread_sends_when_a_batch_fills(fake: FakeServer) -> None:
    client = quick(fake.target, batch_size=5)  # flush_interval_s=60: only a full batch sends
    try:
        for n in range(10):
            client.log("skill", input=f"q{n}")
        for _ in range(200):
            if client.stats.sent == 10:
                break
            time.sleep(0.01)
        assert client.stats.sent == 10
    finally:
        client.close()


def test_flush_interval_sends_partial_batches(fake: FakeServer) -> None:
    client = quick(fake.target, flush_interval_s=0.05)
    try:
        client.log("skill", input="q")
        deadline = time.monotonic() + 5
        while client.stats.sent == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert client.stats.sent == 1
    finally:
        client.close()


# -- unary calls -----------------------------------------------------------------------------


def test_infer_retries_unavailable_with_one_request_id(fake: FakeServer) -> None:
    fake.inference.unavailable = 2
    sleeps: list[float] = []
    client = quick(
        fake.target,
        rng=random.Random(3),
        sleep=sleeps.append,
        initial_backoff_s=0.1,
        max_backoff_s=10,
    )
    try:
        result = client.infer("triage", "hello", user_id="u1", temperature=0.2, max_tokens=8)
    finally:
        client.close()
    assert (result.text, result.interaction_id, result.policy_id) == (
        "echo: hello",
        "int-1",
        "triage@v1",
    )
    assert len(fake.inference.request_ids) == 3 and len(set(fake.inference.request_ids)) == 1
    assert len(sleeps) == 2 and 0 <= sleeps[0] <= 0.1 and 0 <= sleeps[1] <= 0.2
    assert client.stats.retries == 2


def test_infer_gives_up_after_max_attempts(fake: FakeServer) -> None:
    fake.inference.unavailable = 100
    client = quick(fake.target, max_attempts=3, sleep=lambda _: None)
    try:
        with pytest.raises(UnavailableError) as caught:
            client.infer("triage", [{"role": "user", "content": "hi"}])
    finally:
        client.close()
    assert caught.value.code == grpc.StatusCode.UNAVAILABLE
    assert len(fake.inference.request_ids) == 3


def test_invalid_argument_is_not_retried_and_carries_details(fake: FakeServer) -> None:
    fake.inference.invalid = True
    sleeps: list[float] = []
    client = quick(fake.target, sleep=sleeps.append)
    try:
        with pytest.raises(InvalidArgumentError) as caught:
            client.infer("triage", "hi")
    finally:
        client.close()
    err = caught.value
    assert isinstance(err, RlaasError)
    assert err.code == grpc.StatusCode.INVALID_ARGUMENT
    assert err.reason == "INVALID_FIELD"
    assert [(v.field, v.description) for v in err.field_violations] == [
        ("messages[0].content", "empty")
    ]
    assert "messages[0].content" in str(err)
    assert len(fake.inference.request_ids) == 1 and sleeps == []


def test_refused_connection_exhausts_retries_for_unary_calls() -> None:
    sleeps: list[float] = []
    client = quick(f"127.0.0.1:{free_port()}", max_attempts=4, sleep=sleeps.append)
    try:
        with pytest.raises(UnavailableError):
            client.deploy("triage", "triage@v2", reason="better")
    finally:
        client.close(timeout_s=0)
    assert len(sleeps) == 3


# -- lifecycle -----------------------------------------------------------------------------


def test_close_is_idempotent_and_refuses_later_use(fake: FakeServer) -> None:
    with quick(fake.target) as client:
        client.log("skill", input="q")
        assert client in _open_clients
    assert client.stats.sent == 1  # close flushed
    assert client not in _open_clients
    client.close()
    with pytest.raises(ClientClosedError):
        client.log("skill", input="q")
    with pytest.raises(ClientClosedError):
        client.infer("skill", "q")
    assert client.flush(timeout_s=0) is True


def test_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RLAAS_API_KEY", raising=False)
    with pytest.raises(ValueError):
        Client.from_env()
    monkeypatch.setenv("RLAAS_API_KEY", KEY)
    monkeypatch.delenv("RLAAS_TARGET", raising=False)
    client = Client.from_env(drop_policy=DropPolicy.DROP_NEWEST)
    try:
        assert client.target == "127.0.0.1:50051"
    finally:
        client.close(timeout_s=0)


def test_api_key_is_never_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="rlaas_sdk"):
        client = quick(f"127.0.0.1:{free_port()}", buffer_size=1, max_attempts=2)
        client.log("skill", input="q")
        client.log("skill", input="q")  # a drop
        client.flush(timeout_s=0.2)
        with pytest.raises(UnavailableError):
            client.train("skill", min_new_feedback=5)
        client.close(timeout_s=0.1)
    assert caplog.records  # there was something to leak
    assert KEY not in caplog.text
    assert KEY not in repr(client)
