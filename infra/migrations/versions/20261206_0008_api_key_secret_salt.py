"""api keys: the random salt of a derived secret, kept for the replay window

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 09:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("api_keys", sa.Column("secret_salt", sa.String(64), nullable=True))


def downgrade() -> None:
    op.drop_column("api_keys", "secret_salt")
