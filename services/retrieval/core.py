"""Retrieval memory: indexes of documents, chunked and embedded, searched dense, sparse
(BM25) or hybrid. The domain core behind RetrievalService, and what the inference
gateway calls in process (``runtime.retrieval``). No gRPC here.

Storage: documents, chunks and their lineage in Postgres; chunk vectors in Milvus
(``services.retrieval.vectors``), under the chunk ids Postgres holds. Every method takes
the caller's ``tenant_id`` and every query filters on it.

Consistency between the two stores, without distributed transactions: writes to one
index are serialised by a Postgres advisory lock held for the whole write, and go in
this order --

1. Milvus: upsert the new chunks' vectors (ids derived from the content hash, so a
   retry overwrites);
2. Postgres, one transaction: the documents, their chunks, the index's counts and
   ``content_version``;
3. Milvus: delete the vectors of the written documents whose content hash is not the
   current one (old versions, or leftovers of a crash).

Searches join Milvus hits to Postgres rows, so vectors without a committed chunk row
(a crash between 1 and 2, or between 2 and 3) are never returned, and a retry of the
same call repairs Milvus. Deletes commit in Postgres first, then delete in Milvus; a
retried delete (even of a document already gone) deletes in Milvus again.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import re
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import structlog
from google.protobuf import json_format, struct_pb2
from sqlalchemy import delete, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rlaas.registry.v1 import registry_pb2
from rlaas.retrieval.v1 import retrieval_pb2 as pb
from services.db import idempotency
from services.db.models import (
    IdempotencyRecord,
    PolicyRow,
    RetrievalChunkRow,
    RetrievalDocumentRow,
    RetrievalIndexRow,
)
from services.errors import (
    AlreadyExists,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
)
from services.paging import next_page_token, page_request
from services.retrieval.chunking import (
    DEFAULT_CHUNK_OVERLAP,
    DEFAULT_CHUNK_SIZE,
    ChunkingConfig,
    chunk_text,
)
from services.retrieval.embedding import DIMENSION, MODEL_NAME, Embedder, default_embedder
from services.retrieval.sparse import SparseCache, SparseIndex
from services.retrieval.vectors import ChunkVector, VectorFilter, VectorStore

log = structlog.get_logger(__name__)

SEARCH_MODE_DENSE = pb.SEARCH_MODE_DENSE
SEARCH_MODE_SPARSE = pb.SEARCH_MODE_SPARSE
SEARCH_MODE_HYBRID = pb.SEARCH_MODE_HYBRID

INDEX_ID = re.compile(r"^[a-z][a-z0-9_-]{0,62}\Z")  # \Z: `$` lets "id\n" through
MAX_DOCUMENTS_PER_CALL = 256
MAX_DOCUMENT_ID = 256
MAX_TEXT_CHARS = 1_000_000
MAX_SOURCE_URI = 2048
MAX_TITLE = 1000
MAX_ACCESS_TAG = 256
MAX_DESCRIPTION = 2000
MAX_QUERY_CHARS = 10_000
MAX_TOP_K = 100
DEFAULT_TOP_K = 5
RRF_K = 60
"""Reciprocal-rank fusion constant (Cormack et al. 2009): score = sum 1 / (60 + rank)."""
CANDIDATE_DEPTH = 50
"""Candidates each path contributes to fusion or re-ranking, at least (4 x top_k if
larger): deep enough that a chunk ranked well by one path and moderately by the other
still fuses near the top."""
RERANKER_BM25 = "bm25"
NUL = "\x00"
NUL_MESSAGE = "must not contain NUL (U+0000) characters"
"""PostgreSQL text cannot hold U+0000: such input is refused, named, never a 500."""
CHUNK = "chunk"
PARENT = "parent"


def _now() -> datetime:
    return datetime.now(UTC)


def _ts(value: datetime) -> Any:
    from google.protobuf.timestamp_pb2 import Timestamp

    ts = Timestamp()
    ts.FromDatetime(value)
    return ts


def _struct(value: Mapping[str, Any]) -> struct_pb2.Struct:
    out = struct_pb2.Struct()
    out.update(dict(value))
    return out


def content_sha256(doc: pb.Document) -> str:
    """Hash of everything an upsert stores for a document (not its id)."""
    canonical = json.dumps(
        {
            "text": doc.text,
            "source_uri": doc.source_uri,
            "title": doc.title,
            "metadata": json_format.MessageToDict(doc.metadata),
            "access_tag": doc.access_tag,
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def chunk_id_of(
    tenant_id: str, index_id: str, document_id: str, sha: str, kind: str, position: int
) -> str:
    raw = "\x00".join((tenant_id, index_id, document_id, sha, kind, str(position)))
    prefix = "chk_" if kind == CHUNK else "par_"
    return prefix + hashlib.sha256(raw.encode()).hexdigest()[:32]


def _same(a: Any, b: Any) -> bool:
    """Equality by value, where a bool never equals a number (True == 1.0 in Python)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    return bool(a == b)


def _scalar_struct_violations(struct: struct_pb2.Struct, path: str) -> list[FieldViolation]:
    out = []
    for key, value in struct.fields.items():
        kind = value.WhichOneof("kind")
        if kind not in ("string_value", "number_value", "bool_value"):
            out.append(FieldViolation(f"{path}.{key}", "must be a string, number or bool"))
        elif kind == "number_value" and not math.isfinite(value.number_value):
            out.append(FieldViolation(f"{path}.{key}", "must be a finite number"))
        if not key:
            out.append(FieldViolation(path, "keys must not be empty"))
        if NUL in key or (kind == "string_value" and NUL in value.string_value):
            out.append(FieldViolation(f"{path}.{key}", NUL_MESSAGE))
    return out


