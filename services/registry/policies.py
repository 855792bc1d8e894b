"""Policies: upload an adapter, create the next version of a skill's policy (a
CANDIDATE), read, list and diff them. Their state changes with deployments
(``services.registry.deployments``)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

import structlog
from sqlalchemy import and_, or_, select

from rlaas.registry.v1 import registry_pb2 as pb
from services.db import idempotency
from services.db.models import PolicyRow, RetrievalIndexRow, Skill
from services.errors import InvalidArgument, NotFound
from services.paging import next_page_token, page_request
from services.registry import converters as cv
from services.registry.artifacts import (
    AdapterUpload,
    StoredAdapter,
    owned_adapter_key,
    store_upload,
    verify_adapter,
)
from services.registry.base import RPC, Caller, RegistryBase, require_scope, utc_now
from services.registry.diff import FieldChange, field_changes, prompt_diff
from services.registry.validation import (
    CANDIDATE,
    parse_policy_id,
    policy_content,
    policy_id_of,
    require_skill_id,
    validate_policy,
)
from services.tenancy.principal import Scope

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class PolicyDiff:
    changes: list[FieldChange]
    prompt_diff: str
    identical: bool


class Policies(RegistryBase):
    async def upload_adapter(
        self, caller: Caller, upload: AdapterUpload, *, sha256: str = ""
    ) -> StoredAdapter:
        """Store an uploaded adapter under the caller's tenant (content-addressed)."""
        require_scope(caller, Scope.ADMIN)
        return await store_upload(self._objects, caller.tenant_id, upload, sha256)

    async def create_policy(
        self, caller: Caller, policy: pb.Policy, *, request_id: str
    ) -> pb.Policy:
        """Create the next version ``skill@v{N+1}`` (CANDIDATE). The skill row is locked
        while the version is taken, so concurrent creates get distinct versions."""
        require_scope(caller, Scope.ADMIN)
        validate_policy(policy)
        if policy.adapter.artifact_uri:
            # Before anything is read: only the tenant's own artifacts may be named.
            owned_adapter_key(self._objects, caller.tenant_id, policy.adapter.artifact_uri)
        idempotency.validate_request_id(request_id)
        content = policy_content(policy)
        payload = content.SerializeToString(deterministic=True)
        content_sha256 = hashlib.sha256(payload).hexdigest()
        tenant_id, skill_id = caller.tenant_id, content.skill_id
        async with self._sessions() as session, session.begin():
            skill = await session.scalar(
                select(Skill)
                .where(Skill.tenant_id == tenant_id, Skill.skill_id == skill_id)
                .with_for_update()
            )
            if skill is None:
                raise NotFound("skill", skill_id)
            if content.parent_policy_id:
                parent = parse_policy_id(content.parent_policy_id, "policy.parent_policy_id")
                if await session.get(PolicyRow, (tenant_id, *parent)) is None:
                    raise NotFound("policy", content.parent_policy_id)
            version = skill.latest_version + 1
            policy_id = policy_id_of(skill_id, version)
            prior = await idempotency.claim(
                session,
                tenant_id=tenant_id,
                method="CreatePolicy",
                request_id=request_id,
                payload={"content_sha256": content_sha256},
                resource_id=policy_id,
            )
            if prior is not None:
                prior_skill, prior_version = parse_policy_id(prior)
                row = await session.get(PolicyRow, (tenant_id, prior_skill, prior_version))
                assert row is not None
                return cv.policy_to_proto(row)
            if content.retrieval.enabled and (
                await session.get(RetrievalIndexRow, (tenant_id, content.retrieval.collection))
                is None
            ):
                raise InvalidArgument.field(
                    "policy.retrieval.collection",
                    f"index {content.retrieval.collection!r} does not exist in this tenant "
                    "(RetrievalService.CreateIndex creates it)",
                    reason="RETRIEVAL_INDEX_NOT_FOUND",
                )
            if content.HasField("adapter"):
                # Checked only for a new policy (a replay returns what was accepted),
                # under the skill's lock: a few ms of hashing for a LoRA adapter.
                await verify_adapter(
                    self._objects, tenant_id, content.adapter.artifact_uri, content.adapter.sha256
                )
            skill.latest_version = version
            now = utc_now()
            row = PolicyRow(
                tenant_id=tenant_id,
                skill_id=skill_id,
                version=version,
                state=CANDIDATE,
                base_model=content.base_model,
                content_sha256=content_sha256,
                parent_policy_id=content.parent_policy_id or None,
                creator_api_key_id=caller.api_key_id,
                payload=payload,
                create_time=now,
                state_change_time=now,
            )
            session.add(row)
            await session.flush()
            result = cv.policy_to_proto(row)
            await self._audit(
                session,
                caller,
                action=RPC + "CreatePolicy",
                resource_type="Policy",
                resource_id=policy_id,
                before=None,
                after=cv.to_dict(result),
                request_id=request_id,
            )
        log.info("policy_created", tenant_id=tenant_id, policy_id=policy_id)
        return result

    async def get_policy(self, caller: Caller, policy_id: str) -> pb.Policy:
        require_scope(caller, Scope.TRAIN)
        return await self.policy(caller.tenant_id, policy_id)

    async def list_policies(
        self,
        caller: Caller,
        *,
        page_size: int,
        page_token: str,
        skill_id: str = "",
        state: str | None = None,
    ) -> tuple[list[pb.Policy], str]:
        """Newest first: by creation time, then skill, then version (descending)."""
        require_scope(caller, Scope.TRAIN)
        page = page_request(page_size, page_token)
        query = (
            select(PolicyRow)
            .where(PolicyRow.tenant_id == caller.tenant_id)
            .order_by(PolicyRow.create_time.desc(), PolicyRow.skill_id, PolicyRow.version.desc())
            .limit(page.size + 1)
        )
        if skill_id:
            require_skill_id(skill_id)
            query = query.where(PolicyRow.skill_id == skill_id)
        if state is not None:
            query = query.where(PolicyRow.state == state)
        if page.after:
            try:
                after_time = datetime.fromisoformat(str(page.after[0]))
                after_skill, after_version = str(page.after[1]), int(page.after[2])
            except (IndexError, ValueError, TypeError) as exc:
                raise InvalidArgument.field(
                    "page_token", "is not a token this server issued"
                ) from exc
            query = query.where(
                or_(
                    PolicyRow.create_time < after_time,
                    and_(PolicyRow.create_time == after_time, PolicyRow.skill_id > after_skill),
                    and_(
                        PolicyRow.create_time == after_time,
                        PolicyRow.skill_id == after_skill,
                        PolicyRow.version < after_version,
                    ),
                )
            )
        async with self._sessions() as session:
            if skill_id:
                exists = await session.get(Skill, (caller.tenant_id, skill_id))
                if exists is None:
                    raise NotFound("skill", skill_id)
            rows = list((await session.scalars(query)).all())
        token = next_page_token(
            rows, page.size, lambda r: [r.create_time.isoformat(), r.skill_id, r.version]
        )
        return [cv.policy_to_proto(r) for r in rows[: page.size]], token

    async def diff_policies(self, caller: Caller, base_id: str, target_id: str) -> PolicyDiff:
        require_scope(caller, Scope.TRAIN)
        base_key = parse_policy_id(base_id, "base_policy_id")
        target_key = parse_policy_id(target_id, "target_policy_id")
        async with self._sessions() as session:
            base_row = await session.get(PolicyRow, (caller.tenant_id, *base_key))
            target_row = await session.get(PolicyRow, (caller.tenant_id, *target_key))
        if base_row is None:
            raise NotFound("policy", base_id)
        if target_row is None:
            raise NotFound("policy", target_id)
        base, target = cv.policy_to_proto(base_row), cv.policy_to_proto(target_row)
        return PolicyDiff(
            changes=field_changes(base, target),
            prompt_diff=prompt_diff(base, target),
            identical=base.content_sha256 == target.content_sha256,
        )
