"""The model server's **KServe v2 gRPC** side (``inference.GRPCInferenceService``,
tritonclient's generated stubs), the protocol Triton speaks and the ``triton`` backend
talks: ServerLive, ServerReady, ServerMetadata, ModelReady, ModelMetadata, ModelInfer and
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
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import grpc
import numpy as np
from tritonclient.grpc import service_pb2, service_pb2_grpc
from tritonclient.utils import deserialize_bytes_tensor, serialize_byte_tensor

from services.errors import DomainError, ErrorCode, FailedPrecondition, InvalidArgument, NotFound
from services.inference.backends.base import (
    AdapterRef,
    GenerationRequest,
    GenerationResult,
    wire_message,
)
from services.inference.model_server.core import DEFAULT_MAX_TOKENS, ModelServerCore

FINAL_RESPONSE = "triton_final_response"

_GRPC_CODES = {code: grpc.StatusCode[code.name] for code in ErrorCode}

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


def _adapter_from_wire(core: ModelServerCore, value: str) -> AdapterRef | None:
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


def _infer_request(
    core: ModelServerCore, request: service_pb2.ModelInferRequest
) -> GenerationRequest:
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
    def __init__(self, core: ModelServerCore) -> None:
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
