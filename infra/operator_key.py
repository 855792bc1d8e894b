"""A short-lived operator admin key, minted through the domain core by whoever holds the
database (the operator, on the machine that runs the stack), for the programs that drive
the stack through its public API without a key of their own: the bring-up check, the
main job, the loop benchmark. Revoked by the cleanup it returns, so no secret is left
lying around."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from infra.stack import database_url
from services import server_secret
from services.config import Settings
from services.db.engine import create_engine, create_session_factory
from services.tenancy.principal import Principal, Scope
from services.tenancy.service import TenancyService


async def temporary_operator_key(
    settings: Settings, minutes: float = 15, purpose: str = "smoke job"
) -> tuple[str, Callable[[], Awaitable[None]]]:
    engine = create_engine(database_url(settings), pool_size=1)
    tenancy = TenancyService(
        create_session_factory(engine), cache_ttl_s=0, server_secret=server_secret.resolve(settings)
    )
    operator = Principal("operator", "local-operator", frozenset({Scope.ADMIN}), operator=True)
    created = await tenancy.create_api_key(
        operator,
        display_name=f"{purpose} (temporary)",
        scopes=[Scope.ADMIN],
        expire_time=datetime.now(UTC) + timedelta(minutes=minutes),
        request_id=str(uuid.uuid4()),
    )

    async def cleanup() -> None:
        await tenancy.revoke_api_key(
            operator, created.api_key.api_key_id, request_id=str(uuid.uuid4())
        )
        await engine.dispose()

    return created.secret, cleanup
