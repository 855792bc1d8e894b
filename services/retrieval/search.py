"""Search: dense (Milvus), sparse (BM25 over the index's chunks, cached per content
version) or hybrid (reciprocal-rank fusion of the two), with an optional BM25
re-ranking; and the evaluation of an index against labelled queries."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from google.protobuf import json_format
from sqlalchemy import select, text

from rlaas.retrieval.v1 import retrieval_pb2 as pb
from services.db.models import RetrievalChunkRow, RetrievalDocumentRow, RetrievalIndexRow
from services.errors import FieldViolation, InvalidArgument, NotFound
from services.retrieval.common import (
    CHUNK,
    NUL,
    NUL_MESSAGE,
    chunk_to_proto,
    require_index_id,
    scalar_struct_violations,
)
from services.retrieval.sparse import SparseIndex
from services.retrieval.store import RetrievalStore
from services.retrieval.vectors import VectorFilter

SEARCH_MODE_DENSE = pb.SEARCH_MODE_DENSE
SEARCH_MODE_SPARSE = pb.SEARCH_MODE_SPARSE
SEARCH_MODE_HYBRID = pb.SEARCH_MODE_HYBRID

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


def _same(a: Any, b: Any) -> bool:
    """Equality by value, where a bool never equals a number (True == 1.0 in Python)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    return bool(a == b)


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
    violations = scalar_struct_violations(flt.metadata_equals, f"{path}.metadata_equals")
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


class Search(RetrievalStore):
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
            return {c.chunk_id: chunk_to_proto(c, d) for c, d in rows}

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
        require_index_id(index_id)
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
