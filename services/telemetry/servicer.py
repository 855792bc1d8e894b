"""TelemetryService. The contract is complete; this server does not implement its RPCs
yet, so each answers UNIMPLEMENTED (with an ErrorInfo) through the generated base class,
behind the same auth, logging and health as every other service."""

from __future__ import annotations

from rlaas.telemetry.v1 import telemetry_pb2, telemetry_pb2_grpc
from services.server.app import ServiceSpec


class TelemetryServicer(telemetry_pb2_grpc.TelemetryServiceServicer):
    pass


SPEC = ServiceSpec(
    name="telemetry",
    descriptor=telemetry_pb2.DESCRIPTOR.services_by_name["TelemetryService"],
    register=telemetry_pb2_grpc.add_TelemetryServiceServicer_to_server,
    make_servicer=lambda runtime: TelemetryServicer(),
)
