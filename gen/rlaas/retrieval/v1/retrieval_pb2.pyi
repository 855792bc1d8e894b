import datetime

from google.api import annotations_pb2 as _annotations_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from rlaas.options.v1 import options_pb2 as _options_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SearchMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SEARCH_MODE_UNSPECIFIED: _ClassVar[SearchMode]
    SEARCH_MODE_DENSE: _ClassVar[SearchMode]
    SEARCH_MODE_SPARSE: _ClassVar[SearchMode]
    SEARCH_MODE_HYBRID: _ClassVar[SearchMode]
SEARCH_MODE_UNSPECIFIED: SearchMode
SEARCH_MODE_DENSE: SearchMode
SEARCH_MODE_SPARSE: SearchMode
SEARCH_MODE_HYBRID: SearchMode

class ChunkingConfig(_message.Message):
    __slots__ = ("chunk_size", "chunk_overlap", "parent_chunk_size")
    CHUNK_SIZE_FIELD_NUMBER: _ClassVar[int]
    CHUNK_OVERLAP_FIELD_NUMBER: _ClassVar[int]
    PARENT_CHUNK_SIZE_FIELD_NUMBER: _ClassVar[int]
    chunk_size: int
    chunk_overlap: int
    parent_chunk_size: int
    def __init__(self, chunk_size: _Optional[int] = ..., chunk_overlap: _Optional[int] = ..., parent_chunk_size: _Optional[int] = ...) -> None: ...

