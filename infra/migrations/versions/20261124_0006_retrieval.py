"""retrieval: indexes, documents and chunks (metadata and lineage; vectors in Milvus)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24 12:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "retrieval_indexes",
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("index_id", sa.String(length=63), nullable=False),
        sa.Column("description", sa.String(length=2000), nullable=False),
        sa.Column("chunk_size", sa.Integer(), nullable=False),
        sa.Column("chunk_overlap", sa.Integer(), nullable=False),
        sa.Column("parent_chunk_size", sa.Integer(), nullable=False),
        sa.Column("embedding_model", sa.String(length=200), nullable=False),
        sa.Column("dimension", sa.Integer(), nullable=False),
        sa.Column("document_count", sa.BigInteger(), nullable=False),
        sa.Column("chunk_count", sa.BigInteger(), nullable=False),
        sa.Column("content_version", sa.BigInteger(), nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("update_time", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.tenant_id"],
            name=op.f("fk_retrieval_indexes_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "index_id", name=op.f("pk_retrieval_indexes")),
    )
    op.create_table(
        "retrieval_documents",
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("index_id", sa.String(length=63), nullable=False),
        sa.Column("document_id", sa.String(length=256), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("source_uri", sa.Text(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("metadata", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("access_tag", sa.String(length=256), nullable=False),
        sa.Column("content_sha256", sa.String(length=64), nullable=False),
        sa.Column("chunk_count", sa.Integer(), nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("update_time", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id", "index_id"],
            ["retrieval_indexes.tenant_id", "retrieval_indexes.index_id"],
            name=op.f("fk_retrieval_documents_tenant_id_retrieval_indexes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "tenant_id", "index_id", "document_id", name=op.f("pk_retrieval_documents")
        ),
    )
    op.create_table(
        "retrieval_chunks",
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("chunk_id", sa.String(length=64), nullable=False),
        sa.Column("index_id", sa.String(length=63), nullable=False),
        sa.Column("document_id", sa.String(length=256), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("parent_chunk_id", sa.String(length=64), nullable=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("start_offset", sa.Integer(), nullable=False),
        sa.Column("end_offset", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id", "index_id", "document_id"],
            [
                "retrieval_documents.tenant_id",
                "retrieval_documents.index_id",
                "retrieval_documents.document_id",
            ],
            name=op.f("fk_retrieval_chunks_tenant_id_retrieval_documents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "chunk_id", name=op.f("pk_retrieval_chunks")),
    )
    op.create_index(
        "ix_retrieval_chunks_document",
        "retrieval_chunks",
        ["tenant_id", "index_id", "document_id", "kind", "position"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_retrieval_chunks_document", table_name="retrieval_chunks")
    op.drop_table("retrieval_chunks")
    op.drop_table("retrieval_documents")
    op.drop_table("retrieval_indexes")
