"""Deployments as the router sees them: cached for at most ``deployment_cache_ttl_s``,
and dropped from the cache the moment the registry announces a change over Postgres
LISTEN/NOTIFY (channel ``rlaas_deployments``, payload ``tenant/skill/revision``). The TTL
bounds staleness even if a notification is lost (say, while the listener reconnects)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import structlog

from rlaas.registry.v1 import registry_pb2 as reg

log = structlog.get_logger(__name__)
CHANNEL = "rlaas_deployments"

Loader = Callable[[str, str], Awaitable[reg.Deployment | None]]
PolicyLoader = Callable[[str, str], Awaitable[reg.Policy]]
ObservationLoader = Callable[[str, str], Awaitable[dict[str, tuple[float, float]]]]


class DeploymentCache:
    """Deployments, and the policies they serve: a policy's content is immutable, and
    its state only changes with a deployment change of its skill, which drops both."""

    def __init__(
        self,
        load: Loader,
        *,
        ttl_s: float,
        dsn: str | None = None,
        load_policy: PolicyLoader | None = None,
        load_observations: ObservationLoader | None = None,
    ) -> None:
        self._load_observations = load_observations
        # Bandit reward sums move with every rating: cached for the TTL only.
        self._observations: dict[tuple[str, str], tuple[dict[str, tuple[float, float]], float]] = {}
        self._load = load
        self._load_policy = load_policy
        self._ttl = ttl_s
        self._dsn = dsn
        self._entries: dict[tuple[str, str], tuple[reg.Deployment | None, float]] = {}
        # (tenant, skill) -> {policy_id: (policy, expiry)}
        self._policies: dict[tuple[str, str], dict[str, tuple[reg.Policy, float]]] = {}
        self._listener: Any = None
        self._started = False

    async def start(self) -> None:
        if self._started:
            return
        self._started = True
        if self._dsn is None:
            return
        import asyncpg

        try:
            self._listener = await asyncpg.connect(self._dsn)
            await self._listener.add_listener(CHANNEL, self._on_notify)
        except (OSError, asyncpg.PostgresError) as err:
            # Not fatal: the TTL alone still bounds staleness.
            log.warning("deployment_listener_unavailable", error=repr(err))
            self._listener = None

    def _on_notify(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        tenant_id, skill_id, _revision = payload.rsplit("/", 2)
        self.invalidate(tenant_id, skill_id)

    def invalidate(self, tenant_id: str, skill_id: str) -> None:
        self._entries.pop((tenant_id, skill_id), None)
        self._policies.pop((tenant_id, skill_id), None)

    def set_observation_loader(self, load: ObservationLoader) -> None:
        self._load_observations = load

    async def bandit_observations(
        self, tenant_id: str, skill_id: str
    ) -> dict[str, tuple[float, float]]:
        if self._load_observations is None:
            return {}
        key = (tenant_id, skill_id)
        hit = self._observations.get(key)
        now = time.monotonic()
        if hit is not None and hit[1] > now:
            return hit[0]
        value = await self._load_observations(tenant_id, skill_id)
        self._observations[key] = (value, now + self._ttl)
        return value

    async def policy(self, tenant_id: str, policy_id: str) -> reg.Policy:
        assert self._load_policy is not None
        skill_id = policy_id.rsplit("@", 1)[0]
        cached = self._policies.setdefault((tenant_id, skill_id), {})
        hit = cached.get(policy_id)
        now = time.monotonic()
        if hit is not None and hit[1] > now:
            return hit[0]
        value = await self._load_policy(tenant_id, policy_id)
        cached[policy_id] = (value, now + self._ttl)
        return value

    async def get(self, tenant_id: str, skill_id: str) -> reg.Deployment | None:
        if not self._started:
            await self.start()
        key = (tenant_id, skill_id)
        hit = self._entries.get(key)
        now = time.monotonic()
        if hit is not None and hit[1] > now:
            return hit[0]
        value = await self._load(tenant_id, skill_id)
        self._entries[key] = (value, now + self._ttl)
        return value

    async def close(self) -> None:
        if self._listener is not None:
            await self._listener.close()
            self._listener = None
