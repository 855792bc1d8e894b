import datetime

from google.api import annotations_pb2 as _annotations_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from rlaas.options.v1 import options_pb2 as _options_pb2
from rlaas.retrieval.v1 import retrieval_pb2 as _retrieval_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Tenant(_message.Message):
    __slots__ = ("tenant_id", "display_name", "state", "operator", "create_time")
    class State(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STATE_UNSPECIFIED: _ClassVar[Tenant.State]
        STATE_ACTIVE: _ClassVar[Tenant.State]
        STATE_DISABLED: _ClassVar[Tenant.State]
    STATE_UNSPECIFIED: Tenant.State
    STATE_ACTIVE: Tenant.State
    STATE_DISABLED: Tenant.State
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    display_name: str
    state: Tenant.State
    operator: bool
    create_time: _timestamp_pb2.Timestamp
    def __init__(self, tenant_id: _Optional[str] = ..., display_name: _Optional[str] = ..., state: _Optional[_Union[Tenant.State, str]] = ..., operator: _Optional[bool] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ApiKey(_message.Message):
    __slots__ = ("api_key_id", "display_name", "scopes", "state", "tenant_id", "create_time", "revoke_time", "expire_time")
    class State(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STATE_UNSPECIFIED: _ClassVar[ApiKey.State]
        STATE_ACTIVE: _ClassVar[ApiKey.State]
        STATE_REVOKED: _ClassVar[ApiKey.State]
    STATE_UNSPECIFIED: ApiKey.State
    STATE_ACTIVE: ApiKey.State
    STATE_REVOKED: ApiKey.State
    API_KEY_ID_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    SCOPES_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    REVOKE_TIME_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    api_key_id: str
    display_name: str
    scopes: _containers.RepeatedScalarFieldContainer[_options_pb2.Scope]
    state: ApiKey.State
    tenant_id: str
    create_time: _timestamp_pb2.Timestamp
    revoke_time: _timestamp_pb2.Timestamp
    expire_time: _timestamp_pb2.Timestamp
    def __init__(self, api_key_id: _Optional[str] = ..., display_name: _Optional[str] = ..., scopes: _Optional[_Iterable[_Union[_options_pb2.Scope, str]]] = ..., state: _Optional[_Union[ApiKey.State, str]] = ..., tenant_id: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., revoke_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CreateTenantRequest(_message.Message):
    __slots__ = ("tenant", "request_id")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    tenant: Tenant
    request_id: str
    def __init__(self, tenant: _Optional[_Union[Tenant, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class CreateTenantResponse(_message.Message):
    __slots__ = ("tenant", "admin_api_key", "admin_api_key_secret")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    ADMIN_API_KEY_FIELD_NUMBER: _ClassVar[int]
    ADMIN_API_KEY_SECRET_FIELD_NUMBER: _ClassVar[int]
    tenant: Tenant
    admin_api_key: ApiKey
    admin_api_key_secret: str
    def __init__(self, tenant: _Optional[_Union[Tenant, _Mapping]] = ..., admin_api_key: _Optional[_Union[ApiKey, _Mapping]] = ..., admin_api_key_secret: _Optional[str] = ...) -> None: ...

class GetTenantRequest(_message.Message):
    __slots__ = ("tenant_id",)
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    def __init__(self, tenant_id: _Optional[str] = ...) -> None: ...

class GetTenantResponse(_message.Message):
    __slots__ = ("tenant",)
    TENANT_FIELD_NUMBER: _ClassVar[int]
    tenant: Tenant
    def __init__(self, tenant: _Optional[_Union[Tenant, _Mapping]] = ...) -> None: ...

class ListTenantsRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListTenantsResponse(_message.Message):
    __slots__ = ("tenants", "next_page_token")
    TENANTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    tenants: _containers.RepeatedCompositeFieldContainer[Tenant]
    next_page_token: str
    def __init__(self, tenants: _Optional[_Iterable[_Union[Tenant, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class CreateApiKeyRequest(_message.Message):
    __slots__ = ("api_key", "request_id")
    API_KEY_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    api_key: ApiKey
    request_id: str
    def __init__(self, api_key: _Optional[_Union[ApiKey, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class CreateApiKeyResponse(_message.Message):
    __slots__ = ("api_key", "secret")
    API_KEY_FIELD_NUMBER: _ClassVar[int]
    SECRET_FIELD_NUMBER: _ClassVar[int]
    api_key: ApiKey
    secret: str
    def __init__(self, api_key: _Optional[_Union[ApiKey, _Mapping]] = ..., secret: _Optional[str] = ...) -> None: ...

class GetApiKeyRequest(_message.Message):
    __slots__ = ("api_key_id",)
    API_KEY_ID_FIELD_NUMBER: _ClassVar[int]
    api_key_id: str
    def __init__(self, api_key_id: _Optional[str] = ...) -> None: ...

class GetApiKeyResponse(_message.Message):
    __slots__ = ("api_key",)
    API_KEY_FIELD_NUMBER: _ClassVar[int]
    api_key: ApiKey
    def __init__(self, api_key: _Optional[_Union[ApiKey, _Mapping]] = ...) -> None: ...

class ListApiKeysRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "show_revoked")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    SHOW_REVOKED_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    show_revoked: bool
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., show_revoked: _Optional[bool] = ...) -> None: ...

class ListApiKeysResponse(_message.Message):
    __slots__ = ("api_keys", "next_page_token")
    API_KEYS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    api_keys: _containers.RepeatedCompositeFieldContainer[ApiKey]
    next_page_token: str
    def __init__(self, api_keys: _Optional[_Iterable[_Union[ApiKey, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class RevokeApiKeyRequest(_message.Message):
    __slots__ = ("api_key_id", "request_id")
    API_KEY_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    api_key_id: str
    request_id: str
    def __init__(self, api_key_id: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class RevokeApiKeyResponse(_message.Message):
    __slots__ = ("api_key",)
    API_KEY_FIELD_NUMBER: _ClassVar[int]
    api_key: ApiKey
    def __init__(self, api_key: _Optional[_Union[ApiKey, _Mapping]] = ...) -> None: ...

class GetCallerIdentityRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetCallerIdentityResponse(_message.Message):
    __slots__ = ("tenant_id", "api_key_id", "scopes", "operator")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    API_KEY_ID_FIELD_NUMBER: _ClassVar[int]
    SCOPES_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    api_key_id: str
    scopes: _containers.RepeatedScalarFieldContainer[_options_pb2.Scope]
    operator: bool
    def __init__(self, tenant_id: _Optional[str] = ..., api_key_id: _Optional[str] = ..., scopes: _Optional[_Iterable[_Union[_options_pb2.Scope, str]]] = ..., operator: _Optional[bool] = ...) -> None: ...

class Skill(_message.Message):
    __slots__ = ("skill_id", "tenant_id", "display_name", "description", "labels", "baseline_policy_id", "latest_version", "create_time")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    SKILL_ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    BASELINE_POLICY_ID_FIELD_NUMBER: _ClassVar[int]
    LATEST_VERSION_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    skill_id: str
    tenant_id: str
    display_name: str
    description: str
    labels: _containers.ScalarMap[str, str]
    baseline_policy_id: str
    latest_version: int
    create_time: _timestamp_pb2.Timestamp
    def __init__(self, skill_id: _Optional[str] = ..., tenant_id: _Optional[str] = ..., display_name: _Optional[str] = ..., description: _Optional[str] = ..., labels: _Optional[_Mapping[str, str]] = ..., baseline_policy_id: _Optional[str] = ..., latest_version: _Optional[int] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GenerationConfig(_message.Message):
    __slots__ = ("temperature", "top_p", "top_k", "max_tokens", "stop", "seed", "repetition_penalty", "presence_penalty", "frequency_penalty")
    TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    TOP_P_FIELD_NUMBER: _ClassVar[int]
    TOP_K_FIELD_NUMBER: _ClassVar[int]
    MAX_TOKENS_FIELD_NUMBER: _ClassVar[int]
    STOP_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    REPETITION_PENALTY_FIELD_NUMBER: _ClassVar[int]
    PRESENCE_PENALTY_FIELD_NUMBER: _ClassVar[int]
    FREQUENCY_PENALTY_FIELD_NUMBER: _ClassVar[int]
    temperature: float
    top_p: float
    top_k: int
    max_tokens: int
    stop: _containers.RepeatedScalarFieldContainer[str]
    seed: int
    repetition_penalty: float
    presence_penalty: float
    frequency_penalty: float
    def __init__(self, temperature: _Optional[float] = ..., top_p: _Optional[float] = ..., top_k: _Optional[int] = ..., max_tokens: _Optional[int] = ..., stop: _Optional[_Iterable[str]] = ..., seed: _Optional[int] = ..., repetition_penalty: _Optional[float] = ..., presence_penalty: _Optional[float] = ..., frequency_penalty: _Optional[float] = ...) -> None: ...

class PromptTemplate(_message.Message):
    __slots__ = ("template_version", "system_prompt", "user_template", "examples")
    TEMPLATE_VERSION_FIELD_NUMBER: _ClassVar[int]
    SYSTEM_PROMPT_FIELD_NUMBER: _ClassVar[int]
    USER_TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    EXAMPLES_FIELD_NUMBER: _ClassVar[int]
    template_version: str
    system_prompt: str
    user_template: str
    examples: _containers.RepeatedCompositeFieldContainer[FewShotExample]
    def __init__(self, template_version: _Optional[str] = ..., system_prompt: _Optional[str] = ..., user_template: _Optional[str] = ..., examples: _Optional[_Iterable[_Union[FewShotExample, _Mapping]]] = ...) -> None: ...

class FewShotExample(_message.Message):
    __slots__ = ("input", "output")
    INPUT_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    input: str
    output: str
    def __init__(self, input: _Optional[str] = ..., output: _Optional[str] = ...) -> None: ...

class Adapter(_message.Message):
    __slots__ = ("artifact_uri", "sha256", "size_bytes", "rank", "training_run_id")
    ARTIFACT_URI_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    RANK_FIELD_NUMBER: _ClassVar[int]
    TRAINING_RUN_ID_FIELD_NUMBER: _ClassVar[int]
    artifact_uri: str
    sha256: str
    size_bytes: int
    rank: int
    training_run_id: str
    def __init__(self, artifact_uri: _Optional[str] = ..., sha256: _Optional[str] = ..., size_bytes: _Optional[int] = ..., rank: _Optional[int] = ..., training_run_id: _Optional[str] = ...) -> None: ...

class GuardrailConfig(_message.Message):
    __slots__ = ("redact_input_pii", "redact_output_pii", "blocked_terms", "block_prompt_injection", "require_citations", "max_input_tokens", "refusal_message")
    REDACT_INPUT_PII_FIELD_NUMBER: _ClassVar[int]
    REDACT_OUTPUT_PII_FIELD_NUMBER: _ClassVar[int]
    BLOCKED_TERMS_FIELD_NUMBER: _ClassVar[int]
    BLOCK_PROMPT_INJECTION_FIELD_NUMBER: _ClassVar[int]
    REQUIRE_CITATIONS_FIELD_NUMBER: _ClassVar[int]
    MAX_INPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    REFUSAL_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    redact_input_pii: bool
    redact_output_pii: bool
    blocked_terms: _containers.RepeatedScalarFieldContainer[str]
    block_prompt_injection: bool
    require_citations: bool
    max_input_tokens: int
    refusal_message: str
    def __init__(self, redact_input_pii: _Optional[bool] = ..., redact_output_pii: _Optional[bool] = ..., blocked_terms: _Optional[_Iterable[str]] = ..., block_prompt_injection: _Optional[bool] = ..., require_citations: _Optional[bool] = ..., max_input_tokens: _Optional[int] = ..., refusal_message: _Optional[str] = ...) -> None: ...

class RetrievalConfig(_message.Message):
    __slots__ = ("enabled", "collection", "top_k", "min_score", "embedding_model", "rerank", "mode", "filter", "min_groundedness")
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    TOP_K_FIELD_NUMBER: _ClassVar[int]
    MIN_SCORE_FIELD_NUMBER: _ClassVar[int]
    EMBEDDING_MODEL_FIELD_NUMBER: _ClassVar[int]
    RERANK_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    MIN_GROUNDEDNESS_FIELD_NUMBER: _ClassVar[int]
    enabled: bool
    collection: str
    top_k: int
    min_score: float
    embedding_model: str
    rerank: bool
    mode: _retrieval_pb2.SearchMode
    filter: _retrieval_pb2.SearchFilter
    min_groundedness: float
    def __init__(self, enabled: _Optional[bool] = ..., collection: _Optional[str] = ..., top_k: _Optional[int] = ..., min_score: _Optional[float] = ..., embedding_model: _Optional[str] = ..., rerank: _Optional[bool] = ..., mode: _Optional[_Union[_retrieval_pb2.SearchMode, str]] = ..., filter: _Optional[_Union[_retrieval_pb2.SearchFilter, _Mapping]] = ..., min_groundedness: _Optional[float] = ...) -> None: ...

class CacheConfig(_message.Message):
    __slots__ = ("enabled", "similarity_threshold", "ttl")
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    SIMILARITY_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    TTL_FIELD_NUMBER: _ClassVar[int]
    enabled: bool
    similarity_threshold: float
    ttl: _duration_pb2.Duration
    def __init__(self, enabled: _Optional[bool] = ..., similarity_threshold: _Optional[float] = ..., ttl: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class Policy(_message.Message):
    __slots__ = ("policy_id", "skill_id", "version", "tenant_id", "description", "base_model", "prompt_template", "adapter", "generation_defaults", "guardrails", "retrieval", "parent_policy_id", "labels", "state", "content_sha256", "creator_api_key_id", "create_time", "state_change_time", "cache")
    class State(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STATE_UNSPECIFIED: _ClassVar[Policy.State]
        STATE_CANDIDATE: _ClassVar[Policy.State]
        STATE_ACTIVE: _ClassVar[Policy.State]
        STATE_RETIRED: _ClassVar[Policy.State]
    STATE_UNSPECIFIED: Policy.State
    STATE_CANDIDATE: Policy.State
    STATE_ACTIVE: Policy.State
    STATE_RETIRED: Policy.State
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    POLICY_ID_FIELD_NUMBER: _ClassVar[int]
    SKILL_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    BASE_MODEL_FIELD_NUMBER: _ClassVar[int]
    PROMPT_TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    ADAPTER_FIELD_NUMBER: _ClassVar[int]
    GENERATION_DEFAULTS_FIELD_NUMBER: _ClassVar[int]
    GUARDRAILS_FIELD_NUMBER: _ClassVar[int]
    RETRIEVAL_FIELD_NUMBER: _ClassVar[int]
    PARENT_POLICY_ID_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    CONTENT_SHA256_FIELD_NUMBER: _ClassVar[int]
    CREATOR_API_KEY_ID_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    STATE_CHANGE_TIME_FIELD_NUMBER: _ClassVar[int]
    CACHE_FIELD_NUMBER: _ClassVar[int]
    policy_id: str
    skill_id: str
    version: int
    tenant_id: str
    description: str
    base_model: str
    prompt_template: PromptTemplate
    adapter: Adapter
    generation_defaults: GenerationConfig
    guardrails: GuardrailConfig
    retrieval: RetrievalConfig
    parent_policy_id: str
    labels: _containers.ScalarMap[str, str]
    state: Policy.State
    content_sha256: str
    creator_api_key_id: str
    create_time: _timestamp_pb2.Timestamp
    state_change_time: _timestamp_pb2.Timestamp
    cache: CacheConfig
    def __init__(self, policy_id: _Optional[str] = ..., skill_id: _Optional[str] = ..., version: _Optional[int] = ..., tenant_id: _Optional[str] = ..., description: _Optional[str] = ..., base_model: _Optional[str] = ..., prompt_template: _Optional[_Union[PromptTemplate, _Mapping]] = ..., adapter: _Optional[_Union[Adapter, _Mapping]] = ..., generation_defaults: _Optional[_Union[GenerationConfig, _Mapping]] = ..., guardrails: _Optional[_Union[GuardrailConfig, _Mapping]] = ..., retrieval: _Optional[_Union[RetrievalConfig, _Mapping]] = ..., parent_policy_id: _Optional[str] = ..., labels: _Optional[_Mapping[str, str]] = ..., state: _Optional[_Union[Policy.State, str]] = ..., content_sha256: _Optional[str] = ..., creator_api_key_id: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., state_change_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., cache: _Optional[_Union[CacheConfig, _Mapping]] = ...) -> None: ...

class CreateSkillRequest(_message.Message):
    __slots__ = ("skill", "request_id")
    SKILL_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    skill: Skill
    request_id: str
    def __init__(self, skill: _Optional[_Union[Skill, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class CreateSkillResponse(_message.Message):
    __slots__ = ("skill",)
    SKILL_FIELD_NUMBER: _ClassVar[int]
    skill: Skill
    def __init__(self, skill: _Optional[_Union[Skill, _Mapping]] = ...) -> None: ...

class GetSkillRequest(_message.Message):
    __slots__ = ("skill_id",)
    SKILL_ID_FIELD_NUMBER: _ClassVar[int]
    skill_id: str
    def __init__(self, skill_id: _Optional[str] = ...) -> None: ...

class GetSkillResponse(_message.Message):
    __slots__ = ("skill",)
    SKILL_FIELD_NUMBER: _ClassVar[int]
    skill: Skill
    def __init__(self, skill: _Optional[_Union[Skill, _Mapping]] = ...) -> None: ...

class EraseSkillTextRequest(_message.Message):
    __slots__ = ("skill_id", "request_id")
    SKILL_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    skill_id: str
    request_id: str
    def __init__(self, skill_id: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class EraseSkillTextResponse(_message.Message):
    __slots__ = ("skill", "erased_policy_count", "erased_revision_count", "erased_audit_event_count", "kept_audit_event_count")
    SKILL_FIELD_NUMBER: _ClassVar[int]
    ERASED_POLICY_COUNT_FIELD_NUMBER: _ClassVar[int]
    ERASED_REVISION_COUNT_FIELD_NUMBER: _ClassVar[int]
    ERASED_AUDIT_EVENT_COUNT_FIELD_NUMBER: _ClassVar[int]
    KEPT_AUDIT_EVENT_COUNT_FIELD_NUMBER: _ClassVar[int]
    skill: Skill
    erased_policy_count: int
    erased_revision_count: int
    erased_audit_event_count: int
    kept_audit_event_count: int
    def __init__(self, skill: _Optional[_Union[Skill, _Mapping]] = ..., erased_policy_count: _Optional[int] = ..., erased_revision_count: _Optional[int] = ..., erased_audit_event_count: _Optional[int] = ..., kept_audit_event_count: _Optional[int] = ...) -> None: ...

class ListSkillsRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListSkillsResponse(_message.Message):
    __slots__ = ("skills", "next_page_token")
    SKILLS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    skills: _containers.RepeatedCompositeFieldContainer[Skill]
    next_page_token: str
    def __init__(self, skills: _Optional[_Iterable[_Union[Skill, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class UploadAdapterRequest(_message.Message):
    __slots__ = ("header", "chunk")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    header: AdapterUploadHeader
    chunk: AdapterFileChunk
    def __init__(self, header: _Optional[_Union[AdapterUploadHeader, _Mapping]] = ..., chunk: _Optional[_Union[AdapterFileChunk, _Mapping]] = ...) -> None: ...

class AdapterUploadHeader(_message.Message):
    __slots__ = ("sha256",)
    SHA256_FIELD_NUMBER: _ClassVar[int]
    sha256: str
    def __init__(self, sha256: _Optional[str] = ...) -> None: ...

class AdapterFileChunk(_message.Message):
    __slots__ = ("file", "data")
    class File(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        FILE_UNSPECIFIED: _ClassVar[AdapterFileChunk.File]
        FILE_CONFIG: _ClassVar[AdapterFileChunk.File]
        FILE_WEIGHTS: _ClassVar[AdapterFileChunk.File]
    FILE_UNSPECIFIED: AdapterFileChunk.File
    FILE_CONFIG: AdapterFileChunk.File
    FILE_WEIGHTS: AdapterFileChunk.File
    FILE_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    file: AdapterFileChunk.File
    data: bytes
    def __init__(self, file: _Optional[_Union[AdapterFileChunk.File, str]] = ..., data: _Optional[bytes] = ...) -> None: ...

class UploadAdapterResponse(_message.Message):
    __slots__ = ("adapter",)
    ADAPTER_FIELD_NUMBER: _ClassVar[int]
    adapter: Adapter
    def __init__(self, adapter: _Optional[_Union[Adapter, _Mapping]] = ...) -> None: ...

class CreatePolicyRequest(_message.Message):
    __slots__ = ("policy", "request_id")
    POLICY_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    policy: Policy
    request_id: str
    def __init__(self, policy: _Optional[_Union[Policy, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class CreatePolicyResponse(_message.Message):
    __slots__ = ("policy",)
    POLICY_FIELD_NUMBER: _ClassVar[int]
    policy: Policy
    def __init__(self, policy: _Optional[_Union[Policy, _Mapping]] = ...) -> None: ...

class GetPolicyRequest(_message.Message):
    __slots__ = ("policy_id",)
    POLICY_ID_FIELD_NUMBER: _ClassVar[int]
    policy_id: str
    def __init__(self, policy_id: _Optional[str] = ...) -> None: ...

class GetPolicyResponse(_message.Message):
    __slots__ = ("policy",)
    POLICY_FIELD_NUMBER: _ClassVar[int]
    policy: Policy
    def __init__(self, policy: _Optional[_Union[Policy, _Mapping]] = ...) -> None: ...

class ListPoliciesRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "skill_id", "state")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    SKILL_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    skill_id: str
    state: Policy.State
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., skill_id: _Optional[str] = ..., state: _Optional[_Union[Policy.State, str]] = ...) -> None: ...

class ListPoliciesResponse(_message.Message):
    __slots__ = ("policies", "next_page_token")
    POLICIES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    policies: _containers.RepeatedCompositeFieldContainer[Policy]
    next_page_token: str
    def __init__(self, policies: _Optional[_Iterable[_Union[Policy, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class DiffPoliciesRequest(_message.Message):
    __slots__ = ("base_policy_id", "target_policy_id")
    BASE_POLICY_ID_FIELD_NUMBER: _ClassVar[int]
    TARGET_POLICY_ID_FIELD_NUMBER: _ClassVar[int]
    base_policy_id: str
    target_policy_id: str
    def __init__(self, base_policy_id: _Optional[str] = ..., target_policy_id: _Optional[str] = ...) -> None: ...

class PolicyFieldChange(_message.Message):
    __slots__ = ("field_path", "before", "after")
    FIELD_PATH_FIELD_NUMBER: _ClassVar[int]
    BEFORE_FIELD_NUMBER: _ClassVar[int]
    AFTER_FIELD_NUMBER: _ClassVar[int]
    field_path: str
    before: _struct_pb2.Value
    after: _struct_pb2.Value
    def __init__(self, field_path: _Optional[str] = ..., before: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., after: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ...) -> None: ...

class DiffPoliciesResponse(_message.Message):
    __slots__ = ("changes", "prompt_diff", "identical")
    CHANGES_FIELD_NUMBER: _ClassVar[int]
    PROMPT_DIFF_FIELD_NUMBER: _ClassVar[int]
    IDENTICAL_FIELD_NUMBER: _ClassVar[int]
    changes: _containers.RepeatedCompositeFieldContainer[PolicyFieldChange]
    prompt_diff: str
    identical: bool
    def __init__(self, changes: _Optional[_Iterable[_Union[PolicyFieldChange, _Mapping]]] = ..., prompt_diff: _Optional[str] = ..., identical: _Optional[bool] = ...) -> None: ...

class TrafficArm(_message.Message):
    __slots__ = ("policy_id", "weight")
    POLICY_ID_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    policy_id: str
    weight: float
    def __init__(self, policy_id: _Optional[str] = ..., weight: _Optional[float] = ...) -> None: ...

class CanaryTraffic(_message.Message):
    __slots__ = ("policy_id", "percent")
    POLICY_ID_FIELD_NUMBER: _ClassVar[int]
    PERCENT_FIELD_NUMBER: _ClassVar[int]
    policy_id: str
    percent: float
    def __init__(self, policy_id: _Optional[str] = ..., percent: _Optional[float] = ...) -> None: ...

class AbSplitTraffic(_message.Message):
    __slots__ = ("arms",)
    ARMS_FIELD_NUMBER: _ClassVar[int]
    arms: _containers.RepeatedCompositeFieldContainer[TrafficArm]
    def __init__(self, arms: _Optional[_Iterable[_Union[TrafficArm, _Mapping]]] = ...) -> None: ...

class BanditTraffic(_message.Message):
    __slots__ = ("arms", "max_exploration", "reward_window_hours")
    ARMS_FIELD_NUMBER: _ClassVar[int]
    MAX_EXPLORATION_FIELD_NUMBER: _ClassVar[int]
    REWARD_WINDOW_HOURS_FIELD_NUMBER: _ClassVar[int]
    arms: _containers.RepeatedCompositeFieldContainer[TrafficArm]
    max_exploration: float
    reward_window_hours: int
    def __init__(self, arms: _Optional[_Iterable[_Union[TrafficArm, _Mapping]]] = ..., max_exploration: _Optional[float] = ..., reward_window_hours: _Optional[int] = ...) -> None: ...

class ShadowTraffic(_message.Message):
    __slots__ = ("policy_ids", "sample_rate")
    POLICY_IDS_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_RATE_FIELD_NUMBER: _ClassVar[int]
    policy_ids: _containers.RepeatedScalarFieldContainer[str]
    sample_rate: float
    def __init__(self, policy_ids: _Optional[_Iterable[str]] = ..., sample_rate: _Optional[float] = ...) -> None: ...

class TrafficConfig(_message.Message):
    __slots__ = ("shadow", "canary", "ab_split", "bandit")
    SHADOW_FIELD_NUMBER: _ClassVar[int]
    CANARY_FIELD_NUMBER: _ClassVar[int]
    AB_SPLIT_FIELD_NUMBER: _ClassVar[int]
    BANDIT_FIELD_NUMBER: _ClassVar[int]
    shadow: ShadowTraffic
    canary: CanaryTraffic
    ab_split: AbSplitTraffic
    bandit: BanditTraffic
    def __init__(self, shadow: _Optional[_Union[ShadowTraffic, _Mapping]] = ..., canary: _Optional[_Union[CanaryTraffic, _Mapping]] = ..., ab_split: _Optional[_Union[AbSplitTraffic, _Mapping]] = ..., bandit: _Optional[_Union[BanditTraffic, _Mapping]] = ...) -> None: ...

class Deployment(_message.Message):
    __slots__ = ("skill_id", "tenant_id", "baseline_policy_id", "traffic", "stage", "revision", "reason", "rollout_id", "create_time", "update_time")
    class Stage(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STAGE_UNSPECIFIED: _ClassVar[Deployment.Stage]
        STAGE_EMPTY: _ClassVar[Deployment.Stage]
        STAGE_BASELINE: _ClassVar[Deployment.Stage]
        STAGE_SHADOW: _ClassVar[Deployment.Stage]
        STAGE_CANARY: _ClassVar[Deployment.Stage]
        STAGE_AB_SPLIT: _ClassVar[Deployment.Stage]
        STAGE_BANDIT: _ClassVar[Deployment.Stage]
    STAGE_UNSPECIFIED: Deployment.Stage
    STAGE_EMPTY: Deployment.Stage
    STAGE_BASELINE: Deployment.Stage
    STAGE_SHADOW: Deployment.Stage
    STAGE_CANARY: Deployment.Stage
    STAGE_AB_SPLIT: Deployment.Stage
    STAGE_BANDIT: Deployment.Stage
    SKILL_ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    BASELINE_POLICY_ID_FIELD_NUMBER: _ClassVar[int]
    TRAFFIC_FIELD_NUMBER: _ClassVar[int]
    STAGE_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    ROLLOUT_ID_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    skill_id: str
    tenant_id: str
    baseline_policy_id: str
    traffic: TrafficConfig
    stage: Deployment.Stage
    revision: int
    reason: str
    rollout_id: str
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    def __init__(self, skill_id: _Optional[str] = ..., tenant_id: _Optional[str] = ..., baseline_policy_id: _Optional[str] = ..., traffic: _Optional[_Union[TrafficConfig, _Mapping]] = ..., stage: _Optional[_Union[Deployment.Stage, str]] = ..., revision: _Optional[int] = ..., reason: _Optional[str] = ..., rollout_id: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GetDeploymentRequest(_message.Message):
    __slots__ = ("skill_id",)
    SKILL_ID_FIELD_NUMBER: _ClassVar[int]
    skill_id: str
    def __init__(self, skill_id: _Optional[str] = ...) -> None: ...

class GetDeploymentResponse(_message.Message):
    __slots__ = ("deployment",)
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    deployment: Deployment
    def __init__(self, deployment: _Optional[_Union[Deployment, _Mapping]] = ...) -> None: ...

class ListDeploymentsRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListDeploymentsResponse(_message.Message):
    __slots__ = ("deployments", "next_page_token")
    DEPLOYMENTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    deployments: _containers.RepeatedCompositeFieldContainer[Deployment]
    next_page_token: str
    def __init__(self, deployments: _Optional[_Iterable[_Union[Deployment, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class SetTrafficRequest(_message.Message):
    __slots__ = ("skill_id", "traffic", "reason", "expected_revision", "request_id")
    SKILL_ID_FIELD_NUMBER: _ClassVar[int]
    TRAFFIC_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_REVISION_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    skill_id: str
    traffic: TrafficConfig
    reason: str
    expected_revision: int
    request_id: str
    def __init__(self, skill_id: _Optional[str] = ..., traffic: _Optional[_Union[TrafficConfig, _Mapping]] = ..., reason: _Optional[str] = ..., expected_revision: _Optional[int] = ..., request_id: _Optional[str] = ...) -> None: ...

class SetTrafficResponse(_message.Message):
    __slots__ = ("deployment",)
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    deployment: Deployment
    def __init__(self, deployment: _Optional[_Union[Deployment, _Mapping]] = ...) -> None: ...

class PromotePolicyRequest(_message.Message):
    __slots__ = ("skill_id", "policy_id", "reason", "expected_revision", "request_id")
    SKILL_ID_FIELD_NUMBER: _ClassVar[int]
    POLICY_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_REVISION_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    skill_id: str
    policy_id: str
    reason: str
    expected_revision: int
    request_id: str
    def __init__(self, skill_id: _Optional[str] = ..., policy_id: _Optional[str] = ..., reason: _Optional[str] = ..., expected_revision: _Optional[int] = ..., request_id: _Optional[str] = ...) -> None: ...

class PromotePolicyResponse(_message.Message):
    __slots__ = ("deployment", "policy")
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    deployment: Deployment
    policy: Policy
    def __init__(self, deployment: _Optional[_Union[Deployment, _Mapping]] = ..., policy: _Optional[_Union[Policy, _Mapping]] = ...) -> None: ...

class RollbackDeploymentRequest(_message.Message):
    __slots__ = ("skill_id", "to_revision", "reason", "expected_revision", "request_id")
    SKILL_ID_FIELD_NUMBER: _ClassVar[int]
    TO_REVISION_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_REVISION_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    skill_id: str
    to_revision: int
    reason: str
    expected_revision: int
    request_id: str
    def __init__(self, skill_id: _Optional[str] = ..., to_revision: _Optional[int] = ..., reason: _Optional[str] = ..., expected_revision: _Optional[int] = ..., request_id: _Optional[str] = ...) -> None: ...

class RollbackDeploymentResponse(_message.Message):
    __slots__ = ("deployment",)
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    deployment: Deployment
    def __init__(self, deployment: _Optional[_Union[Deployment, _Mapping]] = ...) -> None: ...

class AuditEvent(_message.Message):
    __slots__ = ("audit_event_id", "sequence", "tenant_id", "event_time", "actor_api_key_id", "actor_tenant_id", "actor_display_name", "action", "resource_type", "resource_id", "before", "after", "reason", "request_id", "prev_hash", "hash", "erase_time")
    AUDIT_EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_TIME_FIELD_NUMBER: _ClassVar[int]
    ACTOR_API_KEY_ID_FIELD_NUMBER: _ClassVar[int]
    ACTOR_TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    ACTOR_DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_TYPE_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_ID_FIELD_NUMBER: _ClassVar[int]
    BEFORE_FIELD_NUMBER: _ClassVar[int]
    AFTER_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    PREV_HASH_FIELD_NUMBER: _ClassVar[int]
    HASH_FIELD_NUMBER: _ClassVar[int]
    ERASE_TIME_FIELD_NUMBER: _ClassVar[int]
    audit_event_id: str
    sequence: int
    tenant_id: str
    event_time: _timestamp_pb2.Timestamp
    actor_api_key_id: str
    actor_tenant_id: str
    actor_display_name: str
    action: str
    resource_type: str
    resource_id: str
    before: _struct_pb2.Struct
    after: _struct_pb2.Struct
    reason: str
    request_id: str
    prev_hash: str
    hash: str
    erase_time: _timestamp_pb2.Timestamp
    def __init__(self, audit_event_id: _Optional[str] = ..., sequence: _Optional[int] = ..., tenant_id: _Optional[str] = ..., event_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., actor_api_key_id: _Optional[str] = ..., actor_tenant_id: _Optional[str] = ..., actor_display_name: _Optional[str] = ..., action: _Optional[str] = ..., resource_type: _Optional[str] = ..., resource_id: _Optional[str] = ..., before: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., after: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., reason: _Optional[str] = ..., request_id: _Optional[str] = ..., prev_hash: _Optional[str] = ..., hash: _Optional[str] = ..., erase_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class EraseAuditEventsRequest(_message.Message):
    __slots__ = ("audit_event_ids", "request_id")
    AUDIT_EVENT_IDS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    audit_event_ids: _containers.RepeatedScalarFieldContainer[str]
    request_id: str
    def __init__(self, audit_event_ids: _Optional[_Iterable[str]] = ..., request_id: _Optional[str] = ...) -> None: ...

class EraseAuditEventsResponse(_message.Message):
    __slots__ = ("audit_events",)
    AUDIT_EVENTS_FIELD_NUMBER: _ClassVar[int]
    audit_events: _containers.RepeatedCompositeFieldContainer[AuditEvent]
    def __init__(self, audit_events: _Optional[_Iterable[_Union[AuditEvent, _Mapping]]] = ...) -> None: ...

class ListAuditEventsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "resource_type", "resource_id", "action", "actor_api_key_id", "start_time", "end_time")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_TYPE_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_ID_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    ACTOR_API_KEY_ID_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    resource_type: str
    resource_id: str
    action: str
    actor_api_key_id: str
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., resource_type: _Optional[str] = ..., resource_id: _Optional[str] = ..., action: _Optional[str] = ..., actor_api_key_id: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListAuditEventsResponse(_message.Message):
    __slots__ = ("audit_events", "next_page_token")
    AUDIT_EVENTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    audit_events: _containers.RepeatedCompositeFieldContainer[AuditEvent]
    next_page_token: str
    def __init__(self, audit_events: _Optional[_Iterable[_Union[AuditEvent, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class VerifyAuditLogRequest(_message.Message):
    __slots__ = ("from_sequence", "to_sequence")
    FROM_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    TO_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    from_sequence: int
    to_sequence: int
    def __init__(self, from_sequence: _Optional[int] = ..., to_sequence: _Optional[int] = ...) -> None: ...

class VerifyAuditLogResponse(_message.Message):
    __slots__ = ("valid", "checked_count", "first_invalid_sequence", "head_hash", "detail")
    VALID_FIELD_NUMBER: _ClassVar[int]
    CHECKED_COUNT_FIELD_NUMBER: _ClassVar[int]
    FIRST_INVALID_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    HEAD_HASH_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    valid: bool
    checked_count: int
    first_invalid_sequence: int
    head_hash: str
    detail: str
    def __init__(self, valid: _Optional[bool] = ..., checked_count: _Optional[int] = ..., first_invalid_sequence: _Optional[int] = ..., head_hash: _Optional[str] = ..., detail: _Optional[str] = ...) -> None: ...
