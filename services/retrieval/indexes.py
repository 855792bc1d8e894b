"""Index administration: create, read, list and delete the retrieval indexes of a
tenant. Deleting refuses an index that a live policy still retrieves from."""

from __future__ import annotations

import structlog
from google.protobuf import json_format
from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from rlaas.registry.v1 import registry_pb2
from rlaas.retrieval.v1 import retrieval_pb2 as pb
from services.db import idempotency
from services.db.models import IdempotencyRecord, PolicyRow, RetrievalIndexRow
from services.errors import AlreadyExists, FailedPrecondition, FieldViolation, InvalidArgument
from services.paging import next_page_token, page_request
from services.retrieval.chunking import DEFAULT_CHUNK_OVERLAP, DEFAULT_CHUNK_SIZE, ChunkingConfig
from services.retrieval.common import (
    INDEX_ID,
    NUL,
    NUL_MESSAGE,
    index_to_proto,
    require_index_id,
    utc_now,
)
from services.retrieval.embedding import DIMENSION, MODEL_NAME
from services.retrieval.store import RetrievalStore

log = structlog.get_logger(__name__)

MAX_DESCRIPTION = 2000


class Indexes(RetrievalStore):
    async def create_index(self, tenant_id: str, index: pb.Index, request_id: str) -> pb.Index:
        violations: list[FieldViolation] = []
        if not INDEX_ID.match(index.index_id):
            violations.append(
                FieldViolation(
                    "index.index_id",
                    "must be 1-63 lower-case letters, digits, '-' or '_', starting with a letter",
                )
            )
        if NUL in index.description:
            violations.append(FieldViolation("index.description", NUL_MESSAGE))
        if len(index.description) > MAX_DESCRIPTION:
            violations.append(
                FieldViolation("index.description", f"must be at most {MAX_DESCRIPTION} chars")
            )
        c = index.chunking
        size = c.chunk_size or DEFAULT_CHUNK_SIZE
        # 0 means the default (proto3 has no presence here): at most half the size.
        overlap = c.chunk_overlap or min(DEFAULT_CHUNK_OVERLAP, size // 2)
        try:
            config = ChunkingConfig(size, overlap, c.parent_chunk_size)
        except ValueError as exc:
            field = str(exc).split(" ", 1)[0]
            violations.append(FieldViolation(f"index.chunking.{field}", str(exc)))
            config = ChunkingConfig()
        if c.chunk_overlap < 0 or c.parent_chunk_size < 0:
            violations.append(FieldViolation("index.chunking", "sizes must not be negative"))
        idempotency.validate_request_id(request_id)
        if violations:
            raise InvalidArgument(violations)

        now = utc_now()
        async with self._write_lock(tenant_id, index.index_id):
            # No vectors may exist for an index Postgres does not have: clear leftovers
            # of a deleted index of the same id whose Milvus cleanup did not finish.
            async with self._sessions() as session:
                exists = await session.scalar(
                    select(RetrievalIndexRow.index_id).where(
                        RetrievalIndexRow.tenant_id == tenant_id,
                        RetrievalIndexRow.index_id == index.index_id,
                    )
                )
            if exists is None:
                await self.vectors.delete(tenant_id, index.index_id)
            async with self._sessions() as session, session.begin():
                prior = await idempotency.claim(
                    session,
                    tenant_id=tenant_id,
                    method="CreateIndex",
                    request_id=request_id,
                    payload=json_format.MessageToDict(index),
                    resource_id=index.index_id,
                )
                if prior is not None:
                    return index_to_proto(await self._index_row(session, tenant_id, prior))
                inserted = await session.scalar(
                    insert(RetrievalIndexRow)
                    .values(
                        tenant_id=tenant_id,
                        index_id=index.index_id,
                        description=index.description,
                        chunk_size=config.chunk_size,
                        chunk_overlap=config.chunk_overlap,
                        parent_chunk_size=config.parent_chunk_size,
                        embedding_model=MODEL_NAME,
                        dimension=DIMENSION,
                        document_count=0,
                        chunk_count=0,
                        content_version=0,
                        create_time=now,
                        update_time=now,
                    )
                    .on_conflict_do_nothing()
                    .returning(RetrievalIndexRow.index_id)
                )
                if inserted is None:
                    raise AlreadyExists(
                        f"index {index.index_id!r} already exists",
                        metadata={"resource_type": "index", "name": index.index_id},
                    )
                row = await self._index_row(session, tenant_id, index.index_id)
                log.info("retrieval_index_created", tenant=tenant_id, index=index.index_id)
                return index_to_proto(row)

    async def get_index(self, tenant_id: str, index_id: str) -> pb.Index:
        require_index_id(index_id)
        async with self._sessions() as session:
            return index_to_proto(await self._index_row(session, tenant_id, index_id))

    async def list_indexes(
        self, tenant_id: str, *, page_size: int = 0, page_token: str = ""
    ) -> tuple[list[pb.Index], str]:
        page = page_request(page_size, page_token)
        query = select(RetrievalIndexRow).where(RetrievalIndexRow.tenant_id == tenant_id)
        if page.after:
            query = query.where(RetrievalIndexRow.index_id > str(page.after[0]))
        query = query.order_by(RetrievalIndexRow.index_id).limit(page.size + 1)
        async with self._sessions() as session:
            rows = list(await session.scalars(query))
        token = next_page_token(rows, page.size, lambda r: [r.index_id])
        return [index_to_proto(r) for r in rows[: page.size]], token

    async def _policies_using(
        self, session: AsyncSession, tenant_id: str, index_id: str
    ) -> list[str]:
        rows = await session.execute(
            select(PolicyRow.skill_id, PolicyRow.version, PolicyRow.payload).where(
                PolicyRow.tenant_id == tenant_id, PolicyRow.state != "retired"
            )
        )
        using = []
        for skill_id, version, payload in rows:
            policy = registry_pb2.Policy.FromString(payload)
            if policy.retrieval.enabled and policy.retrieval.collection == index_id:
                using.append(f"{skill_id}@v{version}")
        return using

    async def delete_index(
        self, tenant_id: str, index_id: str, request_id: str
    ) -> pb.DeleteIndexResponse:
        require_index_id(index_id)
        idempotency.validate_request_id(request_id)
        async with self._write_lock(tenant_id, index_id):
            async with self._sessions() as session, session.begin():
                prior = await idempotency.claim(
                    session,
                    tenant_id=tenant_id,
                    method="DeleteIndex",
                    request_id=request_id,
                    payload={"index_id": index_id},
                    resource_id="",
                )
                if prior is not None:
                    documents, chunks = (int(x) for x in prior.split("/"))
                    replay = pb.DeleteIndexResponse(
                        deleted_document_count=documents, deleted_chunk_count=chunks
                    )
                else:
                    replay = None
                    row = await self._index_row(session, tenant_id, index_id, lock=True)
                    using = await self._policies_using(session, tenant_id, index_id)
                    if using:
                        raise FailedPrecondition(
                            f"index {index_id!r} is still used by policies {using}; retire "
                            "them or point their retrieval elsewhere first",
                            reason="INDEX_IN_USE",
                            metadata={"policies": ",".join(using)},
                        )
                    documents, chunks = row.document_count, row.chunk_count
                    await session.delete(row)  # documents and chunks go by cascade
                    await session.execute(
                        update(IdempotencyRecord)
                        .where(
                            IdempotencyRecord.tenant_id == tenant_id,
                            IdempotencyRecord.method == "DeleteIndex",
                            IdempotencyRecord.request_id == request_id,
                        )
                        .values(resource_id=f"{documents}/{chunks}")
                    )
            # After the commit (a replay too: it finishes a cleanup a crash cut short).
            await self.vectors.delete(tenant_id, index_id)
        log.info("retrieval_index_deleted", tenant=tenant_id, index=index_id)
        return replay or pb.DeleteIndexResponse(
            deleted_document_count=documents, deleted_chunk_count=chunks
        )
