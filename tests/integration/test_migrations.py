"""Alembic migrations round-trip up/down/up on a real Postgres, and match the models."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import make_url

from infra import migrate
from services.db.engine import create_engine
from services.db.models import Base
from tests.conftest import RunningStack

pytestmark = pytest.mark.integration


async def _tables(url: str) -> set[str]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    finally:
        await conn.close()
    return {r["tablename"] for r in rows}


@pytest.fixture
async def fresh_database(stack: RunningStack) -> str:
    base = make_url(stack.database_url).set(drivername="postgresql")
    name = f"migrations_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(base.render_as_string(hide_password=False))
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return base.set(database=name).render_as_string(hide_password=False)


async def test_upgrade_downgrade_upgrade(fresh_database: str) -> None:
    await migrate.upgrade_async(fresh_database)
    assert {"tenants", "api_keys", "idempotency_records"} <= await _tables(fresh_database)
    await asyncio.to_thread(migrate.downgrade, fresh_database, "base")
    assert await _tables(fresh_database) == {"alembic_version"}
    await migrate.upgrade_async(fresh_database)
    assert {"tenants", "api_keys", "idempotency_records"} <= await _tables(fresh_database)


async def test_migrations_match_models(fresh_database: str) -> None:
    await migrate.upgrade_async(fresh_database)
    engine = create_engine(fresh_database, pool_size=1)
    try:
        async with engine.connect() as conn:
            diff = await conn.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync), Base.metadata)
            )
    finally:
        await engine.dispose()
    assert diff == [], f"models and migrations disagree: {diff}"
