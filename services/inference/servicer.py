"""InferenceService: thin servicer over the inference gateway."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc

from rlaas.inference.v1 import inference_pb2, inference_pb2_grpc
from services.inference.gateway import InferenceGateway
from services.server.interceptors import principal


class InferenceServicer(inference_pb2_grpc.InferenceServiceServicer):
    def __init__(self, gateway: InferenceGateway) -> None:
        self._gateway = gateway

    async def Infer(
        self, request: inference_pb2.InferRequest, context: grpc.aio.ServicerContext
    ) -> inference_pb2.InferResponse:
        return await self._gateway.infer(principal(), request)

    async def InferStream(
        self, request: inference_pb2.InferStreamRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[inference_pb2.InferStreamResponse]:
        async for chunk in self._gateway.infer_stream(principal(), request):
            yield chunk
