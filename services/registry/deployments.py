"""Deployments: which policy is a skill's baseline and where its traffic goes. Every
change takes the next revision (kept, so a rollback can restore it), is audited, and
tells the gateway's routers through ``pg_notify`` in the same transaction."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

import structlog
from sqlalchemy import select, text, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from rlaas.registry.v1 import registry_pb2 as pb
from services.db import idempotency
from services.db.models import DeploymentRevision, DeploymentRow, PolicyRow
from services.errors import Aborted, FailedPrecondition, InvalidArgument, NotFound
from services.paging import next_page_token, page_request
from services.registry import converters as cv
from services.registry.base import RPC, Caller, RegistryBase, require_scope, utc_now
from services.registry.validation import (
    ACTIVE,
    CANDIDATE,
    RETIRED,
    PolicyInfo,
    check_traffic_policies,
    normalize_traffic,
    parse_policy_id,
    policy_id_of,
    prune_traffic,
    require_reason,
    require_skill_id,
    stage_of,
    traffic_policy_ids,
)
from services.tenancy.principal import Scope

log = structlog.get_logger(__name__)

DEPLOYMENTS_CHANNEL = "rlaas_deployments"


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


def revision_of(row: DeploymentRow) -> DeploymentRevision:
    """The kept snapshot of a deployment at its current revision."""
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


async def notify_routers(session: AsyncSession, row: DeploymentRow) -> None:
    """Tell the gateway's routers the deployment changed; Postgres delivers it only if
    the transaction commits."""
    await session.execute(
        text("SELECT pg_notify(:channel, :payload)"),
        {
            "channel": DEPLOYMENTS_CHANNEL,
            "payload": f"{row.tenant_id}/{row.skill_id}/{row.revision}",
        },
    )


class Deployments(RegistryBase):
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
        session.add(revision_of(row))
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
        await notify_routers(session, row)
        return result

    async def get_deployment(self, caller: Caller, skill_id: str) -> pb.Deployment:
        require_scope(caller, Scope.TRAIN)
        require_skill_id(skill_id)
        found = await self.deployment(caller.tenant_id, skill_id)
        if found is None:
            raise NotFound("skill", skill_id)
        return found

    async def list_deployments(
        self, caller: Caller, *, page_size: int, page_token: str
    ) -> tuple[list[pb.Deployment], str]:
        require_scope(caller, Scope.TRAIN)
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
        require_scope(caller, Scope.DEPLOY)
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
                now=utc_now(),
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
        require_scope(caller, Scope.DEPLOY)
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
            now = utc_now()
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
        require_scope(caller, Scope.DEPLOY)
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
            now = utc_now()
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
