"""The composition root: the one place that builds the process-wide resources and the
cores over them (one of each per process), wires each servicer to its cores, and runs
the grpc.aio server (the five services, all or some) with health and graceful-shutdown
state, reflection, tracing, the RPC interceptor, the REST bridge and SIGTERM handling.

Servicers and cores never import this module: it imports them."""

from __future__ import annotations

import asyncio
import gc
import importlib
import signal
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import grpc
import prometheus_client
import structlog
from google.protobuf.descriptor import ServiceDescriptor
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from opentelemetry.sdk.trace import TracerProvider
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from services import server_secret
from services.config import SERVICE_NAMES, Settings
from services.db.engine import create_engine, create_session_factory
from services.objects.store import ObjectStore, object_store
from services.paging import PageTokens
from services.server.interceptors import RpcInterceptor
from services.server.policy import rules_for
from services.server.tracing import server_interceptor, tracer_provider
from services.telemetry.pseudonyms import Pseudonyms
from services.tenancy.service import TenancyService

if TYPE_CHECKING:
    from services.registry.service import RegistryCore
    from services.rest.server import RunningBridge
    from services.retrieval.core import RetrievalCore
    from services.telemetry.core import TelemetryCore

log = structlog.get_logger(__name__)


@dataclass
class Runtime:
    """Process-wide resources the servicers share."""

    settings: Settings
    database_url: str
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    tenancy: TenancyService
    objects: ObjectStore
    # Seals and opens every List RPC's page tokens (keyed by the server secret).
    page_tokens: PageTokens
    # Keyed pseudonyms of personal identifiers in telemetry (keyed by the server secret).
    pseudonyms: Pseudonyms
    # Run at shutdown, after the server stopped (backends, listener connections).
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    # The model backend; None: the inference service opens the configured one lazily.
    # Benchmarks put an instant backend here to measure the gateway alone.
    backend: Any = None
    # The retrieval core (services.retrieval.core.RetrievalCore), made on first use of
    # ``retrieval``; the retrieval servicer and the inference gateway share it.
    _retrieval: Any = None
    # The telemetry core, made on first use of ``telemetry``: the telemetry servicer and
    # the gateway's logging share it, and so its per-tenant settings cache (a PII
    # setting changed through one is seen by the other at once).
    _telemetry: Any = None
    # The registry core, made on first use of ``registry``: RegistryService and the
    # training services (candidates, rollouts, evaluations) share it.
    _registry: Any = None

    @classmethod
    def create(cls, settings: Settings, database_url: str) -> Runtime:
        # First: without a usable secret the process must not start (ServerSecretMissing).
        secret = server_secret.resolve(settings)
        engine = create_engine(database_url, pool_size=settings.database_pool_size)
        sessions = create_session_factory(engine)
        return cls(
            settings=settings,
            database_url=database_url,
            engine=engine,
            sessions=sessions,
            tenancy=TenancyService(
                sessions, cache_ttl_s=settings.auth_cache_ttl_s, server_secret=secret
            ),
            objects=object_store(settings),
            page_tokens=PageTokens(secret),
            pseudonyms=Pseudonyms(secret),
        )

    @property
    def retrieval(self) -> RetrievalCore:
        if self._retrieval is None:
            from services.retrieval.core import RetrievalCore
            from services.retrieval.embedding import DIMENSION
            from services.retrieval.vectors import VectorStore

            s = self.settings
            vectors = VectorStore(
                s.milvus_target,
                token=s.milvus_token.get_secret_value() if s.milvus_token else None,
                collection=s.milvus_collection,
                dimension=DIMENSION,
            )
            self._retrieval = RetrievalCore(
                self.sessions, vectors, bm25_cache_indexes=s.retrieval_bm25_cache_indexes
            )

            async def close_vectors() -> None:
                vectors.close()

            self.closers.append(close_vectors)
        return self._retrieval

    @property
    def telemetry(self) -> TelemetryCore:
        if self._telemetry is None:
            from services.telemetry.core import TelemetryCore

            self._telemetry = TelemetryCore(
                self.settings, self.engine, self.sessions, self.pseudonyms
            )
        return self._telemetry

    @property
    def registry(self) -> RegistryCore:
        if self._registry is None:
            from services.registry.service import RegistryCore

            self._registry = RegistryCore(self.sessions, self.objects)
        return self._registry

    async def close(self) -> None:
        for closer in reversed(self.closers):
            try:
                await closer()
            except Exception:  # shutting down: log it, close the rest
                log.exception("runtime_closer_failed")
        await self.engine.dispose()


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    descriptor: ServiceDescriptor
    register: Callable[[Any, grpc.aio.Server], None]
    make_servicer: Callable[[Runtime], Any]


def service_specs() -> dict[str, ServiceSpec]:
    makers: tuple[tuple[str, str, Callable[[Runtime], Any]], ...] = (
        ("telemetry", "TelemetryService", _telemetry),
        ("inference", "InferenceService", _inference),
        ("registry", "RegistryService", _registry),
        ("training", "TrainingService", _training),
        ("retrieval", "RetrievalService", _retrieval),
    )
    return {name: _spec(name, service, make) for name, service, make in makers}


