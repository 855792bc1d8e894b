"""`search`: search a retrieval index (dense, sparse or hybrid, optionally re-ranked)."""

from __future__ import annotations

import argparse
from typing import Any

from rlaas.retrieval.v1 import retrieval_pb2 as ret
from rlaasctl.client import Ctl, Shown
from rlaasctl.output import enum_name, table
from rlaasctl.parsing import command, json_scalar, key_value

_MODES = {"dense": ret.SEARCH_MODE_DENSE, "sparse": ret.SEARCH_MODE_SPARSE,
          "hybrid": ret.SEARCH_MODE_HYBRID}  # fmt: skip


def _search(c: Ctl, a: argparse.Namespace) -> Shown:
    flt = ret.SearchFilter(access_tags=a.access_tag, document_ids=a.document)
    flt.metadata_equals.update({k: json_scalar(v) for k, v in a.metadata})
    req = ret.SearchRequest(index_id=a.index_id, query=a.query, top_k=a.top_k,
                            mode=_MODES[a.mode], filter=flt, rerank=a.rerank,
                            min_score=a.min_score)  # fmt: skip

    def show(r: ret.SearchResponse) -> str:
        rows = [[h.rank, f"{h.score:.4f}", h.chunk.document_id,
                 f"{h.chunk.start_offset}-{h.chunk.end_offset}",
                 " ".join(h.chunk.text.split())[:80]] for h in r.hits]  # fmt: skip
        head = f"mode {enum_name(ret.SearchMode.Name(r.mode), 'SEARCH_MODE_')}"
        head += f"  reranker {r.reranker}" if r.reranker else ""
        return (
            head
            + f"  version {r.content_version}\n"
            + table(["rank", "score", "document", "span", "text"], rows)
        )

    return c.call(c.retrieval.Search, req), show


def register(sub: Any) -> None:
    x = command(sub, "search", "search an index", _search)
    x.add_argument("index_id", help="the index")
    x.add_argument("query", help="the query text")
    x.add_argument("--top-k", type=int, default=5, help="hits, 1-100 (default 5)")
    x.add_argument("--mode", choices=list(_MODES), default="hybrid",
                   help="dense, sparse (BM25) or hybrid (default)")  # fmt: skip
    x.add_argument("--rerank", action="store_true", help="re-rank the candidates")
    x.add_argument("--min-score", type=float, default=0.0, help="drop hits below this")
    x.add_argument("--metadata", type=key_value, action="append", default=[],
                   help="filter: KEY=VALUE the metadata must hold; repeatable")  # fmt: skip
    x.add_argument("--access-tag", action="append", default=[],
                   help="filter: an access tag the caller holds; repeatable")  # fmt: skip
    x.add_argument("--document", action="append", default=[],
                   help="filter: only this document; repeatable")  # fmt: skip
