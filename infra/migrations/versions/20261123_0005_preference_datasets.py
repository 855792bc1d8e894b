"""preference datasets: TrainingService's dataset versions (catalogue rows; the pairs
live in the object store)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "preference_datasets",
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("dataset_id", sa.String(length=64), nullable=False),
        sa.Column("skill_id", sa.String(length=100), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("start_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("end_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("build_config", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("content_sha256", sa.String(length=64), nullable=True),
        sa.Column("storage_key", sa.Text(), nullable=True),
        sa.Column("storage_uri", sa.Text(), nullable=True),
        sa.Column("pair_count", sa.BigInteger(), nullable=False),
        sa.Column("train_pair_count", sa.BigInteger(), nullable=False),
        sa.Column("eval_pair_count", sa.BigInteger(), nullable=False),
        sa.Column("reward_config_version", sa.String(length=64), nullable=False),
        sa.Column("report", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("error", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("learning_loop_id", sa.String(length=200), nullable=True),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("complete_time", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.tenant_id"],
            name=op.f("fk_preference_datasets_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "dataset_id", name=op.f("pk_preference_datasets")),
        sa.UniqueConstraint(
            "tenant_id",
            "skill_id",
            "version",
            name=op.f("uq_preference_datasets_tenant_id_skill_id_version"),
        ),
    )
    op.create_index(
        "ix_preference_datasets_tenant_create_time",
        "preference_datasets",
        ["tenant_id", "create_time", "dataset_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_preference_datasets_tenant_create_time", table_name="preference_datasets")
    op.drop_table("preference_datasets")
