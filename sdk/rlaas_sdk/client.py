"""The synchronous, thread-safe RLaaS client: `infer`, `log`, `feedback`, `task_result`,
`train`, `deploy`.

Telemetry calls (`log`, `feedback`, `task_result`) never touch the network: they build
the event, give it an idempotency key once, and put it in a bounded buffer. One
background thread sends the buffer in batches over the IngestEventBatches stream and resends
what was not acknowledged, with the same keys, after a backoff.
"""

from __future__ import annotations

import atexit
import logging
import os
import random
import threading
import uuid
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

import grpc

from rlaas.inference.v1 import inference_pb2, inference_pb2_grpc
from rlaas.registry.v1 import registry_pb2, registry_pb2_grpc
from rlaas.telemetry.v1 import telemetry_pb2, telemetry_pb2_grpc
from rlaas.training.v1 import training_pb2, training_pb2_grpc
from rlaas_sdk import events
from rlaas_sdk.backoff import RETRYABLE_INGEST, RETRYABLE_UNARY, Backoff
from rlaas_sdk.buffer import ClientStats, DropPolicy, EventBuffer, Outcome, PendingEvent
from rlaas_sdk.errors import ClientClosedError, error_from_rpc, error_from_status

logger = logging.getLogger("rlaas_sdk")

DEFAULT_TARGET = "127.0.0.1:50051"
USER_AGENT = "rlaas-sdk-python/0.1.0"

Response = TypeVar("Response")


@dataclass(frozen=True)
class InferResult:
    """The answer of `Client.infer`. Pass `interaction_id` to `feedback` / `task_result`."""

    text: str
    interaction_id: str
    policy_id: str
    output_id: str = ""
    response: inference_pb2.InferResponse = field(
        default_factory=inference_pb2.InferResponse, repr=False, compare=False
    )


