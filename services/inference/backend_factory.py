"""The model backend a server uses, chosen by ``RLAAS_INFERENCE_BACKEND`` and opened on
first use (loading weights must not delay the server's start or its health checks)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

from services.config import Settings
from services.inference.backends.base import (
    Backend,
    GenerationRequest,
    GenerationResult,
    Scorer,
)


def base_model_dir(settings: Settings) -> Path:
    """The base model as a Hugging Face directory an engine can load: the configured
    ``model_dir``, or the packaged SmolLM2 GGUF dequantized once into the state dir (the
    same cache the local backend and the trainer use)."""
    from services.inference.backends.local import (
        LocalBackendConfig,
        gguf_cache_path,
        load_base_model,
        smollm2_gguf_path,
    )

    if settings.model_dir is not None:
        return settings.model_dir.resolve()
    gguf, cache_dir = smollm2_gguf_path(), settings.state_dir.resolve() / "models"
    cached = gguf_cache_path(gguf, cache_dir)
    if not (cached / "config.json").is_file():  # dequantize once, into the cache
        load_base_model(LocalBackendConfig(gguf_path=gguf, cache_dir=cache_dir))
    return cached


async def open_backend(settings: Settings) -> Backend:
    kind = settings.inference_backend
    if kind == "triton":
        from services.inference.backends.triton import ChatTemplate, TritonBackend
        from services.objects.store import object_store

        # Triton's vLLM-backend convention takes a prompt string: the chat template is
        # applied here, from the base model's tokenizer.
        model_dir = await asyncio.to_thread(base_model_dir, settings)
        template = await asyncio.to_thread(ChatTemplate, model_dir)
        return TritonBackend(
            settings.triton_target,
            settings.base_model_name,
            render=template,
            # The model fetches adapters from this same store.
            objects=object_store(settings),
        )
    if kind == "vllm":
        from services.inference.backends.vllm import VLLMBackend
        from services.objects.store import object_store

        return VLLMBackend(
            settings.vllm_target,
            settings.base_model_name,
            # The engine's resolver reads adapters from this same store.
            objects=object_store(settings),
            max_adapters=settings.max_adapters,
        )
    from services.inference.backends.local import (
        LocalBackend,
        LocalBackendConfig,
        smollm2_gguf_path,
    )

    if settings.model_dir is not None:
        config = LocalBackendConfig(
            model_dir=settings.model_dir,
            max_adapters=settings.max_adapters,
            max_batch=settings.local_max_batch,
        )
    else:
        config = LocalBackendConfig(
            gguf_path=smollm2_gguf_path(),
            cache_dir=settings.state_dir.resolve() / "models",
            max_adapters=settings.max_adapters,
            max_batch=settings.local_max_batch,
        )
    return await LocalBackend.open(config)


class LazyBackend:
    """Opens the real backend on the first call, once, under a lock."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._backend: Backend | None = None
        self._lock = asyncio.Lock()
        self.name = settings.inference_backend

    async def get(self) -> Backend:
        if self._backend is None:
            async with self._lock:
                if self._backend is None:
                    self._backend = await open_backend(self._settings)
        return self._backend

    async def get_scorer(self) -> Scorer:
        backend = await self.get()
        if not isinstance(backend, Scorer):
            raise TypeError(f"the {self.name} backend computes no likelihoods")
        return backend

    async def generate(self, req: GenerationRequest, *, timeout_s: float) -> GenerationResult:
        return await (await self.get()).generate(req, timeout_s=timeout_s)

    async def stream(self, req: GenerationRequest, *, timeout_s: float) -> AsyncIterator[str]:
        async for delta in (await self.get()).stream(req, timeout_s=timeout_s):
            yield delta

    async def health(self) -> bool:
        return True if self._backend is None else await self._backend.health()

    async def close(self) -> None:
        if self._backend is not None:
            await self._backend.close()
