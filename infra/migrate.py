"""Run Alembic migrations programmatically (``rlaas migrate``, and on every start)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("file_template", "%%(year)d%%(month).2d%%(day).2d_%%(rev)s_%%(slug)s")
    cfg.attributes["url"] = url
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str) -> None:
    command.downgrade(alembic_config(url), revision)


def new_revision(url: str, message: str) -> None:
    """Autogenerate a migration from the models' difference to the database at head."""
    command.revision(alembic_config(url), message=message, autogenerate=True)


async def upgrade_async(url: str, revision: str = "head") -> None:
    # env.py drives its own event loop, so run it off the caller's loop.
    await asyncio.to_thread(upgrade, url, revision)
