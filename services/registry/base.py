"""What every registry job (skills, policies, deployments, the audit log) shares: the
sessions and object store, the gateway's reads, the caller's scope check, and the audit
entry each mutation appends in its own transaction."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rlaas.registry.v1 import registry_pb2 as pb
from services.objects.store import ObjectStore
from services.registry import audit
from services.registry.audit import Actor
from services.registry.reader import RegistryCatalogReader
from services.tenancy.principal import Principal, Scope

RPC = "rlaas.registry.v1.RegistryService/"

Caller = Principal | Actor
"""An API key (RPCs: scopes are checked) or a system component (rollouts, workers)."""


def utc_now() -> datetime:
    return datetime.now(UTC)


def require_scope(caller: Caller, scope: Scope) -> None:
    if isinstance(caller, Principal):
        caller.require(scope)


class RegistryBase:
    """The base of the jobs ``Skills``, ``Policies``, ``Deployments`` and ``AuditLog``
    (``RegistryCore`` is all four)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], objects: ObjectStore) -> None:
        self._sessions = sessions
        self._objects = objects
        self._reader = RegistryCatalogReader(sessions)

    # ---- reads for the inference gateway (see services.registry.reader) ------------

    async def policy(self, tenant_id: str, policy_id: str) -> pb.Policy:
        """One policy of a tenant (NOT_FOUND if absent, INVALID_ARGUMENT if malformed)."""
        return await self._reader.policy(tenant_id, policy_id)

    async def deployment(self, tenant_id: str, skill_id: str) -> pb.Deployment | None:
        """The current deployment of a skill, or None if the skill does not exist."""
        return await self._reader.deployment(tenant_id, skill_id)

    # ---- audit entries ----------------------------------------------------------

    async def _actor(self, session: AsyncSession, caller: Caller) -> Actor:
        if isinstance(caller, Actor):
            return caller
        name = await audit.actor_name(session, caller.api_key_id)
        return Actor(caller.tenant_id, caller.api_key_id, name)

    async def _audit(
        self,
        session: AsyncSession,
        caller: Caller,
        *,
        action: str,
        resource_type: str,
        resource_id: str,
        before: Any,
        after: Any,
        reason: str = "",
        request_id: str = "",
    ) -> None:
        await audit.append(
            session,
            tenant_id=caller.tenant_id,
            actor=await self._actor(session, caller),
            action=action,
            resource_type=resource_type,
            resource_id=resource_id,
            before=before,
            after=after,
            reason=reason,
            request_id=request_id,
        )
