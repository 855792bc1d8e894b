"""The offline buffer: drop policies, counters and the size bound, alone and through a
client whose server refuses every connection."""

from __future__ import annotations

import threading
import time
import uuid

import pytest

from rlaas.telemetry.v1 import telemetry_pb2
from rlaas_sdk import Client, ClientStats, DropPolicy
from rlaas_sdk.buffer import EventBuffer, Outcome
from tests.helpers import free_port

pytestmark = pytest.mark.unit


def event(n: int) -> tuple[str, telemetry_pb2.IngestEventsRequest]:
    rid = f"r{n}"
    request = telemetry_pb2.SubmitFeedbackRequest(interaction_id=f"i{n}", request_id=rid)
    return rid, telemetry_pb2.IngestEventsRequest(submit_feedback=request)


def ids(buffer: EventBuffer) -> list[str]:
    return [e.request_id for e in buffer.snapshot()]


def balanced(stats: ClientStats) -> bool:
    settled = stats.sent + stats.duplicates + stats.rejected + stats.dropped + stats.buffered
    return stats.enqueued == settled


def test_drop_oldest_keeps_the_newest_events() -> None:
    buffer = EventBuffer(3, DropPolicy.DROP_OLDEST)
    results = [buffer.put(*event(n)) for n in range(5)]
    assert results == [True] * 5
    assert ids(buffer) == ["r2", "r3", "r4"]
    stats = buffer.stats()
    assert (stats.enqueued, stats.dropped, stats.buffered) == (5, 2, 3)
    assert balanced(stats)


def test_drop_newest_keeps_the_oldest_events() -> None:
    buffer = EventBuffer(3, DropPolicy.DROP_NEWEST)
    assert [buffer.put(*event(n)) for n in range(5)] == [True, True, True, False, False]
    assert ids(buffer) == ["r0", "r1", "r2"]
    assert (buffer.stats().dropped, buffer.stats().buffered) == (2, 3)


def test_block_waits_up_to_its_timeout_then_drops() -> None:
    buffer = EventBuffer(2, DropPolicy.BLOCK, block_timeout_s=0.2)
    buffer.put(*event(0))
    buffer.put(*event(1))
    started = time.monotonic()
    assert buffer.put(*event(2)) is False
    assert 0.19 <= time.monotonic() - started < 2
    assert ids(buffer) == ["r0", "r1"]
    assert buffer.stats().dropped == 1


def test_block_succeeds_when_the_sender_frees_room() -> None:
    buffer = EventBuffer(2, DropPolicy.BLOCK, block_timeout_s=5)
    buffer.put(*event(0))
    buffer.put(*event(1))
    batch = buffer.take_batch(1)

    def ack_later() -> None:
        time.sleep(0.1)
        buffer.settle(batch[0].sequence, Outcome.OUTCOME_ACCEPTED)

    threading.Thread(target=ack_later).start()
    assert buffer.put(*event(2)) is True
    assert ids(buffer) == ["r1", "r2"]
    stats = buffer.stats()
    assert (stats.sent, stats.dropped, stats.buffered) == (1, 0, 2)


def test_drop_oldest_never_evicts_the_batch_in_flight() -> None:
    buffer = EventBuffer(3, DropPolicy.DROP_OLDEST)
    for n in range(3):
        buffer.put(*event(n))
    assert [e.request_id for e in buffer.take_batch(2)] == ["r0", "r1"]
    buffer.put(*event(3))  # evicts r2, the oldest not in flight
    assert ids(buffer) == ["r0", "r1", "r3"]
    buffer.release_batch()
    buffer.take_batch(3)
    assert buffer.put(*event(4)) is False  # all in flight: the new event is the one dropped
    assert ids(buffer) == ["r0", "r1", "r3"]
    assert buffer.stats().dropped == 2


def test_outcomes_are_counted_and_unacked_events_keep_their_order() -> None:
    buffer = EventBuffer(10, DropPolicy.DROP_OLDEST)
    for n in range(5):
        buffer.put(*event(n))
    batch = buffer.take_batch(4)
    buffer.settle(batch[0].sequence, Outcome.OUTCOME_ACCEPTED)
    buffer.settle(batch[2].sequence, Outcome.OUTCOME_DUPLICATE)
    buffer.release_batch()  # the stream failed: r1 and r3 were never acknowledged
    assert ids(buffer) == ["r1", "r3", "r4"]
    assert buffer.settle(batch[0].sequence, Outcome.OUTCOME_ACCEPTED) is None  # no double count
    buffer.take_batch(1)
    buffer.settle(batch[1].sequence, Outcome.OUTCOME_REJECTED)
    stats = buffer.stats()
    assert (stats.sent, stats.duplicates, stats.rejected, stats.buffered) == (1, 1, 1, 2)
    assert balanced(stats)


@pytest.mark.parametrize("policy", [DropPolicy.DROP_OLDEST, DropPolicy.DROP_NEWEST])
def test_flood_with_the_server_down_stays_bounded(policy: DropPolicy) -> None:
    """A real refused connection: nothing listens on the port."""
    client = Client(
        f"127.0.0.1:{free_port()}",
        "rlaas_test_key",
        buffer_size=100,
        drop_policy=policy,
        batch_size=10,
        flush_interval_s=0.01,
        initial_backoff_s=0.001,
        max_backoff_s=0.01,
    )
    sizes: list[int] = []
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            sizes.append(len(client._buffer))

    def produce() -> None:
        for n in range(1000):
            if n % 2:
                client.feedback(uuid.uuid4().hex, thumb=-1)
            else:
                client.log("flood", input=f"question {n}", output="answer")

    watcher = threading.Thread(target=watch)
    watcher.start()
    producers = [threading.Thread(target=produce) for _ in range(4)]
    started = time.monotonic()
    for t in producers:
        t.start()
    for t in producers:
        t.join()
    elapsed = time.monotonic() - started
    time.sleep(0.3)  # let the sender fail a few more times
    done.set()
    watcher.join()
    try:
        stats = client.stats
        assert max(sizes) <= 100
        assert stats.enqueued == 4000
        assert stats.buffered == 100
        assert stats.dropped == 3900
        assert stats.sent == stats.duplicates == stats.rejected == 0
        assert stats.retries > 0  # the sender really tried, and really failed
        assert balanced(stats)
        assert elapsed < 10  # 4000 enqueues never waited on the network
        assert client.flush(timeout_s=0.1) is False
    finally:
        client.close(timeout_s=0.1)
    closed = client.stats
    assert (closed.buffered, closed.dropped) == (0, 4000)  # undelivered at close: dropped
