"""InferenceService. The contract is complete; this server does not implement its RPCs
yet, so each answers UNIMPLEMENTED (with an ErrorInfo) through the generated base class,
behind the same auth, logging and health as every other service."""

from __future__ import annotations

from rlaas.inference.v1 import inference_pb2, inference_pb2_grpc
from services.server.app import ServiceSpec


class InferenceServicer(inference_pb2_grpc.InferenceServiceServicer):
    pass


SPEC = ServiceSpec(
    name="inference",
    descriptor=inference_pb2.DESCRIPTOR.services_by_name["InferenceService"],
    register=inference_pb2_grpc.add_InferenceServiceServicer_to_server,
    make_servicer=lambda runtime: InferenceServicer(),
)
