"""The registry's read side for the inference gateway: a skill's current deployment and
its policies. Plain reads by primary key; the gateway caches deployments and refreshes
them on ``pg_notify('rlaas_deployments', '<tenant>/<skill>/<revision>')``, which every
deployment change sends in its own transaction."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rlaas.registry.v1 import registry_pb2 as pb
from services.db.models import DeploymentRow, PolicyRow, Skill
from services.errors import NotFound
from services.registry import converters as cv
from services.registry.validation import parse_policy_id


class RegistryCatalogReader:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def policy(self, tenant_id: str, policy_id: str) -> pb.Policy:
        """One policy of a tenant: NOT_FOUND if absent, INVALID_ARGUMENT (field
        ``policy_id``) if not of the form ``skill@vN``."""
        skill_id, version = parse_policy_id(policy_id)
        async with self._sessions() as session:
            row = await session.get(PolicyRow, (tenant_id, skill_id, version))
        if row is None:
            raise NotFound("policy", policy_id)
        return cv.policy_to_proto(row)

    async def deployment(self, tenant_id: str, skill_id: str) -> pb.Deployment | None:
        """The current deployment of a skill, or None if the skill does not exist."""
        async with self._sessions() as session:
            row = await session.get(DeploymentRow, (tenant_id, skill_id))
        return None if row is None else cv.deployment_to_proto(row)

    async def skill_exists(self, tenant_id: str, skill_id: str) -> bool:
        async with self._sessions() as session:
            return await session.get(Skill, (tenant_id, skill_id)) is not None
