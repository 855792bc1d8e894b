"""The RLaaS model for Triton Inference Server's Python backend: the base model with
transformers + PEFT, several LoRA adapters on one base, the adapter chosen per request.

It speaks the tensor convention of Triton's own vLLM backend, so one client works
against this CPU model and against a GPU Triton running the vLLM (or TensorRT-LLM)
backend:

- inputs: ``text_input`` (the prompt, chat template already applied), optional
  ``stream``, ``sampling_parameters`` (JSON: ``max_tokens``, ``temperature``, ``top_p``,
  ``seed``, ``stop``, ``lora_name``), ``exclude_input_in_output``,
  ``return_finish_reason``, ``return_num_input_tokens``, ``return_num_output_tokens``;
- outputs: ``text_output``, ``finish_reason``, ``num_input_tokens``,
  ``num_output_tokens``;
- decoupled: every request is answered through its response sender, one response (or
  one per text delta when ``stream`` is true), the last one flagged final.

``lora_name`` is ``<object key>@<sha256>``: the adapter is fetched from the platform's
object store and checked (``rlaas_engine_adapters``), so Triton may run on another host.

Generation is the platform's own LocalBackend (batching, mixed-adapter batches, stop
strings, streaming), copied into this model's directory with ``rlaas_engine_adapters``
when the stack writes the model repository (infra/engines.py): the repository is
self-contained and runs in any environment with torch, transformers and PEFT.

Errors go back as ``"<CODE>: <REASON>: <message>"`` (the gRPC stream carries only a
message), which the platform's Triton client turns back into the same error.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np
import triton_python_backend_utils as pb_utils
from rlaas_engine_adapters import fetch_from_env, materialize, parse_name

from services.errors import DomainError, ErrorCode, FailedPrecondition, InvalidArgument
from services.inference.backends.base import AdapterRef, GenerationRequest, GenerationResult
from services.inference.backends.local import LocalBackend, LocalBackendConfig

ADAPTER_UNAVAILABLE = "ADAPTER_UNAVAILABLE"
CANCEL_POLL_S = 0.25
# vLLM's SamplingParams defaults, so a request means the same on either engine.
SAMPLING_DEFAULTS: dict[str, Any] = {"max_tokens": 16, "temperature": 1.0, "top_p": 1.0}
SAMPLING_KEYS = {"max_tokens", "temperature", "top_p", "seed", "stop", "lora_name"}
_TRITON_CODES = {
    ErrorCode.INVALID_ARGUMENT: "INVALID_ARG",
    ErrorCode.NOT_FOUND: "NOT_FOUND",
    ErrorCode.UNAVAILABLE: "UNAVAILABLE",
    ErrorCode.DEADLINE_EXCEEDED: "UNAVAILABLE",
}


def _scalar(request: Any, name: str) -> Any:
    tensor = pb_utils.get_input_tensor_by_name(request, name)
    if tensor is None:
        return None
    value = tensor.as_numpy().reshape(-1)
    if value.size != 1:
        raise InvalidArgument.field(name, f"expected one element, got {value.size}")
    return value[0]


def _flag(request: Any, name: str, default: bool = False) -> bool:
    value = _scalar(request, name)
    return default if value is None else bool(value)


def _sampling(request: Any) -> dict[str, Any]:
    raw = _scalar(request, "sampling_parameters")
    try:
        params = json.loads(raw) if raw is not None else {}
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidArgument.field("sampling_parameters", f"not JSON: {exc}") from exc
    if not isinstance(params, dict):
        raise InvalidArgument.field("sampling_parameters", "must be a JSON object")
    unknown = sorted(set(params) - SAMPLING_KEYS)
    if unknown:
        raise InvalidArgument.field(
            f"sampling_parameters.{unknown[0]}",
            f"not supported by this model (supported: {', '.join(sorted(SAMPLING_KEYS))})",
        )
    return {**SAMPLING_DEFAULTS, **params}


def _number(params: dict[str, Any], key: str, kind: type) -> Any:
    # vLLM's backend accepts numbers sent as strings ("0.1"); so does this one.
    try:
        return kind(params[key])
    except (TypeError, ValueError) as exc:
        raise InvalidArgument.field(
            f"sampling_parameters.{key}", f"not a number: {params[key]!r}"
        ) from exc


def _stop(params: dict[str, Any]) -> list[str]:
    stop = params.get("stop") or []
    stop = [stop] if isinstance(stop, str) else stop
    if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
        raise InvalidArgument.field("sampling_parameters.stop", "a string or a list of strings")
    return stop


def _bytes(name: str, value: str) -> Any:
    return pb_utils.Tensor(name, np.array([value.encode()], dtype=np.object_))


def _error_response(exc: DomainError) -> Any:
    code = getattr(pb_utils.TritonError, _TRITON_CODES.get(exc.code, "INTERNAL"))
    message = f"{exc.code.name}: {exc.reason}: {exc.message}"
    return pb_utils.InferenceResponse(output_tensors=[], error=pb_utils.TritonError(message, code))


class TritonPythonModel:
    def initialize(self, args: dict[str, str]) -> None:
        config = json.loads(args["model_config"])
        params = {k: v["string_value"] for k, v in config.get("parameters", {}).items()}
        self.timeout_s = float(params.get("REQUEST_TIMEOUT_S", "300"))
        self.backend = LocalBackend(
            LocalBackendConfig(
                model_dir=Path(params["BASE_MODEL_DIR"]),
                name=args["model_name"],
                max_adapters=int(params.get("MAX_ADAPTERS", "8")),
                max_batch=int(params.get("MAX_BATCH", "8")),
            )
        )
        self.fetch = fetch_from_env()
        self.lora_cache = Path(params.get("LORA_CACHE") or os.environ["RLAAS_TRITON_LORA_CACHE"])
        # One event loop for the backend (its batcher batches across requests); execute()
        # only hands requests to it, so Triton keeps accepting while earlier ones run.
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def execute(self, requests: list[Any]) -> None:
        for request in requests:
            asyncio.run_coroutine_threadsafe(self._serve(request), self.loop)
        return None

    def finalize(self) -> None:
        asyncio.run_coroutine_threadsafe(self.backend.close(), self.loop).result(timeout=30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=30)

    async def _serve(self, request: Any) -> None:
        sender = request.get_response_sender()
        final = pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL
        try:
            await self._generate(request, sender)
        except DomainError as exc:
            sender.send(_error_response(exc), flags=final)
        except Exception as exc:  # an answer, never a hung stream
            pb_utils.Logger.log_error(f"rlaas model: {exc!r}")
            internal = DomainError(f"{type(exc).__name__}: {exc}")
            sender.send(_error_response(internal), flags=final)

    async def _generate(self, request: Any, sender: Any) -> None:
        prompt_raw = _scalar(request, "text_input")
        if prompt_raw is None:
            raise InvalidArgument.field("text_input", "required")
        prompt = prompt_raw.decode() if isinstance(prompt_raw, bytes) else str(prompt_raw)
        stream = _flag(request, "stream")
        params = _sampling(request)
        req = GenerationRequest(
            messages=[],
            adapter=await self._adapter(params.get("lora_name")),
            max_new_tokens=_number(params, "max_tokens", int),
            temperature=_number(params, "temperature", float),
            top_p=_number(params, "top_p", float),
            stop=_stop(params),
            seed=_number(params, "seed", int) if params.get("seed") is not None else None,
        )
        extras = {
            "finish_reason": _flag(request, "return_finish_reason"),
            "num_input_tokens": _flag(request, "return_num_input_tokens"),
            "num_output_tokens": _flag(request, "return_num_output_tokens"),
        }
        final = pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL
        if not stream:
            result = await self._unless_cancelled(
                request, self.backend.generate(req, timeout_s=self.timeout_s, raw_prompt=prompt)
            )
            if result is None:
                sender.send(flags=final)
                return
            # vLLM's backend returns the prompt too unless told otherwise.
            text = (
                result.text if _flag(request, "exclude_input_in_output") else prompt + result.text
            )
            sender.send(self._response(text, result, extras), flags=final)
            return
        events = self.backend.stream_events(req, timeout_s=self.timeout_s, raw_prompt=prompt)
        async with contextlib.aclosing(events):
            async for event in events:
                if request.is_cancelled():  # the caller gave up: stop generating
                    sender.send(flags=final)
                    return
                if isinstance(event, str):
                    sender.send(pb_utils.InferenceResponse([_bytes("text_output", event)]))
                else:
                    sender.send(self._response("", event, extras), flags=final)

    @staticmethod
    async def _unless_cancelled(request: Any, work: Any) -> Any:
        """``work``'s result, or None once the caller has cancelled the request (a
        client deadline): the backend then drops it instead of generating for nobody."""
        task = asyncio.ensure_future(work)
        while True:
            done, _ = await asyncio.wait({task}, timeout=CANCEL_POLL_S)
            if done:
                return task.result()
            if request.is_cancelled():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
                return None

    def _response(self, text: str, result: GenerationResult, extras: dict[str, bool]) -> Any:
        outputs = [_bytes("text_output", text)]
        if extras["finish_reason"]:
            outputs.append(_bytes("finish_reason", result.finish_reason))
        if extras["num_input_tokens"]:
            tokens = np.array([result.prompt_tokens], dtype=np.uint32)
            outputs.append(pb_utils.Tensor("num_input_tokens", tokens))
        if extras["num_output_tokens"]:
            tokens = np.array([result.completion_tokens], dtype=np.uint32)
            outputs.append(pb_utils.Tensor("num_output_tokens", tokens))
        return pb_utils.InferenceResponse(outputs)

    async def _adapter(self, lora_name: Any) -> AdapterRef | None:
        if lora_name is None:
            return None
        name = str(lora_name)
        parsed = parse_name(name)
        path = None
        if parsed is not None and self.fetch is not None:
            path = await asyncio.to_thread(materialize, self.fetch, *parsed, self.lora_cache)
        if path is None or parsed is None:
            raise FailedPrecondition(
                f"adapter {name!r} cannot be loaded: the object store has no such adapter, "
                "or its weights do not hash to the name's sha256",
                reason=ADAPTER_UNAVAILABLE,
            )
        return AdapterRef(name=name, uri=str(path), sha256=parsed[1])