def _spec(name: str, service: str, make: Callable[[Runtime], Any]) -> ServiceSpec:
    """The generated stubs of ``rlaas.<name>.v1`` (cheap: no servicer is imported)."""
    messages = importlib.import_module(f"rlaas.{name}.v1.{name}_pb2")
    stubs = importlib.import_module(f"rlaas.{name}.v1.{name}_pb2_grpc")
    return ServiceSpec(
        name=name,
        descriptor=messages.DESCRIPTOR.services_by_name[service],
        register=getattr(stubs, f"add_{service}Servicer_to_server"),
        make_servicer=make,
    )


# ---- the servicers, wired to their cores ---------------------------------------------------
# Imported inside each maker so that importing this module stays cheap for the CLI and a
# process that serves some services never imports the others (torch, Milvus clients).


def _telemetry(runtime: Runtime) -> Any:
    from services.telemetry.export import Exporter
    from services.telemetry.servicer import TelemetryServicer

    exporter = Exporter(
        runtime.engine, runtime.objects, max_range_days=runtime.settings.export_max_range_days
    )
    return TelemetryServicer(runtime.telemetry, exporter, runtime.settings, runtime.page_tokens)


def _inference(runtime: Runtime) -> Any:
    from services.inference.backend_factory import LazyBackend
    from services.inference.deployments import DeploymentCache
    from services.inference.gateway import InferenceGateway
    from services.inference.router import Router, RouterSettings
    from services.inference.servicer import InferenceServicer
    from services.registry.reader import RegistryCatalogReader

    settings = runtime.settings
    registry = RegistryCatalogReader(runtime.sessions)
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
    telemetry = runtime.telemetry
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
        filter: Any, rerank: bool, min_score: float,
    ) -> Any:  # fmt: skip
        return await self._runtime.retrieval.search(
            tenant_id, index_id, query, top_k=top_k, mode=mode, filter=filter, rerank=rerank,
            min_score=min_score,
        )  # fmt: skip

    async def content_version(self, tenant_id: str, index_id: str) -> int:
        return await self._runtime.retrieval.content_version(tenant_id, index_id)


def _dsn(database_url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


def _registry(runtime: Runtime) -> Any:
    from services.registry.servicer import RegistryServicer

    return RegistryServicer(
        runtime.tenancy,
        runtime.registry,
        runtime.settings,
        runtime.page_tokens,
    )


def _training(runtime: Runtime) -> Any:
    from temporalio.client import Client

    from services.temporal import connect
    from services.training.datasets import DatasetService
    from services.training.evaluations import EvaluationService
    from services.training.loops import LoopService
    from services.training.rollouts import RolloutService
    from services.training.runs import DatasetResources, DatasetUris, TrainingRunService
    from services.training.servicer import TrainingServicer

    shared: list[Client] = []

    async def client() -> Client:
        # One Temporal connection for all of them, opened on first use.
        if not shared:
            shared.append(await connect(runtime.settings))
        return shared[0]

    settings = runtime.settings
    registry = runtime.registry
    datasets = DatasetService(runtime.engine, runtime.objects)
    # Training and evaluation run where the model is: the GPU workers' queue.
    queue = settings.gpu_task_queue
    # A run names its dataset by id, or by the object-store URI a loop's build left.
    named = DatasetResources(datasets.get, DatasetUris(runtime.objects))
    runs = TrainingRunService(client, registry, named, task_queue=queue)
    evaluations = EvaluationService(
        client, registry, runtime.objects, runs, datasets=datasets.get, task_queue=queue
    )
    loops = LoopService(
        client,
        poll_interval_s=settings.rollout_poll_interval_s,
        registry=registry,
        max_loops_per_tenant=settings.max_learning_loops_per_tenant,
        gpu_task_queue=queue,
    )
    rollouts = RolloutService(client, registry, poll_interval_s=settings.rollout_poll_interval_s)
    return TrainingServicer(loops, rollouts, datasets, runs, evaluations, runtime.page_tokens)


def _retrieval(runtime: Runtime) -> Any:
    from services.retrieval.servicer import RetrievalServicer

    return RetrievalServicer(runtime.retrieval, runtime.page_tokens)


@dataclass
class RunningServer:
    server: grpc.aio.Server
    health: health.aio.HealthServicer
    port: int
    service_names: list[str]
    tracer: TracerProvider

    async def stop(self, grace: float) -> None:
        # Tell load balancers first, then let in-flight RPCs finish.
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)
        self.tracer.shutdown()


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


