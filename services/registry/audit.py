"""The append-only, hash-chained audit log of each tenant.

Entry ``n`` of a tenant stores ``prev_hash`` = hash of entry ``n - 1`` (64 zeros for
the first) and ``hash`` = hex SHA-256 of the canonical JSON of its fields,
``prev_hash`` included. Editing any field of any entry changes its hash; deleting or
reordering entries breaks the sequence or the link to the predecessor; deleting the
tail is caught by the per-tenant head row. Appends happen in the transaction of the
change they record and lock the tenant's head row, so a tenant's entries are written
one at a time and the chain never forks.

Free text may be personal data that must be erasable, so entries are written in hash
version 2: the hash covers the structural fields and ``payload_sha256``, the SHA-256 of
a random salt plus the free text (actor name, before, after, reason), not the text
itself. Verification checks the text against that digest while it is there; erasing
blanks the text and drops the salt (without it the digest cannot be used to confirm a
guess of what was written), and the chain still verifies. Version 1 entries (written
before) hash the text directly and cannot be erased.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.db.models import ApiKey, AuditEventRow, AuditHead

GENESIS_HASH = "0" * 64
VERIFY_BATCH = 1000


@dataclass(frozen=True, slots=True)
class Actor:
    """Who made a change: an API key, or a system component (empty key id)."""

    tenant_id: str
    api_key_id: str = ""
    display_name: str = ""


def canonical_json(value: Any) -> str:
    """One text per value: sorted keys, no whitespace, UTF-8 kept as is."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def format_time(value: datetime) -> str:
    """RFC 3339 in UTC with microseconds: exactly what Postgres stores and returns."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


_HASHED_FIELDS = (
    "audit_event_id",
    "sequence",
    "tenant_id",
    "event_time",
    "actor_api_key_id",
    "actor_tenant_id",
    "actor_display_name",
    "action",
    "resource_type",
    "resource_id",
    "before",
    "after",
    "reason",
    "request_id",
    "prev_hash",
)


# Version 2: the free text is covered through payload_sha256 only.
_FREE_TEXT = ("actor_display_name", "before", "after", "reason")
_HASHED_FIELDS_V2 = (
    *(name for name in _HASHED_FIELDS if name not in _FREE_TEXT),
    "payload_sha256",
    "hash_version",
)
ERASED_JSON = "null"


def payload_digest(row: AuditEventRow) -> str:
    """The salted digest of a version 2 entry's free text (its current text)."""
    document = {
        "salt": row.payload_salt,
        "actor_display_name": row.actor_display_name,
        "before": json.loads(row.before),
        "after": json.loads(row.after),
        "reason": row.reason,
    }
    return hashlib.sha256(canonical_json(document).encode()).hexdigest()


