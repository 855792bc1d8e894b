"""`indexes create/get/list/delete`: the tenant's retrieval indexes."""

from __future__ import annotations

import argparse
from typing import Any

from rlaas.retrieval.v1 import retrieval_pb2 as ret
from rlaasctl.client import Ctl, Shown, request_id
from rlaasctl.output import fields, lines
from rlaasctl.parsing import command, group, paging


def index_text(x: ret.Index) -> str:
    c = x.chunking
    parents = f" parents {c.parent_chunk_size}" if c.parent_chunk_size else ""
    return (
        f"{x.index_id}  docs={x.document_count} chunks={x.chunk_count} "
        f"version={x.content_version}  chunking {c.chunk_size}/{c.chunk_overlap}{parents}  "
        f"{x.embedding_model}"
    )


def _create(c: Ctl, a: argparse.Namespace) -> Shown:
    chunking = ret.ChunkingConfig(
        chunk_size=a.chunk_size,
        chunk_overlap=a.chunk_overlap,
        parent_chunk_size=a.parent_chunk_size,
    )
    index = ret.Index(index_id=a.index_id, description=a.description, chunking=chunking)
    req = ret.CreateIndexRequest(index=index, request_id=request_id(a))
    return c.call(c.retrieval.CreateIndex, req), lambda r: index_text(r.index)


def _get(c: Ctl, a: argparse.Namespace) -> Shown:
    return c.call(c.retrieval.GetIndex, ret.GetIndexRequest(index_id=a.index_id)), fields


def _list(c: Ctl, a: argparse.Namespace) -> Shown:
    req = ret.ListIndexesRequest(page_size=a.page_size, page_token=a.page_token)
    return c.call(c.retrieval.ListIndexes, req), lambda r: lines(
        [index_text(x) for x in r.indexes], r.next_page_token
    )


def _delete(c: Ctl, a: argparse.Namespace) -> Shown:
    req = ret.DeleteIndexRequest(index_id=a.index_id, request_id=request_id(a))
    return (
        c.call(c.retrieval.DeleteIndex, req),
        lambda r: (
            f"deleted {a.index_id}: {r.deleted_document_count} documents, "
            f"{r.deleted_chunk_count} chunks"
        ),
    )


def register(sub: Any) -> None:
    idx = group(sub, "indexes", "retrieval indexes of the tenant")
    x = command(idx, "create", "create an index (admin scope)", _create)
    x.add_argument("index_id", help="lower-case id, 1-63 characters")
    x.add_argument("--description", default="", help="what it holds")
    x.add_argument("--chunk-size", type=int, default=0, help="characters (default 800)")
    x.add_argument("--chunk-overlap", type=int, default=0, help="characters (default 100)")
    x.add_argument("--parent-chunk-size", type=int, default=0,
                   help="characters of the parent chunks (default 0: none)")  # fmt: skip
    x = command(idx, "get", "one index with its counts", _get)
    x.add_argument("index_id", help="the index")
    paging(command(idx, "list", "the tenant's indexes", _list))
    x = command(idx, "delete", "delete an index with its documents", _delete)
    x.add_argument("index_id", help="the index")
