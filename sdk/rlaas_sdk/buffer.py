"""The bounded, thread-safe offline buffer of telemetry events and the client counters."""

from __future__ import annotations

import enum
import itertools
import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

from rlaas.telemetry.v1 import telemetry_pb2

logger = logging.getLogger("rlaas_sdk")

Outcome = telemetry_pb2.IngestEventsResponse.Outcome


class DropPolicy(enum.Enum):
    """What to do with a new event when the buffer is full."""

    #: Evict the oldest buffered event not currently in flight (default: keep fresh data).
    DROP_OLDEST = "drop_oldest"
    #: Discard the new event.
    DROP_NEWEST = "drop_newest"
    #: Wait for space up to the client's `block_timeout_s`, then discard the new event.
    BLOCK = "block"


@dataclass(frozen=True)
class ClientStats:
    """A snapshot of the client's counters.

    Every event handed to `log` / `feedback` / `task_result` ends up in exactly one of
    `sent`, `duplicates`, `rejected`, `dropped` or `buffered`, so
    `enqueued == sent + duplicates + rejected + dropped + buffered` always holds.
    """

    enqueued: int = 0
    sent: int = 0  # accepted by the server
    duplicates: int = 0  # the server already had the request_id (delivered before)
    rejected: int = 0  # refused by the server (a client bug; never retried)
    dropped: int = 0  # discarded locally: buffer full, or still buffered at close
    retries: int = 0  # retried unary calls plus failed ingest stream attempts
    buffered: int = 0  # waiting to be sent (including the batch in flight)


@dataclass
class PendingEvent:
    """A buffered event. Its `request_id` and `sequence` are fixed at enqueue time and
    reused by every resend."""

    sequence: int
    request_id: str
    kind: str
    request: telemetry_pb2.IngestEventsRequest


