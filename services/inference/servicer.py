"""InferenceService: thin servicer over the inference gateway."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc

from rlaas.inference.v1 import inference_pb2, inference_pb2_grpc
from rlaas.retrieval.v1 import retrieval_pb2
from services.inference.backend_factory import LazyBackend
from services.inference.deployments import DeploymentCache
from services.inference.gateway import InferenceGateway, RegistryReader
from services.inference.router import Router, RouterSettings
from services.server.app import Runtime, ServiceSpec
from services.server.interceptors import principal
from services.telemetry.core import TelemetryCore


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


def registry_reader(runtime: Runtime) -> RegistryReader:
    from services.registry.reader import RegistryCatalogReader

    return RegistryCatalogReader(runtime.sessions)


def _make(runtime: Runtime) -> InferenceServicer:
    settings = runtime.settings
    registry = registry_reader(runtime)
    deployments = DeploymentCache(
        registry.deployment,
        ttl_s=settings.deployment_cache_ttl_s,
        dsn=_dsn(runtime.database_url),
        load_policy=registry.policy,
    )
    backend = runtime.backend or LazyBackend(settings)
    runtime.closers.append(backend.close)
    runtime.closers.append(deployments.close)
    router = Router(
        RouterSettings(
            default_max_exploration=settings.bandit_max_exploration,
            max_explorations_per_hour=settings.bandit_max_explorations_per_hour,
            kill_switch=settings.bandit_kill_switch,
        )
    )
    telemetry = TelemetryCore(settings, runtime.engine, runtime.sessions, runtime.pseudonyms)
    deployments.set_observation_loader(telemetry.bandits.observed)
    gateway = InferenceGateway(
        settings, registry, deployments, router, backend, telemetry,
        retriever=_RuntimeRetriever(runtime), objects=runtime.objects,
    )  # fmt: skip
    runtime.closers.append(gateway.drain_shadows)
    return InferenceServicer(gateway)


class _RuntimeRetriever:
    """The runtime's retrieval core, opened on the first grounded request (a gateway
    whose policies never retrieve never connects to the vector store)."""

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime

    async def search(
        self, tenant_id: str, index_id: str, query: str, *, top_k: int, mode: int,
        filter: retrieval_pb2.SearchFilter | None, rerank: bool, min_score: float,
    ) -> retrieval_pb2.SearchResponse:  # fmt: skip
        return await self._runtime.retrieval.search(
            tenant_id, index_id, query, top_k=top_k, mode=mode, filter=filter, rerank=rerank,
            min_score=min_score,
        )  # fmt: skip

    async def content_version(self, tenant_id: str, index_id: str) -> int:
        return await self._runtime.retrieval.content_version(tenant_id, index_id)


def _dsn(database_url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


SPEC = ServiceSpec(
    name="inference",
    descriptor=inference_pb2.DESCRIPTOR.services_by_name["InferenceService"],
    register=inference_pb2_grpc.add_InferenceServiceServicer_to_server,
    make_servicer=_make,
)
