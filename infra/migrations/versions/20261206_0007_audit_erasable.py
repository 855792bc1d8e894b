"""audit events: erasable free text (hash v2 over a salted digest of it)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Entries already written keep version 1 (their hash covers the text itself).
    op.add_column(
        "audit_events",
        sa.Column("hash_version", sa.SmallInteger(), server_default="1", nullable=False),
    )
    op.add_column("audit_events", sa.Column("payload_sha256", sa.String(64), nullable=True))
    op.add_column("audit_events", sa.Column("payload_salt", sa.String(32), nullable=True))
    op.add_column(
        "audit_events", sa.Column("erase_time", sa.DateTime(timezone=True), nullable=True)
    )


def downgrade() -> None:
    for column in ("erase_time", "payload_salt", "payload_sha256", "hash_version"):
        op.drop_column("audit_events", column)
