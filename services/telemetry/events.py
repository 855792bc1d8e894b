"""One incoming event (a request message of the contract) -> the row to store.

Steps, in order: fingerprint the request as sent (so a replay can be told from a
reused ``request_id``), validate it (every violation named by its field path), assign
server ids, then scrub PII from every free-text field in one walk over the message.

The telemetry core uses the contract's message classes as its event schema (they are
plain data: no gRPC here), because converting every event to another shape would cost
more than the rest of the ingest path.
"""

from __future__ import annotations

import hashlib
import math
import re
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from rlaas.telemetry.v1 import telemetry_pb2 as pb
from services.errors import FieldViolation, InvalidArgument
from services.telemetry.pii import Scrubber
from services.telemetry.pseudonyms import Pseudonyms

INTERACTION = pb.EVENT_TYPE_INTERACTION
OUTPUT = pb.EVENT_TYPE_OUTPUT
FEEDBACK = pb.EVENT_TYPE_FEEDBACK
TASK_RESULT = pb.EVENT_TYPE_TASK_RESULT

EVENT_NAMES = {
    INTERACTION: "interaction",
    OUTPUT: "output",
    FEEDBACK: "feedback",
    TASK_RESULT: "task_result",
}

_SKILL = re.compile(r"[a-z][a-z0-9_]{0,99}")
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@-]{0,63}")
_MAX_ID = 200
NUL = "\x00"
NUL_MESSAGE = "must not contain NUL (U+0000) characters"

# Identifiers are stored as sent (they join events and filter lists); every other
# string field is free text and is scrubbed, map keys (labels, Struct keys) and message
# author names included.
_NOT_TEXT = frozenset(
    {
        "interaction_id", "output_id", "feedback_id", "task_result_id", "tenant_id",
        "request_id", "skill", "user_id", "thread_id", "policy_id", "base_model",
        "chunk_id", "document_id", "tool_call_id", "primary_interaction_id", "arm",
        "rollout_id", "shadow_arms", "role",
    }
)  # fmt: skip
# Identifiers a tenant may fill with personal data (an email as a user id): stored as a
# keyed pseudonym when the scrubber finds any (services.telemetry.pseudonyms).
_PERSONAL_IDS = frozenset({"user_id", "thread_id"})
_TEXT_EXEMPT_MESSAGES = frozenset({"google.protobuf.Timestamp", "google.protobuf.Duration"})
_FLOATS = frozenset({FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT})


@dataclass(frozen=True, slots=True)
class Limits:
    max_event_bytes: int
    max_text_chars: int
    max_items: int
    max_clock_skew: timedelta
    max_event_age: timedelta


@dataclass(frozen=True)
class GatewayFields:
    """Output-only interaction fields only the inference gateway may set (never taken
    from a client's request)."""

    source: int
    routing: pb.RoutingDecision
    fingerprint: bytes  # of the caller's InferRequest, so a replayed Infer is a duplicate
    primary_interaction_id: str = ""


@dataclass(slots=True)
class Prepared:
    """An event ready to store."""

    event_type: int
    request_id: str
    event_id: str
    interaction_id: str
    fingerprint: bytes
    message: Message  # scrubbed Interaction / Output / Feedback / TaskResult
    event_time: datetime
    pii_counts: dict[str, int] = field(default_factory=dict)
    skill: str | None = None
    user_id: str | None = None
    thread_id: str | None = None
    policy_id: str | None = None
    source: int | None = None
    labels: dict[str, str] | None = None
    # True when the client chose event_id (it may collide on its own).
    client_chosen_id: bool = False


def fingerprint(request: Message) -> bytes:
    return hashlib.sha256(request.SerializeToString(deterministic=True)).digest()


def new_id() -> str:
    return uuid.uuid4().hex


