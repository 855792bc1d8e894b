"""SQLAlchemy 2 models. Every tenant-owned row carries ``tenant_id``; repositories
always filter on it, so one tenant never reads another's rows."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Identity,
    Index,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Deterministic constraint names, so Alembic migrations can drop/alter them by name.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Tenant(Base):
    __tablename__ = "tenants"
    # At most one operator tenant.
    __table_args__ = (
        Index("uq_tenants_operator", "operator", unique=True, postgresql_where=text("operator")),
    )

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(16), default="active")
    operator: Mapped[bool] = mapped_column(Boolean, default=False)
    create_time: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


class ApiKey(Base):
    __tablename__ = "api_keys"

    api_key_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(
        ForeignKey("tenants.tenant_id", ondelete="CASCADE"), index=True
    )
    display_name: Mapped[str] = mapped_column(String(200))
    # sha256 of the full secret: the secret itself is never stored.
    secret_hash: Mapped[bytes] = mapped_column()
    scopes: Mapped[list[str]] = mapped_column(ARRAY(String(16)))
    state: Mapped[str] = mapped_column(String(16), default="active")
    create_time: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    revoke_time: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    expire_time: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Set on first successful authentication.
    first_use_time: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The random input of a secret derived for an idempotent create, so a retry can hand
    # the same secret back; erased after the replay window (services.tenancy.service).
    secret_salt: Mapped[str | None] = mapped_column(String(64))


class IdempotencyRecord(Base):
    """One row per (tenant, method, request_id): the ``request_id`` contract of every
    mutation. The unique key makes concurrent duplicates safe without a read-then-write
    race; ``fingerprint`` detects a reused id with a different payload."""

    __tablename__ = "idempotency_records"
    __table_args__ = (UniqueConstraint("tenant_id", "method", "request_id"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    method: Mapped[str] = mapped_column(String(200))
    request_id: Mapped[str] = mapped_column(String(200))
    fingerprint: Mapped[str] = mapped_column(String(64))
    resource_id: Mapped[str] = mapped_column(String(200))
    create_time: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


Index("ix_api_keys_tenant_state", ApiKey.tenant_id, ApiKey.state)


class TelemetryEvent(Base):
    """Every telemetry event (interaction, output, feedback, task result) of every tenant.

    One table because the four kinds share the contract's idempotency rule (a
    ``request_id`` is unique per tenant across kinds) and travel mixed in one stream:
    a batch is one INSERT ... ON CONFLICT DO NOTHING. There is deliberately no
    foreign key to the interaction: feedback may arrive first and is joined later by
    ``interaction_id``. ``payload`` is the scrubbed protobuf of the event (the contract
    is its schema); the columns beside it exist for lookups and filters.
    """

    __tablename__ = "telemetry_events"
    __table_args__ = (
        UniqueConstraint("tenant_id", "request_id"),
        Index("ix_telemetry_events_tenant_interaction", "tenant_id", "interaction_id"),
        Index(
            "ix_telemetry_events_interactions_by_time",
            "tenant_id",
            "create_time",
            postgresql_where=text("event_type = 1"),
        ),
        Index("ix_telemetry_events_tenant_type_time", "tenant_id", "event_type", "create_time"),
    )

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    event_type: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    event_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    interaction_id: Mapped[str] = mapped_column(String(64))
    request_id: Mapped[str] = mapped_column(String(200))
    # sha256 of the request as sent (before scrubbing): tells a replay from a reuse.
    fingerprint: Mapped[bytes] = mapped_column(LargeBinary)
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    pii_counts: Mapped[dict[str, int] | None] = mapped_column(JSONB)
    event_time: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    create_time: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    # Interaction-only filter columns (NULL for the other kinds).
    skill: Mapped[str | None] = mapped_column(String(100))
    user_id: Mapped[str | None] = mapped_column(String(200))
    thread_id: Mapped[str | None] = mapped_column(String(200))
    policy_id: Mapped[str | None] = mapped_column(String(200))
    source: Mapped[int | None] = mapped_column(SmallInteger)
    labels: Mapped[dict[str, str] | None] = mapped_column(JSONB)


class TelemetrySettingsRow(Base):
    """Per-tenant telemetry settings; a tenant without a row has the defaults."""

    __tablename__ = "telemetry_settings"

    tenant_id: Mapped[str] = mapped_column(
        ForeignKey("tenants.tenant_id", ondelete="CASCADE"), primary_key=True
    )
    pii_enabled: Mapped[bool] = mapped_column(Boolean)
    pii_entities: Mapped[list[str]] = mapped_column(ARRAY(String(16)))
    reward_wait_window_s: Mapped[float | None] = mapped_column(Float)
    update_time: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


# ---- registry: skills, policies, deployments, audit log ----------------------------


class Skill(Base):
    """A skill of a tenant. ``latest_version`` is the per-skill policy counter: a new
    policy locks this row (``SELECT ... FOR UPDATE``) and takes ``latest_version + 1``,
    so concurrent creates serialise; the policies' primary key is the backstop."""

    __tablename__ = "skills"

    tenant_id: Mapped[str] = mapped_column(
        ForeignKey("tenants.tenant_id", ondelete="CASCADE"), primary_key=True
    )
    skill_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(String(2000))
    labels: Mapped[dict[str, str]] = mapped_column(JSONB)
    latest_version: Mapped[int] = mapped_column(default=0)
    create_time: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


