import datetime

from google.api import annotations_pb2 as _annotations_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.rpc import status_pb2 as _status_pb2
from rlaas.options.v1 import options_pb2 as _options_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PiiEntity(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PII_ENTITY_UNSPECIFIED: _ClassVar[PiiEntity]
    PII_ENTITY_EMAIL: _ClassVar[PiiEntity]
    PII_ENTITY_PHONE: _ClassVar[PiiEntity]
    PII_ENTITY_CARD: _ClassVar[PiiEntity]
    PII_ENTITY_IBAN: _ClassVar[PiiEntity]
    PII_ENTITY_SSN: _ClassVar[PiiEntity]
    PII_ENTITY_IP: _ClassVar[PiiEntity]
    PII_ENTITY_SECRET: _ClassVar[PiiEntity]

class FinishReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FINISH_REASON_UNSPECIFIED: _ClassVar[FinishReason]
    FINISH_REASON_STOP: _ClassVar[FinishReason]
    FINISH_REASON_LENGTH: _ClassVar[FinishReason]
    FINISH_REASON_TOOL_CALLS: _ClassVar[FinishReason]
    FINISH_REASON_GUARDRAIL: _ClassVar[FinishReason]
    FINISH_REASON_ERROR: _ClassVar[FinishReason]

class InteractionSource(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    INTERACTION_SOURCE_UNSPECIFIED: _ClassVar[InteractionSource]
    INTERACTION_SOURCE_CLIENT: _ClassVar[InteractionSource]
    INTERACTION_SOURCE_GATEWAY: _ClassVar[InteractionSource]
    INTERACTION_SOURCE_SHADOW: _ClassVar[InteractionSource]

class EventType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EVENT_TYPE_UNSPECIFIED: _ClassVar[EventType]
    EVENT_TYPE_INTERACTION: _ClassVar[EventType]
    EVENT_TYPE_OUTPUT: _ClassVar[EventType]
    EVENT_TYPE_FEEDBACK: _ClassVar[EventType]
    EVENT_TYPE_TASK_RESULT: _ClassVar[EventType]
PII_ENTITY_UNSPECIFIED: PiiEntity
PII_ENTITY_EMAIL: PiiEntity
PII_ENTITY_PHONE: PiiEntity
PII_ENTITY_CARD: PiiEntity
PII_ENTITY_IBAN: PiiEntity
PII_ENTITY_SSN: PiiEntity
PII_ENTITY_IP: PiiEntity
PII_ENTITY_SECRET: PiiEntity
FINISH_REASON_UNSPECIFIED: FinishReason
FINISH_REASON_STOP: FinishReason
FINISH_REASON_LENGTH: FinishReason
FINISH_REASON_TOOL_CALLS: FinishReason
FINISH_REASON_GUARDRAIL: FinishReason
FINISH_REASON_ERROR: FinishReason
INTERACTION_SOURCE_UNSPECIFIED: InteractionSource
INTERACTION_SOURCE_CLIENT: InteractionSource
INTERACTION_SOURCE_GATEWAY: InteractionSource
INTERACTION_SOURCE_SHADOW: InteractionSource
EVENT_TYPE_UNSPECIFIED: EventType
EVENT_TYPE_INTERACTION: EventType
EVENT_TYPE_OUTPUT: EventType
EVENT_TYPE_FEEDBACK: EventType
EVENT_TYPE_TASK_RESULT: EventType

class TelemetrySettings(_message.Message):
    __slots__ = ("pii_scrubbing_enabled", "pii_entities", "reward_wait_window", "update_time")
    PII_SCRUBBING_ENABLED_FIELD_NUMBER: _ClassVar[int]
    PII_ENTITIES_FIELD_NUMBER: _ClassVar[int]
    REWARD_WAIT_WINDOW_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    pii_scrubbing_enabled: bool
    pii_entities: _containers.RepeatedScalarFieldContainer[PiiEntity]
    reward_wait_window: _duration_pb2.Duration
    update_time: _timestamp_pb2.Timestamp
    def __init__(self, pii_scrubbing_enabled: _Optional[bool] = ..., pii_entities: _Optional[_Iterable[_Union[PiiEntity, str]]] = ..., reward_wait_window: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class IngestCounter(_message.Message):
    __slots__ = ("event_type", "accepted", "duplicate", "rejected")
    EVENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_FIELD_NUMBER: _ClassVar[int]
    REJECTED_FIELD_NUMBER: _ClassVar[int]
    event_type: EventType
    accepted: int
    duplicate: int
    rejected: int
    def __init__(self, event_type: _Optional[_Union[EventType, str]] = ..., accepted: _Optional[int] = ..., duplicate: _Optional[int] = ..., rejected: _Optional[int] = ...) -> None: ...

class GetTelemetrySettingsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetTelemetrySettingsResponse(_message.Message):
    __slots__ = ("settings", "counters")
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    COUNTERS_FIELD_NUMBER: _ClassVar[int]
    settings: TelemetrySettings
    counters: _containers.RepeatedCompositeFieldContainer[IngestCounter]
    def __init__(self, settings: _Optional[_Union[TelemetrySettings, _Mapping]] = ..., counters: _Optional[_Iterable[_Union[IngestCounter, _Mapping]]] = ...) -> None: ...

class UpdateTelemetrySettingsRequest(_message.Message):
    __slots__ = ("settings", "request_id")
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    settings: TelemetrySettings
    request_id: str
    def __init__(self, settings: _Optional[_Union[TelemetrySettings, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class UpdateTelemetrySettingsResponse(_message.Message):
    __slots__ = ("settings",)
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    settings: TelemetrySettings
    def __init__(self, settings: _Optional[_Union[TelemetrySettings, _Mapping]] = ...) -> None: ...

class ChatMessage(_message.Message):
    __slots__ = ("role", "content", "name", "tool_call_id", "tool_calls")
    class Role(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        ROLE_UNSPECIFIED: _ClassVar[ChatMessage.Role]
        ROLE_SYSTEM: _ClassVar[ChatMessage.Role]
        ROLE_USER: _ClassVar[ChatMessage.Role]
        ROLE_ASSISTANT: _ClassVar[ChatMessage.Role]
        ROLE_TOOL: _ClassVar[ChatMessage.Role]
    ROLE_UNSPECIFIED: ChatMessage.Role
    ROLE_SYSTEM: ChatMessage.Role
    ROLE_USER: ChatMessage.Role
    ROLE_ASSISTANT: ChatMessage.Role
    ROLE_TOOL: ChatMessage.Role
    ROLE_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    TOOL_CALL_ID_FIELD_NUMBER: _ClassVar[int]
    TOOL_CALLS_FIELD_NUMBER: _ClassVar[int]
    role: ChatMessage.Role
    content: str
    name: str
    tool_call_id: str
    tool_calls: _containers.RepeatedCompositeFieldContainer[ToolCall]
    def __init__(self, role: _Optional[_Union[ChatMessage.Role, str]] = ..., content: _Optional[str] = ..., name: _Optional[str] = ..., tool_call_id: _Optional[str] = ..., tool_calls: _Optional[_Iterable[_Union[ToolCall, _Mapping]]] = ...) -> None: ...

class InteractionInput(_message.Message):
    __slots__ = ("messages", "text", "attachment_uris", "metadata")
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    ATTACHMENT_URIS_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    messages: _containers.RepeatedCompositeFieldContainer[ChatMessage]
    text: str
    attachment_uris: _containers.RepeatedScalarFieldContainer[str]
    metadata: _struct_pb2.Struct
    def __init__(self, messages: _Optional[_Iterable[_Union[ChatMessage, _Mapping]]] = ..., text: _Optional[str] = ..., attachment_uris: _Optional[_Iterable[str]] = ..., metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class RetrievedChunk(_message.Message):
    __slots__ = ("chunk_id", "document_id", "source_uri", "text", "score", "rank", "metadata")
    CHUNK_ID_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_URI_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    RANK_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    chunk_id: str
    document_id: str
    source_uri: str
    text: str
    score: float
    rank: int
    metadata: _struct_pb2.Struct
    def __init__(self, chunk_id: _Optional[str] = ..., document_id: _Optional[str] = ..., source_uri: _Optional[str] = ..., text: _Optional[str] = ..., score: _Optional[float] = ..., rank: _Optional[int] = ..., metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class ToolCall(_message.Message):
    __slots__ = ("tool_call_id", "name", "arguments", "result", "error", "latency")
    TOOL_CALL_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    ARGUMENTS_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    LATENCY_FIELD_NUMBER: _ClassVar[int]
    tool_call_id: str
    name: str
    arguments: str
    result: str
    error: _status_pb2.Status
    latency: _duration_pb2.Duration
    def __init__(self, tool_call_id: _Optional[str] = ..., name: _Optional[str] = ..., arguments: _Optional[str] = ..., result: _Optional[str] = ..., error: _Optional[_Union[_status_pb2.Status, _Mapping]] = ..., latency: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class Citation(_message.Message):
    __slots__ = ("chunk_id", "document_id", "source_uri", "title", "quote", "start_index", "end_index")
    CHUNK_ID_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_URI_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    QUOTE_FIELD_NUMBER: _ClassVar[int]
    START_INDEX_FIELD_NUMBER: _ClassVar[int]
    END_INDEX_FIELD_NUMBER: _ClassVar[int]
    chunk_id: str
    document_id: str
    source_uri: str
    title: str
    quote: str
    start_index: int
    end_index: int
    def __init__(self, chunk_id: _Optional[str] = ..., document_id: _Optional[str] = ..., source_uri: _Optional[str] = ..., title: _Optional[str] = ..., quote: _Optional[str] = ..., start_index: _Optional[int] = ..., end_index: _Optional[int] = ...) -> None: ...

class TokenUsage(_message.Message):
    __slots__ = ("prompt_tokens", "completion_tokens", "total_tokens")
    PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COMPLETION_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_TOKENS_FIELD_NUMBER: _ClassVar[int]
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    def __init__(self, prompt_tokens: _Optional[int] = ..., completion_tokens: _Optional[int] = ..., total_tokens: _Optional[int] = ...) -> None: ...

class Timings(_message.Message):
    __slots__ = ("total", "decode", "time_to_first_token", "retrieval", "guardrails")
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    DECODE_FIELD_NUMBER: _ClassVar[int]
    TIME_TO_FIRST_TOKEN_FIELD_NUMBER: _ClassVar[int]
    RETRIEVAL_FIELD_NUMBER: _ClassVar[int]
    GUARDRAILS_FIELD_NUMBER: _ClassVar[int]
    total: _duration_pb2.Duration
    decode: _duration_pb2.Duration
    time_to_first_token: _duration_pb2.Duration
    retrieval: _duration_pb2.Duration
    guardrails: _duration_pb2.Duration
    def __init__(self, total: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., decode: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., time_to_first_token: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., retrieval: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., guardrails: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class RoutingDecision(_message.Message):
    __slots__ = ("arm", "reason", "probability", "shadow", "deployment_revision", "rollout_id", "shadow_arms")
    class Reason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        REASON_UNSPECIFIED: _ClassVar[RoutingDecision.Reason]
        REASON_BASELINE: _ClassVar[RoutingDecision.Reason]
        REASON_CANARY: _ClassVar[RoutingDecision.Reason]
        REASON_AB_SPLIT: _ClassVar[RoutingDecision.Reason]
        REASON_BANDIT: _ClassVar[RoutingDecision.Reason]
        REASON_PINNED: _ClassVar[RoutingDecision.Reason]
        REASON_SHADOW: _ClassVar[RoutingDecision.Reason]
        REASON_FALLBACK: _ClassVar[RoutingDecision.Reason]
    REASON_UNSPECIFIED: RoutingDecision.Reason
    REASON_BASELINE: RoutingDecision.Reason
    REASON_CANARY: RoutingDecision.Reason
    REASON_AB_SPLIT: RoutingDecision.Reason
    REASON_BANDIT: RoutingDecision.Reason
    REASON_PINNED: RoutingDecision.Reason
    REASON_SHADOW: RoutingDecision.Reason
    REASON_FALLBACK: RoutingDecision.Reason
    ARM_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    SHADOW_FIELD_NUMBER: _ClassVar[int]
    DEPLOYMENT_REVISION_FIELD_NUMBER: _ClassVar[int]
    ROLLOUT_ID_FIELD_NUMBER: _ClassVar[int]
    SHADOW_ARMS_FIELD_NUMBER: _ClassVar[int]
    arm: str
    reason: RoutingDecision.Reason
    probability: float
    shadow: bool
    deployment_revision: int
    rollout_id: str
    shadow_arms: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, arm: _Optional[str] = ..., reason: _Optional[_Union[RoutingDecision.Reason, str]] = ..., probability: _Optional[float] = ..., shadow: _Optional[bool] = ..., deployment_revision: _Optional[int] = ..., rollout_id: _Optional[str] = ..., shadow_arms: _Optional[_Iterable[str]] = ...) -> None: ...

class Interaction(_message.Message):
    __slots__ = ("interaction_id", "tenant_id", "skill", "user_id", "thread_id", "input", "retrieved_chunks", "context", "tool_calls", "policy_id", "base_model", "timings", "usage", "cost_usd", "metadata", "labels", "event_time", "create_time", "training_opt_out", "source", "routing", "primary_interaction_id", "request_id", "served_messages", "output_count", "feedback_count", "task_result_count")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    INTERACTION_ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    SKILL_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    THREAD_ID_FIELD_NUMBER: _ClassVar[int]
    INPUT_FIELD_NUMBER: _ClassVar[int]
    RETRIEVED_CHUNKS_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    TOOL_CALLS_FIELD_NUMBER: _ClassVar[int]
    POLICY_ID_FIELD_NUMBER: _ClassVar[int]
    BASE_MODEL_FIELD_NUMBER: _ClassVar[int]
    TIMINGS_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    COST_USD_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    EVENT_TIME_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    TRAINING_OPT_OUT_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    ROUTING_FIELD_NUMBER: _ClassVar[int]
    PRIMARY_INTERACTION_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    SERVED_MESSAGES_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_COUNT_FIELD_NUMBER: _ClassVar[int]
    FEEDBACK_COUNT_FIELD_NUMBER: _ClassVar[int]
    TASK_RESULT_COUNT_FIELD_NUMBER: _ClassVar[int]
    interaction_id: str
    tenant_id: str
    skill: str
    user_id: str
    thread_id: str
    input: InteractionInput
    retrieved_chunks: _containers.RepeatedCompositeFieldContainer[RetrievedChunk]
    context: _struct_pb2.Struct
    tool_calls: _containers.RepeatedCompositeFieldContainer[ToolCall]
    policy_id: str
    base_model: str
    timings: Timings
    usage: TokenUsage
    cost_usd: float
    metadata: _struct_pb2.Struct
    labels: _containers.ScalarMap[str, str]
    event_time: _timestamp_pb2.Timestamp
    create_time: _timestamp_pb2.Timestamp
    training_opt_out: bool
    source: InteractionSource
    routing: RoutingDecision
    primary_interaction_id: str
    request_id: str
    served_messages: _containers.RepeatedCompositeFieldContainer[ChatMessage]
    output_count: int
    feedback_count: int
    task_result_count: int
    def __init__(self, interaction_id: _Optional[str] = ..., tenant_id: _Optional[str] = ..., skill: _Optional[str] = ..., user_id: _Optional[str] = ..., thread_id: _Optional[str] = ..., input: _Optional[_Union[InteractionInput, _Mapping]] = ..., retrieved_chunks: _Optional[_Iterable[_Union[RetrievedChunk, _Mapping]]] = ..., context: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., tool_calls: _Optional[_Iterable[_Union[ToolCall, _Mapping]]] = ..., policy_id: _Optional[str] = ..., base_model: _Optional[str] = ..., timings: _Optional[_Union[Timings, _Mapping]] = ..., usage: _Optional[_Union[TokenUsage, _Mapping]] = ..., cost_usd: _Optional[float] = ..., metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., labels: _Optional[_Mapping[str, str]] = ..., event_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., training_opt_out: _Optional[bool] = ..., source: _Optional[_Union[InteractionSource, str]] = ..., routing: _Optional[_Union[RoutingDecision, _Mapping]] = ..., primary_interaction_id: _Optional[str] = ..., request_id: _Optional[str] = ..., served_messages: _Optional[_Iterable[_Union[ChatMessage, _Mapping]]] = ..., output_count: _Optional[int] = ..., feedback_count: _Optional[int] = ..., task_result_count: _Optional[int] = ...) -> None: ...

class Output(_message.Message):
    __slots__ = ("output_id", "interaction_id", "tenant_id", "text", "tool_calls", "citations", "finish_reason", "usage", "timings", "cost_usd", "policy_id", "candidate_index", "guardrail_flags", "metadata", "event_time", "create_time", "request_id", "groundedness")
    OUTPUT_ID_FIELD_NUMBER: _ClassVar[int]
    INTERACTION_ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    TOOL_CALLS_FIELD_NUMBER: _ClassVar[int]
    CITATIONS_FIELD_NUMBER: _ClassVar[int]
    FINISH_REASON_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    TIMINGS_FIELD_NUMBER: _ClassVar[int]
    COST_USD_FIELD_NUMBER: _ClassVar[int]
    POLICY_ID_FIELD_NUMBER: _ClassVar[int]
    CANDIDATE_INDEX_FIELD_NUMBER: _ClassVar[int]
    GUARDRAIL_FLAGS_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    EVENT_TIME_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    GROUNDEDNESS_FIELD_NUMBER: _ClassVar[int]
    output_id: str
    interaction_id: str
    tenant_id: str
    text: str
    tool_calls: _containers.RepeatedCompositeFieldContainer[ToolCall]
    citations: _containers.RepeatedCompositeFieldContainer[Citation]
    finish_reason: FinishReason
    usage: TokenUsage
    timings: Timings
    cost_usd: float
    policy_id: str
    candidate_index: int
    guardrail_flags: _containers.RepeatedScalarFieldContainer[str]
    metadata: _struct_pb2.Struct
    event_time: _timestamp_pb2.Timestamp
    create_time: _timestamp_pb2.Timestamp
    request_id: str
    groundedness: Groundedness
    def __init__(self, output_id: _Optional[str] = ..., interaction_id: _Optional[str] = ..., tenant_id: _Optional[str] = ..., text: _Optional[str] = ..., tool_calls: _Optional[_Iterable[_Union[ToolCall, _Mapping]]] = ..., citations: _Optional[_Iterable[_Union[Citation, _Mapping]]] = ..., finish_reason: _Optional[_Union[FinishReason, str]] = ..., usage: _Optional[_Union[TokenUsage, _Mapping]] = ..., timings: _Optional[_Union[Timings, _Mapping]] = ..., cost_usd: _Optional[float] = ..., policy_id: _Optional[str] = ..., candidate_index: _Optional[int] = ..., guardrail_flags: _Optional[_Iterable[str]] = ..., metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., event_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., request_id: _Optional[str] = ..., groundedness: _Optional[_Union[Groundedness, _Mapping]] = ...) -> None: ...

class Groundedness(_message.Message):
    __slots__ = ("score", "grounded", "unsupported_sentences", "method")
    SCORE_FIELD_NUMBER: _ClassVar[int]
    GROUNDED_FIELD_NUMBER: _ClassVar[int]
    UNSUPPORTED_SENTENCES_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    score: float
    grounded: bool
    unsupported_sentences: _containers.RepeatedScalarFieldContainer[str]
    method: str
    def __init__(self, score: _Optional[float] = ..., grounded: _Optional[bool] = ..., unsupported_sentences: _Optional[_Iterable[str]] = ..., method: _Optional[str] = ...) -> None: ...

class ExplicitFeedback(_message.Message):
    __slots__ = ("thumb", "rating", "comment", "preferred_text", "tags")
    class Thumb(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        THUMB_UNSPECIFIED: _ClassVar[ExplicitFeedback.Thumb]
        THUMB_UP: _ClassVar[ExplicitFeedback.Thumb]
        THUMB_DOWN: _ClassVar[ExplicitFeedback.Thumb]
    THUMB_UNSPECIFIED: ExplicitFeedback.Thumb
    THUMB_UP: ExplicitFeedback.Thumb
    THUMB_DOWN: ExplicitFeedback.Thumb
    THUMB_FIELD_NUMBER: _ClassVar[int]
    RATING_FIELD_NUMBER: _ClassVar[int]
    COMMENT_FIELD_NUMBER: _ClassVar[int]
    PREFERRED_TEXT_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    thumb: ExplicitFeedback.Thumb
    rating: int
    comment: str
    preferred_text: str
    tags: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, thumb: _Optional[_Union[ExplicitFeedback.Thumb, str]] = ..., rating: _Optional[int] = ..., comment: _Optional[str] = ..., preferred_text: _Optional[str] = ..., tags: _Optional[_Iterable[str]] = ...) -> None: ...

class ImplicitFeedback(_message.Message):
    __slots__ = ("edited_text", "sent", "time_to_send_ms", "escalated", "follow_up_count", "regenerated", "copied")
    EDITED_TEXT_FIELD_NUMBER: _ClassVar[int]
    SENT_FIELD_NUMBER: _ClassVar[int]
    TIME_TO_SEND_MS_FIELD_NUMBER: _ClassVar[int]
    ESCALATED_FIELD_NUMBER: _ClassVar[int]
    FOLLOW_UP_COUNT_FIELD_NUMBER: _ClassVar[int]
    REGENERATED_FIELD_NUMBER: _ClassVar[int]
    COPIED_FIELD_NUMBER: _ClassVar[int]
    edited_text: str
    sent: bool
    time_to_send_ms: int
    escalated: bool
    follow_up_count: int
    regenerated: bool
    copied: bool
    def __init__(self, edited_text: _Optional[str] = ..., sent: _Optional[bool] = ..., time_to_send_ms: _Optional[int] = ..., escalated: _Optional[bool] = ..., follow_up_count: _Optional[int] = ..., regenerated: _Optional[bool] = ..., copied: _Optional[bool] = ...) -> None: ...

class Feedback(_message.Message):
    __slots__ = ("feedback_id", "interaction_id", "output_id", "tenant_id", "user_id", "explicit", "implicit", "metadata", "labels", "event_time", "create_time", "request_id")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    FEEDBACK_ID_FIELD_NUMBER: _ClassVar[int]
    INTERACTION_ID_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    EXPLICIT_FIELD_NUMBER: _ClassVar[int]
    IMPLICIT_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    EVENT_TIME_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    feedback_id: str
    interaction_id: str
    output_id: str
    tenant_id: str
    user_id: str
    explicit: ExplicitFeedback
    implicit: ImplicitFeedback
    metadata: _struct_pb2.Struct
    labels: _containers.ScalarMap[str, str]
    event_time: _timestamp_pb2.Timestamp
    create_time: _timestamp_pb2.Timestamp
    request_id: str
    def __init__(self, feedback_id: _Optional[str] = ..., interaction_id: _Optional[str] = ..., output_id: _Optional[str] = ..., tenant_id: _Optional[str] = ..., user_id: _Optional[str] = ..., explicit: _Optional[_Union[ExplicitFeedback, _Mapping]] = ..., implicit: _Optional[_Union[ImplicitFeedback, _Mapping]] = ..., metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., labels: _Optional[_Mapping[str, str]] = ..., event_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class TaskResult(_message.Message):
    __slots__ = ("task_result_id", "interaction_id", "output_id", "tenant_id", "correct", "f1", "resolved", "labels", "metrics", "metadata", "event_time", "create_time", "request_id")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class MetricsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    TASK_RESULT_ID_FIELD_NUMBER: _ClassVar[int]
    INTERACTION_ID_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    CORRECT_FIELD_NUMBER: _ClassVar[int]
    F1_FIELD_NUMBER: _ClassVar[int]
    RESOLVED_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    EVENT_TIME_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    task_result_id: str
    interaction_id: str
    output_id: str
    tenant_id: str
    correct: bool
    f1: float
    resolved: bool
    labels: _containers.ScalarMap[str, str]
    metrics: _containers.ScalarMap[str, float]
    metadata: _struct_pb2.Struct
    event_time: _timestamp_pb2.Timestamp
    create_time: _timestamp_pb2.Timestamp
    request_id: str
    def __init__(self, task_result_id: _Optional[str] = ..., interaction_id: _Optional[str] = ..., output_id: _Optional[str] = ..., tenant_id: _Optional[str] = ..., correct: _Optional[bool] = ..., f1: _Optional[float] = ..., resolved: _Optional[bool] = ..., labels: _Optional[_Mapping[str, str]] = ..., metrics: _Optional[_Mapping[str, float]] = ..., metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., event_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class CreateInteractionRequest(_message.Message):
    __slots__ = ("interaction", "output", "request_id")
    INTERACTION_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    interaction: Interaction
    output: Output
    request_id: str
    def __init__(self, interaction: _Optional[_Union[Interaction, _Mapping]] = ..., output: _Optional[_Union[Output, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class CreateInteractionResponse(_message.Message):
    __slots__ = ("interaction", "output")
    INTERACTION_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    interaction: Interaction
    output: Output
    def __init__(self, interaction: _Optional[_Union[Interaction, _Mapping]] = ..., output: _Optional[_Union[Output, _Mapping]] = ...) -> None: ...

class RecordOutputRequest(_message.Message):
    __slots__ = ("interaction_id", "output", "request_id")
    INTERACTION_ID_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    interaction_id: str
    output: Output
    request_id: str
    def __init__(self, interaction_id: _Optional[str] = ..., output: _Optional[_Union[Output, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class RecordOutputResponse(_message.Message):
    __slots__ = ("output",)
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    output: Output
    def __init__(self, output: _Optional[_Union[Output, _Mapping]] = ...) -> None: ...

class SubmitFeedbackRequest(_message.Message):
    __slots__ = ("interaction_id", "feedback", "request_id")
    INTERACTION_ID_FIELD_NUMBER: _ClassVar[int]
    FEEDBACK_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    interaction_id: str
    feedback: Feedback
    request_id: str
    def __init__(self, interaction_id: _Optional[str] = ..., feedback: _Optional[_Union[Feedback, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class SubmitFeedbackResponse(_message.Message):
    __slots__ = ("feedback",)
    FEEDBACK_FIELD_NUMBER: _ClassVar[int]
    feedback: Feedback
    def __init__(self, feedback: _Optional[_Union[Feedback, _Mapping]] = ...) -> None: ...

class RecordTaskResultRequest(_message.Message):
    __slots__ = ("interaction_id", "task_result", "request_id")
    INTERACTION_ID_FIELD_NUMBER: _ClassVar[int]
    TASK_RESULT_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    interaction_id: str
    task_result: TaskResult
    request_id: str
    def __init__(self, interaction_id: _Optional[str] = ..., task_result: _Optional[_Union[TaskResult, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class RecordTaskResultResponse(_message.Message):
    __slots__ = ("task_result",)
    TASK_RESULT_FIELD_NUMBER: _ClassVar[int]
    task_result: TaskResult
    def __init__(self, task_result: _Optional[_Union[TaskResult, _Mapping]] = ...) -> None: ...

class IngestEventsRequest(_message.Message):
    __slots__ = ("sequence", "create_interaction", "record_output", "submit_feedback", "record_task_result")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    CREATE_INTERACTION_FIELD_NUMBER: _ClassVar[int]
    RECORD_OUTPUT_FIELD_NUMBER: _ClassVar[int]
    SUBMIT_FEEDBACK_FIELD_NUMBER: _ClassVar[int]
    RECORD_TASK_RESULT_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    create_interaction: CreateInteractionRequest
    record_output: RecordOutputRequest
    submit_feedback: SubmitFeedbackRequest
    record_task_result: RecordTaskResultRequest
    def __init__(self, sequence: _Optional[int] = ..., create_interaction: _Optional[_Union[CreateInteractionRequest, _Mapping]] = ..., record_output: _Optional[_Union[RecordOutputRequest, _Mapping]] = ..., submit_feedback: _Optional[_Union[SubmitFeedbackRequest, _Mapping]] = ..., record_task_result: _Optional[_Union[RecordTaskResultRequest, _Mapping]] = ...) -> None: ...

class IngestEventsResponse(_message.Message):
    __slots__ = ("sequence", "request_id", "event_type", "outcome", "error", "interaction_id", "event_id")
    class Outcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        OUTCOME_UNSPECIFIED: _ClassVar[IngestEventsResponse.Outcome]
        OUTCOME_ACCEPTED: _ClassVar[IngestEventsResponse.Outcome]
        OUTCOME_DUPLICATE: _ClassVar[IngestEventsResponse.Outcome]
        OUTCOME_REJECTED: _ClassVar[IngestEventsResponse.Outcome]
    OUTCOME_UNSPECIFIED: IngestEventsResponse.Outcome
    OUTCOME_ACCEPTED: IngestEventsResponse.Outcome
    OUTCOME_DUPLICATE: IngestEventsResponse.Outcome
    OUTCOME_REJECTED: IngestEventsResponse.Outcome
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    INTERACTION_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    request_id: str
    event_type: EventType
    outcome: IngestEventsResponse.Outcome
    error: _status_pb2.Status
    interaction_id: str
    event_id: str
    def __init__(self, sequence: _Optional[int] = ..., request_id: _Optional[str] = ..., event_type: _Optional[_Union[EventType, str]] = ..., outcome: _Optional[_Union[IngestEventsResponse.Outcome, str]] = ..., error: _Optional[_Union[_status_pb2.Status, _Mapping]] = ..., interaction_id: _Optional[str] = ..., event_id: _Optional[str] = ...) -> None: ...

class IngestEventBatchesRequest(_message.Message):
    __slots__ = ("events",)
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[IngestEventsRequest]
    def __init__(self, events: _Optional[_Iterable[_Union[IngestEventsRequest, _Mapping]]] = ...) -> None: ...

class IngestEventBatchesResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[IngestEventsResponse]
    def __init__(self, results: _Optional[_Iterable[_Union[IngestEventsResponse, _Mapping]]] = ...) -> None: ...

class GetInteractionRequest(_message.Message):
    __slots__ = ("interaction_id",)
    INTERACTION_ID_FIELD_NUMBER: _ClassVar[int]
    interaction_id: str
    def __init__(self, interaction_id: _Optional[str] = ...) -> None: ...

class GetInteractionResponse(_message.Message):
    __slots__ = ("interaction", "outputs", "feedback", "task_results")
    INTERACTION_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    FEEDBACK_FIELD_NUMBER: _ClassVar[int]
    TASK_RESULTS_FIELD_NUMBER: _ClassVar[int]
    interaction: Interaction
    outputs: _containers.RepeatedCompositeFieldContainer[Output]
    feedback: _containers.RepeatedCompositeFieldContainer[Feedback]
    task_results: _containers.RepeatedCompositeFieldContainer[TaskResult]
    def __init__(self, interaction: _Optional[_Union[Interaction, _Mapping]] = ..., outputs: _Optional[_Iterable[_Union[Output, _Mapping]]] = ..., feedback: _Optional[_Iterable[_Union[Feedback, _Mapping]]] = ..., task_results: _Optional[_Iterable[_Union[TaskResult, _Mapping]]] = ...) -> None: ...

class ListInteractionsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "skill", "user_id", "thread_id", "policy_id", "start_time", "end_time", "has_feedback", "include_shadow", "labels")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    SKILL_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    THREAD_ID_FIELD_NUMBER: _ClassVar[int]
    POLICY_ID_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    HAS_FEEDBACK_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_SHADOW_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    skill: str
    user_id: str
    thread_id: str
    policy_id: str
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    has_feedback: bool
    include_shadow: bool
    labels: _containers.ScalarMap[str, str]
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., skill: _Optional[str] = ..., user_id: _Optional[str] = ..., thread_id: _Optional[str] = ..., policy_id: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., has_feedback: _Optional[bool] = ..., include_shadow: _Optional[bool] = ..., labels: _Optional[_Mapping[str, str]] = ...) -> None: ...

class ListInteractionsResponse(_message.Message):
    __slots__ = ("interactions", "next_page_token")
    INTERACTIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    interactions: _containers.RepeatedCompositeFieldContainer[Interaction]
    next_page_token: str
    def __init__(self, interactions: _Optional[_Iterable[_Union[Interaction, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ExportedFile(_message.Message):
    __slots__ = ("uri", "event_type", "partition_date", "row_count", "size_bytes", "sha256")
    URI_FIELD_NUMBER: _ClassVar[int]
    EVENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    PARTITION_DATE_FIELD_NUMBER: _ClassVar[int]
    ROW_COUNT_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    uri: str
    event_type: EventType
    partition_date: str
    row_count: int
    size_bytes: int
    sha256: str
    def __init__(self, uri: _Optional[str] = ..., event_type: _Optional[_Union[EventType, str]] = ..., partition_date: _Optional[str] = ..., row_count: _Optional[int] = ..., size_bytes: _Optional[int] = ..., sha256: _Optional[str] = ...) -> None: ...

class ExportEventsRequest(_message.Message):
    __slots__ = ("start_time", "end_time", "event_types", "skill", "redact_pii", "request_id")
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    EVENT_TYPES_FIELD_NUMBER: _ClassVar[int]
    SKILL_FIELD_NUMBER: _ClassVar[int]
    REDACT_PII_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    event_types: _containers.RepeatedScalarFieldContainer[EventType]
    skill: str
    redact_pii: bool
    request_id: str
    def __init__(self, start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., event_types: _Optional[_Iterable[_Union[EventType, str]]] = ..., skill: _Optional[str] = ..., redact_pii: _Optional[bool] = ..., request_id: _Optional[str] = ...) -> None: ...

class ExportEventsResponse(_message.Message):
    __slots__ = ("files", "interaction_count", "output_count", "feedback_count", "task_result_count")
    FILES_FIELD_NUMBER: _ClassVar[int]
    INTERACTION_COUNT_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_COUNT_FIELD_NUMBER: _ClassVar[int]
    FEEDBACK_COUNT_FIELD_NUMBER: _ClassVar[int]
    TASK_RESULT_COUNT_FIELD_NUMBER: _ClassVar[int]
    files: _containers.RepeatedCompositeFieldContainer[ExportedFile]
    interaction_count: int
    output_count: int
    feedback_count: int
    task_result_count: int
    def __init__(self, files: _Optional[_Iterable[_Union[ExportedFile, _Mapping]]] = ..., interaction_count: _Optional[int] = ..., output_count: _Optional[int] = ..., feedback_count: _Optional[int] = ..., task_result_count: _Optional[int] = ...) -> None: ...

class CompactExportsRequest(_message.Message):
    __slots__ = ("start_time", "end_time", "event_types", "request_id")
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    EVENT_TYPES_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    event_types: _containers.RepeatedScalarFieldContainer[EventType]
    request_id: str
    def __init__(self, start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., event_types: _Optional[_Iterable[_Union[EventType, str]]] = ..., request_id: _Optional[str] = ...) -> None: ...

class CompactExportsResponse(_message.Message):
    __slots__ = ("files", "input_file_count", "partition_count", "row_count")
    FILES_FIELD_NUMBER: _ClassVar[int]
    INPUT_FILE_COUNT_FIELD_NUMBER: _ClassVar[int]
    PARTITION_COUNT_FIELD_NUMBER: _ClassVar[int]
    ROW_COUNT_FIELD_NUMBER: _ClassVar[int]
    files: _containers.RepeatedCompositeFieldContainer[ExportedFile]
    input_file_count: int
    partition_count: int
    row_count: int
    def __init__(self, files: _Optional[_Iterable[_Union[ExportedFile, _Mapping]]] = ..., input_file_count: _Optional[int] = ..., partition_count: _Optional[int] = ..., row_count: _Optional[int] = ...) -> None: ...
