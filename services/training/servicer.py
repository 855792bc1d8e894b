"""TrainingService. The contract is complete; this server does not implement its RPCs
yet, so each answers UNIMPLEMENTED (with an ErrorInfo) through the generated base class,
behind the same auth, logging and health as every other service."""

from __future__ import annotations

from rlaas.training.v1 import training_pb2, training_pb2_grpc
from services.server.app import ServiceSpec


class TrainingServicer(training_pb2_grpc.TrainingServiceServicer):
    pass


SPEC = ServiceSpec(
    name="training",
    descriptor=training_pb2.DESCRIPTOR.services_by_name["TrainingService"],
    register=training_pb2_grpc.add_TrainingServiceServicer_to_server,
    make_servicer=lambda runtime: TrainingServicer(),
)