class PolicyRow(Base):
    """One immutable policy version ``skill@vN``. ``payload`` is the serialized
    ``rlaas.registry.v1.Policy`` as created (its immutable content); only ``state`` and
    ``state_change_time`` ever change, and they live in columns."""

    __tablename__ = "policies"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "skill_id"],
            ["skills.tenant_id", "skills.skill_id"],
            ondelete="CASCADE",
        ),
        Index("ix_policies_tenant_create_time", "tenant_id", "create_time"),
    )

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    skill_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    version: Mapped[int] = mapped_column(primary_key=True)
    state: Mapped[str] = mapped_column(String(16))
    base_model: Mapped[str] = mapped_column(String(200))
    content_sha256: Mapped[str] = mapped_column(String(64))
    parent_policy_id: Mapped[str | None] = mapped_column(String(80))
    creator_api_key_id: Mapped[str] = mapped_column(String(32))
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    create_time: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    state_change_time: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class DeploymentRow(Base):
    """The current deployment of a skill. ``traffic`` is a serialized
    ``rlaas.registry.v1.TrafficConfig``; every change bumps ``revision`` and writes the
    new state to ``deployment_revisions`` too (what RollbackDeployment restores)."""

    __tablename__ = "deployments"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "skill_id"],
            ["skills.tenant_id", "skills.skill_id"],
            ondelete="CASCADE",
        ),
    )

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    skill_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    baseline_policy_id: Mapped[str | None] = mapped_column(String(80))
    traffic: Mapped[bytes] = mapped_column(LargeBinary)
    stage: Mapped[int] = mapped_column(SmallInteger)
    revision: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(String(2000))
    rollout_id: Mapped[str | None] = mapped_column(String(200))
    create_time: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    update_time: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class DeploymentRevision(Base):
    """Every revision a deployment has had, in full."""

    __tablename__ = "deployment_revisions"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "skill_id"],
            ["skills.tenant_id", "skills.skill_id"],
            ondelete="CASCADE",
        ),
    )

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    skill_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    revision: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    baseline_policy_id: Mapped[str | None] = mapped_column(String(80))
    traffic: Mapped[bytes] = mapped_column(LargeBinary)
    stage: Mapped[int] = mapped_column(SmallInteger)
    reason: Mapped[str] = mapped_column(String(2000))
    rollout_id: Mapped[str | None] = mapped_column(String(200))
    create_time: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class AuditEventRow(Base):
    """One entry of a tenant's hash-chained audit log. ``before``/``after`` hold the
    canonical JSON text exactly as hashed (text, not JSONB: JSONB would renormalise
    numbers and keys, and the stored bytes must be the hashed bytes)."""

    __tablename__ = "audit_events"
    __table_args__ = (
        UniqueConstraint("audit_event_id"),
        Index("ix_audit_events_tenant_resource", "tenant_id", "resource_type", "resource_id"),
        Index("ix_audit_events_tenant_event_time", "tenant_id", "event_time"),
    )

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    sequence: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    audit_event_id: Mapped[str] = mapped_column(String(64))
    event_time: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    actor_api_key_id: Mapped[str] = mapped_column(String(32))
    actor_tenant_id: Mapped[str] = mapped_column(String(64))
    actor_display_name: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(200))
    resource_type: Mapped[str] = mapped_column(String(64))
    resource_id: Mapped[str] = mapped_column(String(200))
    before: Mapped[str] = mapped_column(Text)
    after: Mapped[str] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(Text)
    request_id: Mapped[str] = mapped_column(String(200))
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    # 1: ``hash`` covers the free text itself; 2: it covers ``payload_sha256``, a salted
    # digest of the free text (actor name, before, after, reason), which can be erased.
    hash_version: Mapped[int] = mapped_column(SmallInteger, server_default="1")
    payload_sha256: Mapped[str | None] = mapped_column(String(64))
    payload_salt: Mapped[str | None] = mapped_column(String(32))
    erase_time: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class AuditHead(Base):
    """The last entry of each tenant's audit log. Appends lock this row, which
    serialises them per tenant; it also lets VerifyAuditLog notice a deleted tail."""

    __tablename__ = "audit_heads"

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    sequence: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))


