"""Issue 12, item 10: registry text and its copies in the hash-chained audit log could
not be erased. Now an entry's free text can be erased and the chain still verifies."""

from __future__ import annotations

import uuid

import grpc
import pytest
from sqlalchemy import text

from rlaas.registry.v1 import registry_pb2 as reg
from rlaas.registry.v1 import registry_pb2_grpc
from services.db.engine import create_engine
from tests.conftest import RunningStack
from tests.helpers import md, new_tenant, rich_error

pytestmark = pytest.mark.integration
PERSONAL = "Ask Jane Doe, jane.doe@example.com"


async def test_erased_audit_text_is_gone_and_the_chain_still_verifies(
    stack: RunningStack, channel: grpc.aio.Channel
) -> None:
    tenant_id, admin = await new_tenant(channel, stack.admin_key, "audit-erase")
    r = registry_pb2_grpc.RegistryServiceStub(channel)
    await r.CreateSkill(
        reg.CreateSkillRequest(
            skill=reg.Skill(skill_id="support_email", description=PERSONAL),
            request_id=str(uuid.uuid4()),
        ),
        metadata=md(admin),
    )
    events = (
        await r.ListAuditEvents(
            reg.ListAuditEventsRequest(resource_type="Skill"), metadata=md(admin)
        )
    ).audit_events
    [created] = events
    assert "Jane Doe" in str(created.after)

    request = reg.EraseAuditEventsRequest(
        audit_event_ids=[created.audit_event_id], request_id=str(uuid.uuid4())
    )
    [erased] = (await r.EraseAuditEvents(request, metadata=md(admin))).audit_events
    assert erased.HasField("erase_time") and not erased.reason
    assert not erased.HasField("after") or not erased.after.fields
    assert (erased.hash, erased.sequence, erased.action) == (
        created.hash,
        created.sequence,
        created.action,
    )
    # A retry returns the same and records nothing more.
    again = (await r.EraseAuditEvents(request, metadata=md(admin))).audit_events
    assert list(again) == [erased]
    log = (await r.ListAuditEvents(reg.ListAuditEventsRequest(), metadata=md(admin))).audit_events
    erasures = [e for e in log if e.action.endswith("/EraseAuditEvents")]
    assert len(erasures) == 1 and erasures[0].resource_id == created.audit_event_id

    verdict = await r.VerifyAuditLog(reg.VerifyAuditLogRequest(), metadata=md(admin))
    assert verdict.valid and verdict.checked_count == len(log)

    # Nothing of the text is left at rest in the audit log.
    engine = create_engine(stack.database_url, pool_size=1)
    try:
        async with engine.connect() as conn:
            leftover = await conn.scalar(
                text(
                    "SELECT count(*) FROM audit_events WHERE tenant_id = :t AND "
                    "(before || after || reason || actor_display_name) LIKE '%Jane%'"
                ),
                {"t": tenant_id},
            )
            assert leftover == 0
            # Writing text back into an erased entry breaks verification.
            await conn.execute(
                text("UPDATE audit_events SET reason = 'restored' WHERE audit_event_id = :e"),
                {"e": created.audit_event_id},
            )
            await conn.commit()
    finally:
        await engine.dispose()
    verdict = await r.VerifyAuditLog(reg.VerifyAuditLogRequest(), metadata=md(admin))
    assert not verdict.valid and verdict.first_invalid_sequence == created.sequence


async def test_erasure_is_refused_for_other_tenants_and_bad_input(
    stack: RunningStack, channel: grpc.aio.Channel
) -> None:
    _, owner = await new_tenant(channel, stack.admin_key, "audit-erase-owner")
    _, other = await new_tenant(channel, stack.admin_key, "audit-erase-other")
    r = registry_pb2_grpc.RegistryServiceStub(channel)
    await r.CreateSkill(
        reg.CreateSkillRequest(
            skill=reg.Skill(skill_id="support_email"), request_id=str(uuid.uuid4())
        ),
        metadata=md(owner),
    )
    [event, *_] = (
        await r.ListAuditEvents(reg.ListAuditEventsRequest(), metadata=md(owner))
    ).audit_events
    cases = [
        (other, [event.audit_event_id], grpc.StatusCode.NOT_FOUND),
        (owner, [], grpc.StatusCode.INVALID_ARGUMENT),
        (owner, ["ae-x"] * 1 + [f"ae-{i}" for i in range(1001)], grpc.StatusCode.INVALID_ARGUMENT),
    ]
    for key, ids, code in cases:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await r.EraseAuditEvents(
                reg.EraseAuditEventsRequest(audit_event_ids=ids, request_id=str(uuid.uuid4())),
                metadata=md(key),
            )
        assert rich_error(info.value).code == code
    # The owner's entry is untouched.
    again = (await r.ListAuditEvents(reg.ListAuditEventsRequest(), metadata=md(owner))).audit_events
    assert not any(e.HasField("erase_time") for e in again)