def _require_index_id(index_id: str, field: str = "index_id") -> None:
    if not INDEX_ID.match(index_id):
        raise InvalidArgument.field(
            field,
            "must be 1-63 lower-case letters, digits, '-' or '_', starting with a letter",
        )


def _require_document_id(document_id: str) -> None:
    if not document_id or len(document_id) > MAX_DOCUMENT_ID:
        raise InvalidArgument.field("document_id", f"must be 1-{MAX_DOCUMENT_ID} characters")
    if NUL in document_id:
        raise InvalidArgument.field("document_id", NUL_MESSAGE)


def _index_pb(row: RetrievalIndexRow) -> pb.Index:
    return pb.Index(
        index_id=row.index_id,
        tenant_id=row.tenant_id,
        description=row.description,
        chunking=pb.ChunkingConfig(
            chunk_size=row.chunk_size,
            chunk_overlap=row.chunk_overlap,
            parent_chunk_size=row.parent_chunk_size,
        ),
        embedding_model=row.embedding_model,
        dimension=row.dimension,
        document_count=row.document_count,
        chunk_count=row.chunk_count,
        content_version=row.content_version,
        create_time=_ts(row.create_time),
        update_time=_ts(row.update_time),
    )


def _document_pb(row: RetrievalDocumentRow, *, with_text: bool) -> pb.Document:
    return pb.Document(
        document_id=row.document_id,
        text=row.text if with_text else "",
        source_uri=row.source_uri,
        title=row.title,
        metadata=_struct(row.doc_metadata),
        access_tag=row.access_tag,
        content_sha256=row.content_sha256,
        chunk_count=row.chunk_count,
        create_time=_ts(row.create_time),
        update_time=_ts(row.update_time),
    )


def _chunk_pb(chunk: RetrievalChunkRow, doc: RetrievalDocumentRow) -> pb.Chunk:
    return pb.Chunk(
        chunk_id=chunk.chunk_id,
        document_id=chunk.document_id,
        parent_chunk_id=chunk.parent_chunk_id or "",
        text=chunk.text,
        start_offset=chunk.start_offset,
        end_offset=chunk.end_offset,
        source_uri=doc.source_uri,
        title=doc.title,
        metadata=_struct(doc.doc_metadata),
        access_tag=doc.access_tag,
        position=chunk.position,
    )


@dataclass
class _Prepared:
    """A changed document, chunked and embedded, ready to write."""

    doc: pb.Document
    sha: str
    chunks: list[dict[str, Any]]  # RetrievalChunkRow values (children and parents)
    vectors: list[ChunkVector]


@dataclass(frozen=True)
class _Filter:
    metadata_equals: dict[str, Any]
    access_tags: list[str]
    document_ids: list[str]

    @property
    def empty(self) -> bool:
        return not (self.metadata_equals or self.access_tags or self.document_ids)

    def allows(self, document_id: str, metadata: Mapping[str, Any], access_tag: str) -> bool:
        if self.document_ids and document_id not in self.document_ids:
            return False
        if self.access_tags and access_tag and access_tag not in self.access_tags:
            return False
        return all(k in metadata and _same(metadata[k], v) for k, v in self.metadata_equals.items())

    def for_vectors(self) -> VectorFilter:
        return VectorFilter(self.metadata_equals, self.access_tags, self.document_ids)


def parse_filter(flt: pb.SearchFilter | None, path: str = "filter") -> _Filter:
    if flt is None:
        return _Filter({}, [], [])
    violations = _scalar_struct_violations(flt.metadata_equals, f"{path}.metadata_equals")
    for name in ("access_tags", "document_ids"):
        for i, value in enumerate(getattr(flt, name)):
            if NUL in value:
                violations.append(FieldViolation(f"{path}.{name}[{i}]", NUL_MESSAGE))
    if violations:
        raise InvalidArgument(violations)
    return _Filter(
        json_format.MessageToDict(flt.metadata_equals),
        list(flt.access_tags),
        list(flt.document_ids),
    )