def server_options(settings: Settings) -> list[tuple[str, int]]:
    """grpc core channel arguments of the server: connection limits (see the settings'
    documentation). Each is one that grpc core's chttp2 server honours."""
    return [
        ("grpc.so_reuseport", 0),
        # Covers the TCP accept, the (plaintext) handshake and the client's HTTP/2
        # preface and SETTINGS: a connection that sends nothing, or only the preface,
        # is closed when it runs out ("Did not receive HTTP/2 settings before handshake
        # timeout").
        ("grpc.server_handshake_timeout_ms", _ms(settings.grpc_handshake_timeout_s)),
        ("grpc.max_connection_idle_ms", _ms(settings.grpc_max_connection_idle_s)),
        # Bounds the rest: a slowloris keeps a stream open, so it is never idle.
        ("grpc.max_connection_age_ms", _ms(settings.grpc_max_connection_age_s)),
        ("grpc.max_connection_age_grace_ms", _ms(settings.grpc_max_connection_age_grace_s)),
        ("grpc.keepalive_time_ms", _ms(settings.grpc_keepalive_time_s)),
        ("grpc.keepalive_timeout_ms", _ms(settings.grpc_keepalive_timeout_s)),
        # 0: keep pinging a connection whose open stream carries no data (the default
        # stops after two pings, so a vanished peer would hold its stream for good).
        ("grpc.http2.max_pings_without_data", 0),
        (
            "grpc.http2.min_ping_interval_without_data_ms",
            _ms(settings.grpc_min_ping_interval_s),
        ),
        ("grpc.http2.max_ping_strikes", 2),
        ("grpc.max_concurrent_streams", settings.grpc_max_concurrent_streams),
        ("grpc.max_receive_message_length", settings.grpc_max_receive_message_bytes),
    ]


async def start_server(
    runtime: Runtime, services: Sequence[str] | None = None, *, port: int | None = None
) -> RunningServer:
    settings = runtime.settings
    names = list(services or settings.services)
    unknown = sorted(set(names) - set(SERVICE_NAMES))
    if unknown:
        raise ValueError(f"unknown services {unknown}; choose from {list(SERVICE_NAMES)}")
    specs = [service_specs()[n] for n in names]

    provider = tracer_provider(settings)
    server = grpc.aio.server(
        interceptors=[
            server_interceptor(provider),
            RpcInterceptor(runtime.tenancy, rules_for(s.descriptor for s in specs)),
        ],
        options=server_options(settings),
    )
    # Before any servicer counts anything: whether metrics name tenants (RLAAS_METRICS_
    # TENANT_LABELS; off by default, the endpoint is unauthenticated).
    from services.telemetry import metrics as telemetry_metrics

    telemetry_metrics.configure(tenant_labels=settings.metrics_tenant_labels)
    for spec in specs:
        spec.register(spec.make_servicer(runtime), server)

    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    full_names = [s.descriptor.full_name for s in specs]
    reflection.enable_server_reflection(
        [*full_names, health.SERVICE_NAME, reflection.SERVICE_NAME], server
    )

    bound = server.add_insecure_port(
        f"{settings.grpc_host}:{port if port is not None else settings.grpc_port}"
    )
    await server.start()
    for name in full_names:
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    await health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    # What start-up made (modules, descriptors, the runtime) lives as long as the
    # process: frozen, a full collection no longer walks it. Without this a gen-2
    # collection that lands among requests stalls them all (a 70 ms collection put the
    # gateway's p99 at ~80 ms in bench.gateway).
    gc.collect()
    gc.freeze()
    log.info("server_started", port=bound, services=full_names)
    return RunningServer(server, health_servicer, bound, full_names, provider)


async def start_rest(settings: Settings, running: RunningServer) -> RunningBridge | None:
    """The REST bridge (``services.rest``) on ``RLAAS_REST_PORT``, a client of this very
    server over loopback, for the services it serves; None when the port is 0."""
    if not settings.rest_port:
        return None
    from services.rest.server import start_bridge

    served = [
        s.descriptor
        for s in service_specs().values()
        if s.descriptor.full_name in running.service_names
    ]
    # The port actually bound (RLAAS_GRPC_PORT may be 0), on the interface it listens on.
    target = settings.model_copy(update={"grpc_port": running.port}).grpc_target
    return await start_bridge(
        served,
        target,
        host=settings.rest_bind_host,
        port=settings.rest_port,
        shutdown_timeout=settings.shutdown_grace_s,
        max_stream_body_bytes=settings.rest_max_stream_body_bytes,
        body_timeout_s=settings.rest_body_timeout_s,
        idle_timeout_s=settings.rest_idle_timeout_s,
    )


async def serve(settings: Settings, database_url: str) -> None:
    """Run until SIGTERM/SIGINT, then shut down gracefully. The database must be at the
    current schema (`rlaas serve` migrates it first)."""
    server_secret.resolve(settings)  # refuse to start before touching anything
    if settings.metrics_port:
        # Prometheus scrape endpoint (ingest counters and the process collectors).
        # It has no authentication, so it listens on RLAAS_METRICS_HOST (loopback unless
        # set), not on the interface the gRPC port is exposed on.
        prometheus_client.start_http_server(settings.metrics_port, addr=settings.metrics_host)
    runtime = Runtime.create(settings, database_url)
    running = await start_server(runtime)
    rest = await start_rest(settings, running)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("server_stopping", grace_s=settings.shutdown_grace_s)
    if rest is not None:
        # First: its in-flight requests are RPCs the gRPC server still finishes below.
        await rest.stop()
    await running.stop(settings.shutdown_grace_s)
    await runtime.close()
    log.info("server_stopped")
