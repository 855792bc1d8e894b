import datetime

from google.api import annotations_pb2 as _annotations_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from rlaas.options.v1 import options_pb2 as _options_pb2
from rlaas.registry.v1 import registry_pb2 as _registry_pb2
from rlaas.telemetry.v1 import telemetry_pb2 as _telemetry_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class InferRequest(_message.Message):
    __slots__ = ("skill", "messages", "user_id", "thread_id", "generation", "context_chunks", "policy_id", "metadata", "labels", "training_opt_out", "request_id", "bypass_cache")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    SKILL_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    THREAD_ID_FIELD_NUMBER: _ClassVar[int]
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_CHUNKS_FIELD_NUMBER: _ClassVar[int]
    POLICY_ID_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    TRAINING_OPT_OUT_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    BYPASS_CACHE_FIELD_NUMBER: _ClassVar[int]
    skill: str
    messages: _containers.RepeatedCompositeFieldContainer[_telemetry_pb2.ChatMessage]
    user_id: str
    thread_id: str
    generation: _registry_pb2.GenerationConfig
    context_chunks: _containers.RepeatedCompositeFieldContainer[_telemetry_pb2.RetrievedChunk]
    policy_id: str
    metadata: _struct_pb2.Struct
    labels: _containers.ScalarMap[str, str]
    training_opt_out: bool
    request_id: str
    bypass_cache: bool
    def __init__(self, skill: _Optional[str] = ..., messages: _Optional[_Iterable[_Union[_telemetry_pb2.ChatMessage, _Mapping]]] = ..., user_id: _Optional[str] = ..., thread_id: _Optional[str] = ..., generation: _Optional[_Union[_registry_pb2.GenerationConfig, _Mapping]] = ..., context_chunks: _Optional[_Iterable[_Union[_telemetry_pb2.RetrievedChunk, _Mapping]]] = ..., policy_id: _Optional[str] = ..., metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., labels: _Optional[_Mapping[str, str]] = ..., training_opt_out: _Optional[bool] = ..., request_id: _Optional[str] = ..., bypass_cache: _Optional[bool] = ...) -> None: ...

class InferResponse(_message.Message):
    __slots__ = ("interaction_id", "output_id", "policy_id", "base_model", "text", "citations", "usage", "latency", "finish_reason", "routing", "guardrail_flags", "timings", "tool_calls", "retrieved_chunks", "groundedness", "cache")
    INTERACTION_ID_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_ID_FIELD_NUMBER: _ClassVar[int]
    POLICY_ID_FIELD_NUMBER: _ClassVar[int]
    BASE_MODEL_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    CITATIONS_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    LATENCY_FIELD_NUMBER: _ClassVar[int]
    FINISH_REASON_FIELD_NUMBER: _ClassVar[int]
    ROUTING_FIELD_NUMBER: _ClassVar[int]
    GUARDRAIL_FLAGS_FIELD_NUMBER: _ClassVar[int]
    TIMINGS_FIELD_NUMBER: _ClassVar[int]
    TOOL_CALLS_FIELD_NUMBER: _ClassVar[int]
    RETRIEVED_CHUNKS_FIELD_NUMBER: _ClassVar[int]
    GROUNDEDNESS_FIELD_NUMBER: _ClassVar[int]
    CACHE_FIELD_NUMBER: _ClassVar[int]
    interaction_id: str
    output_id: str
    policy_id: str
    base_model: str
    text: str
    citations: _containers.RepeatedCompositeFieldContainer[_telemetry_pb2.Citation]
    usage: _telemetry_pb2.TokenUsage
    latency: _duration_pb2.Duration
    finish_reason: _telemetry_pb2.FinishReason
    routing: _telemetry_pb2.RoutingDecision
    guardrail_flags: _containers.RepeatedScalarFieldContainer[str]
    timings: _telemetry_pb2.Timings
    tool_calls: _containers.RepeatedCompositeFieldContainer[_telemetry_pb2.ToolCall]
    retrieved_chunks: _containers.RepeatedCompositeFieldContainer[_telemetry_pb2.RetrievedChunk]
    groundedness: _telemetry_pb2.Groundedness
    cache: CacheHit
    def __init__(self, interaction_id: _Optional[str] = ..., output_id: _Optional[str] = ..., policy_id: _Optional[str] = ..., base_model: _Optional[str] = ..., text: _Optional[str] = ..., citations: _Optional[_Iterable[_Union[_telemetry_pb2.Citation, _Mapping]]] = ..., usage: _Optional[_Union[_telemetry_pb2.TokenUsage, _Mapping]] = ..., latency: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., finish_reason: _Optional[_Union[_telemetry_pb2.FinishReason, str]] = ..., routing: _Optional[_Union[_telemetry_pb2.RoutingDecision, _Mapping]] = ..., guardrail_flags: _Optional[_Iterable[str]] = ..., timings: _Optional[_Union[_telemetry_pb2.Timings, _Mapping]] = ..., tool_calls: _Optional[_Iterable[_Union[_telemetry_pb2.ToolCall, _Mapping]]] = ..., retrieved_chunks: _Optional[_Iterable[_Union[_telemetry_pb2.RetrievedChunk, _Mapping]]] = ..., groundedness: _Optional[_Union[_telemetry_pb2.Groundedness, _Mapping]] = ..., cache: _Optional[_Union[CacheHit, _Mapping]] = ...) -> None: ...

