"""TritonBackend: a client (tritonclient.grpc.aio, KServe v2 gRPC) of Triton Inference
Server models that follow the tensor convention of Triton's own vLLM backend:

- ``text_input``: the prompt, with the base model's chat template already applied
  (the vLLM backend takes a string, not a chat), rendered here by ``render``;
- ``sampling_parameters``: JSON (``max_tokens``, ``temperature``, ``top_p``, ``seed``,
  ``stop``, and ``lora_name`` for the adapter);
- ``stream``, ``exclude_input_in_output`` (always true here), ``return_finish_reason``,
  ``return_num_input_tokens``, ``return_num_output_tokens``;
- replies: ``text_output`` (a delta per response when streaming), ``finish_reason``,
  ``num_input_tokens``, ``num_output_tokens``.

So the same client serves the project's CPU model repository (engines/triton: transformers
+ PEFT in Triton's Python backend) and a GPU Triton running the vLLM backend. Those
models are decoupled, which Triton's unary ModelInfer refuses: every call goes through
the bidirectional ModelStreamInfer, and a non-streaming call reads its one response.

Adapters are named ``<object key>@<sha256>`` (engine_adapters): the model fetches them
from the object store itself. Every call carries a gRPC deadline: running past it is
DeadlineExceeded, a down or restarting server Unavailable, an adapter the model cannot
load FailedPrecondition, and bad input InvalidArgument naming the field.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import grpc
import numpy as np
from tritonclient.grpc import InferInput, InferRequestedOutput, InferResult
from tritonclient.grpc.aio import InferenceServerClient
from tritonclient.utils import InferenceServerException

from services.errors import DeadlineExceeded, DomainError, Unavailable
from services.inference.backends.base import (
    DEFAULT_MODEL_NAME,
    GenerationRequest,
    GenerationResult,
    failed_precondition_from_message,
    invalid_argument_from_message,
    render_chat,
    validate_request,
)
from services.inference.backends.engine_adapters import engine_adapter_name
from services.objects.store import ObjectStore

FINAL_RESPONSE = "triton_final_response"
HEALTH_TIMEOUT_S = 2.0
_OUTPUTS = ("text_output", "finish_reason", "num_input_tokens", "num_output_tokens")

PromptRenderer = Callable[[list[dict[str, str]]], str]


class ChatTemplate:
    """The base model's chat template, from its tokenizer files (no weights loaded)."""

    def __init__(self, model_dir: Path) -> None:
        from transformers import AutoTokenizer

        self._tokenizer = AutoTokenizer.from_pretrained(model_dir)

    def __call__(self, messages: list[dict[str, str]]) -> str:
        return render_chat(self._tokenizer, messages)


def _bool_input(name: str, value: bool) -> InferInput:
    tensor = InferInput(name, [1], "BOOL")
    tensor.set_data_from_numpy(np.array([value], dtype=np.bool_))
    return tensor


def _bytes_input(name: str, value: str) -> InferInput:
    tensor = InferInput(name, [1], "BYTES")
    tensor.set_data_from_numpy(np.array([value.encode()], dtype=np.object_))
    return tensor


def _first(result: InferResult, name: str) -> Any:
    value = result.as_numpy(name)
    return None if value is None or value.size == 0 else value.flat[0]


def _map_error(code: str | None, message: str, url: str) -> DomainError:
    """A failed call as a DomainError. The model's errors come as
    ``"<CODE>: <REASON>: <message>"`` (a stream carries no status code); anything else
    (a transport failure, another model's error text) means the server cannot answer."""
    code = (code or "").removeprefix("StatusCode.")
    if code == "DEADLINE_EXCEEDED":
        return DeadlineExceeded(f"triton at {url} did not answer within the deadline")
    head, sep, rest = message.partition(": ")
    if not code and sep:
        if head == "INVALID_ARGUMENT":
            return invalid_argument_from_message(rest, default_field="sampling_parameters")
        if head == "FAILED_PRECONDITION":
            return failed_precondition_from_message(rest)
    return Unavailable(f"triton at {url}: {code or 'error'}: {message}")


