"""Per-tenant telemetry settings (PII scrubbing, reward wait window), cached briefly
because every ingest batch needs them."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.db import idempotency
from services.db.models import TelemetrySettingsRow
from services.errors import InvalidArgument
from services.telemetry.pii import Entity, Scrubber, ScrubConfig

MAX_REWARD_WINDOW_S = 30 * 86_400


@dataclass(frozen=True)
class TenantTelemetrySettings:
    pii_enabled: bool
    pii_entities: frozenset[Entity]
    reward_wait_window_s: float
    update_time: datetime | None = None


class TelemetrySettingsStore:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        default_reward_window_s: float,
        cache_ttl_s: float,
    ) -> None:
        self._sessions = sessions
        self._default_window = default_reward_window_s
        self._ttl = cache_ttl_s
        self._cache: dict[str, tuple[TenantTelemetrySettings, float]] = {}
        self._scrubbers: dict[tuple[bool, frozenset[Entity]], Scrubber] = {}

    def defaults(self) -> TenantTelemetrySettings:
        return TenantTelemetrySettings(True, frozenset(Entity), self._default_window)

    async def get(self, tenant_id: str) -> TenantTelemetrySettings:
        hit = self._cache.get(tenant_id)
        if hit is not None and hit[1] > time.monotonic():
            return hit[0]
        async with self._sessions() as session:
            row = await session.get(TelemetrySettingsRow, tenant_id)
        value = self.defaults() if row is None else self._from_row(row)
        self._cache[tenant_id] = (value, time.monotonic() + self._ttl)
        return value

    def _from_row(self, row: TelemetrySettingsRow) -> TenantTelemetrySettings:
        return TenantTelemetrySettings(
            pii_enabled=row.pii_enabled,
            pii_entities=frozenset(Entity(e) for e in row.pii_entities) or frozenset(Entity),
            reward_wait_window_s=(
                self._default_window if row.reward_wait_window_s is None
                else row.reward_wait_window_s
            ),
            update_time=row.update_time,
        )  # fmt: skip

    def scrubber(self, settings: TenantTelemetrySettings) -> Scrubber | None:
        if not settings.pii_enabled:
            return None
        key = (settings.pii_enabled, settings.pii_entities)
        if key not in self._scrubbers:
            self._scrubbers[key] = Scrubber(ScrubConfig(True, settings.pii_entities))
        return self._scrubbers[key]

    async def update(
        self,
        tenant_id: str,
        *,
        pii_enabled: bool,
        pii_entities: frozenset[Entity],
        reward_wait_window_s: float | None,
        request_id: str,
    ) -> TenantTelemetrySettings:
        idempotency.validate_request_id(request_id)
        if (
            reward_wait_window_s is not None
            and not 0 <= reward_wait_window_s <= MAX_REWARD_WINDOW_S
        ):
            raise InvalidArgument.field(
                "settings.reward_wait_window", "must be between 0 and 30 days"
            )
        values = {
            "pii_enabled": pii_enabled,
            "pii_entities": sorted(e.value for e in pii_entities),
            "reward_wait_window_s": reward_wait_window_s,
        }
        async with self._sessions() as session, session.begin():
            replay = await idempotency.claim(
                session,
                tenant_id=tenant_id,
                method="UpdateTelemetrySettings",
                request_id=request_id,
                payload=values,
                resource_id=tenant_id,
            )
            # A replay changes nothing: it must not undo a later update.
            if replay is None:
                stmt = insert(TelemetrySettingsRow).values(tenant_id=tenant_id, **values)
                await session.execute(
                    stmt.on_conflict_do_update(
                        index_elements=["tenant_id"],
                        set_={**values, "update_time": stmt.excluded.update_time},
                    )
                )
            row = await session.scalar(
                select(TelemetrySettingsRow).where(TelemetrySettingsRow.tenant_id == tenant_id)
            )
        assert row is not None
        self._cache.pop(tenant_id, None)
        return self._from_row(row)
