"""RetrievalService: a thin servicer over ``services.retrieval.core.RetrievalCore``
(the one the runtime shares with the inference gateway). The tenant is always the
caller's; the interceptor has already checked the key's scope."""

from __future__ import annotations

import grpc

from rlaas.retrieval.v1 import retrieval_pb2 as pb
from rlaas.retrieval.v1 import retrieval_pb2_grpc
from services.paging import PageTokens
from services.retrieval.core import DEFAULT_TOP_K, RetrievalCore
from services.server.interceptors import principal


def _tenant() -> str:
    return principal().tenant_id


class RetrievalServicer(retrieval_pb2_grpc.RetrievalServiceServicer):
    def __init__(self, core: RetrievalCore, pages: PageTokens) -> None:
        self._core = core
        self._pages = pages

    async def CreateIndex(
        self, request: pb.CreateIndexRequest, context: grpc.aio.ServicerContext
    ) -> pb.CreateIndexResponse:
        index = await self._core.create_index(_tenant(), request.index, request.request_id)
        return pb.CreateIndexResponse(index=index)

    async def GetIndex(
        self, request: pb.GetIndexRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetIndexResponse:
        return pb.GetIndexResponse(index=await self._core.get_index(_tenant(), request.index_id))

    async def ListIndexes(
        self, request: pb.ListIndexesRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListIndexesResponse:
        page = self._pages.bind(principal().tenant_id, request)
        indexes, token = await self._core.list_indexes(
            _tenant(), page_size=request.page_size, page_token=page.cursor
        )
        return pb.ListIndexesResponse(indexes=indexes, next_page_token=page.seal(token))

    async def DeleteIndex(
        self, request: pb.DeleteIndexRequest, context: grpc.aio.ServicerContext
    ) -> pb.DeleteIndexResponse:
        return await self._core.delete_index(_tenant(), request.index_id, request.request_id)

    async def UpsertDocuments(
        self, request: pb.UpsertDocumentsRequest, context: grpc.aio.ServicerContext
    ) -> pb.UpsertDocumentsResponse:
        return await self._core.upsert_documents(
            _tenant(), request.index_id, list(request.documents), request.request_id
        )

    async def GetDocument(
        self, request: pb.GetDocumentRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetDocumentResponse:
        return await self._core.get_document(_tenant(), request.index_id, request.document_id)

    async def ListDocuments(
        self, request: pb.ListDocumentsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListDocumentsResponse:
        page = self._pages.bind(principal().tenant_id, request)
        documents, token = await self._core.list_documents(
            _tenant(), request.index_id, page_size=request.page_size, page_token=page.cursor
        )
        return pb.ListDocumentsResponse(documents=documents, next_page_token=page.seal(token))

    async def DeleteDocument(
        self, request: pb.DeleteDocumentRequest, context: grpc.aio.ServicerContext
    ) -> pb.DeleteDocumentResponse:
        deleted = await self._core.delete_document(
            _tenant(), request.index_id, request.document_id, request.request_id
        )
        return pb.DeleteDocumentResponse(deleted_chunk_count=deleted)

    async def Search(
        self, request: pb.SearchRequest, context: grpc.aio.ServicerContext
    ) -> pb.SearchResponse:
        return await self._core.search(
            _tenant(),
            request.index_id,
            request.query,
            # 0 is "unset" in proto3: the contract's default.
            top_k=request.top_k or DEFAULT_TOP_K,
            mode=request.mode,
            filter=request.filter if request.HasField("filter") else None,
            rerank=request.rerank,
            min_score=request.min_score,
        )

    async def EvaluateRetrieval(
        self, request: pb.EvaluateRetrievalRequest, context: grpc.aio.ServicerContext
    ) -> pb.EvaluateRetrievalResponse:
        return await self._core.evaluate(
            _tenant(),
            request.index_id,
            list(request.queries),
            k=request.k,
            mode=request.mode,
            rerank=request.rerank,
        )
