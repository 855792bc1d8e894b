"""Skills: create (with the skill's empty deployment, revision 1), read, list, and erase
the free text kept about one."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, cast

import structlog
from sqlalchemy import ColumnElement, CursorResult, and_, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from rlaas.registry.v1 import registry_pb2 as pb
from services.db import idempotency
from services.db.models import AuditEventRow, DeploymentRevision, DeploymentRow, PolicyRow, Skill
from services.errors import AlreadyExists, NotFound
from services.paging import next_page_token, page_request
from services.registry import audit
from services.registry import converters as cv
from services.registry.base import RPC, Caller, RegistryBase, require_scope, utc_now
from services.registry.deployments import notify_routers, revision_of
from services.registry.validation import require_skill_id, validate_skill
from services.tenancy.principal import Scope

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class SkillTextErased:
    """What EraseSkillText erased (counts of rows that still held text)."""

    skill: pb.Skill
    policies: int = 0
    revisions: int = 0
    audit_events: int = 0
    kept_audit_events: int = 0


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

    async def erase_skill_text(
        self, caller: Caller, skill_id: str, *, request_id: str
    ) -> SkillTextErased:
        """Blank the free text kept about a skill (its names, descriptions, labels and
        reasons, and its audit entries' text), in one transaction; what it does (ids,
        prompts, adapters, traffic) stays. A policy's payload loses its description and
        labels but keeps its ``content_sha256``: the digest of what was created."""
        require_scope(caller, Scope.ADMIN)
        require_skill_id(skill_id)
        idempotency.validate_request_id(request_id)
        tenant_id = caller.tenant_id
        action = RPC + "EraseSkillText"
        async with self._sessions() as session, session.begin():
            skill = await session.scalar(
                select(Skill)
                .where(Skill.tenant_id == tenant_id, Skill.skill_id == skill_id)
                .with_for_update()
            )
            if skill is None:
                raise NotFound("skill", skill_id)
            prior = await idempotency.claim(
                session, tenant_id=tenant_id, method="EraseSkillText", request_id=request_id,
                payload={"skill_id": skill_id}, resource_id=skill_id,
            )  # fmt: skip
            if prior is not None:
                return await self._erased_before(session, tenant_id, skill_id, request_id, action)
            skill.display_name, skill.description, skill.labels = "", "", {}
            policies = 0
            for row in await session.scalars(
                select(PolicyRow)
                .where(PolicyRow.tenant_id == tenant_id, PolicyRow.skill_id == skill_id)
                .with_for_update()
            ):
                policy = pb.Policy.FromString(row.payload)
                if policy.description or policy.labels:
                    policy.ClearField("description")
                    policy.ClearField("labels")
                    row.payload = policy.SerializeToString(deterministic=True)
                    policies += 1
            await session.execute(
                update(DeploymentRow)
                .where(DeploymentRow.tenant_id == tenant_id, DeploymentRow.skill_id == skill_id)
                .values(reason="")
            )
            erased_revisions = await session.execute(
                update(DeploymentRevision)
                .where(
                    DeploymentRevision.tenant_id == tenant_id,
                    DeploymentRevision.skill_id == skill_id,
                    DeploymentRevision.reason != "",
                )
                .values(reason="")
            )
            revisions = cast(CursorResult[Any], erased_revisions).rowcount
            now = utc_now()
            erased = kept = 0
            for entry in await session.scalars(
                select(AuditEventRow)
                .where(AuditEventRow.tenant_id == tenant_id, _about_skill(skill_id))
                .with_for_update()
            ):
                if entry.hash_version != 2:
                    kept += 1
                elif audit.erase_text(entry, now):
                    erased += 1
            counts = {"policies": policies, "revisions": revisions,
                      "audit_events": erased, "kept_audit_events": kept}  # fmt: skip
            await self._audit(
                session, caller, action=action, resource_type="Skill", resource_id=skill_id,
                before=None, after=counts, request_id=request_id,
            )  # fmt: skip
            await session.flush()
            result = await self._skill(session, tenant_id, skill_id)
        log.info("skill_text_erased", tenant_id=tenant_id, skill_id=skill_id, **counts)
        return SkillTextErased(result, **counts)

    async def _erased_before(
        self, session: AsyncSession, tenant_id: str, skill_id: str, request_id: str, action: str
    ) -> SkillTextErased:
        """A retry's answer: the counts its first call recorded in its audit entry."""
        recorded = await session.scalar(
            select(AuditEventRow.after).where(
                AuditEventRow.tenant_id == tenant_id,
                AuditEventRow.action == action,
                AuditEventRow.request_id == request_id,
            )
        )
        counts = json.loads(recorded) if recorded else None
        skill = await self._skill(session, tenant_id, skill_id)
        return (
            SkillTextErased(skill, **counts) if isinstance(counts, dict) else SkillTextErased(skill)
        )


def _about_skill(skill_id: str) -> ColumnElement[bool]:
    """Audit entries on the skill, its policies (``skill@vN``) and its deployment."""
    return or_(
        and_(
            AuditEventRow.resource_type.in_(("Skill", "Deployment")),
            AuditEventRow.resource_id == skill_id,
        ),
        and_(
            AuditEventRow.resource_type == "Policy",
            AuditEventRow.resource_id.startswith(f"{skill_id}@", autoescape=True),
        ),
    )
