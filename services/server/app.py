"""Server bootstrap, in one place: grpc.aio server, the five services (all or some),
health with graceful-shutdown state, reflection, tracing, the RPC interceptor, and
SIGTERM handling."""

from __future__ import annotations

import asyncio
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
    from services.rest.server import RunningBridge
    from services.retrieval.core import RetrievalCore

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
    # Imported here so that importing this module stays cheap for the CLI.
    from services.inference.servicer import SPEC as inference
    from services.registry.servicer import SPEC as registry
    from services.retrieval.servicer import SPEC as retrieval
    from services.telemetry.servicer import SPEC as telemetry
    from services.training.servicer import SPEC as training

    return {s.name: s for s in (telemetry, inference, registry, training, retrieval)}


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
