"""Every RPC of the contract, read from the compiled descriptors (never a hand-kept list),
so a new RPC is attacked by the security suite the day it is added."""

from __future__ import annotations

from collections.abc import Iterator

from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor

from rlaas.inference.v1 import inference_pb2
from rlaas.options.v1 import options_pb2
from rlaas.registry.v1 import registry_pb2
from rlaas.retrieval.v1 import retrieval_pb2
from rlaas.telemetry.v1 import telemetry_pb2
from rlaas.training.v1 import training_pb2

SERVICE_MODULES = (telemetry_pb2, inference_pb2, registry_pb2, training_pb2, retrieval_pb2)


def all_services() -> list[ServiceDescriptor]:
    return [s for m in SERVICE_MODULES for s in m.DESCRIPTOR.services_by_name.values()]


def all_methods() -> Iterator[tuple[ServiceDescriptor, MethodDescriptor]]:
    for service in all_services():
        for method in service.methods:
            yield service, method


def required_scope(method: MethodDescriptor) -> int:
    return int(method.GetOptions().Extensions[options_pb2.required_scope])