class TritonBackend:
    def __init__(
        self,
        url: str,
        model_name: str = DEFAULT_MODEL_NAME,
        *,
        render: PromptRenderer,
        objects: ObjectStore,
        name: str = "triton",
        health_timeout_s: float = HEALTH_TIMEOUT_S,
    ) -> None:
        """``url``: ``host:port`` of Triton's gRPC endpoint; ``render``: the base model's
        chat template; ``objects``: the store the model reads adapters from."""
        self.name = name
        self.health_timeout_s = health_timeout_s
        self.url = url
        self.model_name = model_name
        self.render = render
        self.objects = objects
        self._client: InferenceServerClient | None = None

    @property
    def client(self) -> InferenceServerClient:
        # Created lazily: the grpc.aio channel binds to the running event loop.
        if self._client is None:
            self._client = InferenceServerClient(self.url)
        return self._client

    def _request(self, req: GenerationRequest, *, stream: bool) -> dict[str, Any]:
        sampling: dict[str, Any] = {
            "max_tokens": req.max_new_tokens,
            "temperature": req.temperature,
            "top_p": req.top_p,
        }
        if req.seed is not None:
            sampling["seed"] = req.seed
        if req.stop:
            sampling["stop"] = list(req.stop)
        if req.adapter is not None:
            sampling["lora_name"] = engine_adapter_name(self.objects, req.adapter)
        inputs = [
            _bytes_input("text_input", self.render(req.messages)),
            _bool_input("stream", stream),
            _bytes_input("sampling_parameters", json.dumps(sampling)),
            _bool_input("exclude_input_in_output", True),
            _bool_input("return_finish_reason", True),
            _bool_input("return_num_input_tokens", True),
            _bool_input("return_num_output_tokens", True),
        ]
        return {
            "model_name": self.model_name,
            "inputs": inputs,
            "outputs": [InferRequestedOutput(n) for n in _OUTPUTS],
            # The final flag arrives on a response of its own, data or not.
            "parameters": {"enable_empty_final_response": True},
        }

    async def _responses(
        self, req: GenerationRequest, *, stream: bool, timeout_s: float
    ) -> AsyncIterator[InferResult]:
        validate_request(req)
        request = self._request(req, stream=stream)

        async def requests() -> AsyncIterator[dict[str, Any]]:
            yield request

        responses = self.client.stream_infer(requests(), stream_timeout=timeout_s)
        try:
            async for result, error in responses:
                if error is not None:
                    raise _map_error(error.status(), error.message() or "", self.url)
                yield result
                final = result.get_response().parameters.get(FINAL_RESPONSE)
                if final is not None and final.bool_param:
                    return
            raise Unavailable(f"triton at {self.url}: the stream ended without a final reply")
        except grpc.RpcError as exc:  # the stream iterator raises raw gRPC errors
            code = exc.code() if isinstance(exc, grpc.aio.AioRpcError) else None
            details = exc.details() if isinstance(exc, grpc.aio.AioRpcError) else str(exc)
            raise _map_error(str(code), details or "", self.url) from exc
        except InferenceServerException as exc:
            raise _map_error(exc.status(), exc.message() or "", self.url) from exc
        finally:
            responses.cancel()

    async def generate(self, req: GenerationRequest, *, timeout_s: float) -> GenerationResult:
        text: list[str] = []
        prompt_tokens = completion_tokens = 0
        finish_reason = "stop"
        async for result in self._responses(req, stream=False, timeout_s=timeout_s):
            delta = _first(result, "text_output")
            if delta is not None:
                text.append(delta.decode())
            prompt_tokens = max(prompt_tokens, int(_first(result, "num_input_tokens") or 0))
            completion_tokens += int(_first(result, "num_output_tokens") or 0)
            reason = _first(result, "finish_reason")
            if reason is not None and reason.decode() not in ("", "None"):
                finish_reason = reason.decode()
        return GenerationResult(
            text="".join(text),
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            finish_reason="length" if finish_reason == "length" else "stop",
        )

    async def stream(self, req: GenerationRequest, *, timeout_s: float) -> AsyncIterator[str]:
        async for result in self._responses(req, stream=True, timeout_s=timeout_s):
            delta = _first(result, "text_output")
            if delta is not None and delta:
                yield delta.decode()

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