def entry_hash(row: AuditEventRow) -> str:
    """The hash an entry must carry, recomputed from its fields."""
    if row.hash_version == 2:
        v2: dict[str, Any] = {name: getattr(row, name) for name in _HASHED_FIELDS_V2}
        v2["event_time"] = format_time(row.event_time)
        return hashlib.sha256(canonical_json(v2).encode()).hexdigest()
    fields: dict[str, Any] = {name: getattr(row, name) for name in _HASHED_FIELDS}
    fields["event_time"] = format_time(row.event_time)
    # before/after are stored as canonical JSON text; hash them as JSON values so the
    # hashed document is itself one canonical JSON object.
    fields["before"] = json.loads(row.before)
    fields["after"] = json.loads(row.after)
    return hashlib.sha256(canonical_json(fields).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Verdict:
    valid: bool
    checked_count: int
    first_invalid_sequence: int
    head_hash: str
    detail: str


class ChainChecker:
    """Walks entries in sequence order and stops at the first break."""

    def __init__(self, *, expected_sequence: int, expected_prev_hash: str | None) -> None:
        self.expected_sequence = expected_sequence
        # None: the predecessor of the first checked entry is itself missing.
        self.expected_prev = expected_prev_hash
        self.checked = 0
        self.head_hash = ""
        self.broken: tuple[int, str] | None = None

    def feed(self, rows: Iterable[AuditEventRow]) -> bool:
        """Check more rows; False once the chain is broken."""
        for row in rows:
            if self.broken:
                return False
            self.checked += 1
            if row.sequence != self.expected_sequence:
                self.broken = (
                    self.expected_sequence,
                    f"sequence {self.expected_sequence} is missing (next entry is "
                    f"{row.sequence}): entries were deleted or renumbered",
                )
                return False
            if self.expected_prev is None:
                self.broken = (
                    row.sequence,
                    f"the entry before sequence {row.sequence} is missing",
                )
                return False
            if row.prev_hash != self.expected_prev:
                self.broken = (
                    row.sequence,
                    f"sequence {row.sequence}: prev_hash does not match the hash of the "
                    "previous entry (an entry was deleted, replaced or reordered)",
                )
                return False
            recomputed = entry_hash(row)
            if recomputed != row.hash:
                self.broken = (
                    row.sequence,
                    f"sequence {row.sequence}: stored hash does not match its content "
                    "(the entry was edited)",
                )
                return False
            if not _text_intact(row):
                self.broken = (
                    row.sequence,
                    f"sequence {row.sequence}: its text does not match the digest the "
                    "chain covers (the text was edited)",
                )
                return False
            self.head_hash = row.hash
            self.expected_prev = row.hash
            self.expected_sequence += 1
        return True

    def finish(self, *, last_expected: int | None) -> Verdict:
        """``last_expected``: the sequence the checked range must reach (the range's
        end, or the head row's sequence), or None to accept wherever it stopped."""
        if (
            self.broken is None
            and last_expected is not None
            and self.expected_sequence <= last_expected
        ):
            self.broken = (
                self.expected_sequence,
                f"sequences {self.expected_sequence}..{last_expected} are missing "
                "(entries were deleted from the end of the log)",
            )
        if self.broken is not None:
            sequence, detail = self.broken
            return Verdict(False, self.checked, sequence, self.head_hash, detail)
        return Verdict(True, self.checked, 0, self.head_hash, "")


def _text_intact(row: AuditEventRow) -> bool:
    if row.hash_version != 2:
        return True  # version 1: the entry hash covers the text itself
    if row.erase_time is not None:
        # Erased: nothing may remain that the digest would have covered.
        return (
            row.payload_salt is None
            and row.actor_display_name == ""
            and row.before == ERASED_JSON
            and row.after == ERASED_JSON
            and row.reason == ""
        )
    return row.payload_salt is not None and payload_digest(row) == row.payload_sha256


def verify_rows(rows: Iterable[AuditEventRow], *, head_sequence: int | None = None) -> Verdict:
    """Verify a whole chain held in memory (from sequence 1)."""
    checker = ChainChecker(expected_sequence=1, expected_prev_hash=GENESIS_HASH)
    checker.feed(rows)
    return checker.finish(last_expected=head_sequence)


def new_entry(
    *,
    tenant_id: str,
    sequence: int,
    prev_hash: str,
    actor: Actor,
    action: str,
    resource_type: str,
    resource_id: str,
    before: Any,
    after: Any,
    reason: str,
    request_id: str,
    event_time: datetime | None = None,
) -> AuditEventRow:
    """A new, hashed entry (not yet added to a session)."""
    # Postgres keeps microseconds: truncate nothing finer than that can be lost.
    when = (event_time or datetime.now(UTC)).astimezone(UTC)
    row = AuditEventRow(
        tenant_id=tenant_id,
        sequence=sequence,
        audit_event_id=f"ae-{uuid.uuid4().hex}",
        event_time=when,
        actor_api_key_id=actor.api_key_id,
        actor_tenant_id=actor.tenant_id,
        actor_display_name=actor.display_name,
        action=action,
        resource_type=resource_type,
        resource_id=resource_id,
        before=canonical_json(before),
        after=canonical_json(after),
        reason=reason,
        request_id=request_id,
        prev_hash=prev_hash,
        hash_version=2,
        payload_salt=secrets.token_hex(16),
        erase_time=None,
    )
    row.payload_sha256 = payload_digest(row)
    row.hash = entry_hash(row)
    return row


def erase_text(row: AuditEventRow, when: datetime) -> bool:
    """Blank a version 2 entry's free text and drop its salt; False if erased already."""
    if row.erase_time is not None:
        return False
    row.actor_display_name = ""
    row.before = row.after = ERASED_JSON
    row.reason = ""
    row.payload_salt = None
    row.erase_time = when
    return True


# ---- database ----------------------------------------------------------------------


async def actor_name(session: AsyncSession, api_key_id: str) -> str:
    return (
        await session.scalar(select(ApiKey.display_name).where(ApiKey.api_key_id == api_key_id))
    ) or ""


async def append(
    session: AsyncSession,
    *,
    tenant_id: str,
    actor: Actor,
    action: str,
    resource_type: str,
    resource_id: str,
    before: Any,
    after: Any,
    reason: str = "",
    request_id: str = "",
) -> AuditEventRow:
    """Append one entry in the caller's transaction. Locks the tenant's head row until
    that transaction ends, so take it last (after the locks of the change itself)."""
    await session.execute(
        insert(AuditHead)
        .values(tenant_id=tenant_id, sequence=0, hash=GENESIS_HASH)
        .on_conflict_do_nothing(index_elements=["tenant_id"])
    )
    head = (
        await session.execute(
            select(AuditHead.sequence, AuditHead.hash)
            .where(AuditHead.tenant_id == tenant_id)
            .with_for_update()
        )
    ).one()
    row = new_entry(
        tenant_id=tenant_id,
        sequence=head.sequence + 1,
        prev_hash=head.hash,
        actor=actor,
        action=action,
        resource_type=resource_type,
        resource_id=resource_id,
        before=before,
        after=after,
        reason=reason,
        request_id=request_id,
    )
    session.add(row)
    await session.flush()
    await session.execute(
        update(AuditHead)
        .where(AuditHead.tenant_id == tenant_id)
        .values(sequence=row.sequence, hash=row.hash)
    )
    return row


async def _rows(
    session: AsyncSession, tenant_id: str, first: int, last: int | None
) -> AsyncIterator[list[AuditEventRow]]:
    after = first - 1
    while True:
        query = (
            select(AuditEventRow)
            .where(AuditEventRow.tenant_id == tenant_id, AuditEventRow.sequence > after)
            .order_by(AuditEventRow.sequence)
            .limit(VERIFY_BATCH)
        )
        if last is not None:
            query = query.where(AuditEventRow.sequence <= last)
        batch = list((await session.scalars(query)).all())
        if not batch:
            return
        yield batch
        after = batch[-1].sequence
        session.expunge_all()  # keep memory flat on long logs


async def verify(
    session: AsyncSession, tenant_id: str, *, from_sequence: int = 0, to_sequence: int = 0
) -> Verdict:
    """Recompute the chain over ``[from_sequence, to_sequence]`` (0: open end) in one
    snapshot (call inside a REPEATABLE READ transaction for a consistent view)."""
    first = max(from_sequence, 1)
    head_sequence = await session.scalar(
        select(AuditHead.sequence).where(AuditHead.tenant_id == tenant_id)
    )
    if first == 1:
        expected_prev: str | None = GENESIS_HASH
    else:
        expected_prev = await session.scalar(
            select(AuditEventRow.hash).where(
                AuditEventRow.tenant_id == tenant_id, AuditEventRow.sequence == first - 1
            )
        )
    checker = ChainChecker(expected_sequence=first, expected_prev_hash=expected_prev)
    last = to_sequence or None
    async for batch in _rows(session, tenant_id, first, last):
        if not checker.feed(batch):
            break
    if to_sequence:
        last_expected: int | None = min(to_sequence, head_sequence or 0)
    else:
        last_expected = head_sequence
    return checker.finish(last_expected=last_expected)