class _Walker:
    """One pass over a message: bounds, enum values, and PII scrubbing of free text."""

    def __init__(
        self,
        limits: Limits,
        scrubber: Scrubber | None,
        identifier: Callable[[str], str] | None = None,
    ) -> None:
        self.limits = limits
        self.scrubber = scrubber
        self.identifier = identifier
        self.violations: list[FieldViolation] = []
        self.counts: Counter[str] = Counter()

    def text(self, value: str, path: str, scrub: bool) -> str:
        if len(value) > self.limits.max_text_chars:
            self.violations.append(
                FieldViolation(path, f"longer than {self.limits.max_text_chars} characters")
            )
            return value
        if scrub and self.scrubber is not None and value:
            result = self.scrubber.scrub(value)
            for entity, n in result.counts.items():
                self.counts[str(entity)] += n
            return result.text
        return value

    def walk(self, msg: Message, path: str) -> None:
        if msg.DESCRIPTOR.full_name in _TEXT_EXEMPT_MESSAGES:
            return
        for fd, value in msg.ListFields():
            here = f"{path}.{fd.name}" if path else fd.name
            scrub = fd.name not in _NOT_TEXT
            if fd.message_type is not None and fd.message_type.GetOptions().map_entry:
                self._map(msg, fd, value, here, scrub)
            elif fd.is_repeated:
                if len(value) > self.limits.max_items:
                    self.violations.append(
                        FieldViolation(here, f"more than {self.limits.max_items} items")
                    )
                    continue
                self._repeated(fd, value, here, scrub)
            elif fd.type == FieldDescriptor.TYPE_STRING:
                if fd.name in _PERSONAL_IDS and self.identifier is not None:
                    cleaned = self.identifier(value)
                    if cleaned != value:
                        self.counts["PSEUDONYMISED_ID"] += 1
                else:
                    cleaned = self.text(value, here, scrub)
                if cleaned is not value:
                    setattr(msg, fd.name, cleaned)
            elif fd.type == FieldDescriptor.TYPE_MESSAGE:
                self.walk(value, here)
            elif fd.type == FieldDescriptor.TYPE_ENUM:
                self.enum(fd, value, here)
            elif fd.type in _FLOATS:
                self.number(value, here)

    def _repeated(self, fd: FieldDescriptor, value: Any, path: str, scrub: bool) -> None:
        if fd.type == FieldDescriptor.TYPE_STRING:
            for i, item in enumerate(value):
                cleaned = self.text(item, f"{path}[{i}]", scrub)
                if cleaned is not item:
                    value[i] = cleaned
        elif fd.type == FieldDescriptor.TYPE_MESSAGE:
            for i, item in enumerate(value):
                self.walk(item, f"{path}[{i}]")
        elif fd.type == FieldDescriptor.TYPE_ENUM:
            for i, item in enumerate(value):
                self.enum(fd, item, f"{path}[{i}]")
        elif fd.type in _FLOATS:
            for i, item in enumerate(value):
                self.number(item, f"{path}[{i}]")

    def _map(self, msg: Message, fd: FieldDescriptor, value: Any, path: str, scrub: bool) -> None:
        if len(value) > self.limits.max_items:
            self.violations.append(FieldViolation(path, f"more than {self.limits.max_items} items"))
            return
        assert fd.message_type is not None
        value_fd = fd.message_type.fields_by_name["value"]
        for original in list(value):
            key = self._key(value, original, path, scrub)
            item = value[key]
            here = f"{path}[{key!r}]"
            if NUL in key or (isinstance(item, str) and NUL in item):
                # Maps (labels) are stored as JSONB too, which cannot hold U+0000.
                self.violations.append(FieldViolation(here, NUL_MESSAGE))
                continue
            if value_fd.type == FieldDescriptor.TYPE_STRING:
                cleaned = self.text(item, here, scrub)
                if cleaned is not item:
                    value[key] = cleaned
            elif value_fd.type == FieldDescriptor.TYPE_MESSAGE:
                self.walk(item, here)
            elif value_fd.type in _FLOATS:
                self.number(item, here)

    def _key(self, mapping: Any, key: str, path: str, scrub: bool) -> str:
        """A map key, scrubbed like any free text; the entry moves to the new key (a
        suffix keeps two keys that scrub alike apart)."""
        cleaned = self.text(key, f"{path}[{key!r}]", scrub)
        if cleaned == key or NUL in key:
            return key
        target, n = cleaned, 2
        while target in mapping:
            target, n = f"{cleaned}~{n}", n + 1
        item = mapping[key]
        if isinstance(item, Message):
            mapping[target].CopyFrom(item)
        else:
            mapping[target] = item
        del mapping[key]
        return target

    def number(self, value: float, path: str) -> None:
        """Every float of an event (scores, metrics, costs) is finite: NaN and the
        infinities break sums, averages and the JSON they are exported as."""
        if not math.isfinite(value):
            self.violations.append(FieldViolation(path, "must be a finite number"))

    def enum(self, fd: FieldDescriptor, value: int, path: str) -> None:
        enum_type = fd.enum_type
        assert enum_type is not None
        if value not in enum_type.values_by_number:
            self.violations.append(FieldViolation(path, f"unknown {enum_type.name} value {value}"))


