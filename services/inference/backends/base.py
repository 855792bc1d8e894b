"""The one interface every model-serving backend speaks, and the helpers they share.

A backend turns a :class:`GenerationRequest` (chat messages, an optional LoRA adapter,
sampling settings) into text. Three implement it: ``local`` (transformers + PEFT in this
process, the embedded default), ``triton`` (KServe v2 gRPC) and ``vllm`` (the
OpenAI-compatible HTTP API with dynamic LoRA).

Errors are domain errors (``services.errors``), never transport exceptions:

- ``Unavailable``: the backend is down, unreachable, or missed the call's deadline. Every
  call takes ``timeout_s`` and never waits longer.
- ``InvalidArgument``: the request itself is bad (prompt longer than the model's
  context, ``max_new_tokens`` < 1, ...), with the offending field named.
- ``FailedPrecondition(reason="ADAPTER_SHA256_MISMATCH")``: an adapter's bytes do not
  match the sha256 the registry recorded for it.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable
from urllib.parse import unquote, urlparse

from services.errors import DomainError, FailedPrecondition, FieldViolation, InvalidArgument

DEFAULT_MODEL_NAME = "SmolLM2-135M-Instruct"
"""The served name of the default base model (local backend, model server, clients)."""

BASE_ADAPTER = "__base__"
"""PEFT's name for "no adapter" in a mixed-adapter batch."""

ADAPTER_WEIGHTS = "adapter_model.safetensors"
ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_SHA256_MISMATCH = "ADAPTER_SHA256_MISMATCH"

FinishReason = Literal["stop", "length"]


@dataclass(frozen=True)
class AdapterRef:
    """A LoRA adapter artifact: a directory as PEFT ``save_pretrained`` writes it
    (``adapter_config.json`` + ``adapter_model.safetensors``).

    ``sha256`` is the hex sha256 of ``adapter_model.safetensors``; every backend checks
    it before the adapter serves a token.
    """

    name: str
    uri: str
    """``file://`` URI or a plain local path (``s3://`` later)."""
    sha256: str


@dataclass
class GenerationRequest:
    messages: list[dict[str, str]]
    """Chat messages (``role``/``content``); the backend applies the chat template."""
    adapter: AdapterRef | None = None
    max_new_tokens: int = 256
    temperature: float = 0.0
    """0 means greedy decoding."""
    top_p: float = 1.0
    stop: list[str] = field(default_factory=list)
    seed: int | None = None


@dataclass
class GenerationResult:
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: FinishReason


@runtime_checkable
class Backend(Protocol):
    name: str

    async def generate(self, req: GenerationRequest, *, timeout_s: float) -> GenerationResult:
        """The whole reply. Raises Unavailable, InvalidArgument, FailedPrecondition."""
        ...

    def stream(self, req: GenerationRequest, *, timeout_s: float) -> AsyncIterator[str]:
        """The reply as text deltas; ``timeout_s`` bounds the whole stream."""
        ...

    async def health(self) -> bool:
        """True when the backend can serve now; never raises, never hangs."""
        ...

    async def close(self) -> None: ...


@dataclass(frozen=True)
class ScoreRequest:
    """A reply to score: how likely a policy finds ``completion`` as its answer to
    ``messages``."""

    messages: list[dict[str, str]]
    completion: str
    adapter: AdapterRef | None = None


@runtime_checkable
class Scorer(Protocol):
    """A backend that can also score given replies (log-likelihoods), not only write
    them. The gate uses it to measure a candidate's preference accuracy on held-out
    pairs; a backend without it is evaluated by generation alone."""

    async def score(self, requests: Sequence[ScoreRequest], *, timeout_s: float) -> list[float]:
        """Per request, the summed log-probability (nats) of ``completion`` as the
        assistant's whole reply, its end-of-turn token included."""
        ...


def validate_request(req: GenerationRequest) -> None:
    """Reject what no backend can serve, naming the field."""
    violations: list[FieldViolation] = []
    if not req.messages:
        violations.append(FieldViolation("messages", "at least one message is required"))
    for i, message in enumerate(req.messages):
        if not isinstance(message.get("role"), str) or not isinstance(message.get("content"), str):
            violations.append(FieldViolation(f"messages[{i}]", "needs string 'role' and 'content'"))
    if req.max_new_tokens < 1:
        violations.append(FieldViolation("max_new_tokens", "must be >= 1"))
    if req.temperature < 0:
        violations.append(FieldViolation("temperature", "must be >= 0"))
    if not 0 < req.top_p <= 1:
        violations.append(FieldViolation("top_p", "must be in (0, 1]"))
    if any(not s for s in req.stop):
        violations.append(FieldViolation("stop", "stop strings must be non-empty"))
    if req.adapter is not None:
        if not req.adapter.name:
            violations.append(FieldViolation("adapter.name", "is required"))
        if len(req.adapter.sha256) != 64:
            violations.append(FieldViolation("adapter.sha256", "must be 64 hex digits"))
    if violations:
        raise InvalidArgument(violations)


