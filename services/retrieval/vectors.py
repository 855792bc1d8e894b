"""Chunk vectors in Milvus: one collection for every tenant and index.

Tenant isolation: every row carries ``tenant_id`` and ``index_id`` scalar fields, and
every read and delete goes through ``_scope()``, which always filters on both (there
is no method that takes a raw filter). One shared collection rather than one per
(tenant, index) because Milvus collections are heavyweight (each holds segments,
channels and a loaded index; a server caps them at a few thousand), while a scalar
filter on a FLAT index costs nothing extra: the search stays exact over the rows that
pass the filter. Ids are the chunk ids Postgres holds, so an upsert retried after a
crash overwrites instead of duplicating.

Writes land in Milvus' growing segments, which searches scan by brute force outside the
index (on milvus-lite 10k growing rows cost ~1 s per search; sealed and indexed, ~20 ms).
So a write schedules a flush (seal + index) a moment later, once per burst of writes;
searches are correct either way (strong consistency), only faster after it.

pymilvus' ``MilvusClient`` is synchronous (its async client needs RPCs milvus-lite does
not implement), so every call runs in a worker thread. milvus-lite also lacks filter
templating, so literals are JSON-encoded (a JSON string is a valid, fully escaped
Milvus string literal).
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import structlog

log = structlog.get_logger(__name__)

VECTOR_FIELD = "embedding"


_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def lit(value: Any) -> str:
    """A Milvus expression literal (string, number, bool, or a list of them). Strings
    escape only what Milvus' parser knows (it rejects ``\\uXXXX``); other characters,
    control characters included, stand as they are inside the quotes."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + "".join(_ESCAPES.get(ch, ch) for ch in value) + '"'
    if isinstance(value, int | float):
        return json.dumps(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(lit(v) for v in value) + "]"
    raise TypeError(f"no Milvus literal for {type(value).__name__}")


@dataclass(frozen=True, slots=True)
class ChunkVector:
    chunk_id: str
    document_id: str
    content_sha256: str
    access_tag: str
    metadata: Mapping[str, Any]
    vector: np.ndarray


@dataclass(frozen=True, slots=True)
class VectorFilter:
    """Which rows of one index a search may return (all optional)."""

    metadata_equals: Mapping[str, Any] | None = None
    access_tags: Sequence[str] | None = None
    document_ids: Sequence[str] | None = None


def _scope(tenant_id: str, index_id: str) -> str:
    return f"tenant_id == {lit(tenant_id)} and index_id == {lit(index_id)}"


def filter_expression(tenant_id: str, index_id: str, flt: VectorFilter | None) -> str:
    parts = [_scope(tenant_id, index_id)]
    if flt is not None:
        for key, value in (flt.metadata_equals or {}).items():
            parts.append(f"metadata[{lit(key)}] == {lit(value)}")
        if flt.access_tags:
            parts.append(f'(access_tag == "" or access_tag in {lit(list(flt.access_tags))})')
        if flt.document_ids:
            parts.append(f"document_id in {lit(list(flt.document_ids))}")
    return " and ".join(parts)


class VectorStore:
    def __init__(self, uri: str, *, token: str | None, collection: str, dimension: int) -> None:
        self._uri = uri
        self._token = token or ""
        self.collection = collection
        self.dimension = dimension
        self._client: Any = None
        self._lock = threading.Lock()
        self._ready = False
        self._flush_task: asyncio.Task[None] | None = None

    def _connect(self) -> Any:
        with self._lock:
            if self._client is None:
                from pymilvus import MilvusClient

                self._client = MilvusClient(uri=self._uri, token=self._token, timeout=30)
            if not self._ready:
                self._ensure_collection(self._client)
                self._ready = True
            return self._client

    def _ensure_collection(self, client: Any) -> None:
        from pymilvus import DataType, MilvusClient

        if client.has_collection(self.collection):
            client.load_collection(self.collection)
            return
        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("chunk_id", DataType.VARCHAR, is_primary=True, max_length=64)
        schema.add_field("tenant_id", DataType.VARCHAR, max_length=64)
        schema.add_field("index_id", DataType.VARCHAR, max_length=64)
        schema.add_field("document_id", DataType.VARCHAR, max_length=256)
        schema.add_field("content_sha256", DataType.VARCHAR, max_length=64)
        schema.add_field("access_tag", DataType.VARCHAR, max_length=256)
        schema.add_field("metadata", DataType.JSON)
        schema.add_field(VECTOR_FIELD, DataType.FLOAT_VECTOR, dim=self.dimension)
        index = MilvusClient.prepare_index_params()
        # FLAT: exact search (recall 1.0). Inner product on L2-normalised vectors is the
        # cosine similarity.
        index.add_index(field_name=VECTOR_FIELD, index_type="FLAT", metric_type="IP")
        # Strong consistency: a search right after an upsert or delete sees it.
        client.create_collection(
            self.collection, schema=schema, index_params=index, consistency_level="Strong"
        )

    async def _run(self, fn: str, *args: Any, **kwargs: Any) -> Any:
        def call() -> Any:
            return getattr(self._connect(), fn)(self.collection, *args, **kwargs)

        return await asyncio.to_thread(call)

    FLUSH_DELAY_S = 2.0

    def _schedule_flush(self) -> None:
        if self._flush_task is None or self._flush_task.done():
            self._flush_task = asyncio.get_running_loop().create_task(self._delayed_flush())

    async def _delayed_flush(self) -> None:
        await asyncio.sleep(self.FLUSH_DELAY_S)
        try:
            await self.flush()
        except Exception:  # an optimisation only: the next write schedules another
            log.warning("milvus_flush_failed", exc_info=True)

    async def flush(self) -> None:
        """Seals the growing segments so searches use the index."""
        await self._run("flush")

    async def upsert(self, tenant_id: str, index_id: str, rows: Sequence[ChunkVector]) -> None:
        for start in range(0, len(rows), 1000):
            batch = [
                {
                    "chunk_id": r.chunk_id,
                    "tenant_id": tenant_id,
                    "index_id": index_id,
                    "document_id": r.document_id,
                    "content_sha256": r.content_sha256,
                    "access_tag": r.access_tag,
                    "metadata": dict(r.metadata),
                    VECTOR_FIELD: r.vector.astype(np.float32).tolist(),
                }
                for r in rows[start : start + 1000]
            ]
            await self._run("upsert", batch)
        if rows:
            self._schedule_flush()

    async def delete(
        self,
        tenant_id: str,
        index_id: str,
        *,
        document_ids: Sequence[str] | None = None,
        keep_content_sha256: Sequence[str] | None = None,
    ) -> None:
        """Deletes the index's rows (of ``document_ids`` only, if given), keeping those
        whose document content hash is in ``keep_content_sha256``."""
        expr = _scope(tenant_id, index_id)
        if document_ids is not None:
            if not document_ids:
                return
            expr += f" and document_id in {lit(list(document_ids))}"
        if keep_content_sha256:
            expr += f" and content_sha256 not in {lit(list(keep_content_sha256))}"
        await self._run("delete", filter=expr)
        self._schedule_flush()

    async def search(
        self,
        tenant_id: str,
        index_id: str,
        vector: np.ndarray,
        limit: int,
        flt: VectorFilter | None = None,
    ) -> list[tuple[str, float]]:
        """(chunk_id, cosine) best first, exact, within one tenant's index."""
        found = await self._run(
            "search",
            data=[vector.astype(np.float32).tolist()],
            anns_field=VECTOR_FIELD,
            limit=limit,
            filter=filter_expression(tenant_id, index_id, flt),
            output_fields=["chunk_id"],
            search_params={"metric_type": "IP"},
        )
        return [(hit["chunk_id"], float(hit["distance"])) for hit in found[0]]

    async def vectors(
        self, tenant_id: str, index_id: str, chunk_ids: Sequence[str]
    ) -> dict[str, np.ndarray]:
        if not chunk_ids:
            return {}
        rows = await self._run(
            "query",
            filter=f"{_scope(tenant_id, index_id)} and chunk_id in {lit(list(chunk_ids))}",
            output_fields=["chunk_id", VECTOR_FIELD],
        )
        return {r["chunk_id"]: np.asarray(r[VECTOR_FIELD], dtype=np.float32) for r in rows}

    async def chunk_ids(
        self, tenant_id: str, index_id: str, document_id: str | None = None
    ) -> list[str]:
        """Ids stored for an index (or one of its documents): what tests and repair
        checks read to see Milvus itself, not Postgres."""
        expr = _scope(tenant_id, index_id)
        if document_id is not None:
            expr += f" and document_id == {lit(document_id)}"
        rows = await self._run("query", filter=expr, output_fields=["chunk_id"], limit=16_384)
        return sorted(r["chunk_id"] for r in rows)

    def close(self) -> None:
        if self._flush_task is not None:
            self._flush_task.cancel()
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None
                self._ready = False