class EventPreparer:
    """Validates, identifies and scrubs events; holds no state between events."""

    def __init__(self, limits: Limits, pseudonyms: Pseudonyms | None = None) -> None:
        self.limits = limits
        self.pseudonyms = pseudonyms or Pseudonyms(None)

    def _walker(self, scrubber: Scrubber | None, tenant_id: str) -> _Walker:
        def identifier(value: str) -> str:
            return self.pseudonyms.identifier(tenant_id, value, scrubber)

        return _Walker(self.limits, scrubber, identifier)

    # ---- shared checks -----------------------------------------------------------

    def _common(
        self,
        request: Message,
        prefix: str,
        violations: list[FieldViolation],
        *,
        allow_derived: bool = False,
    ) -> None:
        size = request.ByteSize()
        if size > self.limits.max_event_bytes:
            violations.append(
                FieldViolation(
                    prefix or "request",
                    f"event of {size} bytes exceeds the {self.limits.max_event_bytes}-byte limit",
                )
            )
        request_id = getattr(request, "request_id", "")
        if not request_id:
            violations.append(FieldViolation(_p(prefix, "request_id"), "is required"))
        elif len(request_id) > _MAX_ID:
            violations.append(
                FieldViolation(_p(prefix, "request_id"), f"must be at most {_MAX_ID} characters")
            )
        elif "#" in request_id and not allow_derived:
            # Reserved for the keys the server derives ("<id>#output", "<id>#shadow:..."),
            # so a client key can never collide with one.
            violations.append(FieldViolation(_p(prefix, "request_id"), "must not contain '#'"))

    def _event_time(
        self, msg: Message, path: str, now: datetime, violations: list[FieldViolation]
    ) -> datetime:
        if not msg.HasField("event_time"):
            return now
        value: datetime = getattr(msg, "event_time").ToDatetime(tzinfo=UTC)  # noqa: B009
        if value > now + self.limits.max_clock_skew:
            violations.append(FieldViolation(path, "is in the future"))
        elif value < now - self.limits.max_event_age:
            violations.append(
                FieldViolation(path, f"is older than {self.limits.max_event_age.days} days")
            )
        return value

    def _client_id(
        self, value: str, path: str, violations: list[FieldViolation], *, required: bool
    ) -> str:
        if not value:
            if required:
                violations.append(FieldViolation(path, "is required"))
            return value
        if not _ID.fullmatch(value):
            violations.append(
                FieldViolation(path, "must be 1-64 characters of letters, digits and ._:@-")
            )
        return value

    def _optional_id(self, value: str, path: str, violations: list[FieldViolation]) -> None:
        if len(value) > _MAX_ID:
            violations.append(FieldViolation(path, f"must be at most {_MAX_ID} characters"))
        elif NUL in value:
            # Stored in a filter column: PostgreSQL text cannot hold U+0000.
            violations.append(FieldViolation(path, NUL_MESSAGE))

    def _finish(
        self,
        walker: _Walker,
        violations: list[FieldViolation],
    ) -> None:
        # A field the specific checks already named (a NaN cost) is named once.
        named = {v.field for v in violations}
        violations.extend(v for v in walker.violations if v.field not in named)
        if violations:
            raise InvalidArgument(violations)

    # ---- the four kinds ----------------------------------------------------------

    def interaction(
        self,
        request: pb.CreateInteractionRequest,
        *,
        tenant_id: str,
        scrubber: Scrubber | None,
        now: datetime,
        prefix: str = "",
        gateway: GatewayFields | None = None,
    ) -> list[Prepared]:
        violations: list[FieldViolation] = []
        digest = gateway.fingerprint if gateway else fingerprint(request)
        self._common(request, prefix, violations, allow_derived=gateway is not None)
        if not request.HasField("interaction"):
            violations.append(FieldViolation(_p(prefix, "interaction"), "is required"))
            raise InvalidArgument(violations)
        it = request.interaction
        ip = _p(prefix, "interaction")
        interaction_id = (
            self._client_id(it.interaction_id, f"{ip}.interaction_id", violations, required=False)
            or new_id()
        )
        if not it.skill:
            violations.append(FieldViolation(f"{ip}.skill", "is required"))
        elif not _SKILL.fullmatch(it.skill):
            violations.append(
                FieldViolation(f"{ip}.skill", "must be lower_snake_case (a-z, 0-9, _)")
            )
        inp = it.input
        if not it.HasField("input") or not (inp.text or inp.messages):
            violations.append(FieldViolation(f"{ip}.input", "needs text or messages"))
        for i, m in enumerate(inp.messages):
            if m.role == pb.ChatMessage.ROLE_UNSPECIFIED:
                violations.append(FieldViolation(f"{ip}.input.messages[{i}].role", "is required"))
        for i, m in enumerate(it.served_messages):
            if m.role == pb.ChatMessage.ROLE_UNSPECIFIED:
                violations.append(FieldViolation(f"{ip}.served_messages[{i}].role", "is required"))
        for name in ("user_id", "thread_id", "policy_id", "base_model"):
            self._optional_id(getattr(it, name), f"{ip}.{name}", violations)
        _non_negative(it.cost_usd, f"{ip}.cost_usd", violations)
        _usage(it.usage, f"{ip}.usage", violations)
        event_time = self._event_time(it, f"{ip}.event_time", now, violations)
        for i, chunk in enumerate(it.retrieved_chunks):
            if not chunk.text:
                violations.append(FieldViolation(f"{ip}.retrieved_chunks[{i}].text", "is required"))

        output: Prepared | None = None
        if request.HasField("output"):
            output = self._output_fields(
                request.output, interaction_id, f"{_p(prefix, 'output')}", now, violations
            )

        # Output-only fields are ignored on input (AIP-203); the server sets them.
        for name in (
            "tenant_id",
            "create_time",
            "source",
            "routing",
            "primary_interaction_id",
            "request_id",
            "output_count",
            "feedback_count",
            "task_result_count",
        ):
            it.ClearField(name)
        walker = self._walker(scrubber, tenant_id)
        walker.walk(it, ip)
        self._finish(walker, violations)
        it.interaction_id = interaction_id
        it.tenant_id = tenant_id
        it.request_id = request.request_id
        source = gateway.source if gateway else pb.INTERACTION_SOURCE_CLIENT
        it.source = source
        if gateway is not None:
            it.routing.CopyFrom(gateway.routing)
            it.primary_interaction_id = gateway.primary_interaction_id
        prepared = [
            Prepared(
                event_type=INTERACTION,
                request_id=request.request_id,
                event_id=interaction_id,
                interaction_id=interaction_id,
                fingerprint=digest,
                message=it,
                event_time=event_time,
                pii_counts=dict(walker.counts),
                skill=it.skill,
                user_id=it.user_id or None,
                thread_id=it.thread_id or None,
                policy_id=it.policy_id or None,
                source=pb.INTERACTION_SOURCE_CLIENT,
                labels=dict(it.labels) or None,
            )
        ]
        prepared[0].source = source
        if output is not None:
            out_walker = self._walker(scrubber, tenant_id)
            out_walker.walk(output.message, _p(prefix, "output"))
            self._finish(out_walker, [])
            output.message.tenant_id = tenant_id  # type: ignore[attr-defined]
            # The output rides on the interaction's request_id; its own key is derived.
            output.request_id = f"{request.request_id}#output"
            output.message.request_id = output.request_id  # type: ignore[attr-defined]
            output.fingerprint = digest
            output.pii_counts = dict(out_walker.counts)
            if gateway is not None:
                # The gateway drew this id itself (a fresh uuid4, not a client's choice):
                # it cannot collide on its own, so the one-statement insert is enough
                # (a transaction costs the served request two more round trips).
                output.client_chosen_id = False
            prepared.append(output)
        return prepared

    def _output_fields(
        self,
        out: pb.Output,
        interaction_id: str,
        path: str,
        now: datetime,
        violations: list[FieldViolation],
    ) -> Prepared:
        client_chosen = bool(out.output_id)
        output_id = (
            self._client_id(out.output_id, f"{path}.output_id", violations, required=False)
            or new_id()
        )
        if not out.text and not out.tool_calls:
            violations.append(FieldViolation(f"{path}.text", "is required"))
        self._optional_id(out.policy_id, f"{path}.policy_id", violations)
        _non_negative(out.cost_usd, f"{path}.cost_usd", violations)
        _non_negative(out.candidate_index, f"{path}.candidate_index", violations)
        _usage(out.usage, f"{path}.usage", violations)
        event_time = self._event_time(out, f"{path}.event_time", now, violations)
        for name in ("tenant_id", "create_time", "request_id", "interaction_id"):
            out.ClearField(name)
        out.output_id = output_id
        out.interaction_id = interaction_id
        return Prepared(
            event_type=OUTPUT,
            client_chosen_id=client_chosen,
            request_id="",
            event_id=output_id,
            interaction_id=interaction_id,
            fingerprint=b"",
            message=out,
            event_time=event_time,
            policy_id=out.policy_id or None,
        )

    def _parent(self, request: Message, prefix: str, violations: list[FieldViolation]) -> str:
        return self._client_id(
            request.interaction_id,  # type: ignore[attr-defined]
            _p(prefix, "interaction_id"),
            violations,
            required=True,
        )

    def output(
        self,
        request: pb.RecordOutputRequest,
        *,
        tenant_id: str,
        scrubber: Scrubber | None,
        now: datetime,
        prefix: str = "",
    ) -> Prepared:
        violations: list[FieldViolation] = []
        digest = fingerprint(request)
        self._common(request, prefix, violations)
        interaction_id = self._parent(request, prefix, violations)
        if not request.HasField("output"):
            violations.append(FieldViolation(_p(prefix, "output"), "is required"))
            raise InvalidArgument(violations)
        prepared = self._output_fields(
            request.output, interaction_id, _p(prefix, "output"), now, violations
        )
        walker = self._walker(scrubber, tenant_id)
        walker.walk(request.output, _p(prefix, "output"))
        self._finish(walker, violations)
        request.output.tenant_id = tenant_id
        request.output.request_id = request.request_id
        prepared.request_id = request.request_id
        prepared.fingerprint = digest
        prepared.pii_counts = dict(walker.counts)
        return prepared

    def feedback(
        self,
        request: pb.SubmitFeedbackRequest,
        *,
        tenant_id: str,
        scrubber: Scrubber | None,
        now: datetime,
        prefix: str = "",
    ) -> Prepared:
        violations: list[FieldViolation] = []
        digest = fingerprint(request)
        self._common(request, prefix, violations)
        interaction_id = self._parent(request, prefix, violations)
        fp = _p(prefix, "feedback")
        fb = request.feedback
        if not request.HasField("feedback") or not (
            fb.HasField("explicit") or fb.HasField("implicit")
        ):
            violations.append(FieldViolation(fp, "needs explicit or implicit feedback"))
        ex, im = fb.explicit, fb.implicit
        if ex.HasField("rating") and not 1 <= ex.rating <= 5:
            violations.append(FieldViolation(f"{fp}.explicit.rating", "must be 1-5"))
        if im.HasField("time_to_send_ms") and im.time_to_send_ms < 0:
            violations.append(FieldViolation(f"{fp}.implicit.time_to_send_ms", "must be >= 0"))
        if im.HasField("follow_up_count") and im.follow_up_count < 0:
            violations.append(FieldViolation(f"{fp}.implicit.follow_up_count", "must be >= 0"))
        if fb.output_id:
            self._client_id(fb.output_id, f"{fp}.output_id", violations, required=False)
        self._optional_id(fb.user_id, f"{fp}.user_id", violations)
        prepared = self._reaction(
            FEEDBACK, "feedback_id", fb, fp, request.request_id, interaction_id, tenant_id,
            digest, scrubber, now, violations,
        )  # fmt: skip
        prepared.user_id = fb.user_id or None
        return prepared

    def _reaction(
        self,
        event_type: int,
        id_field: str,
        msg: Message,
        path: str,
        request_id: str,
        interaction_id: str,
        tenant_id: str,
        digest: bytes,
        scrubber: Scrubber | None,
        now: datetime,
        violations: list[FieldViolation],
    ) -> Prepared:
        """The shared tail of feedback and task results (events about an interaction):
        output-only fields dropped, free text scrubbed, server ids assigned."""
        event_time = self._event_time(msg, f"{path}.event_time", now, violations)
        for name in (id_field, "interaction_id", "tenant_id", "create_time", "request_id"):
            msg.ClearField(name)
        walker = self._walker(scrubber, tenant_id)
        walker.walk(msg, path)
        self._finish(walker, violations)
        event_id = new_id()
        setattr(msg, id_field, event_id)
        msg.interaction_id = interaction_id  # type: ignore[attr-defined]
        msg.tenant_id = tenant_id  # type: ignore[attr-defined]
        msg.request_id = request_id  # type: ignore[attr-defined]
        return Prepared(
            event_type=event_type,
            request_id=request_id,
            event_id=event_id,
            interaction_id=interaction_id,
            fingerprint=digest,
            message=msg,
            event_time=event_time,
            pii_counts=dict(walker.counts),
        )

    def task_result(
        self,
        request: pb.RecordTaskResultRequest,
        *,
        tenant_id: str,
        scrubber: Scrubber | None,
        now: datetime,
        prefix: str = "",
    ) -> Prepared:
        violations: list[FieldViolation] = []
        digest = fingerprint(request)
        self._common(request, prefix, violations)
        interaction_id = self._parent(request, prefix, violations)
        tp = _p(prefix, "task_result")
        tr = request.task_result
        if not (
            tr.HasField("correct")
            or tr.HasField("f1")
            or tr.HasField("resolved")
            or tr.labels
            or tr.metrics
        ):
            violations.append(
                FieldViolation(tp, "needs an outcome (correct, f1, resolved, labels or metrics)")
            )
        if tr.HasField("f1") and not 0.0 <= tr.f1 <= 1.0:
            violations.append(FieldViolation(f"{tp}.f1", "must be within [0, 1]"))
        if tr.output_id:
            self._client_id(tr.output_id, f"{tp}.output_id", violations, required=False)
        return self._reaction(
            TASK_RESULT, "task_result_id", tr, tp, request.request_id, interaction_id, tenant_id,
            digest, scrubber, now, violations,
        )  # fmt: skip


def _p(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _non_negative(value: float, path: str, violations: list[FieldViolation]) -> None:
    # `value < 0` lets NaN through, and an infinite cost poisons every sum over it.
    if not math.isfinite(value) or value < 0:
        violations.append(FieldViolation(path, "must be a finite number >= 0"))


def _usage(usage: pb.TokenUsage, path: str, violations: list[FieldViolation]) -> None:
    for name in ("prompt_tokens", "completion_tokens", "total_tokens"):
        _non_negative(getattr(usage, name), f"{path}.{name}", violations)
