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

Layout, one job per module: ``common`` (id and NUL checks, rows as protos), ``store``
(the shared state and the write lock), ``indexes`` (index administration),
``documents`` (ingest, reads and deletes of documents) and ``search`` (search and
evaluation). ``RetrievalCore`` combines the three jobs; the names other modules import
are re-exported here.
"""

from __future__ import annotations

from services.retrieval.common import CHUNK, INDEX_ID, NUL, NUL_MESSAGE, PARENT
from services.retrieval.documents import (
    MAX_ACCESS_TAG,
    MAX_DOCUMENT_ID,
    MAX_DOCUMENTS_PER_CALL,
    MAX_SOURCE_URI,
    MAX_TEXT_CHARS,
    MAX_TITLE,
    Documents,
    chunk_id_of,
    content_sha256,
)
from services.retrieval.indexes import MAX_DESCRIPTION, Indexes
from services.retrieval.search import (
    CANDIDATE_DEPTH,
    DEFAULT_TOP_K,
    MAX_QUERY_CHARS,
    MAX_TOP_K,
    RERANKER_BM25,
    RRF_K,
    SEARCH_MODE_DENSE,
    SEARCH_MODE_HYBRID,
    SEARCH_MODE_SPARSE,
    Search,
    parse_filter,
)

__all__ = [
    "CANDIDATE_DEPTH",
    "CHUNK",
    "DEFAULT_TOP_K",
    "INDEX_ID",
    "MAX_ACCESS_TAG",
    "MAX_DESCRIPTION",
    "MAX_DOCUMENTS_PER_CALL",
    "MAX_DOCUMENT_ID",
    "MAX_QUERY_CHARS",
    "MAX_SOURCE_URI",
    "MAX_TEXT_CHARS",
    "MAX_TITLE",
    "MAX_TOP_K",
    "NUL",
    "NUL_MESSAGE",
    "PARENT",
    "RERANKER_BM25",
    "RRF_K",
    "SEARCH_MODE_DENSE",
    "SEARCH_MODE_HYBRID",
    "SEARCH_MODE_SPARSE",
    "RetrievalCore",
    "chunk_id_of",
    "content_sha256",
    "parse_filter",
]


class RetrievalCore(Indexes, Documents, Search):
    """Every retrieval job over one shared ``RetrievalStore`` (constructed as it is):
    what RetrievalService and the inference gateway call. Each job depends on the store
    only, never on another job, so the order of the bases does not matter."""
