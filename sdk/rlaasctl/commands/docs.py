"""`docs upsert/get/delete/list`: documents of a retrieval index."""

from __future__ import annotations

import argparse
from typing import Any

from google.protobuf import json_format

from rlaas.retrieval.v1 import retrieval_pb2 as ret
from rlaasctl.client import Ctl, Shown, request_id
from rlaasctl.commands.indexes import index_text
from rlaasctl.output import enum_name, fields, table, timestamp
from rlaasctl.parsing import command, group, json_scalar, key_value, paging


def _documents_from(a: argparse.Namespace) -> list[ret.Document]:
    if a.jsonl:
        with open(a.jsonl, encoding="utf-8") as f:
            return [json_format.Parse(line, ret.Document()) for line in f if line.strip()]
    if not a.document_id:
        raise SystemExit("rlaasctl: docs upsert needs DOCUMENT_ID with --text/--file, or --jsonl")
    if a.file:
        with open(a.file, encoding="utf-8") as f:
            text = f.read()
    else:
        text = a.text
    doc = ret.Document(document_id=a.document_id, text=text, title=a.title,
                       source_uri=a.source_uri, access_tag=a.access_tag)  # fmt: skip
    doc.metadata.update({k: json_scalar(v) for k, v in a.metadata})
    return [doc]


def _upsert(c: Ctl, a: argparse.Namespace) -> Shown:
    req = ret.UpsertDocumentsRequest(index_id=a.index_id, documents=_documents_from(a),
                                     request_id=request_id(a))  # fmt: skip
    outcome = ret.DocumentResult.Outcome.Name
    return c.call(c.retrieval.UpsertDocuments, req), lambda r: "\n".join(
        [f"{x.document_id}  {enum_name(outcome(x.outcome), 'OUTCOME_')}  chunks={x.chunk_count}"
         for x in r.results] + [index_text(r.index)]
    )  # fmt: skip


def _get(c: Ctl, a: argparse.Namespace) -> Shown:
    req = ret.GetDocumentRequest(index_id=a.index_id, document_id=a.document_id)
    return c.call(c.retrieval.GetDocument, req), fields


def _list(c: Ctl, a: argparse.Namespace) -> Shown:
    req = ret.ListDocumentsRequest(index_id=a.index_id, page_size=a.page_size,
                                   page_token=a.page_token)  # fmt: skip
    return c.call(c.retrieval.ListDocuments, req), lambda r: table(
        ["document", "chunks", "title", "sha256", "updated"],
        [[d.document_id, d.chunk_count, d.title, d.content_sha256[:12], timestamp(d.update_time)]
         for d in r.documents],
        r.next_page_token,
    )  # fmt: skip


def _delete(c: Ctl, a: argparse.Namespace) -> Shown:
    req = ret.DeleteDocumentRequest(index_id=a.index_id, document_id=a.document_id,
                                    request_id=request_id(a))  # fmt: skip
    return c.call(
        c.retrieval.DeleteDocument, req
    ), lambda r: f"deleted {a.document_id}: {r.deleted_chunk_count} chunks"


def register(sub: Any) -> None:
    docs = group(sub, "docs", "documents of a retrieval index")
    x = command(docs, "upsert", "insert or replace documents (unchanged ones stay)", _upsert)
    x.add_argument("index_id", help="the index")
    x.add_argument("document_id", nargs="?", default="", help="the document's id")
    src = x.add_mutually_exclusive_group()
    src.add_argument("--text", default="", help="the document's text")
    src.add_argument("--file", help="read the text from this file")
    src.add_argument("--jsonl", help="documents as proto3 JSON, one per line (up to 256)")
    x.add_argument("--title", default="", help="title, cited in answers")
    x.add_argument("--source-uri", default="", help="where it lives, cited in answers")
    x.add_argument("--access-tag", default="", help="searches must name this tag to see it")
    x.add_argument("--metadata", type=key_value, action="append", default=[],
                   help="KEY=VALUE filterable metadata; repeatable")  # fmt: skip
    for name, handler, help in (
        ("get", _get, "one document with its chunks"),
        ("delete", _delete, "delete a document and its chunks"),
    ):
        x = command(docs, name, help, handler)
        x.add_argument("index_id", help="the index")
        x.add_argument("document_id", help="the document")
    x = command(docs, "list", "an index's documents, by id", _list)
    x.add_argument("index_id", help="the index")
    paging(x)
