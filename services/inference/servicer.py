"""InferenceService: thin servicer over the inference gateway."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc

from rlaas.inference.v1 import inference_pb2, inference_pb2_grpc
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
    telemetry = TelemetryCore(settings, runtime.engine, runtime.sessions)
    deployments.set_observation_loader(telemetry.bandits.observed)
    gateway = InferenceGateway(settings, registry, deployments, router, backend, telemetry)
    runtime.closers.append(gateway.drain_shadows)
    return InferenceServicer(gateway)


def _dsn(database_url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


SPEC = ServiceSpec(
    name="inference",
    descriptor=inference_pb2.DESCRIPTOR.services_by_name["InferenceService"],
    register=inference_pb2_grpc.add_InferenceServiceServicer_to_server,
    make_servicer=_make,
)
