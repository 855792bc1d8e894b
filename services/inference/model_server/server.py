"""Both protocols of the model server on their ports, over one LocalBackend: the
KServe v2 gRPC servicer and the OpenAI-compatible HTTP app share one ModelServerCore, so an
adapter loaded over HTTP can be named in a KServe request."""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from aiohttp import web
from tritonclient.grpc import service_pb2_grpc

from services.inference.backends.local import LocalBackend
from services.inference.model_server.core import DEFAULT_TIMEOUT_S, ModelServerCore
from services.inference.model_server.kserve_grpc import KServeServicer
from services.inference.model_server.openai_http import OpenAIRoutes


@dataclass
class ModelServerHandle:
    grpc_port: int
    http_port: int
    host: str
    _grpc: grpc.aio.Server
    _http: web.AppRunner

    @property
    def grpc_target(self) -> str:
        return f"{self.host}:{self.grpc_port}"

    @property
    def http_url(self) -> str:
        return f"http://{self.host}:{self.http_port}"

    async def stop(self, grace: float = 1.0) -> None:
        await self._grpc.stop(grace)
        await self._http.cleanup()


async def start_model_server(
    backend: LocalBackend,
    grpc_port: int = 0,
    http_port: int = 0,
    *,
    host: str = "127.0.0.1",
    request_timeout_s: float = DEFAULT_TIMEOUT_S,
) -> ModelServerHandle:
    """Serve ``backend`` on both protocols; port 0 picks a free port. The caller keeps
    ownership of ``backend`` (``handle.stop()`` does not close it)."""
    core = ModelServerCore(backend, request_timeout_s)
    server = grpc.aio.server()
    service_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(KServeServicer(core), server)
    bound_grpc = server.add_insecure_port(f"{host}:{grpc_port}")
    if bound_grpc == 0:
        raise OSError(f"cannot bind gRPC port {grpc_port} on {host}")
    await server.start()
    runner = web.AppRunner(OpenAIRoutes(core).app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, http_port)
    try:
        await site.start()
    except OSError:
        await server.stop(0)
        await runner.cleanup()
        raise
    bound_http = runner.addresses[0][1]
    return ModelServerHandle(bound_grpc, bound_http, host, server, runner)
