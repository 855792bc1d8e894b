"""The connection every command calls through: one channel, the five service stubs, the
API key as the bearer token and the per-call timeout."""

from __future__ import annotations

import argparse
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import grpc
from google.protobuf.message import Message

from rlaas.inference.v1 import inference_pb2_grpc
from rlaas.registry.v1 import registry_pb2_grpc
from rlaas.retrieval.v1 import retrieval_pb2_grpc
from rlaas.telemetry.v1 import telemetry_pb2_grpc
from rlaas.training.v1 import training_pb2_grpc


class Ctl:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.channel = grpc.insecure_channel(args.target)
        self.registry = registry_pb2_grpc.RegistryServiceStub(self.channel)
        self.training = training_pb2_grpc.TrainingServiceStub(self.channel)
        self.telemetry = telemetry_pb2_grpc.TelemetryServiceStub(self.channel)
        self.inference = inference_pb2_grpc.InferenceServiceStub(self.channel)
        self.retrieval = retrieval_pb2_grpc.RetrievalServiceStub(self.channel)
        self.metadata = (("authorization", f"Bearer {args.api_key}"),)

    def call(self, rpc: Callable[..., Any], request: Message | Iterator[Message]) -> Any:
        return rpc(request, metadata=self.metadata, timeout=self.args.timeout)


# What a handler returns: the response, and how to show it as text (`--output text`).
Shown = tuple[Message, Callable[[Any], str]]
# A leaf command's handler: makes its one call.
Handler = Callable[[Ctl, argparse.Namespace], Shown]


def request_id(args: argparse.Namespace) -> str:
    """The mutation's idempotency key: `--request-id`, or a new UUID."""
    return args.request_id or str(uuid.uuid4())
