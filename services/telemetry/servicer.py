"""TelemetryService: thin servicer over the telemetry core."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import cast

import grpc
from google.protobuf.message import Message

from rlaas.telemetry.v1 import telemetry_pb2 as pb
from rlaas.telemetry.v1 import telemetry_pb2_grpc
from services.config import Settings
from services.errors import DomainError, InvalidArgument, ResourceExhausted
from services.paging import PageTokens
from services.server.decoding import Refused, refusal
from services.server.interceptors import principal
from services.telemetry import converters as cv
from services.telemetry import metrics
from services.telemetry.core import IncomingEvent, TelemetryCore
from services.telemetry.export import Exporter
from services.telemetry.store import Outcome, Written


@dataclass(frozen=True, slots=True)
class _End:
    """The last item the reader queues: the stream ended, or failed with ``error`` (a
    message that did not decode, a client that went away)."""

    error: Exception | None = None


class TelemetryServicer(telemetry_pb2_grpc.TelemetryServiceServicer):
    def __init__(
        self, core: TelemetryCore, exporter: Exporter, settings: Settings, pages: PageTokens
    ) -> None:
        self._core = core
        self._pages = pages
        self._exporter = exporter
        self._batch = settings.ingest_batch_size
        self._max_stream_events = settings.ingest_max_stream_events
        self._max_batch_events = settings.ingest_max_batch_events

    async def _one(self, request: IncomingEvent) -> Written:
        [written] = await self._core.ingest(principal(), [request])
        if written.outcome is Outcome.REJECTED:
            assert written.error is not None
            raise written.error
        return written

    async def CreateInteraction(
        self, request: pb.CreateInteractionRequest, context: grpc.aio.ServicerContext
    ) -> pb.CreateInteractionResponse:
        written = await self._one(request)
        response = pb.CreateInteractionResponse(interaction=written.stored[0])
        if len(written.stored) > 1:
            response.output.CopyFrom(written.stored[1])
        return response

    async def RecordOutput(
        self, request: pb.RecordOutputRequest, context: grpc.aio.ServicerContext
    ) -> pb.RecordOutputResponse:
        return pb.RecordOutputResponse(output=(await self._one(request)).stored[0])

    async def SubmitFeedback(
        self, request: pb.SubmitFeedbackRequest, context: grpc.aio.ServicerContext
    ) -> pb.SubmitFeedbackResponse:
        return pb.SubmitFeedbackResponse(feedback=(await self._one(request)).stored[0])

    async def RecordTaskResult(
        self, request: pb.RecordTaskResultRequest, context: grpc.aio.ServicerContext
    ) -> pb.RecordTaskResultResponse:
        return pb.RecordTaskResultResponse(task_result=(await self._one(request)).stored[0])

    async def IngestEvents(
        self,
        request_iterator: AsyncIterator[pb.IngestEventsRequest],
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[pb.IngestEventsResponse]:
        caller = principal()
        # A bounded read-ahead: when the database is the bottleneck the reader stops
        # pulling, and HTTP/2 flow control pushes back on the client.
        # A message refused at decoding (a NUL, a bad time; see PER_MESSAGE_STREAMS)
        # arrives as a `Refused` and is answered as a rejected event.
        queue: asyncio.Queue[pb.IngestEventsRequest | Refused | _End] = asyncio.Queue(
            maxsize=2 * self._batch
        )

        async def read() -> None:
            # The reader never swallows a failure: it is handed to the writer, which
            # acknowledges every event read before it and then ends the stream with it
            # (a message with invalid UTF-8 used to end the stream as OK, dropping the
            # events after it without a word). On cancellation nobody reads the queue.
            end = _End()
            try:
                async for message in request_iterator:
                    await queue.put(message)
            except Exception as exc:
                end = _End(exc)
            await queue.put(end)

        reader = asyncio.create_task(read())
        seen = 0
        try:
            while True:
                batch: list[pb.IngestEventsRequest | Refused] = []
                item = await queue.get()
                # Take what is already there, never wait for more: a client that sends
                # one event and awaits its result must not stall on a half-full batch.
                while not isinstance(item, _End):
                    batch.append(item)
                    if len(batch) >= self._batch or queue.empty():
                        break
                    item = queue.get_nowait()
                if batch:
                    seen = self._count(seen, len(batch))
                    messages = [cast(pb.IngestEventsRequest, _message_of(m)) for m in batch]
                    refused = {i: m.error for i, m in enumerate(batch) if isinstance(m, Refused)}
                    events = _events_of(messages, first_index=seen - len(batch))
                    written = await self._core.ingest(caller, events, refused)
                    for message, result in zip(messages, written, strict=True):
                        yield cv.ingest_result(message.sequence, result)
                if isinstance(item, _End):
                    if item.error is not None:
                        raise item.error
                    break
        finally:
            reader.cancel()

    async def IngestEventBatches(
        self,
        request_iterator: AsyncIterator[pb.IngestEventBatchesRequest | Refused],
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[pb.IngestEventBatchesResponse]:
        caller = principal()
        seen = 0
        async for item in request_iterator:
            # A batch refused at decoding (see PER_MESSAGE_STREAMS): its bad events are
            # rejected alone, the others stored.
            request = cast(pb.IngestEventBatchesRequest, _message_of(item))
            if len(request.events) > self._max_batch_events:
                raise InvalidArgument.field(
                    "events",
                    f"{len(request.events)} events in one message; at most "
                    f"{self._max_batch_events}",
                )
            seen = self._count(seen, len(request.events))
            events = _events_of(request.events, first_index=seen - len(request.events))
            refused = _refused_events(request.events) if isinstance(item, Refused) else None
            written = await self._core.ingest(caller, events, refused) if events else []
            yield pb.IngestEventBatchesResponse(
                results=[
                    cv.ingest_result(m.sequence, w)
                    for m, w in zip(request.events, written, strict=True)
                ]
            )

    def _count(self, seen: int, more: int) -> int:
        seen += more
        if seen > self._max_stream_events:
            raise ResourceExhausted(
                f"a stream may carry at most {self._max_stream_events} events; open a new stream",
                reason="STREAM_EVENT_LIMIT",
            )
        return seen

    async def GetInteraction(
        self, request: pb.GetInteractionRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetInteractionResponse:
        view = await self._core.get_interaction(principal(), request.interaction_id)
        return pb.GetInteractionResponse(
            interaction=view.interaction,
            outputs=view.outputs,
            feedback=view.feedback,
            task_results=view.task_results,
        )

    async def ListInteractions(
        self, request: pb.ListInteractionsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListInteractionsResponse:
        page = self._pages.bind(principal().tenant_id, request)
        interactions, token = await self._core.list_interactions(
            principal(),
            cv.interaction_filter(request),
            page_size=request.page_size,
            page_token=page.cursor,
        )
        return pb.ListInteractionsResponse(
            interactions=interactions, next_page_token=page.seal(token)
        )

    async def ExportEvents(
        self, request: pb.ExportEventsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ExportEventsResponse:
        start, end = cv.time_range(request)
        files = await self._exporter.export(
            principal(),
            start=start,
            end=end,
            event_types=list(request.event_types),
            skill=request.skill,
            redact_pii=request.redact_pii,
            request_id=request.request_id,
        )
        counts = {t: sum(f.row_count for f in files if f.event_type == t) for t in range(1, 5)}
        return pb.ExportEventsResponse(
            files=[cv.exported_file(f) for f in files],
            interaction_count=counts[pb.EVENT_TYPE_INTERACTION],
            output_count=counts[pb.EVENT_TYPE_OUTPUT],
            feedback_count=counts[pb.EVENT_TYPE_FEEDBACK],
            task_result_count=counts[pb.EVENT_TYPE_TASK_RESULT],
        )

    async def CompactExports(
        self, request: pb.CompactExportsRequest, context: grpc.aio.ServicerContext
    ) -> pb.CompactExportsResponse:
        start, end = cv.time_range(request)
        files, inputs = await self._exporter.compact(
            principal(),
            start=start,
            end=end,
            event_types=list(request.event_types),
            request_id=request.request_id,
        )
        return pb.CompactExportsResponse(
            files=[cv.exported_file(f) for f in files],
            input_file_count=inputs,
            partition_count=len(files),
            row_count=sum(f.row_count for f in files),
        )

    async def GetTelemetrySettings(
        self, request: pb.GetTelemetrySettingsRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetTelemetrySettingsResponse:
        caller = principal()
        settings = await self._core.get_settings(caller)
        counts = metrics.tenant_counts(caller.tenant_id)
        counters = []
        for event_type, kind in sorted(metrics.EVENT_NAMES.items()):
            values = {
                o: int(counts.get((kind, o), 0)) for o in ("accepted", "duplicate", "rejected")
            }
            if any(values.values()):
                counters.append(pb.IngestCounter(event_type=event_type, **values))
        return pb.GetTelemetrySettingsResponse(
            settings=cv.settings_to_proto(settings), counters=counters
        )

    async def UpdateTelemetrySettings(
        self, request: pb.UpdateTelemetrySettingsRequest, context: grpc.aio.ServicerContext
    ) -> pb.UpdateTelemetrySettingsResponse:
        s = request.settings
        updated = await self._core.update_settings(
            principal(),
            pii_enabled=s.pii_scrubbing_enabled,
            pii_entities=cv.entities_from_proto(list(s.pii_entities)),
            reward_wait_window_s=cv.window_from_proto(s),
            request_id=request.request_id,
        )
        return pb.UpdateTelemetrySettingsResponse(settings=cv.settings_to_proto(updated))


def _message_of(item: Message | Refused) -> Message:
    return item.message if isinstance(item, Refused) else item


def _refused_events(events: Sequence[pb.IngestEventsRequest]) -> dict[int, DomainError]:
    """The events of a refused batch that hold what decoding refuses, by index (their
    errors name fields of the event, as IngestEvents' do)."""
    found = {i: refusal(event) for i, event in enumerate(events)}
    return {i: error for i, error in found.items() if error is not None}


def _events_of(
    messages: Sequence[pb.IngestEventsRequest], *, first_index: int
) -> list[IncomingEvent]:
    events: list[IncomingEvent] = []
    for i, message in enumerate(messages):
        kind = message.WhichOneof("event")
        if kind is None:
            raise InvalidArgument.field("event", f"message {first_index + i} carries no event")
        events.append(getattr(message, kind))
    return events
