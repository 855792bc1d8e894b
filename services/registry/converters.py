"""Registry: proto <-> domain. Only servicers and converters import *_pb2."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from google.protobuf import json_format, struct_pb2, timestamp_pb2
from google.protobuf.message import Message

from rlaas.registry.v1 import registry_pb2
from services.db.models import (
    ApiKey,
    AuditEventRow,
    DeploymentRevision,
    DeploymentRow,
    PolicyRow,
    Skill,
    Tenant,
)
from services.errors import FieldViolation, InvalidArgument
from services.server.policy import scope_from_proto, scope_to_proto
from services.tenancy.principal import Principal, Scope

_TENANT_STATES = {
    "active": registry_pb2.Tenant.STATE_ACTIVE,
    "disabled": registry_pb2.Tenant.STATE_DISABLED,
}
_KEY_STATES = {
    "active": registry_pb2.ApiKey.STATE_ACTIVE,
    "revoked": registry_pb2.ApiKey.STATE_REVOKED,
}


def timestamp(value: datetime | None) -> timestamp_pb2.Timestamp | None:
    if value is None:
        return None
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(value)
    return ts


def optional_datetime(message: object, field: str) -> datetime | None:
    if not message.HasField(field):  # type: ignore[attr-defined]
        return None
    ts: timestamp_pb2.Timestamp = getattr(message, field)
    return ts.ToDatetime(tzinfo=UTC)


def scopes_from_proto(values: Iterable[int], field: str) -> list[Scope]:
    scopes, violations = [], []
    for i, value in enumerate(values):
        scope = scope_from_proto(value)
        if scope is None:
            violations.append(
                FieldViolation(
                    f"{field}[{i}]",
                    f"{value} is not a grantable scope (use SCOPE_INGEST, SCOPE_INFER, "
                    "SCOPE_TRAIN, SCOPE_DEPLOY or SCOPE_ADMIN)",
                )
            )
        else:
            scopes.append(scope)
    if violations:
        raise InvalidArgument(violations)
    return scopes


def tenant_to_proto(tenant: Tenant) -> registry_pb2.Tenant:
    return registry_pb2.Tenant(
        tenant_id=tenant.tenant_id,
        display_name=tenant.display_name,
        state=_TENANT_STATES.get(tenant.state, registry_pb2.Tenant.STATE_UNSPECIFIED),
        operator=tenant.operator,
        create_time=timestamp(tenant.create_time),
    )


def api_key_to_proto(key: ApiKey) -> registry_pb2.ApiKey:
    return registry_pb2.ApiKey(
        api_key_id=key.api_key_id,
        display_name=key.display_name,
        scopes=[scope_to_proto(Scope(s)) for s in key.scopes],
        state=_KEY_STATES.get(key.state, registry_pb2.ApiKey.STATE_UNSPECIFIED),
        tenant_id=key.tenant_id,
        create_time=timestamp(key.create_time),
        revoke_time=timestamp(key.revoke_time),
        expire_time=timestamp(key.expire_time),
    )


def caller_identity(principal: Principal) -> registry_pb2.GetCallerIdentityResponse:
    return registry_pb2.GetCallerIdentityResponse(
        tenant_id=principal.tenant_id,
        api_key_id=principal.api_key_id,
        scopes=[scope_to_proto(s) for s in sorted(principal.scopes)],
        operator=principal.operator,
    )


# ---- skills, policies, deployments, audit ------------------------------------------

POLICY_STATES = {
    "candidate": registry_pb2.Policy.STATE_CANDIDATE,
    "active": registry_pb2.Policy.STATE_ACTIVE,
    "retired": registry_pb2.Policy.STATE_RETIRED,
}
_POLICY_STATE_NAMES = {v: k for k, v in POLICY_STATES.items()}


def policy_state_from_proto(value: int, field: str = "state") -> str | None:
    """The stored state for a filter value; None for STATE_UNSPECIFIED (all)."""
    if value == registry_pb2.Policy.STATE_UNSPECIFIED:
        return None
    if value not in _POLICY_STATE_NAMES:
        raise InvalidArgument.field(field, f"{value} is not a policy state")
    return _POLICY_STATE_NAMES[value]


def to_dict(message: Message) -> dict[str, Any]:
    """A message as JSON (proto field names), for audit entries and fingerprints."""
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


def json_value(value: Any) -> struct_pb2.Value:
    return json_format.ParseDict(value, struct_pb2.Value())


def json_struct(text: str) -> struct_pb2.Struct | None:
    value = json.loads(text)
    if not isinstance(value, dict):
        return None
    return json_format.ParseDict(value, struct_pb2.Struct())


def skill_to_proto(skill: Skill, baseline_policy_id: str | None) -> registry_pb2.Skill:
    return registry_pb2.Skill(
        skill_id=skill.skill_id,
        tenant_id=skill.tenant_id,
        display_name=skill.display_name,
        description=skill.description,
        labels=skill.labels,
        baseline_policy_id=baseline_policy_id or "",
        latest_version=skill.latest_version,
        create_time=timestamp(skill.create_time),
    )


def policy_to_proto(row: PolicyRow) -> registry_pb2.Policy:
    policy = registry_pb2.Policy.FromString(row.payload)
    policy.policy_id = f"{row.skill_id}@v{row.version}"
    policy.version = row.version
    policy.tenant_id = row.tenant_id
    policy.state = POLICY_STATES[row.state]
    policy.content_sha256 = row.content_sha256
    policy.creator_api_key_id = row.creator_api_key_id
    policy.create_time.FromDatetime(row.create_time)
    policy.state_change_time.FromDatetime(row.state_change_time)
    return policy


def traffic_from_bytes(data: bytes) -> registry_pb2.TrafficConfig:
    return registry_pb2.TrafficConfig.FromString(data)


def traffic_to_bytes(traffic: registry_pb2.TrafficConfig) -> bytes:
    return traffic.SerializeToString(deterministic=True)


def deployment_to_proto(
    row: DeploymentRow | DeploymentRevision, *, create_time: datetime | None = None
) -> registry_pb2.Deployment:
    """The deployment as of ``row`` (the current row, or a past revision together with
    the deployment's ``create_time``)."""
    if isinstance(row, DeploymentRow):
        created, updated = row.create_time, row.update_time
    else:
        created, updated = create_time or row.create_time, row.create_time
    return registry_pb2.Deployment(
        skill_id=row.skill_id,
        tenant_id=row.tenant_id,
        baseline_policy_id=row.baseline_policy_id or "",
        traffic=traffic_from_bytes(row.traffic),
        stage=row.stage,
        revision=row.revision,
        reason=row.reason,
        rollout_id=row.rollout_id or "",
        create_time=timestamp(created),
        update_time=timestamp(updated),
    )


def audit_event_to_proto(row: AuditEventRow) -> registry_pb2.AuditEvent:
    return registry_pb2.AuditEvent(
        audit_event_id=row.audit_event_id,
        sequence=row.sequence,
        tenant_id=row.tenant_id,
        event_time=timestamp(row.event_time),
        actor_api_key_id=row.actor_api_key_id,
        actor_tenant_id=row.actor_tenant_id,
        actor_display_name=row.actor_display_name,
        action=row.action,
        resource_type=row.resource_type,
        resource_id=row.resource_id,
        before=json_struct(row.before),
        after=json_struct(row.after),
        reason=row.reason,
        request_id=row.request_id,
        prev_hash=row.prev_hash,
        hash=row.hash,
        erase_time=timestamp(row.erase_time) if row.erase_time else None,
    )
