"""Skills: create (with the skill's empty deployment, revision 1), read and list."""

from __future__ import annotations

import structlog
from sqlalchemy import and_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from rlaas.registry.v1 import registry_pb2 as pb
from services.db import idempotency
from services.db.models import DeploymentRow, Skill
from services.errors import AlreadyExists, NotFound
from services.paging import next_page_token, page_request
from services.registry import converters as cv
from services.registry.base import RPC, Caller, RegistryBase, require_scope, utc_now
from services.registry.deployments import notify_routers, revision_of
from services.registry.validation import require_skill_id, validate_skill
from services.tenancy.principal import Scope

log = structlog.get_logger(__name__)


class Skills(RegistryBase):
    async def create_skill(self, caller: Caller, skill: pb.Skill, *, request_id: str) -> pb.Skill:
        """Create a skill and its empty deployment (revision 1)."""
        require_scope(caller, Scope.ADMIN)
        validate_skill(skill)
        idempotency.validate_request_id(request_id)
        tenant_id = caller.tenant_id
        fields = {
            "skill_id": skill.skill_id,
            "display_name": skill.display_name.strip(),
            "description": skill.description,
            "labels": dict(skill.labels),
        }
        async with self._sessions() as session, session.begin():
            prior = await idempotency.claim(
                session,
                tenant_id=tenant_id,
                method="CreateSkill",
                request_id=request_id,
                payload=fields,
                resource_id=skill.skill_id,
            )
            if prior is not None:
                return await self._skill(session, tenant_id, prior)
            now = utc_now()
            created = await session.scalar(
                insert(Skill)
                .values(tenant_id=tenant_id, latest_version=0, create_time=now, **fields)
                .on_conflict_do_nothing(index_elements=["tenant_id", "skill_id"])
                .returning(Skill.skill_id)
            )
            if created is None:
                raise AlreadyExists(
                    f"skill {skill.skill_id!r} already exists", reason="SKILL_EXISTS"
                )
            deployment = DeploymentRow(
                tenant_id=tenant_id,
                skill_id=skill.skill_id,
                baseline_policy_id=None,
                traffic=b"",
                stage=pb.Deployment.STAGE_EMPTY,
                revision=1,
                reason="created with the skill",
                rollout_id=None,
                create_time=now,
                update_time=now,
            )
            session.add(deployment)
            session.add(revision_of(deployment))
            await session.flush()
            result = await self._skill(session, tenant_id, skill.skill_id)
            await self._audit(
                session,
                caller,
                action=RPC + "CreateSkill",
                resource_type="Skill",
                resource_id=skill.skill_id,
                before=None,
                after=cv.to_dict(result),
                request_id=request_id,
            )
            await notify_routers(session, deployment)
        log.info("skill_created", tenant_id=tenant_id, skill_id=skill.skill_id)
        return result

    async def _skill(self, session: AsyncSession, tenant_id: str, skill_id: str) -> pb.Skill:
        row = (
            await session.execute(
                select(Skill, DeploymentRow.baseline_policy_id)
                .outerjoin(
                    DeploymentRow,
                    and_(
                        DeploymentRow.tenant_id == Skill.tenant_id,
                        DeploymentRow.skill_id == Skill.skill_id,
                    ),
                )
                .where(Skill.tenant_id == tenant_id, Skill.skill_id == skill_id)
            )
        ).first()
        if row is None:
            raise NotFound("skill", skill_id)
        return cv.skill_to_proto(row[0], row[1])

    async def get_skill(self, caller: Caller, skill_id: str) -> pb.Skill:
        require_scope(caller, Scope.TRAIN)
        require_skill_id(skill_id)
        async with self._sessions() as session:
            return await self._skill(session, caller.tenant_id, skill_id)

    async def list_skills(
        self, caller: Caller, *, page_size: int, page_token: str
    ) -> tuple[list[pb.Skill], str]:
        require_scope(caller, Scope.TRAIN)
        page = page_request(page_size, page_token)
        query = (
            select(Skill, DeploymentRow.baseline_policy_id)
            .outerjoin(
                DeploymentRow,
                and_(
                    DeploymentRow.tenant_id == Skill.tenant_id,
                    DeploymentRow.skill_id == Skill.skill_id,
                ),
            )
            .where(Skill.tenant_id == caller.tenant_id)
            .order_by(Skill.skill_id)
            .limit(page.size + 1)
        )
        if page.after:
            query = query.where(Skill.skill_id > str(page.after[0]))
        async with self._sessions() as session:
            rows = (await session.execute(query)).all()
        skills = [cv.skill_to_proto(r[0], r[1]) for r in rows]
        return skills[: page.size], next_page_token(skills, page.size, lambda s: [s.skill_id])
