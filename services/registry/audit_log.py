"""The audit-log RPCs over ``services.registry.audit``'s hash chain: list entries, erase
their free text, verify the chain."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from services.db import idempotency
from services.db.models import AuditEventRow
from services.errors import FailedPrecondition, InvalidArgument, NotFound
from services.paging import next_page_token, page_request
from services.registry import audit
from services.registry.audit import Verdict
from services.registry.base import RPC, Caller, RegistryBase, require_scope, utc_now
from services.tenancy.principal import Scope

MAX_ERASE_IDS = 1000


@dataclass(frozen=True, slots=True)
class AuditFilter:
    resource_type: str = ""
    resource_id: str = ""
    action: str = ""
    actor_api_key_id: str = ""
    start_time: datetime | None = None
    end_time: datetime | None = None


class AuditLog(RegistryBase):
    async def list_audit_events(
        self, caller: Caller, *, page_size: int, page_token: str, where: AuditFilter
    ) -> tuple[list[AuditEventRow], str]:
        """Newest first (by sequence)."""
        require_scope(caller, Scope.ADMIN)
        page = page_request(page_size, page_token)
        if where.start_time and where.end_time and where.start_time > where.end_time:
            raise InvalidArgument.field("start_time", "must not be after end_time")
        for name in ("resource_type", "resource_id", "action", "actor_api_key_id"):
            if "\x00" in getattr(where, name):  # PostgreSQL text cannot hold U+0000
                raise InvalidArgument.field(name, "must not contain NUL (U+0000) characters")
        query = (
            select(AuditEventRow)
            .where(AuditEventRow.tenant_id == caller.tenant_id)
            .order_by(AuditEventRow.sequence.desc())
            .limit(page.size + 1)
        )
        for column, value in (
            (AuditEventRow.resource_type, where.resource_type),
            (AuditEventRow.resource_id, where.resource_id),
            (AuditEventRow.action, where.action),
            (AuditEventRow.actor_api_key_id, where.actor_api_key_id),
        ):
            if value:
                query = query.where(column == value)
        if where.start_time:
            query = query.where(AuditEventRow.event_time >= where.start_time)
        if where.end_time:
            query = query.where(AuditEventRow.event_time < where.end_time)
        if page.after:
            try:
                after = int(page.after[0])
            except (IndexError, ValueError, TypeError) as exc:
                raise InvalidArgument.field(
                    "page_token", "is not a token this server issued"
                ) from exc
            query = query.where(AuditEventRow.sequence < after)
        async with self._sessions() as session:
            rows = list((await session.scalars(query)).all())
        return rows[: page.size], next_page_token(rows, page.size, lambda r: [r.sequence])

    async def erase_audit_events(
        self, caller: Caller, audit_event_ids: Sequence[str], *, request_id: str
    ) -> list[AuditEventRow]:
        """Erase the free text of some of the tenant's audit entries (see
        ``services.registry.audit``); the erasure is itself an entry, without text."""
        require_scope(caller, Scope.ADMIN)
        ids = list(dict.fromkeys(audit_event_ids))
        if not ids:
            raise InvalidArgument.field("audit_event_ids", "name at least one audit event")
        if len(ids) > MAX_ERASE_IDS:
            raise InvalidArgument.field("audit_event_ids", f"at most {MAX_ERASE_IDS} per call")
        idempotency.validate_request_id(request_id)
        async with self._sessions() as session, session.begin():
            rows = {
                r.audit_event_id: r
                for r in await session.scalars(
                    select(AuditEventRow)
                    .where(
                        AuditEventRow.tenant_id == caller.tenant_id,
                        AuditEventRow.audit_event_id.in_(ids),
                    )
                    .with_for_update()
                )
            }
            missing = next((i for i in ids if i not in rows), None)
            if missing is not None:
                raise NotFound("audit event", missing)
            old = next((i for i in ids if rows[i].hash_version != 2), None)
            if old is not None:
                raise FailedPrecondition(
                    f"audit event {old} was written before entries became erasable",
                    reason="AUDIT_EVENT_NOT_ERASABLE",
                )
            prior = await idempotency.claim(
                session, tenant_id=caller.tenant_id, method="EraseAuditEvents",
                request_id=request_id, payload={"audit_event_ids": sorted(ids)},
                resource_id=ids[0],
            )  # fmt: skip
            now = utc_now()
            erased = [i for i in ids if audit.erase_text(rows[i], now)]
            if prior is None and erased:
                await self._audit(
                    session, caller,
                    action=f"{RPC}EraseAuditEvents",
                    resource_type="AuditEvent", resource_id=erased[0],
                    before=None, after={"erased_audit_event_ids": erased},
                    request_id=request_id,
                )  # fmt: skip
            await session.flush()
            return [rows[i] for i in ids]

    async def verify_audit_log(
        self, caller: Caller, *, from_sequence: int = 0, to_sequence: int = 0
    ) -> Verdict:
        require_scope(caller, Scope.ADMIN)
        if from_sequence < 0:
            raise InvalidArgument.field("from_sequence", "must not be negative")
        if to_sequence < 0:
            raise InvalidArgument.field("to_sequence", "must not be negative")
        if to_sequence and from_sequence > to_sequence:
            raise InvalidArgument.field("from_sequence", "must not be greater than to_sequence")
        async with self._sessions() as session:
            # One snapshot for the whole walk, however long the log.
            await session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
            return await audit.verify(
                session, caller.tenant_id, from_sequence=from_sequence, to_sequence=to_sequence
            )
