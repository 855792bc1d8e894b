"""VLLMBackend: an aiohttp client to an OpenAI-compatible server (vLLM, or our model
server) — chat completions, streaming (server-sent events) and vLLM's dynamic LoRA.

An adapter is loaded on first use with ``POST /v1/load_lora_adapter`` under the name
``<adapter name>-<sha256[:12]>`` (a new artifact under an old name is a new LoRA), after
its sha256 is checked here when the path is local. If the server forgot it (restart,
eviction: 404 on the model) it is loaded again once. Every request has a deadline
(aiohttp ``ClientTimeout``); connection failures, timeouts and 5xx become Unavailable.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp

from services.errors import DomainError, Unavailable
from services.inference.backends.base import (
    ADAPTER_SHA256_MISMATCH,
    DEFAULT_MODEL_NAME,
    AdapterRef,
    GenerationRequest,
    GenerationResult,
    adapter_local_path,
    failed_precondition_from_message,
    invalid_argument_from_message,
    validate_request,
    verify_adapter,
)

HEALTH_TIMEOUT_S = 2.0


class _ModelNotFound(Exception):
    pass


def lora_name(ref: AdapterRef) -> str:
    return f"{ref.name}-{ref.sha256[:12]}"


class VLLMBackend:
    def __init__(
        self,
        base_url: str,
        model: str = DEFAULT_MODEL_NAME,
        *,
        name: str = "vllm",
        health_timeout_s: float = HEALTH_TIMEOUT_S,
    ) -> None:
        """``base_url``: e.g. ``http://127.0.0.1:8000``; ``model``: the base model's name."""
        self.name = name
        self.health_timeout_s = health_timeout_s
        self.base_url = base_url.rstrip("/")
        self.model = model
        self._session: aiohttp.ClientSession | None = None
        self._loaded: dict[str, AdapterRef] = {}
        self._load_locks: dict[str, asyncio.Lock] = {}

    @property
    def session(self) -> aiohttp.ClientSession:
        # Created lazily: a ClientSession belongs to the running event loop.
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        return self._session

    # -- the Backend protocol ---------------------------------------------------------

    async def generate(self, req: GenerationRequest, *, timeout_s: float) -> GenerationResult:
        validate_request(req)
        deadline = time.monotonic() + timeout_s
        for attempt in range(2):
            model = await self._model_for(req.adapter, deadline)
            try:
                data = await self._post_json(
                    "/v1/chat/completions", self._body(req, model, stream=False), deadline
                )
            except _ModelNotFound as exc:
                if req.adapter is None or attempt == 1:
                    raise Unavailable(f"vllm at {self.base_url} does not serve {model!r}") from exc
                self._loaded.pop(model, None)
                continue
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
        raise AssertionError("unreachable")

    async def stream(self, req: GenerationRequest, *, timeout_s: float) -> AsyncIterator[str]:
        validate_request(req)
        deadline = time.monotonic() + timeout_s
        for attempt in range(2):
            model = await self._model_for(req.adapter, deadline)
            try:
                async for delta in self._stream_once(req, model, deadline):
                    yield delta
                return
            except _ModelNotFound as exc:
                if req.adapter is None or attempt == 1:
                    raise Unavailable(f"vllm at {self.base_url} does not serve {model!r}") from exc
                self._loaded.pop(model, None)

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

    async def unload_adapter(self, name: str, *, timeout_s: float = 30.0) -> bool:
        """Unload every version of adapter ``name`` this client loaded."""
        deadline = time.monotonic() + timeout_s
        names = [n for n, ref in self._loaded.items() if ref.name == name]
        for n in names:
            self._loaded.pop(n, None)
            with contextlib.suppress(_ModelNotFound):
                await self._post("/v1/unload_lora_adapter", {"lora_name": n}, deadline)
        return bool(names)

    async def _model_for(self, ref: AdapterRef | None, deadline: float) -> str:
        if ref is None:
            return self.model
        name = lora_name(ref)
        if name in self._loaded:
            return name
        lock = self._load_locks.setdefault(name, asyncio.Lock())
        async with lock:
            if name in self._loaded:
                return name
            path = adapter_local_path(ref)
            if path.exists():
                # Check the bytes before any server sees them.
                await asyncio.to_thread(verify_adapter, ref)
            body = {"lora_name": name, "lora_path": str(path), "sha256": ref.sha256}
            try:
                await self._post("/v1/load_lora_adapter", body, deadline)
            except DomainError as exc:
                if "already been loaded" not in exc.message:
                    raise
            self._loaded[name] = ref
        return name

    # -- HTTP -------------------------------------------------------------------------

    def _body(self, req: GenerationRequest, model: str, *, stream: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": model,
            "messages": req.messages,
            "max_tokens": req.max_new_tokens,
            "temperature": req.temperature,
            "top_p": req.top_p,
            "stream": stream,
        }
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

    def _deadline_error(self) -> Unavailable:
        return Unavailable(
            f"vllm at {self.base_url}: deadline exceeded", reason="DEADLINE_EXCEEDED"
        )

    async def _error(self, response: aiohttp.ClientResponse) -> Exception:
        text = await response.text()
        message, reason = text, None
        try:
            body = json.loads(text)
            error = body.get("error", body)
            if isinstance(error, dict):
                message = str(error.get("message", text))
                reason = error.get("reason")
            elif "message" in body:
                message = str(body["message"])
        except (ValueError, AttributeError):
            pass
        if response.status == 404 and ("model" in message.lower() or reason == "NOT_FOUND"):
            return _ModelNotFound(message)
        if response.status in (400, 422):
            if reason == ADAPTER_SHA256_MISMATCH or (reason and reason != "INVALID_ARGUMENT"):
                return failed_precondition_from_message(f"{reason}: {message}")
            wire = f"{reason}: {message}" if reason else message
            return invalid_argument_from_message(wire, default_field="messages")
        return Unavailable(f"vllm at {self.base_url}: HTTP {response.status}: {message}")

    async def _post(self, path: str, body: dict[str, Any], deadline: float) -> str:
        try:
            async with self.session.post(
                self.base_url + path, json=body, timeout=self._timeout(deadline)
            ) as response:
                if response.status != 200:
                    raise await self._error(response)
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
                    raise await self._error(response)
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
                            f"vllm at {self.base_url}: stream failed: {error.get('message')}",
                            reason=error.get("reason") or None,
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