class Client:
    """A connection to RLaaS. Safe to share between threads; close it (or use `with`)."""

    def __init__(
        self,
        target: str,
        api_key: str,
        *,
        buffer_size: int = 10_000,
        drop_policy: DropPolicy = DropPolicy.DROP_OLDEST,
        flush_interval_s: float = 0.5,
        batch_size: int = 500,
        max_attempts: int = 6,
        initial_backoff_s: float = 0.1,
        max_backoff_s: float = 10.0,
        timeout_s: float = 10.0,
        block_timeout_s: float = 1.0,
        credentials: grpc.ChannelCredentials | None = None,
        rng: random.Random | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        """
        Args:
            target: `host:port` of the RLaaS gRPC endpoint.
            api_key: sent as `authorization: Bearer <key>`; never logged.
            buffer_size: most events buffered while the server is slow or down.
            drop_policy: what a full buffer does with a new event.
            flush_interval_s: the sender sends at least this often (sooner on a full batch).
            batch_size: events per IngestEventBatches message (the server accepts up to
                RLAAS_INGEST_MAX_BATCH_EVENTS, 1000 by default).
            max_attempts: tries of a unary call (infer/train/deploy) on UNAVAILABLE and
                DEADLINE_EXCEEDED. Buffered events are retried until sent or dropped.
            initial_backoff_s, max_backoff_s: full-jitter exponential backoff bounds.
            timeout_s: deadline of each unary call and of each batch's stream.
            block_timeout_s: how long `DropPolicy.BLOCK` waits for room before dropping.
            credentials: TLS channel credentials; plaintext when None.
            rng, sleep: injectable jitter source and sleep (tests). By default the sender's
                backoff wait is cut short by `close()`.
        """
        if not isinstance(api_key, str) or not api_key:
            raise ValueError("api_key must be a non-empty string")
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        if flush_interval_s <= 0:
            raise ValueError("flush_interval_s must be > 0")
        if max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        if timeout_s <= 0:
            raise ValueError("timeout_s must be > 0")
        self.target = target
        self._metadata = (("authorization", f"Bearer {api_key}"),)
        self._batch_size = batch_size
        self._flush_interval_s = flush_interval_s
        self._max_attempts = max_attempts
        self._timeout_s = timeout_s
        self._backoff = Backoff(initial_backoff_s, max_backoff_s, rng or random.Random())
        self._stop = threading.Event()
        self._sleep = sleep or self._stop.wait
        self._buffer = EventBuffer(buffer_size, drop_policy, block_timeout_s)
        # grpc's own reconnect backoff defaults to 1 s .. 120 s; cap it at ours so that a
        # server coming back is noticed by the next retry, not minutes later.
        reconnect_max_ms = max(100, int(max_backoff_s * 1000))
        options = [
            ("grpc.primary_user_agent", USER_AGENT),
            ("grpc.initial_reconnect_backoff_ms", min(100, reconnect_max_ms)),
            ("grpc.min_reconnect_backoff_ms", min(100, reconnect_max_ms)),
            ("grpc.max_reconnect_backoff_ms", reconnect_max_ms),
        ]
        self._channel = (
            grpc.secure_channel(target, credentials, options)
            if credentials is not None
            else grpc.insecure_channel(target, options)
        )
        self._telemetry = telemetry_pb2_grpc.TelemetryServiceStub(self._channel)
        self._inference = inference_pb2_grpc.InferenceServiceStub(self._channel)
        self._training = training_pb2_grpc.TrainingServiceStub(self._channel)
        self._registry = registry_pb2_grpc.RegistryServiceStub(self._channel)
        self._close_lock = threading.Lock()
        self._closed = False
        self._call: Any = None  # the ingest call in flight, cancelled by close()
        self._sender = threading.Thread(target=self._run, name="rlaas-sdk-sender", daemon=True)
        self._sender.start()
        _open_clients.add(self)
        logger.debug("rlaas_sdk client started target=%s", target)

    @classmethod
    def from_env(cls, **kwargs: Any) -> Client:
        """A client for `RLAAS_TARGET` (default 127.0.0.1:50051) and `RLAAS_API_KEY`."""
        api_key = os.environ.get("RLAAS_API_KEY", "")
        if not api_key:
            raise ValueError("RLAAS_API_KEY is not set")
        return cls(os.environ.get("RLAAS_TARGET") or DEFAULT_TARGET, api_key, **kwargs)

    def __repr__(self) -> str:
        return f"Client(target={self.target!r}, closed={self._closed})"

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- unary calls ---------------------------------------------------------------------

    def infer(
        self,
        skill: str,
        input: events.InputLike,
        *,
        user_id: str | None = None,
        thread_id: str | None = None,
        request_id: str | None = None,
        **overrides: Any,
    ) -> InferResult:
        """Answer `input` (a prompt text or chat messages) with the skill's deployed policy.

        `overrides` are generation settings (temperature, top_p, top_k, max_tokens, stop,
        seed, ...) or policy_id / metadata / labels / training_opt_out. The gateway logs
        the interaction itself. Raises an `RlaasError` subclass on failure.
        """
        request = events.infer_request(
            skill=skill,
            input=input,
            request_id=request_id or uuid.uuid4().hex,
            user_id=user_id,
            thread_id=thread_id,
            overrides=overrides,
        )
        reply: inference_pb2.InferResponse = self._unary(self._inference.Infer, request)
        return InferResult(
            text=reply.text,
            interaction_id=reply.interaction_id,
            policy_id=reply.policy_id,
            output_id=reply.output_id,
            response=reply,
        )

    def train(
        self,
        skill: str,
        *,
        display_name: str | None = None,
        request_id: str | None = None,
        **config: Any,
    ) -> training_pb2.LearningLoop:
        """Start the skill's learning loop. `config` holds LearningLoopConfig fields, e.g.
        `train("triage", min_new_feedback=50, interval=timedelta(hours=6),
        training={"method": "TRAINING_METHOD_DPO"})`."""
        request = events.start_learning_loop(
            skill=skill,
            request_id=request_id or uuid.uuid4().hex,
            display_name=display_name,
            config=config,
        )
        reply: training_pb2.StartLearningLoopResponse = self._unary(
            self._training.StartLearningLoop, request
        )
        return reply.learning_loop

    def deploy(
        self,
        skill: str,
        policy_id: str,
        *,
        reason: str,
        expected_revision: int | None = None,
        request_id: str | None = None,
    ) -> registry_pb2.Deployment:
        """Promote `policy_id` to the skill's baseline (PromotePolicy)."""
        request = events.promote_policy(
            skill=skill,
            policy_id=policy_id,
            reason=reason,
            request_id=request_id or uuid.uuid4().hex,
            expected_revision=expected_revision,
        )
        reply: registry_pb2.PromotePolicyResponse = self._unary(
            self._registry.PromotePolicy, request
        )
        return reply.deployment

    def _unary(self, method: Callable[..., Response], request: Any) -> Response:
        """Call with retries on UNAVAILABLE / DEADLINE_EXCEEDED; `request` (and so its
        request_id) is the same object on every attempt."""
        self._check_open()
        attempt = 0
        while True:
            try:
                return method(request, timeout=self._timeout_s, metadata=self._metadata)
            except grpc.RpcError as err:
                code = err.code()
                if code not in RETRYABLE_UNARY or attempt + 1 >= self._max_attempts:
                    raise error_from_rpc(err) from err
                delay = self._backoff.delay(attempt)
                attempt += 1
                self._buffer.add_retry()
                logger.info(
                    "rlaas_sdk retrying %s after %s (attempt %d/%d, in %.3fs) request_id=%s",
                    type(request).__name__.removesuffix("Request"),
                    code.name,
                    attempt + 1,
                    self._max_attempts,
                    delay,
                    request.request_id,
                )
                self._sleep(delay)

    # -- buffered telemetry ----------------------------------------------------------------

    def log(
        self,
        skill: str,
        *,
        input: events.InputLike,
        output: str | None = None,
        user_id: str | None = None,
        thread_id: str | None = None,
        policy_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        interaction_id: str | None = None,
        base_model: str | None = None,
        context: Mapping[str, Any] | None = None,
        labels: Mapping[str, str] | None = None,
        training_opt_out: bool = False,
        event_time: datetime | None = None,
    ) -> str:
        """Buffer an `interaction.create` event (with its output, if given) and return the
        interaction id, usable by `feedback` at once. Never waits on the network."""
        interaction_id = interaction_id or uuid.uuid4().hex
        request_id = uuid.uuid4().hex
        request = events.create_interaction(
            interaction_id=interaction_id,
            request_id=request_id,
            skill=skill,
            input=input,
            output=output,
            user_id=user_id,
            thread_id=thread_id,
            policy_id=policy_id,
            base_model=base_model,
            metadata=metadata,
            context=context,
            labels=labels,
            training_opt_out=training_opt_out,
            event_time=event_time,
        )
        self._enqueue(request_id, telemetry_pb2.IngestEventsRequest(create_interaction=request))
        return interaction_id

    def feedback(
        self,
        interaction_id: str,
        *,
        thumb: int | None = None,
        rating: int | None = None,
        comment: str | None = None,
        preferred_text: str | None = None,
        tags: Sequence[str] | None = None,
        edited_text: str | None = None,
        sent: bool | None = None,
        time_to_send_ms: int | None = None,
        escalated: bool | None = None,
        follow_up_count: int | None = None,
        output_id: str | None = None,
        user_id: str | None = None,
        event_time: datetime | None = None,
    ) -> None:
        """Buffer a `feedback.submit` event. `thumb` is +1 / -1, `rating` 1-5; at least one
        signal is required (ValueError otherwise)."""
        request_id = uuid.uuid4().hex
        request = events.submit_feedback(
            interaction_id=interaction_id,
            request_id=request_id,
            thumb=thumb,
            rating=rating,
            comment=comment,
            preferred_text=preferred_text,
            tags=tags,
            edited_text=edited_text,
            sent=sent,
            time_to_send_ms=time_to_send_ms,
            escalated=escalated,
            follow_up_count=follow_up_count,
            output_id=output_id,
            user_id=user_id,
            event_time=event_time,
        )
        self._enqueue(request_id, telemetry_pb2.IngestEventsRequest(submit_feedback=request))

    def task_result(
        self,
        interaction_id: str,
        *,
        correct: bool | None = None,
        f1: float | None = None,
        resolved: bool | None = None,
        labels: Mapping[str, str] | None = None,
        metrics: Mapping[str, float] | None = None,
        output_id: str | None = None,
        event_time: datetime | None = None,
    ) -> None:
        """Buffer a `task.result` event (downstream KPI: correct, F1 in [0, 1], resolved)."""
        request_id = uuid.uuid4().hex
        request = events.record_task_result(
            interaction_id=interaction_id,
            request_id=request_id,
            correct=correct,
            f1=f1,
            resolved=resolved,
            labels=labels,
            metrics=metrics,
            output_id=output_id,
            event_time=event_time,
        )
        self._enqueue(request_id, telemetry_pb2.IngestEventsRequest(record_task_result=request))

    def _enqueue(self, request_id: str, event: telemetry_pb2.IngestEventsRequest) -> None:
        self._check_open()
        self._buffer.put(request_id, event)

    def _check_open(self) -> None:
        if self._closed:
            raise ClientClosedError("the client is closed")

    # -- flush / close / stats ---------------------------------------------------------------

    @property
    def stats(self) -> ClientStats:
        """A snapshot of the counters (see `ClientStats`)."""
        return self._buffer.stats()

    def flush(self, timeout_s: float | None = None) -> bool:
        """Send now and wait until every event buffered before this call has left the
        buffer; True if it did within `timeout_s` (None: no limit)."""
        if not self._sender.is_alive():
            return len(self._buffer) == 0
        return self._buffer.wait_settled(timeout_s)

    def close(self, timeout_s: float = 5.0) -> None:
        """Flush for up to `timeout_s`, stop the sender and close the channel. Events still
        buffered then are counted as dropped. Idempotent."""
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
        drained = False
        try:
            drained = self.flush(timeout_s)
        finally:
            self._stop.set()
            self._buffer.stop()
            call = self._call
            if call is not None:
                call.cancel()
            self._sender.join(timeout=max(1.0, self._timeout_s))
            left = self._buffer.drop_all()
            if left:
                logger.warning(
                    "rlaas_sdk closed with %d undelivered events (dropped); drained=%s",
                    left,
                    drained,
                )
            self._channel.close()
            _open_clients.discard(self)
            logger.debug("rlaas_sdk client closed target=%s stats=%s", self.target, self.stats)

    # -- the sender thread -------------------------------------------------------------------

    def _run(self) -> None:
        attempt = 0
        while not self._stop.is_set():
            self._buffer.wait_for_work(self._batch_size, self._flush_interval_s)
            if self._stop.is_set():
                break
            batch = self._buffer.take_batch(self._batch_size)
            if not batch:
                continue
            try:
                ok = self._send_batch(batch, first_failure=attempt == 0)
            except Exception:  # never let the sender die: the buffer would only fill up
                logger.exception("rlaas_sdk sender failed unexpectedly; will retry")
                ok = False
            finally:
                self._buffer.release_batch()
            if ok:
                if attempt:
                    logger.info("rlaas_sdk ingest recovered after %d failed attempts", attempt)
                attempt = 0
                continue
            delay = self._backoff.delay(attempt)
            attempt += 1
            if not self._stop.is_set():
                self._sleep(delay)

    def _send_batch(self, batch: list[PendingEvent], *, first_failure: bool = True) -> bool:
        """Send one batch as one IngestEventBatches message. True if the stream completed (every
        event settled); False if the caller should back off (unsettled events stay).
        A failure is logged as a warning only when it starts an outage, then at debug."""
        pending = {event.sequence: event for event in batch}
        try:
            # One message carries the whole batch: gRPC's per-message cost is paid once.
            call = self._telemetry.IngestEventBatches(
                iter([telemetry_pb2.IngestEventBatchesRequest(events=[e.request for e in batch])]),
                timeout=self._timeout_s,
                metadata=self._metadata,
            )
            self._call = call
            for response in call:
                for result in response.results:
                    self._settle(pending, result)
        except grpc.RpcError as err:
            code = err.code()
            if self._stop.is_set() and code == grpc.StatusCode.CANCELLED:
                return False
            if code in RETRYABLE_INGEST:
                self._buffer.add_retry()
                logger.log(
                    logging.WARNING if first_failure else logging.DEBUG,
                    "rlaas_sdk ingest stream failed with %s; %d events stay buffered (%s)",
                    code.name,
                    len(pending),
                    err.details(),
                )
                return False
            # Not retryable (UNAUTHENTICATED, PERMISSION_DENIED, INVALID_ARGUMENT, ...): the
            # same events would fail again, so they are rejected, not resent.
            error = error_from_rpc(err)
            logger.error(
                "rlaas_sdk ingest stream refused, %d events rejected: %s", len(pending), error
            )
            for sequence in list(pending):
                self._buffer.settle(sequence, Outcome.OUTCOME_REJECTED)
            return False
        finally:
            self._call = None
        if pending:
            logger.warning(
                "rlaas_sdk ingest stream ended with %d events unacknowledged; resending",
                len(pending),
            )
            self._buffer.add_retry()
            return False
        return True

    def _settle(
        self, pending: dict[int, PendingEvent], result: telemetry_pb2.IngestEventsResponse
    ) -> None:
        event = pending.get(result.sequence)
        if event is None:
            logger.warning("rlaas_sdk ignored a result for unknown sequence %d", result.sequence)
            return
        if result.outcome not in (
            Outcome.OUTCOME_ACCEPTED,
            Outcome.OUTCOME_DUPLICATE,
            Outcome.OUTCOME_REJECTED,
        ):
            return  # unspecified outcome: leave it pending so that it is resent
        del pending[result.sequence]
        self._buffer.settle(result.sequence, result.outcome)
        if result.outcome == Outcome.OUTCOME_REJECTED:
            logger.warning(
                "rlaas_sdk event rejected kind=%s request_id=%s: %s",
                event.kind,
                event.request_id,
                error_from_status(result.error),
            )


# Clients still open at interpreter exit are closed (and so flushed) by this hook.
_open_clients: weakref.WeakSet[Client] = weakref.WeakSet()


@atexit.register
def _close_open_clients() -> None:
    for client in list(_open_clients):
        try:
            client.close()
        except Exception:
            logger.exception("rlaas_sdk failed to close a client at exit")