class BanditArm(Base):
    """Beta posterior of one bandit arm, shared by every server process. Updated by
    atomic increments (INSERT ... ON CONFLICT DO UPDATE), so concurrent rewards from
    several processes never overwrite each other."""

    __tablename__ = "bandit_arms"

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    skill_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    policy_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    alpha: Mapped[float] = mapped_column(Float, default=0.0)  # summed rewards
    beta: Mapped[float] = mapped_column(Float, default=0.0)  # summed (1 - reward)
    observations: Mapped[int] = mapped_column(BigInteger, default=0)
    update_time: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


# ---- training: preference datasets -------------------------------------------------


class PreferenceDatasetRow(Base):
    """One preference-dataset version of a skill (TrainingService's
    ``PreferenceDataset``), built by CreatePreferenceDataset or by a learning loop.

    The pairs themselves live in the object store (``storage_key``, content-addressed
    by ``content_sha256``); this row is the catalogue entry: who built it, from which
    window and config, with what counts. ``version`` is sequential per (tenant, skill);
    a new row takes ``max + 1`` under a transaction-scoped advisory lock, and the unique
    key is the backstop. ``build_config`` is the effective ``DatasetBuildConfig`` as
    proto JSON; ``report`` the builder's ``BuildReport``; ``error`` (FAILED only) the
    domain error's code, message, reason and metadata."""

    __tablename__ = "preference_datasets"
    __table_args__ = (
        UniqueConstraint("tenant_id", "skill_id", "version"),
        Index(
            "ix_preference_datasets_tenant_create_time", "tenant_id", "create_time", "dataset_id"
        ),
    )

    tenant_id: Mapped[str] = mapped_column(
        ForeignKey("tenants.tenant_id", ondelete="CASCADE"), primary_key=True
    )
    dataset_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    skill_id: Mapped[str] = mapped_column(String(100))
    version: Mapped[int] = mapped_column()
    display_name: Mapped[str] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(16))
    start_time: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    end_time: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    build_config: Mapped[dict[str, Any]] = mapped_column(JSONB)
    content_sha256: Mapped[str | None] = mapped_column(String(64))
    storage_key: Mapped[str | None] = mapped_column(Text)
    storage_uri: Mapped[str | None] = mapped_column(Text)
    pair_count: Mapped[int] = mapped_column(BigInteger, default=0)
    train_pair_count: Mapped[int] = mapped_column(BigInteger, default=0)
    eval_pair_count: Mapped[int] = mapped_column(BigInteger, default=0)
    reward_config_version: Mapped[str] = mapped_column(String(64))
    report: Mapped[dict[str, Any]] = mapped_column(JSONB)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    learning_loop_id: Mapped[str | None] = mapped_column(String(200))
    create_time: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    complete_time: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


