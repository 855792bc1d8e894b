"""The ``request_id`` contract of every mutation (AIP-155).

The claim is an INSERT ... ON CONFLICT DO NOTHING on a unique key, inside the same
transaction as the mutation it guards: concurrent duplicates serialise on the index
instead of racing a read-then-write, and a crash before commit leaves no claim behind.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.db.models import IdempotencyRecord
from services.errors import InvalidArgument, RequestIdReused

MAX_REQUEST_ID_LENGTH = 200


def fingerprint(payload: Any) -> str:
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def validate_request_id(request_id: str) -> None:
    if not request_id:
        raise InvalidArgument.field(
            "request_id", "is required (a client-chosen id, e.g. a UUID, reused on retries)"
        )
    if len(request_id) > MAX_REQUEST_ID_LENGTH:
        raise InvalidArgument.field(
            "request_id", f"must be at most {MAX_REQUEST_ID_LENGTH} characters"
        )


async def claim(
    session: AsyncSession,
    *,
    tenant_id: str,
    method: str,
    request_id: str,
    payload: Any,
    resource_id: str,
) -> str | None:
    """Claim ``request_id`` for ``resource_id``.

    Returns None when the claim is new (go ahead and mutate), or the resource id the
    first request produced when this is a replay. Raises ALREADY_EXISTS
    (``REQUEST_ID_REUSED``) when the id was used before with a different payload (the
    contract's rule for every mutation).
    """
    validate_request_id(request_id)
    digest = fingerprint(payload)
    inserted = await session.scalar(
        insert(IdempotencyRecord)
        .values(
            tenant_id=tenant_id,
            method=method,
            request_id=request_id,
            fingerprint=digest,
            resource_id=resource_id,
        )
        .on_conflict_do_nothing(index_elements=["tenant_id", "method", "request_id"])
        .returning(IdempotencyRecord.id)
    )
    if inserted is not None:
        return None
    existing = await session.scalar(
        select(IdempotencyRecord).where(
            IdempotencyRecord.tenant_id == tenant_id,
            IdempotencyRecord.method == method,
            IdempotencyRecord.request_id == request_id,
        )
    )
    assert existing is not None  # the conflicting row is committed, so it is visible
    if existing.fingerprint != digest:
        raise RequestIdReused(f"{method} request")
    return existing.resource_id