class CacheHit(_message.Message):
    __slots__ = ("kind", "similarity", "source_interaction_id")
    class Kind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        KIND_UNSPECIFIED: _ClassVar[CacheHit.Kind]
        KIND_EXACT: _ClassVar[CacheHit.Kind]
        KIND_SEMANTIC: _ClassVar[CacheHit.Kind]
    KIND_UNSPECIFIED: CacheHit.Kind
    KIND_EXACT: CacheHit.Kind
    KIND_SEMANTIC: CacheHit.Kind
    KIND_FIELD_NUMBER: _ClassVar[int]
    SIMILARITY_FIELD_NUMBER: _ClassVar[int]
    SOURCE_INTERACTION_ID_FIELD_NUMBER: _ClassVar[int]
    kind: CacheHit.Kind
    similarity: float
    source_interaction_id: str
    def __init__(self, kind: _Optional[_Union[CacheHit.Kind, str]] = ..., similarity: _Optional[float] = ..., source_interaction_id: _Optional[str] = ...) -> None: ...

class InferStreamRequest(_message.Message):
    __slots__ = ("skill", "messages", "user_id", "thread_id", "generation", "context_chunks", "policy_id", "metadata", "labels", "training_opt_out", "request_id", "bypass_cache")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    SKILL_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    THREAD_ID_FIELD_NUMBER: _ClassVar[int]
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_CHUNKS_FIELD_NUMBER: _ClassVar[int]
    POLICY_ID_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    TRAINING_OPT_OUT_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    BYPASS_CACHE_FIELD_NUMBER: _ClassVar[int]
    skill: str
    messages: _containers.RepeatedCompositeFieldContainer[_telemetry_pb2.ChatMessage]
    user_id: str
    thread_id: str
    generation: _registry_pb2.GenerationConfig
    context_chunks: _containers.RepeatedCompositeFieldContainer[_telemetry_pb2.RetrievedChunk]
    policy_id: str
    metadata: _struct_pb2.Struct
    labels: _containers.ScalarMap[str, str]
    training_opt_out: bool
    request_id: str
    bypass_cache: bool
    def __init__(self, skill: _Optional[str] = ..., messages: _Optional[_Iterable[_Union[_telemetry_pb2.ChatMessage, _Mapping]]] = ..., user_id: _Optional[str] = ..., thread_id: _Optional[str] = ..., generation: _Optional[_Union[_registry_pb2.GenerationConfig, _Mapping]] = ..., context_chunks: _Optional[_Iterable[_Union[_telemetry_pb2.RetrievedChunk, _Mapping]]] = ..., policy_id: _Optional[str] = ..., metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., labels: _Optional[_Mapping[str, str]] = ..., training_opt_out: _Optional[bool] = ..., request_id: _Optional[str] = ..., bypass_cache: _Optional[bool] = ...) -> None: ...

