"""Parquet export of telemetry to the object store, and compaction of its small files.

Layout: ``exports/tenant=<id>/event_type=<kind>/date=<YYYY-MM-DD>/<file>.parquet``
(Hive-style, so pyarrow.dataset / DuckDB / Spark read it as a partitioned dataset; the
date is the UTC date of ``create_time``). An export writes one file per partition named
after its time range, so re-running it rewrites the same files; compaction merges a
partition's files into one, dropping rows seen twice (overlapping exports) by event id.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, cast

import pyarrow as pa
import pyarrow.parquet as pq
from google.protobuf import json_format
from sqlalchemy import Table, select
from sqlalchemy.ext.asyncio import AsyncEngine

from rlaas.telemetry.v1 import telemetry_pb2 as pb
from services.db import idempotency
from services.db.models import TelemetryEvent
from services.errors import InvalidArgument
from services.objects.store import ObjectStore
from services.telemetry.events import EVENT_NAMES, INTERACTION
from services.telemetry.pii import Scrubber
from services.telemetry.store import decode
from services.tenancy.principal import Principal, Scope

_T = cast(Table, TelemetryEvent.__table__)
COMPACTED = "compacted.parquet"

# Columns common to every kind, then typed columns per kind; `record` keeps the whole
# event as JSON (proto3 JSON names) so nothing is lost to the flattening.
_COMMON = [
    ("tenant_id", pa.string()),
    ("event_id", pa.string()),
    ("interaction_id", pa.string()),
    ("request_id", pa.string()),
    ("create_time", pa.timestamp("us", tz="UTC")),
    ("event_time", pa.timestamp("us", tz="UTC")),
]
_TYPED: dict[int, list[tuple[str, pa.DataType]]] = {
    pb.EVENT_TYPE_INTERACTION: [
        ("skill", pa.string()), ("user_id", pa.string()), ("thread_id", pa.string()),
        ("policy_id", pa.string()), ("base_model", pa.string()), ("input_text", pa.string()),
        ("prompt_tokens", pa.int64()), ("completion_tokens", pa.int64()),
        ("cost_usd", pa.float64()), ("training_opt_out", pa.bool_()),
    ],
    pb.EVENT_TYPE_OUTPUT: [
        ("output_id", pa.string()), ("policy_id", pa.string()), ("text", pa.string()),
        ("finish_reason", pa.string()), ("completion_tokens", pa.int64()),
        ("cost_usd", pa.float64()),
    ],
    pb.EVENT_TYPE_FEEDBACK: [
        ("output_id", pa.string()), ("user_id", pa.string()), ("thumb", pa.int8()),
        ("rating", pa.int8()), ("comment", pa.string()), ("edited_text", pa.string()),
        ("sent", pa.bool_()), ("time_to_send_ms", pa.int64()), ("escalated", pa.bool_()),
        ("follow_up_count", pa.int32()),
    ],
    pb.EVENT_TYPE_TASK_RESULT: [
        ("output_id", pa.string()), ("correct", pa.bool_()), ("f1", pa.float64()),
        ("resolved", pa.bool_()),
    ],
}  # fmt: skip


def schema(event_type: int) -> pa.Schema:
    return pa.schema([*_COMMON, *_TYPED[event_type], ("record", pa.string())])


def _opt(msg: object, name: str) -> object:
    return getattr(msg, name) if msg.HasField(name) else None  # type: ignore[attr-defined]


def _typed(event_type: int, m: object) -> dict[str, object]:
    if event_type == pb.EVENT_TYPE_INTERACTION:
        assert isinstance(m, pb.Interaction)
        text = m.input.text or "\n".join(msg.content for msg in m.input.messages)
        return {
            "skill": m.skill, "user_id": m.user_id or None, "thread_id": m.thread_id or None,
            "policy_id": m.policy_id or None, "base_model": m.base_model or None,
            "input_text": text, "prompt_tokens": m.usage.prompt_tokens,
            "completion_tokens": m.usage.completion_tokens, "cost_usd": m.cost_usd,
            "training_opt_out": m.training_opt_out,
        }  # fmt: skip
    if event_type == pb.EVENT_TYPE_OUTPUT:
        assert isinstance(m, pb.Output)
        return {
            "output_id": m.output_id, "policy_id": m.policy_id or None, "text": m.text,
            "finish_reason": pb.FinishReason.Name(m.finish_reason),
            "completion_tokens": m.usage.completion_tokens, "cost_usd": m.cost_usd,
        }  # fmt: skip
    if event_type == pb.EVENT_TYPE_FEEDBACK:
        assert isinstance(m, pb.Feedback)
        ex, im = m.explicit, m.implicit
        thumb = {ex.THUMB_UP: 1, ex.THUMB_DOWN: -1}.get(ex.thumb)
        return {
            "output_id": m.output_id or None, "user_id": m.user_id or None, "thumb": thumb,
            "rating": _opt(ex, "rating"), "comment": ex.comment or None,
            "edited_text": _opt(im, "edited_text"), "sent": _opt(im, "sent"),
            "time_to_send_ms": _opt(im, "time_to_send_ms"), "escalated": _opt(im, "escalated"),
            "follow_up_count": _opt(im, "follow_up_count"),
        }  # fmt: skip
    assert isinstance(m, pb.TaskResult)
    return {
        "output_id": m.output_id or None, "correct": _opt(m, "correct"), "f1": _opt(m, "f1"),
        "resolved": _opt(m, "resolved"),
    }  # fmt: skip


@dataclass(frozen=True)
class ExportedFile:
    uri: str
    key: str
    event_type: int
    partition_date: str
    row_count: int
    size_bytes: int
    sha256: str


def _partition_prefix(tenant_id: str, event_type: int, day: date | str) -> str:
    return f"exports/tenant={tenant_id}/event_type={EVENT_NAMES[event_type]}/date={day}/"


def _to_parquet(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()


def _validate_range(start: datetime | None, end: datetime | None, max_days: float) -> None:
    if start is None:
        raise InvalidArgument.field("start_time", "is required")
    if end is None:
        raise InvalidArgument.field("end_time", "is required")
    if end <= start:
        raise InvalidArgument.field("end_time", "must be after start_time")
    if end - start > timedelta(days=max_days):
        raise InvalidArgument.field("end_time", f"range is longer than {max_days:g} days")


class Exporter:
    def __init__(self, engine: AsyncEngine, objects: ObjectStore, *, max_range_days: float):
        self._engine = engine
        self._objects = objects
        self._max_days = max_range_days
        self._redactor = Scrubber()

    async def export(
        self,
        caller: Principal,
        *,
        start: datetime | None,
        end: datetime | None,
        event_types: Iterable[int] = (),
        skill: str = "",
        redact_pii: bool = False,
        request_id: str,
    ) -> list[ExportedFile]:
        caller.require(Scope.INGEST)
        # Exports are deterministic (same range, same files), so a retry is harmless and
        # request_id needs no claim; it is still required by the contract.
        idempotency.validate_request_id(request_id)
        _validate_range(start, end, self._max_days)
        types = sorted(set(event_types)) or sorted(_TYPED)
        for i, t in enumerate(types):
            if t not in _TYPED:
                raise InvalidArgument.field(f"event_types[{i}]", f"unknown event type {t}")
        query = select(
            _T.c.event_type, _T.c.event_id, _T.c.interaction_id, _T.c.request_id,
            _T.c.create_time, _T.c.event_time, _T.c.payload,
        ).where(
            _T.c.tenant_id == caller.tenant_id,
            _T.c.create_time >= start,
            _T.c.create_time < end,
            _T.c.event_type.in_(types),
        )  # fmt: skip
        if skill:
            of_skill = select(_T.c.event_id).where(
                _T.c.tenant_id == caller.tenant_id,
                _T.c.event_type == INTERACTION,
                _T.c.skill == skill,
            )
            query = query.where(_T.c.interaction_id.in_(of_skill))
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query.order_by(_T.c.create_time, _T.c.event_id))).all()

        assert start is not None and end is not None
        tag = f"part-{start:%Y%m%dT%H%M%S}-{end:%Y%m%dT%H%M%S}.parquet"
        tables = await asyncio.to_thread(self._tables, caller.tenant_id, list(rows), redact_pii)
        files = []
        for (event_type, day), table in sorted(tables.items()):
            key = _partition_prefix(caller.tenant_id, event_type, day) + tag
            files.append(await self._write(key, event_type, day, table))
        return files

    def _tables(
        self, tenant_id: str, rows: list[Any], redact: bool
    ) -> dict[tuple[int, str], pa.Table]:
        columns: dict[tuple[int, str], dict[str, list[object]]] = {}
        for row in rows:
            message = decode(row.event_type, row.payload, row.create_time)
            values = {
                "tenant_id": tenant_id, "event_id": row.event_id,
                "interaction_id": row.interaction_id, "request_id": row.request_id,
                "create_time": row.create_time, "event_time": row.event_time,
                **_typed(row.event_type, message),
                "record": json_format.MessageToJson(message, indent=None),
            }  # fmt: skip
            if redact:
                values = {
                    k: self._redactor.scrub(v).text if isinstance(v, str) and k not in
                    {"tenant_id", "event_id", "interaction_id", "request_id"} else v
                    for k, v in values.items()
                }  # fmt: skip
            day = row.create_time.astimezone(UTC).date().isoformat()
            bucket = columns.setdefault((row.event_type, day), defaultdict(list))
            for name, value in values.items():
                bucket[name].append(value)
        return {
            key: pa.Table.from_pydict(dict(cols), schema=schema(key[0]))
            for key, cols in columns.items()
        }

    async def _write(self, key: str, event_type: int, day: str, table: pa.Table) -> ExportedFile:
        data = await asyncio.to_thread(_to_parquet, table)
        uri = await self._objects.put(key, data)
        return ExportedFile(
            uri, key, event_type, day, table.num_rows, len(data), hashlib.sha256(data).hexdigest()
        )

    async def compact(
        self,
        caller: Principal,
        *,
        start: datetime | None,
        end: datetime | None,
        event_types: Iterable[int] = (),
        request_id: str,
    ) -> tuple[list[ExportedFile], int]:
        """Merge each partition's files into one. Returns the new files and how many
        files went in. Crash-safe: the merged file is written before the inputs are
        deleted, and a re-run de-duplicates by event id."""
        caller.require(Scope.INGEST)
        idempotency.validate_request_id(request_id)
        _validate_range(start, end, self._max_days)
        assert start is not None and end is not None
        types = sorted(set(event_types)) or sorted(_TYPED)
        files, inputs = [], 0
        day = start.astimezone(UTC).date()
        while datetime.combine(day, datetime.min.time(), UTC) < end:
            for event_type in types:
                prefix = _partition_prefix(caller.tenant_id, event_type, day)
                keys = [k for k in await self._objects.list(prefix) if k.endswith(".parquet")]
                if not keys or keys == [prefix + COMPACTED]:
                    continue  # nothing there, or already compacted: a no-op
                parts = [await self._objects.get(k) for k in keys]
                table = await asyncio.to_thread(_merge, parts, schema(event_type))
                files.append(await self._write(prefix + COMPACTED, event_type, str(day), table))
                for key in keys:
                    if key != prefix + COMPACTED:
                        await self._objects.delete(key)
                inputs += len(keys)
            day += timedelta(days=1)
        return files, inputs


def _merge(parts: list[bytes], target: pa.Schema) -> pa.Table:
    tables = [pq.read_table(io.BytesIO(p)).cast(target) for p in parts]
    merged = pa.concat_tables(tables).sort_by(
        [("create_time", "ascending"), ("event_id", "ascending")]
    )
    seen: set[str] = set()
    keep = []
    for i, event_id in enumerate(merged.column("event_id").to_pylist()):
        if event_id not in seen:
            seen.add(event_id)
            keep.append(i)
    return merged.take(pa.array(keep, type=pa.int64()))
