"""Alembic environment (async template). The URL comes from ``config.attributes``
(set by ``infra.migrate``), not from an ini file, so a URL-encoded socket path is never
mangled by configparser interpolation."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection

from services.db.engine import create_engine
from services.db.models import Base

target_metadata = Base.metadata

# Any constant works; it only has to be the same for every process that migrates, so
# `rlaas serve` replicas starting together upgrade one at a time.
_MIGRATION_LOCK_ID = 7_245_001


def _run(connection: Connection) -> None:
    connection.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _MIGRATION_LOCK_ID})
    try:
        context.configure(connection=connection, target_metadata=target_metadata, compare_type=True)
        with context.begin_transaction():
            context.run_migrations()
    finally:
        connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _MIGRATION_LOCK_ID})


async def _run_async(url: str) -> None:
    engine = create_engine(url, pool_size=1)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
            await connection.commit()
    finally:
        await engine.dispose()


def run_migrations_online() -> None:
    url = context.config.attributes["url"]
    asyncio.run(_run_async(url))


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported; run `rlaas migrate`")
run_migrations_online()
