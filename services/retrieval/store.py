"""The state every retrieval job works on: Postgres sessions, the Milvus vector store and
the embedder, with the per-index write lock that keeps the two stores consistent (the
protocol is in ``services.retrieval.core``'s docstring)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager

import numpy as np
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.db.models import RetrievalIndexRow
from services.errors import NotFound
from services.retrieval.embedding import Embedder, default_embedder
from services.retrieval.sparse import SparseCache
from services.retrieval.vectors import VectorStore


class RetrievalStore:
    """The base of the jobs ``Indexes``, ``Documents`` and ``Search`` (``RetrievalCore``
    is all three): their shared state, the write lock, and the index reads they all
    need."""

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
        # Only Search uses it; made here so that one constructor serves every job and
        # the RetrievalCore that combines them.
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
        """Serialises writes to one index across processes (see ``services.retrieval.core``):
        a transaction-scoped advisory lock on a connection of its own, held until the
        Milvus cleanup after the data transaction is done."""
        async with self._sessions() as session, session.begin():
            await session.execute(
                text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
                {"key": f"rlaas.retrieval/{tenant_id}/{index_id}"},
            )
            yield

    # ---- reads every job needs -------------------------------------------------------

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
