"""The model server's **OpenAI-compatible HTTP** side (aiohttp), the subset of the OpenAI
API that vLLM serves: ``GET /health``, ``GET /v1/models``,
``POST /v1/chat/completions`` and ``POST /v1/completions`` (both with ``"stream": true``
as server-sent events), and vLLM's dynamic LoRA endpoints
``POST /v1/load_lora_adapter {"lora_name", "lora_path"[, "sha256"]}`` and
``POST /v1/unload_lora_adapter {"lora_name"}``. ``model`` is the base model's name or a
loaded ``lora_name``. Errors: ``{"error": {"message", "type", "code", "reason"}}``.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from aiohttp import web

from services.errors import DomainError, ErrorCode, FieldViolation, InvalidArgument
from services.inference.backends.base import GenerationRequest, GenerationResult
from services.inference.model_server.core import DEFAULT_MAX_TOKENS, ModelServerCore

_HTTP_STATUS = {
    ErrorCode.INVALID_ARGUMENT: 400,
    ErrorCode.FAILED_PRECONDITION: 400,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.UNAVAILABLE: 503,
    ErrorCode.DEADLINE_EXCEEDED: 504,
}


def _error_response(exc: DomainError) -> web.Response:
    status = _HTTP_STATUS.get(exc.code, 500)
    body = {
        "object": "error",
        "error": {
            "message": exc.message,
            "type": exc.code.name,
            "param": None,
            "code": status,
            "reason": exc.reason,
        },
    }
    return web.json_response(body, status=status)


def _or(value: Any, default: Any) -> Any:
    return default if value is None else value


def _usage(result: GenerationResult) -> dict[str, int]:
    return {
        "prompt_tokens": result.prompt_tokens,
        "completion_tokens": result.completion_tokens,
        "total_tokens": result.prompt_tokens + result.completion_tokens,
    }


class OpenAIRoutes:
    def __init__(self, core: ModelServerCore) -> None:
        self.core = core

    def app(self) -> web.Application:
        app = web.Application()
        app.add_routes(
            [
                web.get("/health", self.health),
                web.get("/v1/models", self.models),
                web.post("/v1/chat/completions", self.chat_completions),
                web.post("/v1/completions", self.completions),
                web.post("/v1/load_lora_adapter", self.load_lora_adapter),
                web.post("/v1/unload_lora_adapter", self.unload_lora_adapter),
            ]
        )
        return app

    async def health(self, request: web.Request) -> web.Response:
        ok = await self.core.backend.health()
        return web.Response(status=200 if ok else 503)

    async def models(self, request: web.Request) -> web.Response:
        base = self.core.backend.name
        created = int(time.time())
        data = [
            {
                "id": base,
                "object": "model",
                "created": created,
                "owned_by": "rlaas",
                "root": base,
                "parent": None,
            }
        ]
        data += [
            {
                "id": name,
                "object": "model",
                "created": created,
                "owned_by": "rlaas",
                "root": ref.uri,
                "parent": base,
            }
            for name, ref in self.core.adapters.by_name.items()
        ]
        return web.json_response({"object": "list", "data": data})

    async def _body(self, request: web.Request) -> dict[str, Any]:
        try:
            body = await request.json()
        except ValueError as exc:
            raise InvalidArgument.field("body", f"not JSON: {exc}") from exc
        if not isinstance(body, dict):
            raise InvalidArgument.field("body", "must be a JSON object")
        return body

    def _generation_request(self, body: dict[str, Any], messages: list[Any]) -> GenerationRequest:
        violations = []
        if body.get("n", 1) != 1:
            violations.append(FieldViolation("n", "only n=1 is supported"))
        stop = body.get("stop") or []
        if isinstance(stop, str):
            stop = [stop]
        max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
        try:
            req = GenerationRequest(
                messages=messages,
                adapter=self.core.adapter_for_model(str(body.get("model", ""))),
                max_new_tokens=int(max_tokens if max_tokens is not None else DEFAULT_MAX_TOKENS),
                # OpenAI's default temperature is 1.
                temperature=float(_or(body.get("temperature"), 1.0)),
                top_p=float(_or(body.get("top_p"), 1.0)),
                stop=[str(s) for s in stop],
                seed=None if body.get("seed") is None else int(body["seed"]),
            )
        except (TypeError, ValueError) as exc:
            violations.append(FieldViolation("body", str(exc)))
            req = None
        if violations or req is None:
            raise InvalidArgument(violations)
        return req

    async def chat_completions(self, request: web.Request) -> web.StreamResponse:
        return await self._complete(request, chat=True)

    async def completions(self, request: web.Request) -> web.StreamResponse:
        return await self._complete(request, chat=False)

    async def _complete(self, request: web.Request, *, chat: bool) -> web.StreamResponse:
        try:
            body = await self._body(request)
            raw_prompt: str | None = None
            if chat:
                messages = body.get("messages")
                if not isinstance(messages, list):
                    raise InvalidArgument.field("messages", "a list of messages is required")
            else:
                prompt = body.get("prompt")
                if isinstance(prompt, list) and len(prompt) == 1:
                    prompt = prompt[0]
                if not isinstance(prompt, str):
                    raise InvalidArgument.field("prompt", "one prompt string is required")
                raw_prompt, messages = prompt, []
            req = self._generation_request(body, messages)
            model = str(body.get("model"))
            if body.get("stream"):
                return await self._stream(request, req, model, raw_prompt, chat=chat, body=body)
            result = await self.core.backend.generate(
                req, timeout_s=self.core.request_timeout_s, raw_prompt=raw_prompt
            )
        except DomainError as exc:
            return _error_response(exc)
        rid = ("chatcmpl-" if chat else "cmpl-") + uuid.uuid4().hex
        choice: dict[str, Any] = {
            "index": 0,
            "finish_reason": result.finish_reason,
            "logprobs": None,
        }
        if chat:
            choice["message"] = {"role": "assistant", "content": result.text}
        else:
            choice["text"] = result.text
        return web.json_response(
            {
                "id": rid,
                "object": "chat.completion" if chat else "text_completion",
                "created": int(time.time()),
                "model": model,
                "choices": [choice],
                "usage": _usage(result),
            }
        )

    async def _stream(
        self,
        request: web.Request,
        req: GenerationRequest,
        model: str,
        raw_prompt: str | None,
        *,
        chat: bool,
        body: dict[str, Any],
    ) -> web.StreamResponse:
        events = self.core.backend.stream_events(
            req, timeout_s=self.core.request_timeout_s, raw_prompt=raw_prompt
        )
        # Pull the first event before answering 200, so a bad request still gets a
        # proper error status instead of an error inside an open stream.
        try:
            first: str | GenerationResult | None = await anext(events)
        except StopAsyncIteration:
            first = None
        rid = ("chatcmpl-" if chat else "cmpl-") + uuid.uuid4().hex
        created = int(time.time())
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))

        def chunk(
            text: str | None, finish: str | None, usage: dict[str, int] | None = None
        ) -> bytes:
            choice: dict[str, Any] = {"index": 0, "finish_reason": finish, "logprobs": None}
            if chat:
                choice["delta"] = {} if text is None else {"content": text}
            else:
                choice["text"] = text or ""
            payload: dict[str, Any] = {
                "id": rid,
                "object": "chat.completion.chunk" if chat else "text_completion",
                "created": created,
                "model": model,
                "choices": [choice],
            }
            if usage is not None:
                payload["usage"] = usage
            return f"data: {json.dumps(payload)}\n\n".encode()

        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        if chat:
            role = {
                "index": 0,
                "delta": {"role": "assistant", "content": ""},
                "finish_reason": None,
                "logprobs": None,
            }
            head = {
                "id": rid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [role],
            }
            await response.write(f"data: {json.dumps(head)}\n\n".encode())
        try:
            event = first
            while event is not None:
                if isinstance(event, str):
                    await response.write(chunk(event, None))
                else:
                    await response.write(
                        chunk(None, event.finish_reason, _usage(event) if include_usage else None)
                    )
                try:
                    event = await anext(events)
                except StopAsyncIteration:
                    event = None
        except DomainError as exc:
            error = {
                "error": {
                    "message": exc.message,
                    "type": exc.code.name,
                    "code": _HTTP_STATUS.get(exc.code, 500),
                    "reason": exc.reason,
                }
            }
            await response.write(f"data: {json.dumps(error)}\n\n".encode())
        finally:
            await events.aclose()
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    async def load_lora_adapter(self, request: web.Request) -> web.Response:
        try:
            body = await self._body(request)
            name, path = body.get("lora_name"), body.get("lora_path")
            if not isinstance(name, str) or not name:
                raise InvalidArgument.field("lora_name", "is required")
            if not isinstance(path, str) or not path:
                raise InvalidArgument.field("lora_path", "is required")
            sha256 = body.get("sha256")
            await self.core.load_lora(name, path, sha256 if isinstance(sha256, str) else None)
        except DomainError as exc:
            return _error_response(exc)
        return web.Response(text=f"Success: LoRA adapter '{name}' added successfully.")

    async def unload_lora_adapter(self, request: web.Request) -> web.Response:
        try:
            body = await self._body(request)
            name = body.get("lora_name")
            if not isinstance(name, str) or not name:
                raise InvalidArgument.field("lora_name", "is required")
            await self.core.unload_lora(name)
        except DomainError as exc:
            return _error_response(exc)
        return web.Response(text=f"Success: LoRA adapter '{name}' removed successfully.")