class EventBuffer:
    """Events in enqueue order, at most `capacity` of them at any time.

    The sender takes batches from the front; the batch in flight is always a prefix of
    the buffer and is never evicted by DROP_OLDEST (that would make its counters lie if
    the server then accepted it).
    """

    def __init__(self, capacity: int, policy: DropPolicy, block_timeout_s: float = 1.0) -> None:
        if capacity < 1:
            raise ValueError("buffer_size must be >= 1")
        if not isinstance(policy, DropPolicy):
            raise ValueError(f"drop_policy must be a DropPolicy, not {policy!r}")
        self.capacity = capacity
        self.policy = policy
        self.block_timeout_s = block_timeout_s
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)  # work arrived / space freed
        self._events: OrderedDict[int, PendingEvent] = OrderedDict()
        self._in_flight = 0  # length of the in-flight prefix
        self._sequences = itertools.count(1)
        self._last_sequence = 0
        self._flush_waiters = 0
        self._stopping = False
        self._enqueued = self._sent = self._duplicates = self._rejected = 0
        self._dropped = self._retries = 0

    # -- producers ---------------------------------------------------------------------

    def put(self, request_id: str, request: telemetry_pb2.IngestEventsRequest) -> bool:
        """Buffer one event; False if it (or, with DROP_OLDEST, an older one) was dropped."""
        kind = request.WhichOneof("event") or "unknown"
        with self._lock:
            self._enqueued += 1
            if len(self._events) >= self.capacity and not self._make_room():
                self._record_drop(kind, request_id, "buffer full")
                return False
            sequence = next(self._sequences)
            self._last_sequence = sequence
            request.sequence = sequence
            self._events[sequence] = PendingEvent(sequence, request_id, kind, request)
            self._changed.notify_all()
            return True

    def _make_room(self) -> bool:
        """Called with the lock held and the buffer full: True if there is room now."""
        if self.policy is DropPolicy.DROP_NEWEST:
            return False
        if self.policy is DropPolicy.BLOCK:
            deadline = time.monotonic() + self.block_timeout_s
            while len(self._events) >= self.capacity and not self._stopping:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._changed.wait(remaining)
            return len(self._events) < self.capacity
        # DROP_OLDEST: the first event after the in-flight prefix.
        victim = next(itertools.islice(self._events, self._in_flight, None), None)
        if victim is None:  # everything buffered is in flight: drop the new one instead
            return False
        dropped = self._events.pop(victim)
        self._record_drop(dropped.kind, dropped.request_id, "buffer full, oldest evicted")
        return True

    def _record_drop(self, kind: str, request_id: str, why: str) -> None:
        self._dropped += 1
        # One line for the first drop and every 1000th: an outage must not flood the logs.
        if self._dropped == 1 or self._dropped % 1000 == 0:
            logger.warning(
                "rlaas_sdk dropped event kind=%s request_id=%s (%s); %d dropped so far",
                kind,
                request_id,
                why,
                self._dropped,
            )

    # -- the sender ----------------------------------------------------------------------

    def wait_for_work(self, batch_size: int, interval_s: float) -> None:
        """Block until a full batch is waiting, a flush is requested, the sender is told to
        stop, or `interval_s` passed."""
        with self._changed:
            self._changed.wait_for(
                lambda: (
                    self._stopping
                    or (self._flush_waiters > 0 and len(self._events) > self._in_flight)
                    or len(self._events) - self._in_flight >= batch_size
                ),
                timeout=interval_s,
            )

    def take_batch(self, batch_size: int) -> list[PendingEvent]:
        """Mark up to `batch_size` events at the front as in flight and return them."""
        with self._lock:
            if self._in_flight:
                raise RuntimeError("a batch is already in flight")
            batch = list(itertools.islice(self._events.values(), batch_size))
            self._in_flight = len(batch)
            return batch

    def settle(self, sequence: int, outcome: int) -> PendingEvent | None:
        """Remove an acknowledged in-flight event and count its outcome."""
        with self._lock:
            event = self._events.pop(sequence, None)
            if event is None:
                return None
            self._in_flight -= 1
            if outcome == Outcome.OUTCOME_ACCEPTED:
                self._sent += 1
            elif outcome == Outcome.OUTCOME_DUPLICATE:
                self._duplicates += 1
            else:
                self._rejected += 1
            self._changed.notify_all()
            return event

    def release_batch(self) -> None:
        """The batch attempt ended: unacknowledged events go back to waiting, in order."""
        with self._lock:
            self._in_flight = 0

    def add_retry(self) -> None:
        with self._lock:
            self._retries += 1

    def stop(self) -> None:
        """Wake the sender and any BLOCKed producers for shutdown."""
        with self._changed:
            self._stopping = True
            self._changed.notify_all()

    def drop_all(self) -> int:
        """Discard everything still buffered (at close), counting each as dropped."""
        with self._lock:
            left = len(self._events)
            self._dropped += left
            self._events.clear()
            self._in_flight = 0
            self._changed.notify_all()
            return left

    # -- flush ---------------------------------------------------------------------------

    def wait_settled(self, timeout_s: float | None) -> bool:
        """Ask the sender to flush now and wait until every event buffered before this call
        has left the buffer (sent, duplicate, rejected or dropped)."""
        with self._changed:
            watermark = self._last_sequence

            def settled() -> bool:
                first = next(iter(self._events), None)
                return first is None or first > watermark

            self._flush_waiters += 1
            self._changed.notify_all()
            try:
                return self._changed.wait_for(settled, timeout=timeout_s)
            finally:
                self._flush_waiters -= 1

    # -- introspection -------------------------------------------------------------------

    def snapshot(self) -> list[PendingEvent]:
        """The buffered events, oldest first (for debugging and tests)."""
        with self._lock:
            return list(self._events.values())

    def __len__(self) -> int:
        with self._lock:
            return len(self._events)

    def stats(self) -> ClientStats:
        with self._lock:
            return ClientStats(
                enqueued=self._enqueued,
                sent=self._sent,
                duplicates=self._duplicates,
                rejected=self._rejected,
                dropped=self._dropped,
                retries=self._retries,
                buffered=len(self._events),
            )
