"""Builders from plain Python values to the contract's request messages, with the local
validation that catches caller mistakes before anything is buffered."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from google.protobuf import json_format, struct_pb2, timestamp_pb2

from rlaas.inference.v1 import inference_pb2
from rlaas.registry.v1 import registry_pb2
from rlaas.telemetry.v1 import telemetry_pb2
from rlaas.training.v1 import training_pb2

ChatMessage = telemetry_pb2.ChatMessage
# `messages` may be protos or OpenAI-style dicts: {"role": "user", "content": "..."}.
MessagesLike = Sequence[Mapping[str, Any] | telemetry_pb2.ChatMessage]
InputLike = str | MessagesLike

_ROLES = {
    "system": ChatMessage.ROLE_SYSTEM,
    "developer": ChatMessage.ROLE_SYSTEM,
    "user": ChatMessage.ROLE_USER,
    "assistant": ChatMessage.ROLE_ASSISTANT,
    "tool": ChatMessage.ROLE_TOOL,
}
_MESSAGE_KEYS = {"role", "content", "name", "tool_call_id", "tool_calls"}
_GENERATION_FIELDS = {f.name for f in registry_pb2.GenerationConfig.DESCRIPTOR.fields}
_INFER_FIELDS = {"policy_id", "metadata", "labels", "training_opt_out"}


def now() -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.GetCurrentTime()
    return ts


def timestamp(value: datetime | None) -> timestamp_pb2.Timestamp:
    if value is None:
        return now()
    if value.tzinfo is None:
        raise ValueError("event_time must be timezone-aware")
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(value)
    return ts


def struct(value: Mapping[str, Any] | None, name: str) -> struct_pb2.Struct | None:
    if value is None:
        return None
    out = struct_pb2.Struct()
    try:
        out.update(dict(value))
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be JSON-like (str keys, JSON values): {err}") from err
    return out


def _require(value: str | None, name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} must be a non-empty string")
    return value


def _tool_call(raw: Mapping[str, Any]) -> telemetry_pb2.ToolCall:
    # Accept the OpenAI shape ({"id", "function": {"name", "arguments"}}) and a flat one.
    fn = raw.get("function", raw)
    return telemetry_pb2.ToolCall(
        tool_call_id=str(raw.get("id") or raw.get("tool_call_id") or ""),
        name=_require(fn.get("name"), "tool_calls[].name"),
        arguments=str(fn.get("arguments") or ""),
    )


def chat_messages(messages: MessagesLike) -> list[telemetry_pb2.ChatMessage]:
    """Convert dict messages (role / content / name / tool_call_id / tool_calls)."""
    if isinstance(messages, str | bytes) or not isinstance(messages, Sequence):
        raise ValueError("messages must be a list of messages")
    out = []
    for i, raw in enumerate(messages):
        if isinstance(raw, telemetry_pb2.ChatMessage):
            out.append(raw)
            continue
        if not isinstance(raw, Mapping):
            raise ValueError(f"messages[{i}] must be a dict or a ChatMessage")
        unknown = set(raw) - _MESSAGE_KEYS
        if unknown:
            raise ValueError(f"messages[{i}] has unknown keys {sorted(unknown)}")
        role = _ROLES.get(str(raw.get("role", "")).lower())
        if role is None:
            raise ValueError(f"messages[{i}].role must be one of {sorted(_ROLES)}")
        out.append(
            telemetry_pb2.ChatMessage(
                role=role,
                content=str(raw.get("content") or ""),
                name=str(raw.get("name") or ""),
                tool_call_id=str(raw.get("tool_call_id") or ""),
                tool_calls=[_tool_call(t) for t in raw.get("tool_calls") or ()],
            )
        )
    if not out:
        raise ValueError("messages must not be empty")
    return out


def interaction_input(value: InputLike) -> telemetry_pb2.InteractionInput:
    if isinstance(value, str):
        return telemetry_pb2.InteractionInput(text=_require(value, "input"))
    return telemetry_pb2.InteractionInput(messages=chat_messages(value))


def create_interaction(
    *,
    interaction_id: str,
    request_id: str,
    skill: str,
    input: InputLike,
    output: str | None,
    user_id: str | None,
    thread_id: str | None,
    policy_id: str | None,
    base_model: str | None,
    metadata: Mapping[str, Any] | None,
    context: Mapping[str, Any] | None,
    labels: Mapping[str, str] | None,
    training_opt_out: bool,
    event_time: datetime | None,
) -> telemetry_pb2.CreateInteractionRequest:
    when = timestamp(event_time)
    interaction = telemetry_pb2.Interaction(
        interaction_id=_require(interaction_id, "interaction_id"),
        skill=_require(skill, "skill"),
        user_id=user_id or "",
        thread_id=thread_id or "",
        input=interaction_input(input),
        policy_id=policy_id or "",
        base_model=base_model or "",
        metadata=struct(metadata, "metadata"),
        context=struct(context, "context"),
        labels=dict(labels or {}),
        training_opt_out=training_opt_out,
        event_time=when,
    )
    request = telemetry_pb2.CreateInteractionRequest(interaction=interaction, request_id=request_id)
    if output is not None:
        request.output.CopyFrom(
            telemetry_pb2.Output(
                text=_require(output, "output"), policy_id=policy_id or "", event_time=when
            )
        )
    return request


def submit_feedback(
    *,
    interaction_id: str,
    request_id: str,
    thumb: int | None,
    rating: int | None,
    comment: str | None,
    preferred_text: str | None,
    tags: Sequence[str] | None,
    edited_text: str | None,
    sent: bool | None,
    time_to_send_ms: int | None,
    escalated: bool | None,
    follow_up_count: int | None,
    output_id: str | None,
    user_id: str | None,
    event_time: datetime | None,
) -> telemetry_pb2.SubmitFeedbackRequest:
    _require(interaction_id, "interaction_id")
    if thumb is not None and (isinstance(thumb, bool) or thumb not in (1, -1)):
        raise ValueError("thumb must be +1 or -1")
    if rating is not None and (
        isinstance(rating, bool) or not isinstance(rating, int) or not 1 <= rating <= 5
    ):
        raise ValueError("rating must be an int from 1 to 5")
    if time_to_send_ms is not None and time_to_send_ms < 0:
        raise ValueError("time_to_send_ms must be >= 0")
    if follow_up_count is not None and follow_up_count < 0:
        raise ValueError("follow_up_count must be >= 0")
    feedback = telemetry_pb2.Feedback(
        output_id=output_id or "", user_id=user_id or "", event_time=timestamp(event_time)
    )
    explicit = {
        "thumb": None
        if thumb is None
        else telemetry_pb2.ExplicitFeedback.THUMB_UP
        if thumb == 1
        else telemetry_pb2.ExplicitFeedback.THUMB_DOWN,
        "rating": rating,
        "comment": comment,
        "preferred_text": preferred_text,
        "tags": list(tags) if tags else None,
    }
    implicit = {
        "edited_text": edited_text,
        "sent": sent,
        "time_to_send_ms": time_to_send_ms,
        "escalated": escalated,
        "follow_up_count": follow_up_count,
    }
    explicit = {k: v for k, v in explicit.items() if v is not None}
    implicit = {k: v for k, v in implicit.items() if v is not None}
    if not explicit and not implicit:
        raise ValueError("feedback needs at least one explicit or implicit signal")
    if explicit:
        feedback.explicit.CopyFrom(telemetry_pb2.ExplicitFeedback(**explicit))
    if implicit:
        feedback.implicit.CopyFrom(telemetry_pb2.ImplicitFeedback(**implicit))
    return telemetry_pb2.SubmitFeedbackRequest(
        interaction_id=interaction_id, feedback=feedback, request_id=request_id
    )


def record_task_result(
    *,
    interaction_id: str,
    request_id: str,
    correct: bool | None,
    f1: float | None,
    resolved: bool | None,
    labels: Mapping[str, str] | None,
    metrics: Mapping[str, float] | None,
    output_id: str | None,
    event_time: datetime | None,
) -> telemetry_pb2.RecordTaskResultRequest:
    _require(interaction_id, "interaction_id")
    if f1 is not None and not 0.0 <= f1 <= 1.0:
        raise ValueError("f1 must be in [0, 1]")
    if correct is None and f1 is None and resolved is None and not labels and not metrics:
        raise ValueError("task_result needs an outcome: correct, f1, resolved, labels or metrics")
    result = telemetry_pb2.TaskResult(
        output_id=output_id or "",
        labels=dict(labels or {}),
        metrics={k: float(v) for k, v in (metrics or {}).items()},
        event_time=timestamp(event_time),
    )
    if correct is not None:
        result.correct = correct
    if f1 is not None:
        result.f1 = f1
    if resolved is not None:
        result.resolved = resolved
    return telemetry_pb2.RecordTaskResultRequest(
        interaction_id=interaction_id, task_result=result, request_id=request_id
    )


def infer_request(
    *,
    skill: str,
    input: InputLike,
    request_id: str,
    user_id: str | None,
    thread_id: str | None,
    overrides: Mapping[str, Any],
) -> inference_pb2.InferRequest:
    """`overrides` are GenerationConfig fields (temperature, max_tokens, ...) or one of
    policy_id / metadata / labels / training_opt_out."""
    unknown = set(overrides) - _GENERATION_FIELDS - _INFER_FIELDS
    if unknown:
        raise TypeError(
            f"unknown infer overrides {sorted(unknown)}; "
            f"valid: {sorted(_GENERATION_FIELDS | _INFER_FIELDS)}"
        )
    messages = (
        [ChatMessage(role=ChatMessage.ROLE_USER, content=_require(input, "input"))]
        if isinstance(input, str)
        else chat_messages(input)
    )
    generation = {k: v for k, v in overrides.items() if k in _GENERATION_FIELDS}
    request = inference_pb2.InferRequest(
        skill=_require(skill, "skill"),
        messages=messages,
        user_id=user_id or "",
        thread_id=thread_id or "",
        policy_id=overrides.get("policy_id") or "",
        metadata=struct(overrides.get("metadata"), "metadata"),
        labels=dict(overrides.get("labels") or {}),
        training_opt_out=bool(overrides.get("training_opt_out", False)),
        request_id=request_id,
    )
    if generation:
        request.generation.CopyFrom(registry_pb2.GenerationConfig(**generation))
    return request


def _jsonable(value: Any) -> Any:
    # Durations may be given as timedelta or seconds; proto JSON wants "3600s".
    if isinstance(value, timedelta):
        return f"{value.total_seconds()}s"
    if isinstance(value, Mapping):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


_DURATION_FIELDS = {"interval", "data_window"}


def start_learning_loop(
    *, skill: str, request_id: str, display_name: str | None, config: Mapping[str, Any]
) -> training_pb2.StartLearningLoopRequest:
    """`config` holds LearningLoopConfig fields by name (nested messages as dicts, enums
    by name, durations as timedelta, seconds or "86400s")."""
    raw = {
        k: f"{v}s" if k in _DURATION_FIELDS and isinstance(v, int | float) else _jsonable(v)
        for k, v in config.items()
    }
    loop_config = training_pb2.LearningLoopConfig()
    try:
        json_format.ParseDict(raw, loop_config)
    except json_format.ParseError as err:
        raise ValueError(f"invalid learning-loop config: {err}") from err
    loop = training_pb2.LearningLoop(
        skill_id=_require(skill, "skill"), display_name=display_name or "", config=loop_config
    )
    return training_pb2.StartLearningLoopRequest(learning_loop=loop, request_id=request_id)


def promote_policy(
    *,
    skill: str,
    policy_id: str,
    reason: str,
    request_id: str,
    expected_revision: int | None,
) -> registry_pb2.PromotePolicyRequest:
    return registry_pb2.PromotePolicyRequest(
        skill_id=_require(skill, "skill"),
        policy_id=_require(policy_id, "policy_id"),
        reason=_require(reason, "reason"),
        expected_revision=expected_revision or 0,
        request_id=request_id,
    )
