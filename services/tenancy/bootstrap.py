"""Install the operator tenant and its first admin key (``rlaas up``)."""

from __future__ import annotations

from services.config import Settings
from services.db.engine import create_engine, create_session_factory
from services.tenancy.service import CreatedKey, TenancyService


async def bootstrap_operator(settings: Settings, database_url: str) -> CreatedKey | None:
    """The new admin key (secret included, to show once), or None if it already exists."""
    engine = create_engine(database_url, pool_size=1)
    try:
        tenancy = TenancyService(create_session_factory(engine), cache_ttl_s=0)
        preset = settings.bootstrap_admin_key
        _, created = await tenancy.bootstrap_operator(
            preset_token=preset.get_secret_value() if preset else None
        )
        return created
    finally:
        await engine.dispose()