class Index(_message.Message):
    __slots__ = ("index_id", "tenant_id", "description", "chunking", "embedding_model", "dimension", "document_count", "chunk_count", "content_version", "create_time", "update_time")
    INDEX_ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    CHUNKING_FIELD_NUMBER: _ClassVar[int]
    EMBEDDING_MODEL_FIELD_NUMBER: _ClassVar[int]
    DIMENSION_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_COUNT_FIELD_NUMBER: _ClassVar[int]
    CHUNK_COUNT_FIELD_NUMBER: _ClassVar[int]
    CONTENT_VERSION_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    index_id: str
    tenant_id: str
    description: str
    chunking: ChunkingConfig
    embedding_model: str
    dimension: int
    document_count: int
    chunk_count: int
    content_version: int
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    def __init__(self, index_id: _Optional[str] = ..., tenant_id: _Optional[str] = ..., description: _Optional[str] = ..., chunking: _Optional[_Union[ChunkingConfig, _Mapping]] = ..., embedding_model: _Optional[str] = ..., dimension: _Optional[int] = ..., document_count: _Optional[int] = ..., chunk_count: _Optional[int] = ..., content_version: _Optional[int] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Document(_message.Message):
    __slots__ = ("document_id", "text", "source_uri", "title", "metadata", "access_tag", "content_sha256", "chunk_count", "create_time", "update_time")
    DOCUMENT_ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    SOURCE_URI_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    ACCESS_TAG_FIELD_NUMBER: _ClassVar[int]
    CONTENT_SHA256_FIELD_NUMBER: _ClassVar[int]
    CHUNK_COUNT_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    document_id: str
    text: str
    source_uri: str
    title: str
    metadata: _struct_pb2.Struct
    access_tag: str
    content_sha256: str
    chunk_count: int
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    def __init__(self, document_id: _Optional[str] = ..., text: _Optional[str] = ..., source_uri: _Optional[str] = ..., title: _Optional[str] = ..., metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., access_tag: _Optional[str] = ..., content_sha256: _Optional[str] = ..., chunk_count: _Optional[int] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Chunk(_message.Message):
    __slots__ = ("chunk_id", "document_id", "parent_chunk_id", "text", "start_offset", "end_offset", "source_uri", "title", "metadata", "access_tag", "position")
    CHUNK_ID_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_ID_FIELD_NUMBER: _ClassVar[int]
    PARENT_CHUNK_ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    START_OFFSET_FIELD_NUMBER: _ClassVar[int]
    END_OFFSET_FIELD_NUMBER: _ClassVar[int]
    SOURCE_URI_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    ACCESS_TAG_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    chunk_id: str
    document_id: str
    parent_chunk_id: str
    text: str
    start_offset: int
    end_offset: int
    source_uri: str
    title: str
    metadata: _struct_pb2.Struct
    access_tag: str
    position: int
    def __init__(self, chunk_id: _Optional[str] = ..., document_id: _Optional[str] = ..., parent_chunk_id: _Optional[str] = ..., text: _Optional[str] = ..., start_offset: _Optional[int] = ..., end_offset: _Optional[int] = ..., source_uri: _Optional[str] = ..., title: _Optional[str] = ..., metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., access_tag: _Optional[str] = ..., position: _Optional[int] = ...) -> None: ...

class SearchFilter(_message.Message):
    __slots__ = ("metadata_equals", "access_tags", "document_ids")
    METADATA_EQUALS_FIELD_NUMBER: _ClassVar[int]
    ACCESS_TAGS_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_IDS_FIELD_NUMBER: _ClassVar[int]
    metadata_equals: _struct_pb2.Struct
    access_tags: _containers.RepeatedScalarFieldContainer[str]
    document_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, metadata_equals: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., access_tags: _Optional[_Iterable[str]] = ..., document_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class CreateIndexRequest(_message.Message):
    __slots__ = ("index", "request_id")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    index: Index
    request_id: str
    def __init__(self, index: _Optional[_Union[Index, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class CreateIndexResponse(_message.Message):
    __slots__ = ("index",)
    INDEX_FIELD_NUMBER: _ClassVar[int]
    index: Index
    def __init__(self, index: _Optional[_Union[Index, _Mapping]] = ...) -> None: ...

class GetIndexRequest(_message.Message):
    __slots__ = ("index_id",)
    INDEX_ID_FIELD_NUMBER: _ClassVar[int]
    index_id: str
    def __init__(self, index_id: _Optional[str] = ...) -> None: ...

class GetIndexResponse(_message.Message):
    __slots__ = ("index",)
    INDEX_FIELD_NUMBER: _ClassVar[int]
    index: Index
    def __init__(self, index: _Optional[_Union[Index, _Mapping]] = ...) -> None: ...

class ListIndexesRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListIndexesResponse(_message.Message):
    __slots__ = ("indexes", "next_page_token")
    INDEXES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    indexes: _containers.RepeatedCompositeFieldContainer[Index]
    next_page_token: str
    def __init__(self, indexes: _Optional[_Iterable[_Union[Index, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class DeleteIndexRequest(_message.Message):
    __slots__ = ("index_id", "request_id")
    INDEX_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    index_id: str
    request_id: str
    def __init__(self, index_id: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class DeleteIndexResponse(_message.Message):
    __slots__ = ("deleted_document_count", "deleted_chunk_count")
    DELETED_DOCUMENT_COUNT_FIELD_NUMBER: _ClassVar[int]
    DELETED_CHUNK_COUNT_FIELD_NUMBER: _ClassVar[int]
    deleted_document_count: int
    deleted_chunk_count: int
    def __init__(self, deleted_document_count: _Optional[int] = ..., deleted_chunk_count: _Optional[int] = ...) -> None: ...

class UpsertDocumentsRequest(_message.Message):
    __slots__ = ("index_id", "documents", "request_id")
    INDEX_ID_FIELD_NUMBER: _ClassVar[int]
    DOCUMENTS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    index_id: str
    documents: _containers.RepeatedCompositeFieldContainer[Document]
    request_id: str
    def __init__(self, index_id: _Optional[str] = ..., documents: _Optional[_Iterable[_Union[Document, _Mapping]]] = ..., request_id: _Optional[str] = ...) -> None: ...

class DocumentResult(_message.Message):
    __slots__ = ("document_id", "outcome", "chunk_count", "content_sha256")
    class Outcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        OUTCOME_UNSPECIFIED: _ClassVar[DocumentResult.Outcome]
        OUTCOME_CREATED: _ClassVar[DocumentResult.Outcome]
        OUTCOME_UPDATED: _ClassVar[DocumentResult.Outcome]
        OUTCOME_UNCHANGED: _ClassVar[DocumentResult.Outcome]
    OUTCOME_UNSPECIFIED: DocumentResult.Outcome
    OUTCOME_CREATED: DocumentResult.Outcome
    OUTCOME_UPDATED: DocumentResult.Outcome
    OUTCOME_UNCHANGED: DocumentResult.Outcome
    DOCUMENT_ID_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    CHUNK_COUNT_FIELD_NUMBER: _ClassVar[int]
    CONTENT_SHA256_FIELD_NUMBER: _ClassVar[int]
    document_id: str
    outcome: DocumentResult.Outcome
    chunk_count: int
    content_sha256: str
    def __init__(self, document_id: _Optional[str] = ..., outcome: _Optional[_Union[DocumentResult.Outcome, str]] = ..., chunk_count: _Optional[int] = ..., content_sha256: _Optional[str] = ...) -> None: ...

class UpsertDocumentsResponse(_message.Message):
    __slots__ = ("results", "index")
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[DocumentResult]
    index: Index
    def __init__(self, results: _Optional[_Iterable[_Union[DocumentResult, _Mapping]]] = ..., index: _Optional[_Union[Index, _Mapping]] = ...) -> None: ...

class GetDocumentRequest(_message.Message):
    __slots__ = ("index_id", "document_id")
    INDEX_ID_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_ID_FIELD_NUMBER: _ClassVar[int]
    index_id: str
    document_id: str
    def __init__(self, index_id: _Optional[str] = ..., document_id: _Optional[str] = ...) -> None: ...

class GetDocumentResponse(_message.Message):
    __slots__ = ("document", "chunks")
    DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    CHUNKS_FIELD_NUMBER: _ClassVar[int]
    document: Document
    chunks: _containers.RepeatedCompositeFieldContainer[Chunk]
    def __init__(self, document: _Optional[_Union[Document, _Mapping]] = ..., chunks: _Optional[_Iterable[_Union[Chunk, _Mapping]]] = ...) -> None: ...

class ListDocumentsRequest(_message.Message):
    __slots__ = ("index_id", "page_size", "page_token")
    INDEX_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    index_id: str
    page_size: int
    page_token: str
    def __init__(self, index_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListDocumentsResponse(_message.Message):
    __slots__ = ("documents", "next_page_token")
    DOCUMENTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    documents: _containers.RepeatedCompositeFieldContainer[Document]
    next_page_token: str
    def __init__(self, documents: _Optional[_Iterable[_Union[Document, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class DeleteDocumentRequest(_message.Message):
    __slots__ = ("index_id", "document_id", "request_id")
    INDEX_ID_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    index_id: str
    document_id: str
    request_id: str
    def __init__(self, index_id: _Optional[str] = ..., document_id: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class DeleteDocumentResponse(_message.Message):
    __slots__ = ("deleted_chunk_count",)
    DELETED_CHUNK_COUNT_FIELD_NUMBER: _ClassVar[int]
    deleted_chunk_count: int
    def __init__(self, deleted_chunk_count: _Optional[int] = ...) -> None: ...

class SearchRequest(_message.Message):
    __slots__ = ("index_id", "query", "top_k", "mode", "filter", "rerank", "min_score")
    INDEX_ID_FIELD_NUMBER: _ClassVar[int]
    QUERY_FIELD_NUMBER: _ClassVar[int]
    TOP_K_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    RERANK_FIELD_NUMBER: _ClassVar[int]
    MIN_SCORE_FIELD_NUMBER: _ClassVar[int]
    index_id: str
    query: str
    top_k: int
    mode: SearchMode
    filter: SearchFilter
    rerank: bool
    min_score: float
    def __init__(self, index_id: _Optional[str] = ..., query: _Optional[str] = ..., top_k: _Optional[int] = ..., mode: _Optional[_Union[SearchMode, str]] = ..., filter: _Optional[_Union[SearchFilter, _Mapping]] = ..., rerank: _Optional[bool] = ..., min_score: _Optional[float] = ...) -> None: ...

class SearchHit(_message.Message):
    __slots__ = ("chunk", "score", "rank", "dense_score", "sparse_score")
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    RANK_FIELD_NUMBER: _ClassVar[int]
    DENSE_SCORE_FIELD_NUMBER: _ClassVar[int]
    SPARSE_SCORE_FIELD_NUMBER: _ClassVar[int]
    chunk: Chunk
    score: float
    rank: int
    dense_score: float
    sparse_score: float
    def __init__(self, chunk: _Optional[_Union[Chunk, _Mapping]] = ..., score: _Optional[float] = ..., rank: _Optional[int] = ..., dense_score: _Optional[float] = ..., sparse_score: _Optional[float] = ...) -> None: ...

class SearchResponse(_message.Message):
    __slots__ = ("hits", "mode", "reranker", "content_version")
    HITS_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    RERANKER_FIELD_NUMBER: _ClassVar[int]
    CONTENT_VERSION_FIELD_NUMBER: _ClassVar[int]
    hits: _containers.RepeatedCompositeFieldContainer[SearchHit]
    mode: SearchMode
    reranker: str
    content_version: int
    def __init__(self, hits: _Optional[_Iterable[_Union[SearchHit, _Mapping]]] = ..., mode: _Optional[_Union[SearchMode, str]] = ..., reranker: _Optional[str] = ..., content_version: _Optional[int] = ...) -> None: ...

class LabelledQuery(_message.Message):
    __slots__ = ("query", "relevant_document_ids")
    QUERY_FIELD_NUMBER: _ClassVar[int]
    RELEVANT_DOCUMENT_IDS_FIELD_NUMBER: _ClassVar[int]
    query: str
    relevant_document_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, query: _Optional[str] = ..., relevant_document_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class EvaluateRetrievalRequest(_message.Message):
    __slots__ = ("index_id", "queries", "k", "mode", "rerank")
    INDEX_ID_FIELD_NUMBER: _ClassVar[int]
    QUERIES_FIELD_NUMBER: _ClassVar[int]
    K_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    RERANK_FIELD_NUMBER: _ClassVar[int]
    index_id: str
    queries: _containers.RepeatedCompositeFieldContainer[LabelledQuery]
    k: int
    mode: SearchMode
    rerank: bool
    def __init__(self, index_id: _Optional[str] = ..., queries: _Optional[_Iterable[_Union[LabelledQuery, _Mapping]]] = ..., k: _Optional[int] = ..., mode: _Optional[_Union[SearchMode, str]] = ..., rerank: _Optional[bool] = ...) -> None: ...

class RetrievalMetrics(_message.Message):
    __slots__ = ("query_count", "k", "recall_at_k", "mrr", "ndcg_at_10")
    QUERY_COUNT_FIELD_NUMBER: _ClassVar[int]
    K_FIELD_NUMBER: _ClassVar[int]
    RECALL_AT_K_FIELD_NUMBER: _ClassVar[int]
    MRR_FIELD_NUMBER: _ClassVar[int]
    NDCG_AT_10_FIELD_NUMBER: _ClassVar[int]
    query_count: int
    k: int
    recall_at_k: float
    mrr: float
    ndcg_at_10: float
    def __init__(self, query_count: _Optional[int] = ..., k: _Optional[int] = ..., recall_at_k: _Optional[float] = ..., mrr: _Optional[float] = ..., ndcg_at_10: _Optional[float] = ...) -> None: ...

class EvaluateRetrievalResponse(_message.Message):
    __slots__ = ("metrics", "mode", "reranker")
    METRICS_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    RERANKER_FIELD_NUMBER: _ClassVar[int]
    metrics: RetrievalMetrics
    mode: SearchMode
    reranker: str
    def __init__(self, metrics: _Optional[_Union[RetrievalMetrics, _Mapping]] = ..., mode: _Optional[_Union[SearchMode, str]] = ..., reranker: _Optional[str] = ...) -> None: ...
