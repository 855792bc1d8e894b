"""The labelled retrieval set shipped with the code: the help centre of Northwind Goods
(a fictional online store), written for it, and queries labelled with the documents
that answer them.

- ``data/support_kb/documents.jsonl``: one document a line (``document_id``, ``title``,
  ``source_uri``, ``text``, ``metadata`` with its ``category``);
- ``data/support_kb/labelled_queries.jsonl``: ``query_id``, ``query`` (phrased as a
  customer would ask, not as the article words it) and ``relevant_document_ids``.

Both install with the package (``*.jsonl`` is package data), so the benchmark and the
tests read the same files on every machine.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SUPPORT_KB_DIR = Path(__file__).resolve().parent / "data" / "support_kb"
DOCUMENTS = SUPPORT_KB_DIR / "documents.jsonl"
LABELLED_QUERIES = SUPPORT_KB_DIR / "labelled_queries.jsonl"


@dataclass(frozen=True)
class KbDocument:
    document_id: str
    title: str
    source_uri: str
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LabelledQuery:
    query_id: str
    query: str
    relevant_document_ids: tuple[str, ...]


def _jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def load_support_kb(path: Path = DOCUMENTS) -> list[KbDocument]:
    return [
        KbDocument(
            document_id=r["document_id"],
            title=r["title"],
            source_uri=r["source_uri"],
            text=r["text"],
            metadata=dict(r.get("metadata") or {}),
        )
        for r in _jsonl(path)
    ]


def load_labelled_queries(path: Path = LABELLED_QUERIES) -> list[LabelledQuery]:
    return [
        LabelledQuery(
            query_id=r["query_id"],
            query=r["query"],
            relevant_document_ids=tuple(r["relevant_document_ids"]),
        )
        for r in _jsonl(path)
    ]
