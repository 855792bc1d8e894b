"""In-process fake RLaaS servers (a real grpc server on a free port, fake behaviour) for
the SDK's unit tests: they script failures that the real server cannot be made to show
on demand (lost acks, UNAVAILABLE mid-stream, retries of Infer)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass, field

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from rlaas.inference.v1 import inference_pb2, inference_pb2_grpc
from rlaas.telemetry.v1 import telemetry_pb2, telemetry_pb2_grpc

Outcome = telemetry_pb2.IngestEventsResponse.Outcome


def request_id_of(event: telemetry_pb2.IngestEventsRequest) -> str:
    kind = event.WhichOneof("event")
    assert kind is not None
    return str(getattr(event, kind).request_id)


def invalid_argument(field_name: str, description: str) -> status_pb2.Status:
    info, bad = any_pb2.Any(), any_pb2.Any()
    info.Pack(error_details_pb2.ErrorInfo(reason="INVALID_FIELD", domain="rlaas.dev"))
    bad.Pack(
        error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(
                    field=field_name, description=description
                )
            ]
        )
    )
    return status_pb2.Status(
        code=code_pb2.INVALID_ARGUMENT, message=f"{field_name} is invalid", details=[info, bad]
    )


@dataclass
class FakeTelemetry(telemetry_pb2_grpc.TelemetryServiceServicer):
    """Dedups by request_id like the real server. `abort_plan[stream_no] = i` stores the
    i-th event of that stream, then fails the stream with UNAVAILABLE before its result is
    sent (a lost ack). Events whose skill is `reject_skill` are REJECTED."""

    abort_plan: dict[int, int] = field(default_factory=dict)
    reject_skill: str = "rejected_skill"
    streams: int = 0
    received: list[tuple[int, str]] = field(default_factory=list)  # (stream_no, request_id)
    stored: dict[str, telemetry_pb2.IngestEventsRequest] = field(default_factory=dict)
    metadata: list[dict[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def IngestEventBatches(
        self,
        request_iterator: Iterator[telemetry_pb2.IngestEventBatchesRequest],
        context: grpc.ServicerContext,
    ) -> Iterator[telemetry_pb2.IngestEventBatchesResponse]:
        with self.lock:
            self.streams += 1
            stream_no = self.streams
            self.metadata.append(dict(context.invocation_metadata()))
        for request in request_iterator:
            results = []
            for index, event in enumerate(request.events):
                rid = request_id_of(event)
                with self.lock:
                    self.received.append((stream_no, rid))
                    rejected = (
                        event.HasField("create_interaction")
                        and event.create_interaction.interaction.skill == self.reject_skill
                    )
                    if rejected:
                        outcome = Outcome.OUTCOME_REJECTED
                    elif rid in self.stored:
                        outcome = Outcome.OUTCOME_DUPLICATE
                    else:
                        outcome = Outcome.OUTCOME_ACCEPTED
                        self.stored[rid] = event
                if self.abort_plan.get(stream_no) == index:
                    # Stored, but the results never reach the client: a lost ack.
                    context.abort(grpc.StatusCode.UNAVAILABLE, "scripted failure")
                results.append(
                    telemetry_pb2.IngestEventsResponse(
                        sequence=event.sequence,
                        request_id=rid,
                        outcome=outcome,
                        error=invalid_argument("interaction.skill", "no such skill")
                        if rejected
                        else None,
                    )
                )
            yield telemetry_pb2.IngestEventBatchesResponse(results=results)


@dataclass
class FakeInference(inference_pb2_grpc.InferenceServiceServicer):
    """Fails the first `unavailable` calls with UNAVAILABLE; with `invalid`, every call
    fails with INVALID_ARGUMENT and rich details."""

    unavailable: int = 0
    invalid: bool = False
    request_ids: list[str] = field(default_factory=list)

    def Infer(
        self, request: inference_pb2.InferRequest, context: grpc.ServicerContext
    ) -> inference_pb2.InferResponse:
        self.request_ids.append(request.request_id)
        if self.invalid:
            context.abort_with_status(
                rpc_status.to_status(invalid_argument("messages[0].content", "empty"))
            )
        if len(self.request_ids) <= self.unavailable:
            context.abort(grpc.StatusCode.UNAVAILABLE, "warming up")
        return inference_pb2.InferResponse(
            interaction_id="int-1",
            output_id="out-1",
            policy_id=f"{request.skill}@v1",
            text=f"echo: {request.messages[-1].content}",
        )


@dataclass
class FakeServer:
    telemetry: FakeTelemetry
    inference: FakeInference
    server: grpc.Server
    port: int

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"


def start_fake_server() -> FakeServer:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    telemetry, inference = FakeTelemetry(), FakeInference()
    telemetry_pb2_grpc.add_TelemetryServiceServicer_to_server(telemetry, server)
    inference_pb2_grpc.add_InferenceServiceServicer_to_server(inference, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return FakeServer(telemetry, inference, server, port)
