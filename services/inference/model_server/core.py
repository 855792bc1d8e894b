"""What the model server's routes share: the served LocalBackend, the adapters
registered by name through the HTTP API (``/v1/load_lora_adapter``), the request
timeout, and the generation defaults."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from services.errors import InvalidArgument, NotFound
from services.inference.backends.base import (
    ADAPTER_WEIGHTS,
    AdapterRef,
    adapter_local_path,
    sha256_file,
)
from services.inference.backends.local import LocalBackend

DEFAULT_MAX_TOKENS = 256
DEFAULT_TIMEOUT_S = 300.0


@dataclass
class _Adapters:
    """Adapters registered through the HTTP API, by lora_name. The backend's LRU may
    evict them; a request re-loads them from their ref."""

    by_name: dict[str, AdapterRef] = field(default_factory=dict)


class ModelServerCore:
    """The backend, the adapter registry, request parsing."""

    def __init__(self, backend: LocalBackend, request_timeout_s: float) -> None:
        self.backend = backend
        self.request_timeout_s = request_timeout_s
        self.adapters = _Adapters()

    def adapter_for_model(self, model: str) -> AdapterRef | None:
        if model == self.backend.name:
            return None
        ref = self.adapters.by_name.get(model)
        if ref is None:
            raise NotFound("model", model)
        return ref

    async def load_lora(self, name: str, path: str, sha256: str | None) -> AdapterRef:
        if name in self.adapters.by_name or name == self.backend.name:
            raise InvalidArgument.field(
                "lora_name", f"The lora adapter '{name}' has already been loaded."
            )
        weights = adapter_local_path(AdapterRef(name, path, "")) / ADAPTER_WEIGHTS
        if not weights.is_file():
            raise InvalidArgument.field("lora_path", f"no {ADAPTER_WEIGHTS} under {path}")
        digest = sha256 if sha256 else await asyncio.to_thread(sha256_file, weights)
        ref = AdapterRef(name, path, digest)
        await self.backend.load_adapter(ref)
        self.adapters.by_name[name] = ref
        return ref

    async def unload_lora(self, name: str) -> None:
        ref = self.adapters.by_name.pop(name, None)
        if ref is None:
            raise NotFound("lora adapter", name)
        await self.backend.unload_adapter(ref.name)