class RetrievalCore:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        vectors: VectorStore,
        *,
        embedder: Callable[[], Embedder] = default_embedder,
        bm25_cache_indexes: int = 16,
    ) -> None:
        self._sessions = sessions
        self.vectors = vectors
        self._embedder_factory = embedder
        self._sparse = SparseCache(bm25_cache_indexes)

    @property
    def embedder(self) -> Embedder:
        return self._embedder_factory()

    async def _embed(self, texts: Sequence[str]) -> np.ndarray:
        # Loading the model (first call) and the forward passes both run off the loop.
        return await asyncio.to_thread(lambda: self.embedder.embed(list(texts)))

    # ---- locking ---------------------------------------------------------------------

    @asynccontextmanager
    async def _write_lock(self, tenant_id: str, index_id: str) -> AsyncIterator[None]:
        """Serialises writes to one index across processes (see the module docstring):
        a transaction-scoped advisory lock on a connection of its own, held until the
        Milvus cleanup after the data transaction is done."""
        async with self._sessions() as session, session.begin():
            await session.execute(
                text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
                {"key": f"rlaas.retrieval/{tenant_id}/{index_id}"},
            )
            yield

    # ---- indexes ---------------------------------------------------------------------

    async def _index_row(
        self, session: AsyncSession, tenant_id: str, index_id: str, *, lock: bool = False
    ) -> RetrievalIndexRow:
        query = select(RetrievalIndexRow).where(
            RetrievalIndexRow.tenant_id == tenant_id, RetrievalIndexRow.index_id == index_id
        )
        row = await session.scalar(query.with_for_update() if lock else query)
        if row is None:
            raise NotFound("index", index_id)
        return row

    async def create_index(self, tenant_id: str, index: pb.Index, request_id: str) -> pb.Index:
        violations: list[FieldViolation] = []
        if not INDEX_ID.match(index.index_id):
            violations.append(
                FieldViolation(
                    "index.index_id",
                    "must be 1-63 lower-case letters, digits, '-' or '_', starting with a letter",
                )
            )
        if NUL in index.description:
            violations.append(FieldViolation("index.description", NUL_MESSAGE))
        if len(index.description) > MAX_DESCRIPTION:
            violations.append(
                FieldViolation("index.description", f"must be at most {MAX_DESCRIPTION} chars")
            )
        c = index.chunking
        size = c.chunk_size or DEFAULT_CHUNK_SIZE
        # 0 means the default (proto3 has no presence here): at most half the size.
        overlap = c.chunk_overlap or min(DEFAULT_CHUNK_OVERLAP, size // 2)
        try:
            config = ChunkingConfig(size, overlap, c.parent_chunk_size)
        except ValueError as exc:
            field = str(exc).split(" ", 1)[0]
            violations.append(FieldViolation(f"index.chunking.{field}", str(exc)))
            config = ChunkingConfig()
        if c.chunk_overlap < 0 or c.parent_chunk_size < 0:
            violations.append(FieldViolation("index.chunking", "sizes must not be negative"))
        idempotency.validate_request_id(request_id)
        if violations:
            raise InvalidArgument(violations)

        now = _now()
        async with self._write_lock(tenant_id, index.index_id):
            # No vectors may exist for an index Postgres does not have: clear leftovers
            # of a deleted index of the same id whose Milvus cleanup did not finish.
            async with self._sessions() as session:
                exists = await session.scalar(
                    select(RetrievalIndexRow.index_id).where(
                        RetrievalIndexRow.tenant_id == tenant_id,
                        RetrievalIndexRow.index_id == index.index_id,
                    )
                )
            if exists is None:
                await self.vectors.delete(tenant_id, index.index_id)
            async with self._sessions() as session, session.begin():
                prior = await idempotency.claim(
                    session,
                    tenant_id=tenant_id,
                    method="CreateIndex",
                    request_id=request_id,
                    payload=json_format.MessageToDict(index),
                    resource_id=index.index_id,
                )
                if prior is not None:
                    return _index_pb(await self._index_row(session, tenant_id, prior))
                inserted = await session.scalar(
                    insert(RetrievalIndexRow)
                    .values(
                        tenant_id=tenant_id,
                        index_id=index.index_id,
                        description=index.description,
                        chunk_size=config.chunk_size,
                        chunk_overlap=config.chunk_overlap,
                        parent_chunk_size=config.parent_chunk_size,
                        embedding_model=MODEL_NAME,
                        dimension=DIMENSION,
                        document_count=0,
                        chunk_count=0,
                        content_version=0,
                        create_time=now,
                        update_time=now,
                    )
                    .on_conflict_do_nothing()
                    .returning(RetrievalIndexRow.index_id)
                )
                if inserted is None:
                    raise AlreadyExists(
                        f"index {index.index_id!r} already exists",
                        metadata={"resource_type": "index", "name": index.index_id},
                    )
                row = await self._index_row(session, tenant_id, index.index_id)
                log.info("retrieval_index_created", tenant=tenant_id, index=index.index_id)
                return _index_pb(row)

    async def get_index(self, tenant_id: str, index_id: str) -> pb.Index:
        _require_index_id(index_id)
        async with self._sessions() as session:
            return _index_pb(await self._index_row(session, tenant_id, index_id))

    async def content_version(self, tenant_id: str, index_id: str) -> int:
        """The index's content version (raises NotFound for a missing index)."""
        async with self._sessions() as session:
            version = await session.scalar(
                select(RetrievalIndexRow.content_version).where(
                    RetrievalIndexRow.tenant_id == tenant_id,
                    RetrievalIndexRow.index_id == index_id,
                )
            )
        if version is None:
            raise NotFound("index", index_id)
        return int(version)

    async def list_indexes(
        self, tenant_id: str, *, page_size: int = 0, page_token: str = ""
    ) -> tuple[list[pb.Index], str]:
        page = page_request(page_size, page_token)
        query = select(RetrievalIndexRow).where(RetrievalIndexRow.tenant_id == tenant_id)
        if page.after:
            query = query.where(RetrievalIndexRow.index_id > str(page.after[0]))
        query = query.order_by(RetrievalIndexRow.index_id).limit(page.size + 1)
        async with self._sessions() as session:
            rows = list(await session.scalars(query))
        token = next_page_token(rows, page.size, lambda r: [r.index_id])
        return [_index_pb(r) for r in rows[: page.size]], token

    async def _policies_using(
        self, session: AsyncSession, tenant_id: str, index_id: str
    ) -> list[str]:
        rows = await session.execute(
            select(PolicyRow.skill_id, PolicyRow.version, PolicyRow.payload).where(
                PolicyRow.tenant_id == tenant_id, PolicyRow.state != "retired"
            )
        )
        using = []
        for skill_id, version, payload in rows:
            policy = registry_pb2.Policy.FromString(payload)
            if policy.retrieval.enabled and policy.retrieval.collection == index_id:
                using.append(f"{skill_id}@v{version}")
        return using

    async def delete_index(
        self, tenant_id: str, index_id: str, request_id: str
    ) -> pb.DeleteIndexResponse:
        _require_index_id(index_id)
        idempotency.validate_request_id(request_id)
        async with self._write_lock(tenant_id, index_id):
            async with self._sessions() as session, session.begin():
                prior = await idempotency.claim(
                    session,
                    tenant_id=tenant_id,
                    method="DeleteIndex",
                    request_id=request_id,
                    payload={"index_id": index_id},
                    resource_id="",
                )
                if prior is not None:
                    documents, chunks = (int(x) for x in prior.split("/"))
                    replay = pb.DeleteIndexResponse(
                        deleted_document_count=documents, deleted_chunk_count=chunks
                    )
                else:
                    replay = None
                    row = await self._index_row(session, tenant_id, index_id, lock=True)
                    using = await self._policies_using(session, tenant_id, index_id)
                    if using:
                        raise FailedPrecondition(
                            f"index {index_id!r} is still used by policies {using}; retire "
                            "them or point their retrieval elsewhere first",
                            reason="INDEX_IN_USE",
                            metadata={"policies": ",".join(using)},
                        )
                    documents, chunks = row.document_count, row.chunk_count
                    await session.delete(row)  # documents and chunks go by cascade
                    await session.execute(
                        update(IdempotencyRecord)
                        .where(
                            IdempotencyRecord.tenant_id == tenant_id,
                            IdempotencyRecord.method == "DeleteIndex",
                            IdempotencyRecord.request_id == request_id,
                        )
                        .values(resource_id=f"{documents}/{chunks}")
                    )
            # After the commit (a replay too: it finishes a cleanup a crash cut short).
            await self.vectors.delete(tenant_id, index_id)
        log.info("retrieval_index_deleted", tenant=tenant_id, index=index_id)
        return replay or pb.DeleteIndexResponse(
            deleted_document_count=documents, deleted_chunk_count=chunks
        )

    # ---- documents -------------------------------------------------------------------

    @staticmethod
    def _validate_documents(documents: Sequence[pb.Document]) -> None:
        violations: list[FieldViolation] = []
        if not documents:
            violations.append(FieldViolation("documents", "at least one document is required"))
        if len(documents) > MAX_DOCUMENTS_PER_CALL:
            violations.append(
                FieldViolation("documents", f"at most {MAX_DOCUMENTS_PER_CALL} per call")
            )
        seen: set[str] = set()
        for i, doc in enumerate(documents):
            path = f"documents[{i}]"
            if not doc.document_id or len(doc.document_id) > MAX_DOCUMENT_ID:
                violations.append(
                    FieldViolation(f"{path}.document_id", f"must be 1-{MAX_DOCUMENT_ID} chars")
                )
            elif doc.document_id in seen:
                violations.append(
                    FieldViolation(f"{path}.document_id", "appears twice in the request")
                )
            seen.add(doc.document_id)
            if not doc.text.strip():
                violations.append(FieldViolation(f"{path}.text", "must not be empty"))
            elif len(doc.text) > MAX_TEXT_CHARS:
                violations.append(
                    FieldViolation(f"{path}.text", f"must be at most {MAX_TEXT_CHARS} chars")
                )
            for name, limit in (
                ("source_uri", MAX_SOURCE_URI),
                ("title", MAX_TITLE),
                ("access_tag", MAX_ACCESS_TAG),
            ):
                if len(getattr(doc, name)) > limit:
                    violations.append(
                        FieldViolation(f"{path}.{name}", f"must be at most {limit} chars")
                    )
            for name in ("document_id", "text", "source_uri", "title", "access_tag"):
                if NUL in getattr(doc, name):
                    violations.append(FieldViolation(f"{path}.{name}", NUL_MESSAGE))
            violations += _scalar_struct_violations(doc.metadata, f"{path}.metadata")
        if violations:
            raise InvalidArgument(violations)

    def _chunk(
        self, tenant_id: str, index: RetrievalIndexRow, doc: pb.Document, sha: str
    ) -> tuple[list[dict[str, Any]], list[str]]:
        config = ChunkingConfig(index.chunk_size, index.chunk_overlap, index.parent_chunk_size)
        cut = chunk_text(doc.text, config)
        rows: list[dict[str, Any]] = []
        parent_ids = [
            chunk_id_of(tenant_id, index.index_id, doc.document_id, sha, PARENT, i)
            for i in range(len(cut.parents))
        ]
        for i, span in enumerate(cut.parents):
            rows.append(
                dict(
                    chunk_id=parent_ids[i],
                    kind=PARENT,
                    parent_chunk_id=None,
                    position=i,
                    start_offset=span.start,
                    end_offset=span.end,
                    text=doc.text[span.start : span.end],
                )
            )
        texts = []
        for i, span in enumerate(cut.chunks):
            chunk_text_ = doc.text[span.start : span.end]
            texts.append(chunk_text_)
            rows.append(
                dict(
                    chunk_id=chunk_id_of(tenant_id, index.index_id, doc.document_id, sha, CHUNK, i),
                    kind=CHUNK,
                    parent_chunk_id=parent_ids[cut.parent_of[i]] if parent_ids else None,
                    position=i,
                    start_offset=span.start,
                    end_offset=span.end,
                    text=chunk_text_,
                )
            )
        return rows, texts

    async def _prepare(
        self, tenant_id: str, index: RetrievalIndexRow, docs: Sequence[tuple[pb.Document, str]]
    ) -> dict[str, _Prepared]:
        prepared: dict[str, _Prepared] = {}
        all_texts: list[str] = []
        for doc, sha in docs:
            rows, texts = self._chunk(tenant_id, index, doc, sha)
            prepared[doc.document_id] = _Prepared(doc, sha, rows, [])
            all_texts += texts
        vectors = await self._embed(all_texts) if all_texts else np.empty((0, DIMENSION))
        at = 0
        for p in prepared.values():
            metadata = json_format.MessageToDict(p.doc.metadata)
            for row in p.chunks:
                if row["kind"] != CHUNK:
                    continue
                p.vectors.append(
                    ChunkVector(
                        row["chunk_id"],
                        p.doc.document_id,
                        p.sha,
                        p.doc.access_tag,
                        metadata,
                        vectors[at],
                    )
                )
                at += 1
        return prepared

    async def _stored_shas(
        self, tenant_id: str, index_id: str, document_ids: Sequence[str]
    ) -> dict[str, str]:
        async with self._sessions() as session:
            rows = await session.execute(
                select(RetrievalDocumentRow.document_id, RetrievalDocumentRow.content_sha256).where(
                    RetrievalDocumentRow.tenant_id == tenant_id,
                    RetrievalDocumentRow.index_id == index_id,
                    RetrievalDocumentRow.document_id.in_(list(document_ids)),
                )
            )
            return {d: s for d, s in rows}

    async def upsert_documents(
        self,
        tenant_id: str,
        index_id: str,
        documents: Sequence[pb.Document],
        request_id: str,
    ) -> pb.UpsertDocumentsResponse:
        _require_index_id(index_id)
        self._validate_documents(documents)
        idempotency.validate_request_id(request_id)
        shas = {d.document_id: content_sha256(d) for d in documents}
        ids = list(shas)

        async with self._sessions() as session:
            index = await self._index_row(session, tenant_id, index_id)
        # The expensive part (chunking and embedding) before taking the lock, for the
        # documents that look changed now; re-checked under the lock.
        stored = await self._stored_shas(tenant_id, index_id, ids)
        changed = [
            (d, shas[d.document_id])
            for d in documents
            if stored.get(d.document_id) != shas[d.document_id]
        ]
        prepared = await self._prepare(tenant_id, index, changed)

        async with self._write_lock(tenant_id, index_id):
            stored = await self._stored_shas(tenant_id, index_id, ids)
            late = [
                (d, shas[d.document_id])
                for d in documents
                if stored.get(d.document_id) != shas[d.document_id]
                and d.document_id not in prepared
            ]
            if late:  # changed by a concurrent call between our look and the lock
                prepared.update(await self._prepare(tenant_id, index, late))
            writes = {d: p for d, p in prepared.items() if stored.get(d) != shas[d]}
            vectors = [v for p in writes.values() for v in p.vectors]
            await self.vectors.upsert(tenant_id, index_id, vectors)

            results: list[pb.DocumentResult] = []
            try:
                async with self._sessions() as session, session.begin():
                    await idempotency.claim(
                        session,
                        tenant_id=tenant_id,
                        method="UpsertDocuments",
                        request_id=request_id,
                        payload={"index_id": index_id, "documents": shas},
                        resource_id=index_id,
                    )
                    # A retry after success finds every document UNCHANGED and writes nothing.
                    index = await self._index_row(session, tenant_id, index_id, lock=True)
                    now = _now()
                    old_counts = {}
                    if writes:
                        old_counts = {
                            d: c
                            for d, c in await session.execute(
                                select(
                                    RetrievalDocumentRow.document_id,
                                    RetrievalDocumentRow.chunk_count,
                                ).where(
                                    RetrievalDocumentRow.tenant_id == tenant_id,
                                    RetrievalDocumentRow.index_id == index_id,
                                    RetrievalDocumentRow.document_id.in_(list(writes)),
                                )
                            )
                        }
                        await session.execute(
                            delete(RetrievalChunkRow).where(
                                RetrievalChunkRow.tenant_id == tenant_id,
                                RetrievalChunkRow.index_id == index_id,
                                RetrievalChunkRow.document_id.in_(list(writes)),
                            )
                        )
                    for doc in documents:
                        p = writes.get(doc.document_id)
                        n_chunks = sum(1 for r in p.chunks if r["kind"] == CHUNK) if p else 0
                        if p is None:
                            results.append(
                                pb.DocumentResult(
                                    document_id=doc.document_id,
                                    outcome=pb.DocumentResult.OUTCOME_UNCHANGED,
                                    content_sha256=shas[doc.document_id],
                                )
                            )
                            continue
                        values = dict(
                            text=doc.text,
                            source_uri=doc.source_uri,
                            title=doc.title,
                            doc_metadata=json_format.MessageToDict(doc.metadata),
                            access_tag=doc.access_tag,
                            content_sha256=p.sha,
                            chunk_count=n_chunks,
                            update_time=now,
                        )
                        await session.execute(
                            insert(RetrievalDocumentRow)
                            .values(
                                tenant_id=tenant_id,
                                index_id=index_id,
                                document_id=doc.document_id,
                                create_time=now,
                                **values,
                            )
                            .on_conflict_do_update(
                                index_elements=["tenant_id", "index_id", "document_id"],
                                set_={
                                    RetrievalDocumentRow.__table__.c[
                                        "metadata" if k == "doc_metadata" else k
                                    ].name: v
                                    for k, v in values.items()
                                },
                            )
                        )
                        created = doc.document_id not in old_counts
                        index.document_count += 1 if created else 0
                        index.chunk_count += n_chunks - old_counts.get(doc.document_id, 0)
                        results.append(
                            pb.DocumentResult(
                                document_id=doc.document_id,
                                outcome=pb.DocumentResult.OUTCOME_CREATED
                                if created
                                else pb.DocumentResult.OUTCOME_UPDATED,
                                content_sha256=p.sha,
                            )
                        )
                    rows = [
                        dict(tenant_id=tenant_id, index_id=index_id, document_id=d, **r)
                        for d, p in writes.items()
                        for r in p.chunks
                    ]
                    for start in range(0, len(rows), 2000):
                        await session.execute(insert(RetrievalChunkRow), rows[start : start + 2000])
                    if writes:
                        index.content_version += 1
                        index.update_time = now
                    counts = {
                        d: c
                        for d, c in await session.execute(
                            select(
                                RetrievalDocumentRow.document_id, RetrievalDocumentRow.chunk_count
                            ).where(
                                RetrievalDocumentRow.tenant_id == tenant_id,
                                RetrievalDocumentRow.index_id == index_id,
                                RetrievalDocumentRow.document_id.in_(ids),
                            )
                        )
                    }
                    for r in results:
                        r.chunk_count = counts.get(r.document_id, 0)
                    await session.flush()
                    index_pb = _index_pb(index)
            except BaseException:
                # Postgres still holds the previous versions: drop the vectors just
                # written for anything else (they would be orphans until a retry).
                await self.vectors.delete(
                    tenant_id,
                    index_id,
                    document_ids=ids,
                    keep_content_sha256=sorted(set(stored.values())),
                )
                raise
            # Old versions of these documents (and leftovers of an interrupted call).
            await self.vectors.delete(
                tenant_id,
                index_id,
                document_ids=ids,
                keep_content_sha256=sorted(set(shas.values())),
            )
        if writes:
            log.info(
                "retrieval_documents_upserted",
                tenant=tenant_id,
                index=index_id,
                written=len(writes),
                chunks=len(vectors),
                version=index_pb.content_version,
            )
        return pb.UpsertDocumentsResponse(results=results, index=index_pb)

    async def get_document(
        self, tenant_id: str, index_id: str, document_id: str
    ) -> pb.GetDocumentResponse:
        _require_index_id(index_id)
        _require_document_id(document_id)
        async with self._sessions() as session:
            await self._index_row(session, tenant_id, index_id)
            doc = await session.get(RetrievalDocumentRow, (tenant_id, index_id, document_id))
            if doc is None:
                raise NotFound("document", document_id)
            chunks = await session.scalars(
                select(RetrievalChunkRow)
                .where(
                    RetrievalChunkRow.tenant_id == tenant_id,
                    RetrievalChunkRow.index_id == index_id,
                    RetrievalChunkRow.document_id == document_id,
                    RetrievalChunkRow.kind == CHUNK,
                )
                .order_by(RetrievalChunkRow.position)
            )
            return pb.GetDocumentResponse(
                document=_document_pb(doc, with_text=True),
                chunks=[_chunk_pb(c, doc) for c in chunks],
            )

    async def get_chunks(
        self, tenant_id: str, index_id: str, chunk_ids: Sequence[str]
    ) -> dict[str, pb.Chunk]:
        """Chunks (or parent chunks) by id, e.g. to widen a hit to its parent."""
        async with self._sessions() as session:
            rows = await session.execute(
                select(RetrievalChunkRow, RetrievalDocumentRow)
                .join(
                    RetrievalDocumentRow,
                    (RetrievalDocumentRow.tenant_id == RetrievalChunkRow.tenant_id)
                    & (RetrievalDocumentRow.index_id == RetrievalChunkRow.index_id)
                    & (RetrievalDocumentRow.document_id == RetrievalChunkRow.document_id),
                )
                .where(
                    RetrievalChunkRow.tenant_id == tenant_id,
                    RetrievalChunkRow.index_id == index_id,
                    RetrievalChunkRow.chunk_id.in_(list(chunk_ids)),
                )
            )
            return {c.chunk_id: _chunk_pb(c, d) for c, d in rows}

    async def list_documents(
        self, tenant_id: str, index_id: str, *, page_size: int = 0, page_token: str = ""
    ) -> tuple[list[pb.Document], str]:
        _require_index_id(index_id)
        page = page_request(page_size, page_token)
        query = select(RetrievalDocumentRow).where(
            RetrievalDocumentRow.tenant_id == tenant_id,
            RetrievalDocumentRow.index_id == index_id,
        )
        if page.after:
            query = query.where(RetrievalDocumentRow.document_id > str(page.after[0]))
        query = query.order_by(RetrievalDocumentRow.document_id).limit(page.size + 1)
        async with self._sessions() as session:
            await self._index_row(session, tenant_id, index_id)
            rows = list(await session.scalars(query))
        token = next_page_token(rows, page.size, lambda r: [r.document_id])
        return [_document_pb(r, with_text=False) for r in rows[: page.size]], token

    async def delete_document(
        self, tenant_id: str, index_id: str, document_id: str, request_id: str
    ) -> int:
        """Deletes a document with its chunks; returns how many chunks went."""
        _require_index_id(index_id)
        _require_document_id(document_id)
        idempotency.validate_request_id(request_id)
        async with self._write_lock(tenant_id, index_id):
            try:
                async with self._sessions() as session, session.begin():
                    index = await self._index_row(session, tenant_id, index_id, lock=True)
                    prior = await idempotency.claim(
                        session,
                        tenant_id=tenant_id,
                        method="DeleteDocument",
                        request_id=request_id,
                        payload={"index_id": index_id, "document_id": document_id},
                        resource_id="",
                    )
                    if prior is not None:
                        deleted = int(prior or 0)
                    else:
                        doc = await session.get(
                            RetrievalDocumentRow, (tenant_id, index_id, document_id)
                        )
                        if doc is None:
                            raise NotFound("document", document_id)
                        deleted = doc.chunk_count
                        await session.delete(doc)  # chunks by cascade
                        index.document_count -= 1
                        index.chunk_count -= deleted
                        index.content_version += 1
                        index.update_time = _now()
                        await session.execute(
                            update(IdempotencyRecord)
                            .where(
                                IdempotencyRecord.tenant_id == tenant_id,
                                IdempotencyRecord.method == "DeleteDocument",
                                IdempotencyRecord.request_id == request_id,
                            )
                            .values(resource_id=str(deleted))
                        )
            finally:
                # Also when the document was already gone (NOT_FOUND): a retry of a
                # delete whose Milvus step was cut short finishes it. If the document is
                # still there (the transaction failed), its current vectors are kept.
                async with self._sessions() as session:
                    alive = await session.scalar(
                        select(RetrievalDocumentRow.content_sha256).where(
                            RetrievalDocumentRow.tenant_id == tenant_id,
                            RetrievalDocumentRow.index_id == index_id,
                            RetrievalDocumentRow.document_id == document_id,
                        )
                    )
                await self.vectors.delete(
                    tenant_id,
                    index_id,
                    document_ids=[document_id],
                    keep_content_sha256=[alive] if alive else None,
                )
        log.info("retrieval_document_deleted", tenant=tenant_id, index=index_id, chunks=deleted)
        return deleted

    # ---- search ----------------------------------------------------------------------

    async def _sparse_index(self, tenant_id: str, index_id: str, version: int) -> SparseIndex:
        key = (tenant_id, index_id, version)
        cached = self._sparse.get(key)
        if cached is not None:
            return cached
        async with self._sessions() as session, session.begin():
            # One snapshot for the version and the texts, so the model built is exactly
            # the content of the version it is cached under.
            await session.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"))
            current = await session.scalar(
                select(RetrievalIndexRow.content_version).where(
                    RetrievalIndexRow.tenant_id == tenant_id,
                    RetrievalIndexRow.index_id == index_id,
                )
            )
            if current is None:
                raise NotFound("index", index_id)
            chunks = (
                await session.execute(
                    select(
                        RetrievalChunkRow.chunk_id,
                        RetrievalChunkRow.document_id,
                        RetrievalChunkRow.text,
                    )
                    .where(
                        RetrievalChunkRow.tenant_id == tenant_id,
                        RetrievalChunkRow.index_id == index_id,
                        RetrievalChunkRow.kind == CHUNK,
                    )
                    .order_by(RetrievalChunkRow.chunk_id)
                )
            ).all()
            docs = (
                await session.execute(
                    select(
                        RetrievalDocumentRow.document_id,
                        RetrievalDocumentRow.doc_metadata,
                        RetrievalDocumentRow.access_tag,
                    ).where(
                        RetrievalDocumentRow.tenant_id == tenant_id,
                        RetrievalDocumentRow.index_id == index_id,
                    )
                )
            ).all()
        built = await asyncio.to_thread(
            SparseIndex.build,
            [c.chunk_id for c in chunks],
            [c.document_id for c in chunks],
            [c.text for c in chunks],
            {d.document_id: (d.doc_metadata, d.access_tag) for d in docs},
        )
        self._sparse.put((tenant_id, index_id, int(current)), built)
        return built

    async def search(
        self,
        tenant_id: str,
        index_id: str,
        query: str,
        *,
        top_k: int = DEFAULT_TOP_K,
        mode: int = SEARCH_MODE_HYBRID,
        filter: pb.SearchFilter | None = None,
        rerank: bool = False,
        min_score: float = 0.0,
    ) -> pb.SearchResponse:
        """Searches one index of ``tenant_id``. ``mode`` 0 means HYBRID."""
        violations = []
        if not query.strip():
            violations.append(FieldViolation("query", "must not be empty"))
        elif len(query) > MAX_QUERY_CHARS:
            violations.append(FieldViolation("query", f"must be at most {MAX_QUERY_CHARS} chars"))
        if not 1 <= top_k <= MAX_TOP_K:
            violations.append(FieldViolation("top_k", f"must be in [1, {MAX_TOP_K}]"))
        mode = mode or SEARCH_MODE_HYBRID
        if mode not in (SEARCH_MODE_DENSE, SEARCH_MODE_SPARSE, SEARCH_MODE_HYBRID):
            violations.append(FieldViolation("mode", "must be DENSE, SPARSE or HYBRID"))
        if not math.isfinite(min_score):
            violations.append(FieldViolation("min_score", "must be a finite number"))
        if violations:
            raise InvalidArgument(violations)
        _require_index_id(index_id)
        flt = parse_filter(filter)
        version = await self.content_version(tenant_id, index_id)

        depth = max(CANDIDATE_DEPTH, 4 * top_k) if (rerank or mode == SEARCH_MODE_HYBRID) else top_k
        need_sparse = mode != SEARCH_MODE_DENSE or rerank
        need_dense = mode != SEARCH_MODE_SPARSE

        dense: list[tuple[str, float]] = []
        query_vector: np.ndarray | None = None
        if need_dense:
            query_vector = (await self._embed([query]))[0]
            # A little deeper than asked: hits whose chunk row is gone (orphans of an
            # interrupted write, dropped below) must not leave the page short.
            dense = await self.vectors.search(
                tenant_id, index_id, query_vector, depth + 8, flt.for_vectors()
            )
        sparse_scores = np.zeros(0, dtype=np.float32)
        sparse: list[tuple[str, float]] = []
        sparse_index: SparseIndex | None = None
        if need_sparse:
            sparse_index = await self._sparse_index(tenant_id, index_id, version)
            sparse_scores = sparse_index.scores(query)
            if mode != SEARCH_MODE_DENSE:
                allowed = None
                if not flt.empty:
                    allowed = {
                        d for d, (meta, tag) in sparse_index.documents.items()
                        if flt.allows(d, meta, tag)
                    }  # fmt: skip
                sparse = sparse_index.top(sparse_scores, depth, sparse_index.mask(allowed))

        # Rank in the mode's own scale.
        dense_of = dict(dense)
        if mode == SEARCH_MODE_DENSE:
            ranked = dense
        elif mode == SEARCH_MODE_SPARSE:
            ranked = sparse
        else:
            fused: dict[str, float] = {}
            for hits in (dense[:depth], sparse):
                for rank, (cid, _) in enumerate(hits):
                    fused[cid] = fused.get(cid, 0.0) + 1.0 / (RRF_K + rank + 1)
            ranked = sorted(fused.items(), key=lambda kv: (-kv[1], kv[0]))
        ranked = [(c, s) for c, s in ranked if s >= min_score] if min_score else ranked

        # Join to Postgres: the chunk text and document fields, and only committed rows.
        rows = await self.get_chunks(tenant_id, index_id, [c for c, _ in ranked[: depth + 8]])
        ranked = [(c, s) for c, s in ranked if c in rows]
        reranker = ""
        if rerank and sparse_index is not None:
            reranker = RERANKER_BM25
            pool = ranked[:depth]
            order = {c: i for i, (c, _) in enumerate(pool)}
            ranked = sorted(
                pool, key=lambda cs: (-sparse_index.score_of(sparse_scores, cs[0]), order[cs[0]])
            )
        ranked = ranked[:top_k]

        if mode == SEARCH_MODE_HYBRID and query_vector is not None:
            missing = [c for c, _ in ranked if c not in dense_of]
            for cid, vec in (await self.vectors.vectors(tenant_id, index_id, missing)).items():
                dense_of[cid] = float(np.dot(vec, query_vector))
        hits = []
        for rank, (cid, score) in enumerate(ranked):
            hit = pb.SearchHit(chunk=rows[cid], score=score, rank=rank)
            if mode != SEARCH_MODE_SPARSE:
                hit.dense_score = dense_of.get(cid, 0.0)
            if sparse_index is not None:
                hit.sparse_score = sparse_index.score_of(sparse_scores, cid)
            hits.append(hit)
        return pb.SearchResponse(hits=hits, mode=mode, reranker=reranker, content_version=version)

    async def evaluate(
        self,
        tenant_id: str,
        index_id: str,
        queries: Sequence[pb.LabelledQuery],
        *,
        k: int = 10,
        mode: int = SEARCH_MODE_HYBRID,
        rerank: bool = False,
    ) -> pb.EvaluateRetrievalResponse:
        from services.retrieval.evaluation import check_queries, evaluate_retrieval

        labelled = [(q.query, list(q.relevant_document_ids)) for q in queries]
        k = k or 10
        mode = mode or SEARCH_MODE_HYBRID
        violations = []
        try:
            check_queries(labelled, k)  # the queries and k, as evaluate_retrieval checks them
        except InvalidArgument as err:
            violations += err.violations
        if mode not in (SEARCH_MODE_DENSE, SEARCH_MODE_SPARSE, SEARCH_MODE_HYBRID):
            violations.append(FieldViolation("mode", "must be DENSE, SPARSE or HYBRID"))
        if violations:
            raise InvalidArgument(violations)
        await self.content_version(tenant_id, index_id)  # NOT_FOUND before any work
        reranker = ""

        async def search(query: str) -> list[str]:
            nonlocal reranker
            found = await self.search(
                tenant_id, index_id, query, top_k=MAX_TOP_K, mode=mode, rerank=rerank
            )
            reranker = found.reranker
            return [h.chunk.document_id for h in found.hits]

        metrics = await evaluate_retrieval(search, labelled, k)
        return pb.EvaluateRetrievalResponse(
            metrics=pb.RetrievalMetrics(
                query_count=metrics.query_count,
                k=metrics.k,
                recall_at_k=metrics.recall_at_k,
                mrr=metrics.mrr,
                ndcg_at_10=metrics.ndcg_at_10,
            ),
            mode=mode,
            reranker=reranker,
        )
