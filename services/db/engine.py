"""One engine and one session factory per process."""

from __future__ import annotations

from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)


def to_async_url(url: str) -> str:
    """Turn any Postgres URL (``postgresql://`` from pgserver, psycopg, ...) into the
    asyncpg form SQLAlchemy's async engine needs."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres", "postgresql+psycopg2", "postgresql+psycopg"):
        parsed = parsed.set(drivername="postgresql+asyncpg")
    if parsed.password == "":
        parsed = parsed.set(password=None)
    return parsed.render_as_string(hide_password=False)


def create_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    # No pool_pre_ping: it costs a round trip per checkout (a quarter of ingest
    # throughput). A connection that died is invalidated when it fails, and the failure
    # reaches the client as UNAVAILABLE (see is_transient), which clients retry.
    # hide_parameters: SQLAlchemy's error text otherwise carries every bound value
    # ("[parameters: ...]"), i.e. request data (user text, emails), into logged
    # tracebacks; the statement alone is enough to debug.
    return create_async_engine(
        to_async_url(url), pool_size=pool_size, max_overflow=pool_size, hide_parameters=True
    )


def is_transient(exc: BaseException) -> bool:
    """A database error worth retrying: the connection or the server went away."""
    import asyncpg
    from sqlalchemy.exc import DBAPIError

    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    transient = (
        asyncpg.PostgresConnectionError,
        asyncpg.CannotConnectNowError,
        asyncpg.exceptions.AdminShutdownError,
        ConnectionError,
        TimeoutError,
    )
    return isinstance(exc, transient) or isinstance(exc.__cause__, transient)


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)