class InferStreamResponse(_message.Message):
    __slots__ = ("interaction_id", "output_id", "index", "text_delta", "policy_id", "base_model", "routing", "finish_reason", "usage", "citations", "latency", "guardrail_flags", "timings", "tool_calls", "retrieved_chunks", "groundedness", "cache")
    INTERACTION_ID_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_ID_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    TEXT_DELTA_FIELD_NUMBER: _ClassVar[int]
    POLICY_ID_FIELD_NUMBER: _ClassVar[int]
    BASE_MODEL_FIELD_NUMBER: _ClassVar[int]
    ROUTING_FIELD_NUMBER: _ClassVar[int]
    FINISH_REASON_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    CITATIONS_FIELD_NUMBER: _ClassVar[int]
    LATENCY_FIELD_NUMBER: _ClassVar[int]
    GUARDRAIL_FLAGS_FIELD_NUMBER: _ClassVar[int]
    TIMINGS_FIELD_NUMBER: _ClassVar[int]
    TOOL_CALLS_FIELD_NUMBER: _ClassVar[int]
    RETRIEVED_CHUNKS_FIELD_NUMBER: _ClassVar[int]
    GROUNDEDNESS_FIELD_NUMBER: _ClassVar[int]
    CACHE_FIELD_NUMBER: _ClassVar[int]
    interaction_id: str
    output_id: str
    index: int
    text_delta: str
    policy_id: str
    base_model: str
    routing: _telemetry_pb2.RoutingDecision
    finish_reason: _telemetry_pb2.FinishReason
    usage: _telemetry_pb2.TokenUsage
    citations: _containers.RepeatedCompositeFieldContainer[_telemetry_pb2.Citation]
    latency: _duration_pb2.Duration
    guardrail_flags: _containers.RepeatedScalarFieldContainer[str]
    timings: _telemetry_pb2.Timings
    tool_calls: _containers.RepeatedCompositeFieldContainer[_telemetry_pb2.ToolCall]
    retrieved_chunks: _containers.RepeatedCompositeFieldContainer[_telemetry_pb2.RetrievedChunk]
    groundedness: _telemetry_pb2.Groundedness
    cache: CacheHit
    def __init__(self, interaction_id: _Optional[str] = ..., output_id: _Optional[str] = ..., index: _Optional[int] = ..., text_delta: _Optional[str] = ..., policy_id: _Optional[str] = ..., base_model: _Optional[str] = ..., routing: _Optional[_Union[_telemetry_pb2.RoutingDecision, _Mapping]] = ..., finish_reason: _Optional[_Union[_telemetry_pb2.FinishReason, str]] = ..., usage: _Optional[_Union[_telemetry_pb2.TokenUsage, _Mapping]] = ..., citations: _Optional[_Iterable[_Union[_telemetry_pb2.Citation, _Mapping]]] = ..., latency: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., guardrail_flags: _Optional[_Iterable[str]] = ..., timings: _Optional[_Union[_telemetry_pb2.Timings, _Mapping]] = ..., tool_calls: _Optional[_Iterable[_Union[_telemetry_pb2.ToolCall, _Mapping]]] = ..., retrieved_chunks: _Optional[_Iterable[_Union[_telemetry_pb2.RetrievedChunk, _Mapping]]] = ..., groundedness: _Optional[_Union[_telemetry_pb2.Groundedness, _Mapping]] = ..., cache: _Optional[_Union[CacheHit, _Mapping]] = ...) -> None: ...