async def test_a_skills_text_is_erased_everywhere_and_serving_is_untouched(
    stack: RunningStack, channel: grpc.aio.Channel
) -> None:
    """The live registry text too: one EraseSkillText call blanks the skill's names,
    descriptions, labels and reasons, its policies' and its audit entries', and leaves
    what is served (ids, prompts, traffic) and the chain intact."""
    from tests.integration.test_registry import create_policy, promote, set_traffic

    tenant_id, admin = await new_tenant(channel, stack.admin_key, "skill-erase")
    r = registry_pb2_grpc.RegistryServiceStub(channel)
    await r.CreateSkill(
        reg.CreateSkillRequest(
            skill=reg.Skill(
                skill_id="erase_me", display_name=PERSONAL, description=PERSONAL,
                labels={"owner": PERSONAL},
            ),
            request_id=str(uuid.uuid4()),
        ),
        metadata=md(admin),
    )  # fmt: skip
    v1 = await create_policy(channel, admin, "erase_me", description=PERSONAL,
                             labels={"owner": PERSONAL})  # fmt: skip
    v2 = await create_policy(channel, admin, "erase_me")
    await promote(channel, admin, "erase_me", v1.policy_id)
    await set_traffic(
        channel, admin, "erase_me",
        reg.TrafficConfig(canary=reg.CanaryTraffic(policy_id=v2.policy_id, percent=10)),
        reason=PERSONAL,
    )  # fmt: skip
    before = await r.GetDeployment(
        reg.GetDeploymentRequest(skill_id="erase_me"), metadata=md(admin)
    )

    request = reg.EraseSkillTextRequest(skill_id="erase_me", request_id=str(uuid.uuid4()))
    erased = await r.EraseSkillText(request, metadata=md(admin))
    assert (erased.erased_policy_count, erased.kept_audit_event_count) == (1, 0)
    assert erased.erased_revision_count >= 1 and erased.erased_audit_event_count >= 4
    assert not (erased.skill.display_name or erased.skill.description or erased.skill.labels)
    # A retry answers the same; a second erasure finds nothing left to erase.
    assert await r.EraseSkillText(request, metadata=md(admin)) == erased
    second = await r.EraseSkillText(
        reg.EraseSkillTextRequest(skill_id="erase_me", request_id=str(uuid.uuid4())),
        metadata=md(admin),
    )
    assert (second.erased_policy_count, second.erased_revision_count) == (0, 0)

    got = (
        await r.GetPolicy(reg.GetPolicyRequest(policy_id=v1.policy_id), metadata=md(admin))
    ).policy
    assert not got.description and not got.labels
    assert got.content_sha256 == v1.content_sha256  # the digest of what was created
    assert got.prompt_template == v1.prompt_template
    after = await r.GetDeployment(reg.GetDeploymentRequest(skill_id="erase_me"), metadata=md(admin))
    assert not after.deployment.reason
    assert after.deployment.traffic == before.deployment.traffic
    assert after.deployment.baseline_policy_id == v1.policy_id
    verdict = await r.VerifyAuditLog(reg.VerifyAuditLogRequest(), metadata=md(admin))
    assert verdict.valid

    # Nothing of it is left at rest: skills, policies, deployments, revisions, audit log.
    engine = create_engine(stack.database_url, pool_size=1)
    try:
        async with engine.connect() as conn:
            for query in (
                "SELECT count(*) FROM skills WHERE tenant_id = :t AND "
                "(display_name || description || labels::text) LIKE '%Jane%'",
                "SELECT count(*) FROM policies WHERE tenant_id = :t AND "
                "position('Jane'::bytea in payload) > 0",
                "SELECT count(*) FROM deployments WHERE tenant_id = :t AND reason LIKE '%Jane%'",
                "SELECT count(*) FROM deployment_revisions WHERE tenant_id = :t "
                "AND reason LIKE '%Jane%'",
                "SELECT count(*) FROM audit_events WHERE tenant_id = :t AND "
                "(before || after || reason || actor_display_name) LIKE '%Jane%'",
            ):
                assert await conn.scalar(text(query), {"t": tenant_id}) == 0, query
    finally:
        await engine.dispose()

    # Another tenant cannot erase (or probe) it.
    _, other = await new_tenant(channel, stack.admin_key, "skill-erase-b")
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await r.EraseSkillText(
            reg.EraseSkillTextRequest(skill_id="erase_me", request_id=str(uuid.uuid4())),
            metadata=md(other),
        )
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
