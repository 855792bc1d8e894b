"""Skills, policies, deployments and the audit log: the domain core behind
RegistryService (and the reads the inference gateway's router needs). No gRPC here.

Every mutation is one transaction that (1) locks the row it changes, (2) claims its
``request_id``, (3) checks and writes, (4) appends an audit entry and, for
deployments, (5) sends ``pg_notify('rlaas_deployments', '<tenant>/<skill>/<revision>')``,
which Postgres delivers only if the transaction commits.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy import and_, or_, select, text, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rlaas.registry.v1 import registry_pb2 as pb
from services.db import idempotency
from services.db.models import (
    AuditEventRow,
    DeploymentRevision,
    DeploymentRow,
    PolicyRow,
    RetrievalIndexRow,
    Skill,
)
from services.errors import Aborted, AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from services.objects.store import ObjectStore
from services.paging import next_page_token, page_request
from services.registry import audit
from services.registry import converters as cv
from services.registry.artifacts import (
    AdapterUpload,
    StoredAdapter,
    owned_adapter_key,
    store_upload,
    verify_adapter,
)
from services.registry.audit import Actor, Verdict
from services.registry.diff import FieldChange, field_changes, prompt_diff
from services.registry.reader import RegistryCatalogReader
from services.registry.validation import (
    ACTIVE,
    CANDIDATE,
    RETIRED,
    PolicyInfo,
    check_traffic_policies,
    normalize_traffic,
    parse_policy_id,
    policy_content,
    policy_id_of,
    prune_traffic,
    require_reason,
    require_skill_id,
    stage_of,
    traffic_policy_ids,
    validate_policy,
    validate_skill,
)
from services.tenancy.principal import Principal, Scope

log = structlog.get_logger(__name__)

DEPLOYMENTS_CHANNEL = "rlaas_deployments"
RPC = "rlaas.registry.v1.RegistryService/"
MAX_ERASE_IDS = 1000

Caller = Principal | Actor
"""An API key (RPCs: scopes are checked) or a system component (rollouts, workers)."""


@dataclass(frozen=True, slots=True)
class PolicyDiff:
    changes: list[FieldChange]
    prompt_diff: str
    identical: bool


@dataclass(frozen=True, slots=True)
class AuditFilter:
    resource_type: str = ""
    resource_id: str = ""
    action: str = ""
    actor_api_key_id: str = ""
    start_time: datetime | None = None
    end_time: datetime | None = None


def _now() -> datetime:
    return datetime.now(UTC)


def _require(caller: Caller, scope: Scope) -> None:
    if isinstance(caller, Principal):
        caller.require(scope)


def _check_revision(expected: int, current: int) -> None:
    if expected < 0:
        raise InvalidArgument.field("expected_revision", "must not be negative")
    if expected and expected != current:
        raise Aborted(
            f"the deployment is at revision {current}, not the expected {expected}; "
            "read it again and retry",
            reason="REVISION_MISMATCH",
            metadata={"current_revision": str(current), "expected_revision": str(expected)},
        )


class RegistryCore:
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

    # ---- helpers ----------------------------------------------------------------

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

    @staticmethod
    async def _notify(session: AsyncSession, row: DeploymentRow) -> None:
        await session.execute(
            text("SELECT pg_notify(:channel, :payload)"),
            {
                "channel": DEPLOYMENTS_CHANNEL,
                "payload": f"{row.tenant_id}/{row.skill_id}/{row.revision}",
            },
        )

    # ---- skills -----------------------------------------------------------------

    async def create_skill(self, caller: Caller, skill: pb.Skill, *, request_id: str) -> pb.Skill:
        """Create a skill and its empty deployment (revision 1)."""
        _require(caller, Scope.ADMIN)
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
            now = _now()
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
            session.add(self._revision_of(deployment))
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
            await self._notify(session, deployment)
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
        _require(caller, Scope.TRAIN)
        require_skill_id(skill_id)
        async with self._sessions() as session:
            return await self._skill(session, caller.tenant_id, skill_id)

    async def list_skills(
        self, caller: Caller, *, page_size: int, page_token: str
    ) -> tuple[list[pb.Skill], str]:
        _require(caller, Scope.TRAIN)
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

    # ---- policies ---------------------------------------------------------------

    async def upload_adapter(
        self, caller: Caller, upload: AdapterUpload, *, sha256: str = ""
    ) -> StoredAdapter:
        """Store an uploaded adapter under the caller's tenant (content-addressed)."""
        _require(caller, Scope.ADMIN)
        return await store_upload(self._objects, caller.tenant_id, upload, sha256)

    async def create_policy(
        self, caller: Caller, policy: pb.Policy, *, request_id: str
    ) -> pb.Policy:
        """Create the next version ``skill@v{N+1}`` (CANDIDATE). The skill row is locked
        while the version is taken, so concurrent creates get distinct versions."""
        _require(caller, Scope.ADMIN)
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
            now = _now()
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
        _require(caller, Scope.TRAIN)
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
        _require(caller, Scope.TRAIN)
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
        _require(caller, Scope.TRAIN)
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

    # ---- deployments ------------------------------------------------------------

    @staticmethod
    def _revision_of(row: DeploymentRow) -> DeploymentRevision:
        return DeploymentRevision(
            tenant_id=row.tenant_id,
            skill_id=row.skill_id,
            revision=row.revision,
            baseline_policy_id=row.baseline_policy_id,
            traffic=row.traffic,
            stage=row.stage,
            reason=row.reason,
            rollout_id=row.rollout_id,
            create_time=row.update_time,
        )

    async def _locked_deployment(
        self, session: AsyncSession, tenant_id: str, skill_id: str
    ) -> DeploymentRow:
        row = await session.scalar(
            select(DeploymentRow)
            .where(DeploymentRow.tenant_id == tenant_id, DeploymentRow.skill_id == skill_id)
            .with_for_update()
        )
        if row is None:
            raise NotFound("skill", skill_id)
        return row

    async def _replayed(
        self, session: AsyncSession, current: DeploymentRow, resource_id: str
    ) -> pb.Deployment:
        """The deployment as the original request left it (``skill#revision``)."""
        revision = int(resource_id.rpartition("#")[2])
        snapshot = await session.get(
            DeploymentRevision, (current.tenant_id, current.skill_id, revision)
        )
        assert snapshot is not None
        return cv.deployment_to_proto(snapshot, create_time=current.create_time)

    async def _policy_infos(
        self, session: AsyncSession, tenant_id: str, policy_ids: Iterable[str]
    ) -> dict[str, PolicyInfo]:
        keys = {parse_policy_id(pid) for pid in policy_ids}
        if not keys:
            return {}
        rows = await session.execute(
            select(PolicyRow.skill_id, PolicyRow.version, PolicyRow.state).where(
                PolicyRow.tenant_id == tenant_id,
                tuple_(PolicyRow.skill_id, PolicyRow.version).in_(sorted(keys)),
            )
        )
        return {policy_id_of(s, v): PolicyInfo(s, state) for s, v, state in rows.all()}

    async def _set_policy_state(
        self,
        session: AsyncSession,
        tenant_id: str,
        policy_id: str,
        state: str,
        now: datetime,
        *,
        only_from: str | None = None,
    ) -> PolicyRow:
        """``only_from``: change the state only if the policy is in that one now."""
        skill_id, version = parse_policy_id(policy_id)
        row = await session.get(PolicyRow, (tenant_id, skill_id, version), with_for_update=True)
        if row is None:
            raise NotFound("policy", policy_id)
        if row.state != state and (only_from is None or row.state == only_from):
            row.state = state
            row.state_change_time = now
        return row

    async def _commit_change(
        self,
        session: AsyncSession,
        caller: Caller,
        row: DeploymentRow,
        *,
        baseline: str | None,
        traffic: pb.TrafficConfig,
        reason: str,
        rollout_id: str,
        action: str,
        request_id: str,
        now: datetime,
    ) -> pb.Deployment:
        """Apply a change to a locked deployment: bump the revision, keep the revision,
        audit it and notify the routers, all in the caller's transaction."""
        before = cv.to_dict(cv.deployment_to_proto(row))
        row.baseline_policy_id = baseline
        row.traffic = cv.traffic_to_bytes(traffic)
        row.stage = stage_of(baseline, traffic)
        row.revision += 1
        row.reason = reason
        row.rollout_id = rollout_id or None
        row.update_time = now
        session.add(self._revision_of(row))
        await session.flush()
        result = cv.deployment_to_proto(row)
        await self._audit(
            session,
            caller,
            action=action,
            resource_type="Deployment",
            resource_id=row.skill_id,
            before=before,
            after=cv.to_dict(result),
            reason=reason,
            request_id=request_id,
        )
        await self._notify(session, row)
        return result

    async def get_deployment(self, caller: Caller, skill_id: str) -> pb.Deployment:
        _require(caller, Scope.TRAIN)
        require_skill_id(skill_id)
        found = await self.deployment(caller.tenant_id, skill_id)
        if found is None:
            raise NotFound("skill", skill_id)
        return found

    async def list_deployments(
        self, caller: Caller, *, page_size: int, page_token: str
    ) -> tuple[list[pb.Deployment], str]:
        _require(caller, Scope.TRAIN)
        page = page_request(page_size, page_token)
        query = (
            select(DeploymentRow)
            .where(DeploymentRow.tenant_id == caller.tenant_id)
            .order_by(DeploymentRow.skill_id)
            .limit(page.size + 1)
        )
        if page.after:
            query = query.where(DeploymentRow.skill_id > str(page.after[0]))
        async with self._sessions() as session:
            rows = list((await session.scalars(query)).all())
        token = next_page_token(rows, page.size, lambda r: [r.skill_id])
        return [cv.deployment_to_proto(r) for r in rows[: page.size]], token

    async def set_traffic(
        self,
        caller: Caller,
        skill_id: str,
        traffic: pb.TrafficConfig,
        *,
        reason: str,
        expected_revision: int = 0,
        request_id: str,
        rollout_id: str = "",
        action: str = RPC + "SetTraffic",
    ) -> pb.Deployment:
        """Replace the non-baseline traffic of a skill's deployment."""
        _require(caller, Scope.DEPLOY)
        require_skill_id(skill_id)
        reason = require_reason(reason)
        idempotency.validate_request_id(request_id)
        normalized = normalize_traffic(traffic)
        tenant_id = caller.tenant_id
        async with self._sessions() as session, session.begin():
            row = await self._locked_deployment(session, tenant_id, skill_id)
            prior = await idempotency.claim(
                session,
                tenant_id=tenant_id,
                method="SetTraffic",
                request_id=request_id,
                payload={
                    "skill_id": skill_id,
                    "traffic": cv.to_dict(normalized),
                    "reason": reason,
                    "expected_revision": expected_revision,
                    "rollout_id": rollout_id,
                },
                resource_id=f"{skill_id}#{row.revision + 1}",
            )
            if prior is not None:
                return await self._replayed(session, row, prior)
            _check_revision(expected_revision, row.revision)
            infos = await self._policy_infos(session, tenant_id, traffic_policy_ids(normalized))
            check_traffic_policies(
                normalized, skill_id=skill_id, baseline=row.baseline_policy_id, policies=infos
            )
            result = await self._commit_change(
                session,
                caller,
                row,
                baseline=row.baseline_policy_id,
                traffic=normalized,
                reason=reason,
                rollout_id=rollout_id,
                action=action,
                request_id=request_id,
                now=_now(),
            )
        log.info("traffic_set", tenant_id=tenant_id, skill_id=skill_id, revision=result.revision)
        return result

    async def promote_policy(
        self,
        caller: Caller,
        skill_id: str,
        policy_id: str,
        *,
        reason: str,
        expected_revision: int = 0,
        request_id: str,
        rollout_id: str = "",
        action: str = RPC + "PromotePolicy",
    ) -> tuple[pb.Deployment, pb.Policy]:
        """Make a CANDIDATE the baseline: it becomes ACTIVE, the old baseline RETIRED,
        and both leave the shadow set and the traffic strategy."""
        _require(caller, Scope.DEPLOY)
        require_skill_id(skill_id)
        policy_key = parse_policy_id(policy_id)
        reason = require_reason(reason)
        idempotency.validate_request_id(request_id)
        tenant_id = caller.tenant_id
        async with self._sessions() as session, session.begin():
            row = await self._locked_deployment(session, tenant_id, skill_id)
            prior = await idempotency.claim(
                session,
                tenant_id=tenant_id,
                method="PromotePolicy",
                request_id=request_id,
                payload={
                    "skill_id": skill_id,
                    "policy_id": policy_id,
                    "reason": reason,
                    "expected_revision": expected_revision,
                    "rollout_id": rollout_id,
                },
                resource_id=f"{skill_id}#{row.revision + 1}",
            )
            if prior is not None:
                replayed = await self._replayed(session, row, prior)
                current = await session.get(PolicyRow, (tenant_id, *policy_key))
                assert current is not None
                return replayed, cv.policy_to_proto(current)
            _check_revision(expected_revision, row.revision)
            target = await session.get(PolicyRow, (tenant_id, *policy_key), with_for_update=True)
            if target is None:
                raise NotFound("policy", policy_id)
            if target.skill_id != skill_id:
                raise FailedPrecondition(
                    f"policy {policy_id} belongs to skill {target.skill_id!r}, not {skill_id!r}",
                    reason="POLICY_OF_OTHER_SKILL",
                )
            if target.state != CANDIDATE:
                raise FailedPrecondition(
                    f"policy {policy_id} is {target.state.upper()}; only a CANDIDATE can be "
                    "promoted (use RollbackDeployment to return to an earlier baseline)",
                    reason="POLICY_NOT_CANDIDATE",
                )
            now = _now()
            old = row.baseline_policy_id
            if old:
                await self._set_policy_state(session, tenant_id, old, RETIRED, now)
            target.state, target.state_change_time = ACTIVE, now
            traffic = prune_traffic(
                cv.traffic_from_bytes(row.traffic), {policy_id, *([old] if old else [])}
            )
            result = await self._commit_change(
                session,
                caller,
                row,
                baseline=policy_id,
                traffic=traffic,
                reason=reason,
                rollout_id=rollout_id,
                action=action,
                request_id=request_id,
                now=now,
            )
            promoted = cv.policy_to_proto(target)
        log.info("policy_promoted", tenant_id=tenant_id, policy_id=policy_id, replaced=old)
        return result, promoted

    async def rollback_deployment(
        self,
        caller: Caller,
        skill_id: str,
        *,
        to_revision: int = 0,
        reason: str,
        expected_revision: int = 0,
        request_id: str,
        rollout_id: str = "",
        action: str = RPC + "RollbackDeployment",
        retire: Sequence[str] = (),
    ) -> pb.Deployment:
        """Restore an earlier revision (default: the one before the current): its
        baseline becomes ACTIVE again, the replaced baseline RETIRED, and its traffic
        comes back minus any policy that is RETIRED now (retired policies get no
        traffic, so a rollback never re-sends traffic to the candidate it undoes).
        ``retire``: CANDIDATE policies retired in the same transaction (a rolled-back
        rollout's candidate)."""
        _require(caller, Scope.DEPLOY)
        require_skill_id(skill_id)
        reason = require_reason(reason)
        idempotency.validate_request_id(request_id)
        if to_revision < 0:
            raise InvalidArgument.field("to_revision", "must not be negative (0: the previous)")
        tenant_id = caller.tenant_id
        async with self._sessions() as session, session.begin():
            row = await self._locked_deployment(session, tenant_id, skill_id)
            prior = await idempotency.claim(
                session,
                tenant_id=tenant_id,
                method="RollbackDeployment",
                request_id=request_id,
                payload={
                    "skill_id": skill_id,
                    "to_revision": to_revision,
                    "reason": reason,
                    "expected_revision": expected_revision,
                    "rollout_id": rollout_id,
                    # Only when given, so requests recorded before it replay alike.
                    **({"retire": sorted(retire)} if retire else {}),
                },
                resource_id=f"{skill_id}#{row.revision + 1}",
            )
            if prior is not None:
                return await self._replayed(session, row, prior)
            _check_revision(expected_revision, row.revision)
            if row.revision <= 1:
                raise FailedPrecondition(
                    f"deployment of {skill_id!r} has no earlier revision",
                    reason="NO_EARLIER_REVISION",
                )
            if to_revision >= row.revision:
                raise InvalidArgument.field(
                    "to_revision",
                    f"must be older than the current revision {row.revision}",
                )
            target = to_revision or row.revision - 1
            snapshot = await session.get(DeploymentRevision, (tenant_id, skill_id, target))
            if snapshot is None:
                raise NotFound("deployment revision", f"{skill_id}#{target}")
            if not snapshot.baseline_policy_id:
                raise FailedPrecondition(
                    f"revision {target} of {skill_id!r} has no baseline; roll back to a "
                    "revision that had one",
                    reason="REVISION_HAS_NO_BASELINE",
                )
            now = _now()
            old, restored = row.baseline_policy_id, snapshot.baseline_policy_id
            if old and old != restored:
                await self._set_policy_state(session, tenant_id, old, RETIRED, now)
            await self._set_policy_state(session, tenant_id, restored, ACTIVE, now)
            for policy_id in retire:
                if policy_id != restored:
                    retired = await self._set_policy_state(
                        session, tenant_id, policy_id, RETIRED, now, only_from=CANDIDATE
                    )
                    log.info(
                        "policy_retired",
                        tenant_id=tenant_id,
                        policy_id=policy_id,
                        state=retired.state,
                    )
            traffic = cv.traffic_from_bytes(snapshot.traffic)
            infos = await self._policy_infos(session, tenant_id, traffic_policy_ids(traffic))
            gone = {
                pid
                for pid in traffic_policy_ids(traffic)
                if pid not in infos or infos[pid].state == RETIRED
            }
            result = await self._commit_change(
                session,
                caller,
                row,
                baseline=restored,
                traffic=prune_traffic(traffic, gone),
                reason=reason,
                rollout_id=rollout_id,
                action=action,
                request_id=request_id,
                now=now,
            )
        log.info(
            "deployment_rolled_back",
            tenant_id=tenant_id,
            skill_id=skill_id,
            to_revision=target,
            baseline=restored,
        )
        return result

    # ---- audit log --------------------------------------------------------------

    async def list_audit_events(
        self, caller: Caller, *, page_size: int, page_token: str, where: AuditFilter
    ) -> tuple[list[AuditEventRow], str]:
        """Newest first (by sequence)."""
        _require(caller, Scope.ADMIN)
        page = page_request(page_size, page_token)
        if where.start_time and where.end_time and where.start_time > where.end_time:
            raise InvalidArgument.field("start_time", "must not be after end_time")
        for name in ("resource_type", "resource_id", "action", "actor_api_key_id"):
            if "\x00" in getattr(where, name):  # PostgreSQL text cannot hold U+0000
                raise InvalidArgument.field(name, "must not contain NUL (U+0000) characters")
        query = (
            select(AuditEventRow)
            .where(AuditEventRow.tenant_id == caller.tenant_id)
            .order_by(AuditEventRow.sequence.desc())
            .limit(page.size + 1)
        )
        for column, value in (
            (AuditEventRow.resource_type, where.resource_type),
            (AuditEventRow.resource_id, where.resource_id),
            (AuditEventRow.action, where.action),
            (AuditEventRow.actor_api_key_id, where.actor_api_key_id),
        ):
            if value:
                query = query.where(column == value)
        if where.start_time:
            query = query.where(AuditEventRow.event_time >= where.start_time)
        if where.end_time:
            query = query.where(AuditEventRow.event_time < where.end_time)
        if page.after:
            try:
                after = int(page.after[0])
            except (IndexError, ValueError, TypeError) as exc:
                raise InvalidArgument.field(
                    "page_token", "is not a token this server issued"
                ) from exc
            query = query.where(AuditEventRow.sequence < after)
        async with self._sessions() as session:
            rows = list((await session.scalars(query)).all())
        return rows[: page.size], next_page_token(rows, page.size, lambda r: [r.sequence])

    async def erase_audit_events(
        self, caller: Caller, audit_event_ids: Sequence[str], *, request_id: str
    ) -> list[AuditEventRow]:
        """Erase the free text of some of the tenant's audit entries (see
        ``services.registry.audit``); the erasure is itself an entry, without text."""
        _require(caller, Scope.ADMIN)
        ids = list(dict.fromkeys(audit_event_ids))
        if not ids:
            raise InvalidArgument.field("audit_event_ids", "name at least one audit event")
        if len(ids) > MAX_ERASE_IDS:
            raise InvalidArgument.field("audit_event_ids", f"at most {MAX_ERASE_IDS} per call")
        idempotency.validate_request_id(request_id)
        async with self._sessions() as session, session.begin():
            rows = {
                r.audit_event_id: r
                for r in await session.scalars(
                    select(AuditEventRow)
                    .where(
                        AuditEventRow.tenant_id == caller.tenant_id,
                        AuditEventRow.audit_event_id.in_(ids),
                    )
                    .with_for_update()
                )
            }
            missing = next((i for i in ids if i not in rows), None)
            if missing is not None:
                raise NotFound("audit event", missing)
            old = next((i for i in ids if rows[i].hash_version != 2), None)
            if old is not None:
                raise FailedPrecondition(
                    f"audit event {old} was written before entries became erasable",
                    reason="AUDIT_EVENT_NOT_ERASABLE",
                )
            prior = await idempotency.claim(
                session, tenant_id=caller.tenant_id, method="EraseAuditEvents",
                request_id=request_id, payload={"audit_event_ids": sorted(ids)},
                resource_id=ids[0],
            )  # fmt: skip
            now = _now()
            erased = [i for i in ids if audit.erase_text(rows[i], now)]
            if prior is None and erased:
                await self._audit(
                    session, caller,
                    action=f"{RPC}EraseAuditEvents",
                    resource_type="AuditEvent", resource_id=erased[0],
                    before=None, after={"erased_audit_event_ids": erased},
                    request_id=request_id,
                )  # fmt: skip
            await session.flush()
            return [rows[i] for i in ids]

    async def verify_audit_log(
        self, caller: Caller, *, from_sequence: int = 0, to_sequence: int = 0
    ) -> Verdict:
        _require(caller, Scope.ADMIN)
        if from_sequence < 0:
            raise InvalidArgument.field("from_sequence", "must not be negative")
        if to_sequence < 0:
            raise InvalidArgument.field("to_sequence", "must not be negative")
        if to_sequence and from_sequence > to_sequence:
            raise InvalidArgument.field("from_sequence", "must not be greater than to_sequence")
        async with self._sessions() as session:
            # One snapshot for the whole walk, however long the log.
            await session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
            return await audit.verify(
                session, caller.tenant_id, from_sequence=from_sequence, to_sequence=to_sequence
            )
