"""The model server on its port: the OpenAI-compatible HTTP app over one LocalBackend."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from services.inference.backends.local import LocalBackend
from services.inference.model_server.core import DEFAULT_TIMEOUT_S, ModelServerCore
from services.inference.model_server.openai_http import OpenAIRoutes


@dataclass
class ModelServerHandle:
    http_port: int
    host: str
    _http: web.AppRunner

    @property
    def http_url(self) -> str:
        return f"http://{self.host}:{self.http_port}"

    async def stop(self) -> None:
        await self._http.cleanup()


async def start_model_server(
    backend: LocalBackend,
    http_port: int = 0,
    *,
    host: str = "127.0.0.1",
    request_timeout_s: float = DEFAULT_TIMEOUT_S,
) -> ModelServerHandle:
    """Serve ``backend``; port 0 picks a free port. The caller keeps ownership of
    ``backend`` (``handle.stop()`` does not close it)."""
    core = ModelServerCore(backend, request_timeout_s)
    runner = web.AppRunner(OpenAIRoutes(core).app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, http_port)
    try:
        await site.start()
    except OSError:
        await runner.cleanup()
        raise
    return ModelServerHandle(runner.addresses[0][1], host, runner)
