"""BM25 over an index's chunk texts (``bm25s``: scores from a sparse matrix).

Built per (tenant, index, content_version) from Postgres and kept in a small LRU: a
content change bumps the version, so a stale model is never used and simply ages out.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import bm25s
import numpy as np


def _tokens(texts: Sequence[str]) -> Any:
    return bm25s.tokenize(list(texts), stopwords="en", show_progress=False)


@dataclass
class SparseIndex:
    """BM25 over the chunks of one index at one content version."""

    chunk_ids: list[str]
    document_ids: list[str]
    # document_id -> (metadata, access_tag), for filtering.
    documents: Mapping[str, tuple[Mapping[str, Any], str]]
    _model: Any = field(default=None, repr=False)
    _doc_of_chunk: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    _doc_order: list[str] = field(default_factory=list)
    _position: dict[str, int] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        chunk_ids: list[str],
        document_ids: list[str],
        texts: list[str],
        documents: Mapping[str, tuple[Mapping[str, Any], str]],
    ) -> SparseIndex:
        index = cls(chunk_ids, document_ids, documents)
        if chunk_ids:
            model = bm25s.BM25()
            model.index(_tokens(texts), show_progress=False)
            index._model = model
        index._doc_order = sorted(set(document_ids))
        slot = {d: i for i, d in enumerate(index._doc_order)}
        index._doc_of_chunk = np.array([slot[d] for d in document_ids], dtype=np.int64)
        index._position = {c: i for i, c in enumerate(chunk_ids)}
        return index

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every chunk (0: no query term in it)."""
        if self._model is None:
            return np.zeros(0, dtype=np.float32)
        tokens = bm25s.tokenize([query], stopwords="en", show_progress=False, return_ids=False)
        if not tokens or not tokens[0]:
            return np.zeros(len(self.chunk_ids), dtype=np.float32)
        return np.asarray(self._model.get_scores(tokens[0]), dtype=np.float32)

    def mask(self, allowed_documents: set[str] | None) -> np.ndarray | None:
        """Chunks of the allowed documents (None: all)."""
        if allowed_documents is None:
            return None
        allowed = np.array([d in allowed_documents for d in self._doc_order], dtype=bool)
        return allowed[self._doc_of_chunk] if len(self._doc_of_chunk) else allowed[:0]

    def top(
        self, scores: np.ndarray, limit: int, mask: np.ndarray | None = None
    ) -> list[tuple[str, float]]:
        """(chunk_id, score) of the best ``limit`` chunks with a positive score."""
        if not len(scores):
            return []
        masked = scores if mask is None else np.where(mask, scores, 0.0)
        candidates = np.flatnonzero(masked > 0)
        if len(candidates) > limit:
            part = np.argpartition(-masked[candidates], limit - 1)[:limit]
            candidates = candidates[part]
        # Ties broken by chunk id, so a ranking is reproducible.
        ordered = sorted(candidates.tolist(), key=lambda i: (-float(masked[i]), self.chunk_ids[i]))
        return [(self.chunk_ids[i], float(masked[i])) for i in ordered]

    def score_of(self, scores: np.ndarray, chunk_id: str) -> float:
        i = self._position.get(chunk_id)
        return float(scores[i]) if i is not None and len(scores) else 0.0


class SparseCache:
    """LRU of ``SparseIndex`` by (tenant, index, content_version)."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._items: OrderedDict[tuple[str, str, int], SparseIndex] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str, int]) -> SparseIndex | None:
        with self._lock:
            item = self._items.get(key)
            if item is not None:
                self._items.move_to_end(key)
            return item

    def put(self, key: tuple[str, str, int], item: SparseIndex) -> None:
        with self._lock:
            # Older versions of the same index are dead: drop them now.
            for old in [k for k in self._items if k[:2] == key[:2] and k != key]:
                del self._items[old]
            self._items[key] = item
            self._items.move_to_end(key)
            while len(self._items) > self._capacity:
                self._items.popitem(last=False)
