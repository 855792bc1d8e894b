"""Registry: proto <-> domain. Only servicers and converters import *_pb2."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from google.protobuf import timestamp_pb2

from rlaas.registry.v1 import registry_pb2
from services.db.models import ApiKey, Tenant
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
                    "SCOPE_TRAIN or SCOPE_ADMIN)",
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
