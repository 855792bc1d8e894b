"""What the retrieval jobs (``indexes``, ``documents``, ``search``) share: the index id
and NUL checks, the chunk kinds, and the Postgres rows as protos. No I/O here."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from google.protobuf import struct_pb2

from rlaas.retrieval.v1 import retrieval_pb2 as pb
from services.db.models import RetrievalChunkRow, RetrievalDocumentRow, RetrievalIndexRow
from services.errors import FieldViolation, InvalidArgument

INDEX_ID = re.compile(r"^[a-z][a-z0-9_-]{0,62}\Z")  # \Z: `$` lets "id\n" through
NUL = "\x00"
NUL_MESSAGE = "must not contain NUL (U+0000) characters"
"""PostgreSQL text cannot hold U+0000: such input is refused, named, never a 500."""
CHUNK = "chunk"
PARENT = "parent"


def utc_now() -> datetime:
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


def scalar_struct_violations(struct: struct_pb2.Struct, path: str) -> list[FieldViolation]:
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


def require_index_id(index_id: str, field: str = "index_id") -> None:
    if not INDEX_ID.match(index_id):
        raise InvalidArgument.field(
            field,
            "must be 1-63 lower-case letters, digits, '-' or '_', starting with a letter",
        )


def index_to_proto(row: RetrievalIndexRow) -> pb.Index:
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


def document_to_proto(row: RetrievalDocumentRow, *, with_text: bool) -> pb.Document:
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


def chunk_to_proto(chunk: RetrievalChunkRow, doc: RetrievalDocumentRow) -> pb.Chunk:
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
