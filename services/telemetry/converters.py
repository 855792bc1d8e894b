"""Telemetry: proto <-> domain for what is not already the contract's own event type."""

from __future__ import annotations

from datetime import UTC, datetime

from google.protobuf import duration_pb2, timestamp_pb2

from rlaas.telemetry.v1 import telemetry_pb2 as pb
from services.errors import FieldViolation, InvalidArgument
from services.server.status import to_rpc_status
from services.telemetry.core import InteractionFilter
from services.telemetry.export import ExportedFile
from services.telemetry.pii import Entity
from services.telemetry.settings_store import TenantTelemetrySettings
from services.telemetry.store import Outcome, Written

_ENTITY_TO_PROTO = {e: pb.PiiEntity.Value(f"PII_ENTITY_{e.name}") for e in Entity}
_PROTO_TO_ENTITY = {v: k for k, v in _ENTITY_TO_PROTO.items()}
_OUTCOMES = {
    Outcome.ACCEPTED: pb.IngestEventsResponse.OUTCOME_ACCEPTED,
    Outcome.DUPLICATE: pb.IngestEventsResponse.OUTCOME_DUPLICATE,
    Outcome.REJECTED: pb.IngestEventsResponse.OUTCOME_REJECTED,
}


def _time(message: object, name: str) -> datetime | None:
    if not message.HasField(name):  # type: ignore[attr-defined]
        return None
    ts: timestamp_pb2.Timestamp = getattr(message, name)
    return ts.ToDatetime(tzinfo=UTC)


def interaction_filter(request: pb.ListInteractionsRequest) -> InteractionFilter:
    return InteractionFilter(
        skill=request.skill,
        user_id=request.user_id,
        thread_id=request.thread_id,
        policy_id=request.policy_id,
        start_time=_time(request, "start_time"),
        end_time=_time(request, "end_time"),
        has_feedback=request.has_feedback if request.HasField("has_feedback") else None,
        include_shadow=request.include_shadow,
        labels=tuple(sorted(request.labels.items())),
    )


def time_range(request: object) -> tuple[datetime | None, datetime | None]:
    return _time(request, "start_time"), _time(request, "end_time")


def ingest_result(sequence: int, written: Written) -> pb.IngestEventsResponse:
    response = pb.IngestEventsResponse(
        sequence=sequence,
        request_id=written.request_id,
        event_type=written.event_type,
        outcome=_OUTCOMES[written.outcome],
        interaction_id=written.interaction_id,
        event_id=written.event_id,
    )
    if written.error is not None:
        response.error.CopyFrom(to_rpc_status(written.error))
    return response


def exported_file(f: ExportedFile) -> pb.ExportedFile:
    return pb.ExportedFile(
        uri=f.uri,
        event_type=f.event_type,
        partition_date=f.partition_date,
        row_count=f.row_count,
        size_bytes=f.size_bytes,
        sha256=f.sha256,
    )


def settings_to_proto(s: TenantTelemetrySettings) -> pb.TelemetrySettings:
    out = pb.TelemetrySettings(
        pii_scrubbing_enabled=s.pii_enabled,
        pii_entities=sorted(_ENTITY_TO_PROTO[e] for e in s.pii_entities),
        reward_wait_window=duration_pb2.Duration(seconds=int(s.reward_wait_window_s)),
    )
    if s.update_time is not None:
        out.update_time.FromDatetime(s.update_time)
    return out


def entities_from_proto(values: list[int]) -> frozenset[Entity]:
    entities, violations = set(), []
    for i, value in enumerate(values):
        entity = _PROTO_TO_ENTITY.get(value)
        if entity is None:
            violations.append(
                FieldViolation(f"settings.pii_entities[{i}]", f"{value} is not a PII entity")
            )
        else:
            entities.add(entity)
    if violations:
        raise InvalidArgument(violations)
    return frozenset(entities) or frozenset(Entity)


def window_from_proto(settings: pb.TelemetrySettings) -> float | None:
    if not settings.HasField("reward_wait_window"):
        return None
    return settings.reward_wait_window.ToTimedelta().total_seconds()