# ---- retrieval: indexes, documents, chunks (vectors live in Milvus) ----------------


class RetrievalIndexRow(Base):
    """A tenant's retrieval index. ``content_version`` goes up by one in the transaction
    of every change to its documents, so caches key on (index, content_version); the
    counts are kept here (updated in the same transactions) so GetIndex is one row."""

    __tablename__ = "retrieval_indexes"

    tenant_id: Mapped[str] = mapped_column(
        ForeignKey("tenants.tenant_id", ondelete="CASCADE"), primary_key=True
    )
    index_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    description: Mapped[str] = mapped_column(String(2000))
    chunk_size: Mapped[int] = mapped_column()
    chunk_overlap: Mapped[int] = mapped_column()
    parent_chunk_size: Mapped[int] = mapped_column()
    embedding_model: Mapped[str] = mapped_column(String(200))
    dimension: Mapped[int] = mapped_column()
    document_count: Mapped[int] = mapped_column(BigInteger, default=0)
    chunk_count: Mapped[int] = mapped_column(BigInteger, default=0)
    content_version: Mapped[int] = mapped_column(BigInteger, default=0)
    create_time: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    update_time: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class RetrievalDocumentRow(Base):
    """A source document of an index, content-addressed by ``content_sha256`` (text,
    source, title, metadata, access tag): an upsert with the same hash is a no-op."""

    __tablename__ = "retrieval_documents"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "index_id"],
            ["retrieval_indexes.tenant_id", "retrieval_indexes.index_id"],
            ondelete="CASCADE",
        ),
    )

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    index_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    document_id: Mapped[str] = mapped_column(String(256), primary_key=True)
    text: Mapped[str] = mapped_column(Text)
    source_uri: Mapped[str] = mapped_column(Text)
    title: Mapped[str] = mapped_column(Text)
    doc_metadata: Mapped[dict[str, Any]] = mapped_column("metadata", JSONB)
    access_tag: Mapped[str] = mapped_column(String(256))
    content_sha256: Mapped[str] = mapped_column(String(64))
    chunk_count: Mapped[int] = mapped_column()
    create_time: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    update_time: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class RetrievalChunkRow(Base):
    """A chunk of a document (``kind`` ``chunk``: searched, its vector in Milvus under
    the same ``chunk_id``) or a parent chunk grouping consecutive chunks (``parent``:
    not embedded). Offsets index the document's text: ``text == doc.text[start:end]``.
    Ids are derived from (tenant, index, document, content hash, kind, position), so a
    retried upsert writes the same ids to Postgres and Milvus."""

    __tablename__ = "retrieval_chunks"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "index_id", "document_id"],
            [
                "retrieval_documents.tenant_id",
                "retrieval_documents.index_id",
                "retrieval_documents.document_id",
            ],
            ondelete="CASCADE",
        ),
        Index(
            "ix_retrieval_chunks_document",
            "tenant_id",
            "index_id",
            "document_id",
            "kind",
            "position",
        ),
    )

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    chunk_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    index_id: Mapped[str] = mapped_column(String(63))
    document_id: Mapped[str] = mapped_column(String(256))
    kind: Mapped[str] = mapped_column(String(8))
    parent_chunk_id: Mapped[str | None] = mapped_column(String(64))
    position: Mapped[int] = mapped_column()
    start_offset: Mapped[int] = mapped_column()
    end_offset: Mapped[int] = mapped_column()
    text: Mapped[str] = mapped_column(Text)
