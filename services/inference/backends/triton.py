"""TritonBackend: a KServe v2 gRPC client (tritonclient.grpc.aio) to our model server or
to a Triton deployment whose model follows the same tensor convention (documented in
``services.inference.model_server.kserve_grpc``): ``text_input`` is the chat as JSON,
``adapter`` the AdapterRef as JSON, the reply comes back in ``text_output``.

Every call carries a gRPC deadline (``client_timeout``/``stream_timeout``); anything that
looks like a down or slow server becomes ``Unavailable``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import grpc
import numpy as np
from tritonclient.grpc import InferInput, InferRequestedOutput
from tritonclient.grpc.aio import InferenceServerClient
from tritonclient.utils import InferenceServerException

from services.errors import DomainError, Unavailable
from services.inference.backends.base import (
    DEFAULT_MODEL_NAME,
    GenerationRequest,
    GenerationResult,
    failed_precondition_from_message,
    invalid_argument_from_message,
    split_wire_message,
    validate_request,
)

FINAL_RESPONSE = "triton_final_response"
HEALTH_TIMEOUT_S = 2.0
_TRANSIENT = {"UNAVAILABLE", "DEADLINE_EXCEEDED", "INTERNAL", "NOT_FOUND"}
_OUTPUTS = ("text_output", "prompt_tokens", "completion_tokens", "finish_reason")


def _bytes_input(name: str, values: list[str]) -> InferInput:
    tensor = InferInput(name, [len(values)], "BYTES")
    tensor.set_data_from_numpy(np.array([v.encode() for v in values], dtype=np.object_))
    return tensor


def _scalar_input(name: str, datatype: str, value: Any, dtype: Any) -> InferInput:
    tensor = InferInput(name, [1], datatype)
    tensor.set_data_from_numpy(np.array([value], dtype=dtype))
    return tensor


def _map_error(status: str | None, message: str, url: str) -> DomainError:
    """A tritonclient / gRPC failure as a DomainError."""
    code = (status or "").removeprefix("StatusCode.")
    if code == "INVALID_ARGUMENT":
        return invalid_argument_from_message(message)
    if code == "FAILED_PRECONDITION":
        return failed_precondition_from_message(message)
    if not code:
        # ModelStreamInfer errors arrive as a bare message: "<REASON>: <text>".
        reason, _ = split_wire_message(message)
        if reason == "INVALID_ARGUMENT":
            return invalid_argument_from_message(message)
        if reason is not None and reason not in _TRANSIENT:
            return failed_precondition_from_message(message)
    reason = "DEADLINE_EXCEEDED" if code == "DEADLINE_EXCEEDED" else None
    return Unavailable(f"triton at {url}: {code or 'error'}: {message}", reason=reason)


class TritonBackend:
    def __init__(
        self,
        url: str,
        model_name: str = DEFAULT_MODEL_NAME,
        *,
        name: str = "triton",
        health_timeout_s: float = HEALTH_TIMEOUT_S,
    ) -> None:
        """``url``: ``host:port`` of the KServe v2 gRPC endpoint."""
        self.name = name
        self.health_timeout_s = health_timeout_s
        self.url = url
        self.model_name = model_name
        self._client: InferenceServerClient | None = None

    @property
    def client(self) -> InferenceServerClient:
        # Created lazily: the grpc.aio channel binds to the running event loop.
        if self._client is None:
            self._client = InferenceServerClient(self.url)
        return self._client

    def _inputs(self, req: GenerationRequest) -> list[InferInput]:
        inputs = [
            _bytes_input("text_input", [json.dumps(req.messages)]),
            _scalar_input("max_tokens", "INT32", req.max_new_tokens, np.int32),
            _scalar_input("temperature", "FP32", req.temperature, np.float32),
            _scalar_input("top_p", "FP32", req.top_p, np.float32),
        ]
        if req.seed is not None:
            inputs.append(_scalar_input("seed", "INT64", req.seed, np.int64))
        if req.stop:
            inputs.append(_bytes_input("stop", list(req.stop)))
        if req.adapter is not None:
            ref = req.adapter
            payload = json.dumps({"name": ref.name, "uri": ref.uri, "sha256": ref.sha256})
            inputs.append(_bytes_input("adapter", [payload]))
        return inputs

    async def generate(self, req: GenerationRequest, *, timeout_s: float) -> GenerationResult:
        validate_request(req)
        try:
            result = await self.client.infer(
                self.model_name,
                self._inputs(req),
                outputs=[InferRequestedOutput(n) for n in _OUTPUTS],
                client_timeout=timeout_s,
            )
        except InferenceServerException as exc:
            raise _map_error(exc.status(), exc.message() or "", self.url) from exc
        text = result.as_numpy("text_output")
        if text is None or text.size != 1:
            raise Unavailable(f"triton at {self.url}: reply has no text_output")
        prompt_tokens = result.as_numpy("prompt_tokens")
        completion_tokens = result.as_numpy("completion_tokens")
        finish = result.as_numpy("finish_reason")
        finish_reason = finish.flat[0].decode() if finish is not None else "stop"
        return GenerationResult(
            text=text.flat[0].decode(),
            prompt_tokens=int(prompt_tokens.flat[0]) if prompt_tokens is not None else 0,
            completion_tokens=(
                int(completion_tokens.flat[0]) if completion_tokens is not None else 0
            ),
            finish_reason="length" if finish_reason == "length" else "stop",
        )

    async def stream(self, req: GenerationRequest, *, timeout_s: float) -> AsyncIterator[str]:
        validate_request(req)
        inputs = self._inputs(req)
        inputs.append(_scalar_input("stream", "BOOL", True, np.bool_))

        async def requests() -> AsyncIterator[dict[str, Any]]:
            yield {
                "model_name": self.model_name,
                "inputs": inputs,
                "parameters": {"enable_empty_final_response": True},
            }

        responses = self.client.stream_infer(requests(), stream_timeout=timeout_s)
        try:
            async for result, error in responses:
                if error is not None:
                    raise _map_error(error.status(), error.message() or "", self.url)
                response = result.get_response()
                final = response.parameters.get(FINAL_RESPONSE)
                text = result.as_numpy("text_output")
                if text is not None and text.size:
                    delta = text.flat[0].decode()
                    if delta:
                        yield delta
                if final is not None and final.bool_param:
                    return
        except grpc.RpcError as exc:  # the stream iterator raises raw gRPC errors
            code = exc.code() if isinstance(exc, grpc.aio.AioRpcError) else None
            raise _map_error(str(code), str(exc.details() if code else exc), self.url) from exc
        except InferenceServerException as exc:
            raise _map_error(exc.status(), exc.message() or "", self.url) from exc
        finally:
            responses.cancel()

    async def health(self) -> bool:
        try:
            return bool(
                await self.client.is_server_ready(client_timeout=self.health_timeout_s)
                and await self.client.is_model_ready(
                    self.model_name, client_timeout=self.health_timeout_s
                )
            )
        except Exception:  # health never raises
            return False

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None