def adapter_local_path(ref: AdapterRef) -> Path:
    """The local directory an adapter URI names (``file://`` or a plain path)."""
    parsed = urlparse(ref.uri)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    if parsed.scheme == "":
        return Path(ref.uri)
    raise InvalidArgument.field(
        "adapter.uri", f"unsupported scheme {parsed.scheme!r} (file:// or a local path)"
    )


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def verify_adapter(ref: AdapterRef) -> Path:
    """Check the adapter directory exists and its weights hash to ``ref.sha256``;
    return the directory. Blocking (reads the file): call it in a thread."""
    directory = adapter_local_path(ref)
    weights = directory / ADAPTER_WEIGHTS
    if not weights.is_file() or not (directory / ADAPTER_CONFIG).is_file():
        raise InvalidArgument.field(
            "adapter.uri", f"{directory} holds no {ADAPTER_CONFIG} + {ADAPTER_WEIGHTS}"
        )
    actual = sha256_file(weights)
    if actual != ref.sha256.lower():
        raise FailedPrecondition(
            f"adapter {ref.name!r}: sha256 of {weights} is {actual}, expected {ref.sha256}",
            reason=ADAPTER_SHA256_MISMATCH,
            metadata={"adapter": ref.name, "expected": ref.sha256, "actual": actual},
        )
    return directory


def cut_at_stop(text: str, stop: list[str]) -> tuple[str, bool]:
    """``text`` up to the earliest stop string, and whether one was found."""
    cut = min((i for s in stop if (i := text.find(s)) >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)


def safe_prefix_len(text: str, stop: list[str]) -> int:
    """How much of ``text`` can be streamed out without emitting the start of a stop
    string that later text could complete."""
    hold = 0
    for s in stop:
        for k in range(min(len(s) - 1, len(text)), 0, -1):
            if text.endswith(s[:k]):
                hold = max(hold, k)
                break
    return len(text) - hold


# -- errors across the wire ------------------------------------------------------------
# The model server puts a DomainError on the wire as "<REASON>: <message>" (gRPC status
# details, or the OpenAI error body's message plus a "reason" field); the remote backends
# turn it back into the same DomainError here.

_INVALID_PREFIX = "invalid argument: "


def render_chat(tokenizer: Any, messages: list[dict[str, str]]) -> str:
    """The prompt a chat model is given: ``messages`` through the tokenizer's chat
    template, ready for the assistant's turn."""
    try:
        return str(
            tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        )
    except Exception as exc:  # jinja errors: the template rejects these messages
        raise InvalidArgument.field("messages", f"chat template failed: {exc}") from exc


def wire_message(error: DomainError) -> str:
    return f"{error.reason}: {error.message}"


def split_wire_message(message: str) -> tuple[str | None, str]:
    """``(reason, message)`` from ``"<REASON>: <message>"``; no reason if absent."""
    head, sep, rest = message.partition(": ")
    if sep and head and head.replace("_", "").isalnum() and head.upper() == head:
        return head, rest
    return None, message


def invalid_argument_from_message(
    message: str, *, default_field: str = "request"
) -> InvalidArgument:
    """Rebuild the field violations of an InvalidArgument from its message
    (``invalid argument: field: description; ...``)."""
    reason, text = split_wire_message(message)
    violations: list[FieldViolation] = []
    if text.startswith(_INVALID_PREFIX):
        for part in text.removeprefix(_INVALID_PREFIX).split("; "):
            name, sep, description = part.partition(": ")
            if sep and name and " " not in name:
                violations.append(FieldViolation(name, description))
            elif violations:  # a "; " inside a description, not between violations
                last = violations.pop()
                violations.append(FieldViolation(last.field, f"{last.description}; {part}"))
    if not violations:
        violations = [FieldViolation(default_field, text)]
    return InvalidArgument(violations, reason=reason)


def failed_precondition_from_message(message: str) -> FailedPrecondition:
    reason, text = split_wire_message(message)
    return FailedPrecondition(text, reason=reason)
