"""The documents of an index: ingest (validate, chunk, embed, then write Milvus and
Postgres in the order ``services.retrieval.core`` describes), read, list and delete."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import structlog
from google.protobuf import json_format
from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert

from rlaas.retrieval.v1 import retrieval_pb2 as pb
from services.db import idempotency
from services.db.models import (
    IdempotencyRecord,
    RetrievalChunkRow,
    RetrievalDocumentRow,
    RetrievalIndexRow,
)
from services.errors import FieldViolation, InvalidArgument, NotFound
from services.paging import next_page_token, page_request
from services.retrieval.chunking import ChunkingConfig, chunk_text
from services.retrieval.common import (
    CHUNK,
    NUL,
    NUL_MESSAGE,
    PARENT,
    chunk_to_proto,
    document_to_proto,
    index_to_proto,
    require_index_id,
    scalar_struct_violations,
    utc_now,
)
from services.retrieval.embedding import DIMENSION
from services.retrieval.store import RetrievalStore
from services.retrieval.vectors import ChunkVector

log = structlog.get_logger(__name__)

MAX_DOCUMENTS_PER_CALL = 256
MAX_DOCUMENT_ID = 256
MAX_TEXT_CHARS = 1_000_000
MAX_SOURCE_URI = 2048
MAX_TITLE = 1000
MAX_ACCESS_TAG = 256


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


def _require_document_id(document_id: str) -> None:
    if not document_id or len(document_id) > MAX_DOCUMENT_ID:
        raise InvalidArgument.field("document_id", f"must be 1-{MAX_DOCUMENT_ID} characters")
    if NUL in document_id:
        raise InvalidArgument.field("document_id", NUL_MESSAGE)


@dataclass
class _Prepared:
    """A changed document, chunked and embedded, ready to write."""

    doc: pb.Document
    sha: str
    chunks: list[dict[str, Any]]  # RetrievalChunkRow values (children and parents)
    vectors: list[ChunkVector]


class Documents(RetrievalStore):
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
            violations += scalar_struct_violations(doc.metadata, f"{path}.metadata")
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
        require_index_id(index_id)
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
                    now = utc_now()
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
                    index_pb = index_to_proto(index)
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
        require_index_id(index_id)
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
                document=document_to_proto(doc, with_text=True),
                chunks=[chunk_to_proto(c, doc) for c in chunks],
            )

    async def list_documents(
        self, tenant_id: str, index_id: str, *, page_size: int = 0, page_token: str = ""
    ) -> tuple[list[pb.Document], str]:
        require_index_id(index_id)
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
        return [document_to_proto(r, with_text=False) for r in rows[: page.size]], token

    async def delete_document(
        self, tenant_id: str, index_id: str, document_id: str, request_id: str
    ) -> int:
        """Deletes a document with its chunks; returns how many chunks went."""
        require_index_id(index_id)
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
                        index.update_time = utc_now()
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
