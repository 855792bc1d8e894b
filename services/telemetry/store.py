"""Writing events exactly once.

A batch is one transaction: one multi-row INSERT ... ON CONFLICT DO NOTHING RETURNING.
The unique key (tenant_id, request_id) decides, inside Postgres, which of two concurrent
copies of an event wins; the loser then reads the winner and reports a duplicate (same
fingerprint) or a reused request_id (different fingerprint). A client that retries
after a crash between commit and acknowledgement hits the same key: no second row.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any

from google.protobuf.message import Message
from sqlalchemy.ext.asyncio import AsyncEngine

from rlaas.telemetry.v1 import telemetry_pb2 as pb
from services.errors import AlreadyExists, DomainError, RequestIdReused
from services.telemetry.events import EVENT_NAMES, Prepared

MESSAGE_TYPES: dict[int, type[Message]] = {
    pb.EVENT_TYPE_INTERACTION: pb.Interaction,
    pb.EVENT_TYPE_OUTPUT: pb.Output,
    pb.EVENT_TYPE_FEEDBACK: pb.Feedback,
    pb.EVENT_TYPE_TASK_RESULT: pb.TaskResult,
}


class Outcome(Enum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    REJECTED = "rejected"


@dataclass
class Written:
    """What happened to one client event (one or two rows: an interaction may carry
    its first output)."""

    outcome: Outcome
    event_type: int
    request_id: str
    interaction_id: str = ""
    event_id: str = ""
    stored: list[Message] = field(default_factory=list)  # as stored, create_time set
    error: DomainError | None = None


def decode(event_type: int, payload: bytes, create_time: datetime) -> Message:
    message = MESSAGE_TYPES[event_type].FromString(payload)
    message.create_time.FromDatetime(create_time)  # type: ignore[attr-defined]
    return message


# The hot path talks to asyncpg directly: one INSERT ... SELECT FROM unnest(arrays) per
# batch (a single round trip with binary-encoded arrays) costs about a third of what
# SQLAlchemy's multi-row insert does per event. Hand-written on purpose; the columns
# are the model's.
_COLUMNS = (
    "event_type", "event_id", "interaction_id", "request_id", "fingerprint", "payload",
    "pii_counts", "event_time", "skill", "user_id", "thread_id", "policy_id", "source",
    "labels",
)  # fmt: skip
_TYPES = (
    "smallint", "text", "text", "text", "bytea", "bytea", "jsonb", "timestamptz", "text",
    "text", "text", "text", "smallint", "jsonb",
)  # fmt: skip
_INSERT = (
    f"INSERT INTO telemetry_events (tenant_id, {', '.join(_COLUMNS)}) "
    f"SELECT $1, * FROM unnest("
    + ", ".join(f"${i + 2}::{t}[]" for i, t in enumerate(_TYPES))
    + ") ON CONFLICT DO NOTHING RETURNING request_id, create_time"
)
_EXISTING = (
    "SELECT request_id, event_type, event_id, interaction_id, fingerprint, payload, "
    "create_time FROM telemetry_events WHERE tenant_id = $1 AND request_id = ANY($2::text[])"
)
_DELETE = "DELETE FROM telemetry_events WHERE tenant_id = $1 AND request_id = ANY($2::text[])"


def _columns(prepared: list[Prepared]) -> list[list[object]]:
    cols: list[list[object]] = [[] for _ in _COLUMNS]
    for p in prepared:
        values = (
            p.event_type, p.event_id, p.interaction_id, p.request_id, p.fingerprint,
            p.message.SerializeToString(), json.dumps(p.pii_counts) if p.pii_counts else None,
            p.event_time, p.skill, p.user_id, p.thread_id, p.policy_id, p.source,
            json.dumps(p.labels) if p.labels else None,
        )  # fmt: skip
        for col, value in zip(cols, values, strict=True):
            col.append(value)
    return cols


def _id_field(p: Prepared) -> str:
    name = EVENT_NAMES[p.event_type]
    return f"{name}.{name}_id"


class EventStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def write(self, tenant_id: str, items: Sequence[list[Prepared]]) -> list[Written]:
        """Store a batch of client events; one result per item, in order."""
        results: list[Written | None] = [None] * len(items)
        first_seen: dict[str, int] = {}
        to_insert: list[int] = []
        for i, item in enumerate(items):
            key = item[0].request_id
            if key in first_seen:
                continue  # settled after the insert, against the first copy
            first_seen[key] = i
            to_insert.append(i)

        # A single INSERT is atomic by itself; a transaction (three round trips instead of
        # one) is only needed when an item's second row could conflict on its own, which
        # only a client-chosen id can (derived request ids contain '#', which client ids
        # may not).
        needs_transaction = any(p.client_chosen_id for item in items for p in item[1:])
        async with self._engine.connect() as sa_conn:
            conn = (await sa_conn.get_raw_connection()).driver_connection
            assert conn is not None
            if needs_transaction:
                async with conn.transaction():
                    await self._write(conn, tenant_id, items, results, first_seen, to_insert)
            else:
                await self._write(conn, tenant_id, items, results, first_seen, to_insert)
        return [r for r in results if r is not None]

    async def _write(
        self,
        conn: Any,
        tenant_id: str,
        items: Sequence[list[Prepared]],
        results: list[Written | None],
        first_seen: dict[str, int],
        to_insert: list[int],
    ) -> None:
        prepared = [p for i in to_insert for p in items[i]]
        created: dict[str, datetime] = {}
        if prepared:
            returned = await conn.fetch(_INSERT, tenant_id, *_columns(prepared))
            created = {r["request_id"]: r["create_time"] for r in returned}

        unsettled: list[int] = []
        for i in to_insert:
            item = items[i]
            landed = [p.request_id in created for p in item]
            if all(landed):
                for p in item:
                    p.message.create_time.FromDatetime(created[p.request_id])  # type: ignore[attr-defined]
                results[i] = Written(
                    Outcome.ACCEPTED, item[0].event_type, item[0].request_id,
                    item[0].interaction_id, item[0].event_id, [p.message for p in item],
                )  # fmt: skip
            elif any(landed):
                # The interaction landed but its output's id was taken: undo the
                # interaction so the event is all-or-nothing.
                await conn.execute(_DELETE, tenant_id, [p.request_id for p in item])
                taken = next(p for p, ok in zip(item, landed, strict=True) if not ok)
                results[i] = self._rejected(item[0], _event_id_taken(taken))
            else:
                unsettled.append(i)

        if unsettled or len(to_insert) < len(items):
            await self._settle(conn, tenant_id, items, results, unsettled, first_seen)

    async def _settle(
        self,
        conn: Any,
        tenant_id: str,
        items: Sequence[list[Prepared]],
        results: list[Written | None],
        unsettled: list[int],
        first_seen: dict[str, int],
    ) -> None:
        """Items that did not insert, and in-batch repeats: a replay or a conflict?"""
        keys = {p.request_id for i in unsettled for p in items[i]}
        keys |= {items[i][0].request_id for i in range(len(items)) if results[i] is None}
        existing: dict[str, tuple[int, str, str, bytes, bytes, datetime]] = {}
        if keys:
            found = await conn.fetch(_EXISTING, tenant_id, list(keys))
            existing = {r["request_id"]: tuple(r.values())[1:] for r in found}
        for i, item in enumerate(items):
            if results[i] is not None:
                continue
            head = item[0]
            prior = existing.get(head.request_id)
            if prior is None:
                earlier = results[first_seen[head.request_id]]
                if first_seen[head.request_id] != i and earlier is not None:
                    # A repeat inside the batch of an event that was itself refused.
                    results[i] = self._rejected(head, earlier.error)
                else:
                    results[i] = self._rejected(head, _event_id_taken(head))
                continue
            event_type, event_id, interaction_id, digest, payload, create_time = prior
            if digest != head.fingerprint:
                results[i] = self._rejected(
                    head,
                    RequestIdReused("event"),
                )
                continue
            stored = [decode(event_type, payload, create_time)]
            for extra in item[1:]:
                more = existing.get(extra.request_id)
                if more is not None:
                    stored.append(decode(more[0], more[4], more[5]))
            results[i] = Written(
                Outcome.DUPLICATE, event_type, head.request_id, interaction_id, event_id, stored
            )

    async def find(self, tenant_id: str, request_id: str) -> tuple[bytes, list[Message]] | None:
        """The stored event(s) of a request_id (an interaction with its first output),
        with the fingerprint of the request that stored them."""
        async with self._engine.connect() as sa_conn:
            conn = (await sa_conn.get_raw_connection()).driver_connection
            assert conn is not None
            rows = await conn.fetch(_EXISTING, tenant_id, [request_id, f"{request_id}#output"])
        if not rows:
            return None
        rows = sorted(rows, key=lambda r: r["event_type"])
        return rows[0]["fingerprint"], [
            decode(r["event_type"], r["payload"], r["create_time"]) for r in rows
        ]

    @staticmethod
    def _rejected(head: Prepared, error: DomainError | None) -> Written:
        return Written(
            Outcome.REJECTED, head.event_type, head.request_id, head.interaction_id,
            error=error,
        )  # fmt: skip


def _event_id_taken(p: Prepared) -> AlreadyExists:
    field_path = _id_field(p)
    return AlreadyExists(
        f"{field_path} {p.event_id!r} is already used by another event",
        reason="EVENT_ID_TAKEN",
        metadata={"field": field_path},
    )
