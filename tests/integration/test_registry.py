"""RegistryService's skills, policies, deployments and audit log against the real server
and Postgres."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import uuid
from dataclasses import dataclass
from urllib.parse import quote

import asyncpg
import grpc
import pytest
from google.protobuf import json_format

from rlaas.options.v1 import options_pb2
from rlaas.registry.v1 import registry_pb2 as pb
from rlaas.registry.v1 import registry_pb2_grpc
from tests.conftest import RunningStack
from tests.helpers import md, new_tenant, rich_error, scoped_key

pytestmark = pytest.mark.integration

SHA = "0" * 64
RPC = "rlaas.registry.v1.RegistryService/"
PT = "policy.prompt_template"


@dataclass
class Tenant:
    tenant_id: str
    admin: str
    train: str


async def make_tenant(stack: RunningStack, channel: grpc.aio.Channel, name: str) -> Tenant:
    tenant_id, admin = await new_tenant(channel, stack.admin_key, name)
    return Tenant(tenant_id, admin, await scoped_key(channel, admin, options_pb2.SCOPE_TRAIN))


@pytest.fixture(scope="module")
async def tenant(stack: RunningStack, channel: grpc.aio.Channel) -> Tenant:
    return await make_tenant(stack, channel, "registry")


def stub(channel: grpc.aio.Channel) -> registry_pb2_grpc.RegistryServiceStub:
    return registry_pb2_grpc.RegistryServiceStub(channel)


def rid() -> str:
    return str(uuid.uuid4())


def unique_skill(prefix: str = "skill") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def policy(skill_id: str, **kw: object) -> pb.Policy:
    message = pb.Policy(
        skill_id=skill_id,
        base_model="SmolLM2-135M-Instruct",
        prompt_template=pb.PromptTemplate(
            system_prompt="You answer support emails.", user_template="Email: {{ input }}"
        ),
        generation_defaults=pb.GenerationConfig(temperature=0.2, max_tokens=128),
    )
    json_format.ParseDict(kw, message)
    return message


async def create_skill(channel: grpc.aio.Channel, key: str, skill_id: str) -> pb.Skill:
    made = await stub(channel).CreateSkill(
        pb.CreateSkillRequest(skill=pb.Skill(skill_id=skill_id), request_id=rid()),
        metadata=md(key),
    )
    return made.skill


async def create_policy(
    channel: grpc.aio.Channel, key: str, skill_id: str, **kw: object
) -> pb.Policy:
    made = await stub(channel).CreatePolicy(
        pb.CreatePolicyRequest(policy=policy(skill_id, **kw), request_id=rid()),
        metadata=md(key),
    )
    return made.policy


async def promote(
    channel: grpc.aio.Channel, key: str, skill_id: str, policy_id: str
) -> pb.PromotePolicyResponse:
    return await stub(channel).PromotePolicy(
        pb.PromotePolicyRequest(
            skill_id=skill_id, policy_id=policy_id, reason="ship it", request_id=rid()
        ),
        metadata=md(key),
    )


async def set_traffic(
    channel: grpc.aio.Channel, key: str, skill_id: str, traffic: pb.TrafficConfig, **kw: object
) -> pb.Deployment:
    response = await stub(channel).SetTraffic(
        pb.SetTrafficRequest(
            skill_id=skill_id,
            traffic=traffic,
            reason=str(kw.pop("reason", "experiment")),
            request_id=str(kw.pop("request_id", rid())),
            **kw,
        ),
        metadata=md(key),
    )
    return response.deployment


Failure = tuple[grpc.StatusCode, str | None, list[str]]


async def fails(call: object) -> Failure:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call  # type: ignore[misc]
    err = rich_error(info.value)
    return err.code, err.reason, [f for f, _ in err.field_violations]


def canary(policy_id: str, percent: float = 10) -> pb.TrafficConfig:
    return pb.TrafficConfig(canary=pb.CanaryTraffic(policy_id=policy_id, percent=percent))


async def db(stack: RunningStack, sql: str, *args: object) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(stack.database_url)
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()


# ---- skills ----------------------------------------------------------------------


async def test_skills_create_get_list_with_an_empty_deployment(
    channel: grpc.aio.Channel, tenant: Tenant
) -> None:
    skill_id = unique_skill("support")
    request = pb.CreateSkillRequest(
        skill=pb.Skill(
            skill_id=skill_id,
            display_name="Support",
            labels={"team": "cx"},
            tenant_id="t-someone-else",  # output-only: ignored
            latest_version=7,
        ),
        request_id=rid(),
    )
    made = (await stub(channel).CreateSkill(request, metadata=md(tenant.admin))).skill
    assert (made.skill_id, made.tenant_id, made.latest_version) == (skill_id, tenant.tenant_id, 0)
    assert made.labels == {"team": "cx"} and made.baseline_policy_id == ""
    # A retry replays; the same id under a new request_id is taken.
    again = await stub(channel).CreateSkill(request, metadata=md(tenant.admin))
    assert again.skill == made
    request.request_id = rid()
    code, reason, _ = await fails(stub(channel).CreateSkill(request, metadata=md(tenant.admin)))
    assert (code, reason) == (grpc.StatusCode.ALREADY_EXISTS, "SKILL_EXISTS")

    got = await stub(channel).GetSkill(
        pb.GetSkillRequest(skill_id=skill_id), metadata=md(tenant.train)
    )
    assert got.skill == made
    deployment = (
        await stub(channel).GetDeployment(
            pb.GetDeploymentRequest(skill_id=skill_id), metadata=md(tenant.train)
        )
    ).deployment
    assert (deployment.stage, deployment.revision) == (pb.Deployment.STAGE_EMPTY, 1)

    for bad in ("", "Has-Caps", "9starts_with_digit", "x" * 64):
        code, _, fields = await fails(
            stub(channel).CreateSkill(
                pb.CreateSkillRequest(skill=pb.Skill(skill_id=bad), request_id=rid()),
                metadata=md(tenant.admin),
            )
        )
        assert (code, fields) == (grpc.StatusCode.INVALID_ARGUMENT, ["skill.skill_id"]), bad
    code, _, _ = await fails(
        stub(channel).GetSkill(
            pb.GetSkillRequest(skill_id="no_such_skill"), metadata=md(tenant.train)
        )
    )
    assert code == grpc.StatusCode.NOT_FOUND


async def test_list_skills_and_deployments_page_through_everything(
    stack: RunningStack, channel: grpc.aio.Channel
) -> None:
    t = await make_tenant(stack, channel, "paging")
    ids = sorted(unique_skill("page") for _ in range(5))
    for skill_id in ids:
        await create_skill(channel, t.admin, skill_id)
    seen: list[str] = []
    token = ""
    while True:
        page = await stub(channel).ListSkills(
            pb.ListSkillsRequest(page_size=2, page_token=token), metadata=md(t.train)
        )
        seen += [s.skill_id for s in page.skills]
        token = page.next_page_token
        if not token:
            break
    assert seen == ids
    deployments = await stub(channel).ListDeployments(
        pb.ListDeploymentsRequest(page_size=10), metadata=md(t.train)
    )
    assert [d.skill_id for d in deployments.deployments] == ids
    code, _, fields = await fails(
        stub(channel).ListSkills(pb.ListSkillsRequest(page_token="!!"), metadata=md(t.train))
    )
    assert (code, fields) == (grpc.StatusCode.INVALID_ARGUMENT, ["page_token"])


# ---- policies --------------------------------------------------------------------


async def test_versions_are_sequential_per_skill_even_when_created_concurrently(
    channel: grpc.aio.Channel, tenant: Tenant
) -> None:
    skill_id = unique_skill()
    other = unique_skill()
    await create_skill(channel, tenant.admin, skill_id)
    await create_skill(channel, tenant.admin, other)
    v1 = await create_policy(channel, tenant.admin, skill_id)
    v2 = await create_policy(channel, tenant.admin, skill_id)
    assert (v1.policy_id, v1.version, v2.policy_id) == (f"{skill_id}@v1", 1, f"{skill_id}@v2")
    assert v1.state == pb.Policy.STATE_CANDIDATE and v1.tenant_id == tenant.tenant_id
    assert len(v1.content_sha256) == 64 and v1.content_sha256 == v2.content_sha256
    assert (await create_policy(channel, tenant.admin, other)).policy_id == f"{other}@v1"

    made = await asyncio.gather(
        *(create_policy(channel, tenant.admin, skill_id, description=f"c{i}") for i in range(12))
    )
    assert sorted(p.version for p in made) == list(range(3, 15))
    skill = await stub(channel).GetSkill(
        pb.GetSkillRequest(skill_id=skill_id), metadata=md(tenant.train)
    )
    assert skill.skill.latest_version == 14

    listed = await stub(channel).ListPolicies(
        pb.ListPoliciesRequest(skill_id=skill_id, page_size=5), metadata=md(tenant.train)
    )
    versions = [p.version for p in listed.policies]
    assert len(versions) == 5 and listed.next_page_token
    rest = await stub(channel).ListPolicies(
        pb.ListPoliciesRequest(skill_id=skill_id, page_size=100, page_token=listed.next_page_token),
        metadata=md(tenant.train),
    )
    all_versions = versions + [p.version for p in rest.policies]
    assert sorted(all_versions) == list(range(1, 15)) and len(set(all_versions)) == 14
    assert [p.version for p in rest.policies][-2:] == [2, 1]  # newest first
    code, _, _ = await fails(
        stub(channel).ListPolicies(
            pb.ListPoliciesRequest(skill_id="nope_nope"), metadata=md(tenant.train)
        )
    )
    assert code == grpc.StatusCode.NOT_FOUND


async def test_policies_are_immutable_and_create_is_idempotent(
    channel: grpc.aio.Channel, tenant: Tenant
) -> None:
    method_names = {m.name for m in pb.DESCRIPTOR.services_by_name["RegistryService"].methods}
    assert not {n for n in method_names if n.startswith(("Update", "Delete"))}

    skill_id = unique_skill()
    await create_skill(channel, tenant.admin, skill_id)
    request = pb.CreatePolicyRequest(
        policy=policy(
            skill_id,
            policyId="whatever@v99",  # output-only fields are ignored on input
            version=99,
            state="STATE_ACTIVE",
            contentSha256="f" * 64,
        ),
        request_id=rid(),
    )
    first = (await stub(channel).CreatePolicy(request, metadata=md(tenant.admin))).policy
    assert (first.policy_id, first.state) == (f"{skill_id}@v1", pb.Policy.STATE_CANDIDATE)
    assert first.content_sha256 != "f" * 64
    replay = (await stub(channel).CreatePolicy(request, metadata=md(tenant.admin))).policy
    assert replay == first
    request.policy.prompt_template.system_prompt = "changed"
    code, reason, _ = await fails(stub(channel).CreatePolicy(request, metadata=md(tenant.admin)))
    assert (code, reason) == (grpc.StatusCode.ALREADY_EXISTS, "REQUEST_ID_REUSED")
    skill = await stub(channel).GetSkill(
        pb.GetSkillRequest(skill_id=skill_id), metadata=md(tenant.train)
    )
    assert skill.skill.latest_version == 1
    got = await stub(channel).GetPolicy(
        pb.GetPolicyRequest(policy_id=first.policy_id), metadata=md(tenant.train)
    )
    assert got.policy == first

    # A TRAIN key reads but cannot create.
    code, _, _ = await fails(
        stub(channel).CreatePolicy(
            pb.CreatePolicyRequest(policy=policy(skill_id), request_id=rid()),
            metadata=md(tenant.train),
        )
    )
    assert code == grpc.StatusCode.PERMISSION_DENIED


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"promptTemplate": {"userTemplate": "Email: {{ input "}}, f"{PT}.user_template"),
        ({"promptTemplate": {"userTemplate": "{{ nope }}"}}, f"{PT}.user_template"),
        ({"adapter": {"artifactUri": "file:///x"}}, "policy.adapter.sha256"),
        ({"adapter": {"sha256": SHA}}, "policy.adapter.artifact_uri"),
        ({"adapter": {"artifactUri": "file:///x", "sha256": "XYZ"}}, "policy.adapter.sha256"),
        ({"generationDefaults": {"temperature": -1}}, "policy.generation_defaults.temperature"),
        ({"generationDefaults": {"topP": 1.5}}, "policy.generation_defaults.top_p"),
        ({"generationDefaults": {"maxTokens": 0}}, "policy.generation_defaults.max_tokens"),
        ({"generationDefaults": {"maxTokens": 10**7}}, "policy.generation_defaults.max_tokens"),
        ({"guardrails": {"maxInputTokens": -5}}, "policy.guardrails.max_input_tokens"),
        ({"guardrails": {"blockedTerms": ["ok", ""]}}, "policy.guardrails.blocked_terms[1]"),
        ({"retrieval": {"enabled": True, "topK": 3}}, "policy.retrieval.collection"),
        ({"baseModel": ""}, "policy.base_model"),
        ({"parentPolicyId": "not an id"}, "policy.parent_policy_id"),
    ],
)  # fmt: skip
async def test_bad_policy_input_names_the_field(
    channel: grpc.aio.Channel, tenant: Tenant, overrides: dict[str, object], field: str
) -> None:
    code, reason, fields = await fails(
        stub(channel).CreatePolicy(
            pb.CreatePolicyRequest(policy=policy("anything", **overrides), request_id=rid()),
            metadata=md(tenant.admin),
        )
    )
    assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT")
    assert field in fields


async def test_policy_references_and_adapter_artifacts_are_checked(
    stack: RunningStack, channel: grpc.aio.Channel, tenant: Tenant
) -> None:
    skill_id = unique_skill()
    await create_skill(channel, tenant.admin, skill_id)

    async def create(**kw: object) -> Failure:
        return await fails(
            stub(channel).CreatePolicy(
                pb.CreatePolicyRequest(policy=policy(skill_id, **kw), request_id=rid()),
                metadata=md(tenant.admin),
            )
        )

    code, _, _ = await fails(
        stub(channel).CreatePolicy(
            pb.CreatePolicyRequest(policy=policy("no_such_skill"), request_id=rid()),
            metadata=md(tenant.admin),
        )
    )
    assert code == grpc.StatusCode.NOT_FOUND
    assert (await create(parentPolicyId=f"{skill_id}@v5"))[0] == grpc.StatusCode.NOT_FOUND

    # An adapter is an artifact of the tenant's own (tests/security covers theft and
    # oracles): a PEFT directory under adapters/<tenant>/, its SHA-256 that of
    # adapter_model.safetensors, the one the serving backends check.
    peft = stack.settings.objects_dir / "adapters" / tenant.tenant_id / skill_id / "run-1"
    peft.mkdir(parents=True)
    (peft / "adapter_model.safetensors").write_bytes(b"tensors")
    uri = "file://" + quote(str(peft.resolve()), safe="/=:@-_.~")
    tensors = hashlib.sha256(b"tensors").hexdigest()
    assert (await create(adapter={"artifactUri": uri, "sha256": tensors}))[:2] == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "ADAPTER_MISSING",  # no adapter_config.json
    )
    (peft / "adapter_config.json").write_text("{}")
    assert (await create(adapter={"artifactUri": uri, "sha256": SHA}))[:2] == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "ADAPTER_SHA256_MISMATCH",
    )
    assert (await create(adapter={"artifactUri": uri + "-gone", "sha256": tensors}))[:2] == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "ADAPTER_MISSING",
    )
    assert (await create(adapter={"artifactUri": "s3://elsewhere/x", "sha256": tensors}))[:2] == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "ADAPTER_NOT_OWNED",
    )
    made = await create_policy(
        channel, tenant.admin, skill_id, adapter={"artifactUri": uri, "sha256": tensors, "rank": 8}
    )
    assert made.adapter.sha256 == tensors and made.version == 1
    child = await create_policy(channel, tenant.admin, skill_id, parentPolicyId=made.policy_id)
    assert child.parent_policy_id == made.policy_id


async def test_diff_policies(channel: grpc.aio.Channel, tenant: Tenant) -> None:
    skill_id = unique_skill()
    await create_skill(channel, tenant.admin, skill_id)
    v1 = await create_policy(channel, tenant.admin, skill_id)
    v2 = await create_policy(
        channel,
        tenant.admin,
        skill_id,
        promptTemplate={
            "systemPrompt": "You answer support emails.\nAlways sign as Ana.",
            "userTemplate": "Email: {{ input }}",
        },
        generationDefaults={"temperature": 0.7, "maxTokens": 128},
        guardrails={"blockedTerms": ["refund guaranteed"]},
    )
    v3 = await create_policy(channel, tenant.admin, skill_id)
    diff = await stub(channel).DiffPolicies(
        pb.DiffPoliciesRequest(base_policy_id=v1.policy_id, target_policy_id=v2.policy_id),
        metadata=md(tenant.train),
    )
    changes = {
        c.field_path: (
            json_format.MessageToDict(c.before),
            json_format.MessageToDict(c.after),
        )
        for c in diff.changes
    }
    assert changes == {
        "generation_defaults.temperature": (0.2, 0.7),
        "guardrails.blocked_terms": (None, ["refund guaranteed"]),
        "prompt_template.system_prompt": (
            "You answer support emails.",
            "You answer support emails.\nAlways sign as Ana.",
        ),
    }
    assert not diff.identical
    assert f"--- {v1.policy_id}" in diff.prompt_diff and "+Always sign as Ana." in diff.prompt_diff
    same = await stub(channel).DiffPolicies(
        pb.DiffPoliciesRequest(base_policy_id=v1.policy_id, target_policy_id=v3.policy_id),
        metadata=md(tenant.train),
    )
    assert same.identical and not same.changes and same.prompt_diff == ""
    code, _, fields = await fails(
        stub(channel).DiffPolicies(
            pb.DiffPoliciesRequest(base_policy_id="bad", target_policy_id=v1.policy_id),
            metadata=md(tenant.train),
        )
    )
    assert (code, fields) == (grpc.StatusCode.INVALID_ARGUMENT, ["base_policy_id"])
    code, _, _ = await fails(
        stub(channel).DiffPolicies(
            pb.DiffPoliciesRequest(base_policy_id=v1.policy_id, target_policy_id=f"{skill_id}@v9"),
            metadata=md(tenant.train),
        )
    )
    assert code == grpc.StatusCode.NOT_FOUND


# ---- deployments -----------------------------------------------------------------


async def test_set_traffic_validates_and_uses_optimistic_concurrency(
    channel: grpc.aio.Channel, tenant: Tenant
) -> None:
    skill_id, other = unique_skill(), unique_skill()
    await create_skill(channel, tenant.admin, skill_id)
    await create_skill(channel, tenant.admin, other)
    v1 = await create_policy(channel, tenant.admin, skill_id)
    v2 = await create_policy(channel, tenant.admin, skill_id)
    v3 = await create_policy(channel, tenant.admin, skill_id)
    foreign = await create_policy(channel, tenant.admin, other)

    async def bad(traffic: pb.TrafficConfig, **kw: object) -> Failure:
        return await fails(set_traffic(channel, tenant.admin, skill_id, traffic, **kw))

    # No baseline yet: nothing but the baseline can get traffic.
    assert (await bad(canary(v2.policy_id)))[:2] == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "NO_BASELINE",
    )
    promoted = await promote(channel, tenant.admin, skill_id, v1.policy_id)
    assert promoted.deployment.revision == 2
    assert promoted.deployment.stage == pb.Deployment.STAGE_BASELINE
    assert promoted.policy.state == pb.Policy.STATE_ACTIVE

    assert (await bad(canary(f"{skill_id}@v77")))[0] == grpc.StatusCode.NOT_FOUND
    assert (await bad(canary(foreign.policy_id)))[:2] == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "POLICY_OF_OTHER_SKILL",
    )
    assert (await bad(canary(v2.policy_id, percent=101)))[::2] == (
        grpc.StatusCode.INVALID_ARGUMENT,
        ["traffic.canary.percent"],
    )
    split = pb.AbSplitTraffic(
        arms=[
            pb.TrafficArm(policy_id=v2.policy_id, weight=-1),
            pb.TrafficArm(policy_id=v3.policy_id),
        ]
    )
    assert (await bad(pb.TrafficConfig(ab_split=split)))[::2] == (
        grpc.StatusCode.INVALID_ARGUMENT,
        ["traffic.ab_split.arms[0].weight"],
    )
    assert (await bad(canary(v2.policy_id), reason=""))[::2] == (
        grpc.StatusCode.INVALID_ARGUMENT,
        ["reason"],
    )

    deployment = await set_traffic(
        channel, tenant.admin, skill_id, canary(v2.policy_id, 5), expected_revision=2
    )
    assert (deployment.revision, deployment.stage) == (3, pb.Deployment.STAGE_CANARY)
    assert deployment.traffic.canary.percent == 5 and deployment.reason == "experiment"
    code, reason, _ = await bad(canary(v2.policy_id, 50), expected_revision=2)
    assert (code, reason) == (grpc.StatusCode.ABORTED, "REVISION_MISMATCH")

    # A retry of an applied change replays it even though the revision moved on.
    request_id = rid()
    shadow = pb.TrafficConfig(
        shadow=pb.ShadowTraffic(policy_ids=[v3.policy_id]),
        bandit=pb.BanditTraffic(arms=[pb.TrafficArm(policy_id=v2.policy_id)], max_exploration=0.2),
    )
    applied = await set_traffic(
        channel, tenant.admin, skill_id, shadow, expected_revision=3, request_id=request_id
    )
    assert (applied.revision, applied.stage) == (4, pb.Deployment.STAGE_BANDIT)
    assert applied.traffic.shadow.sample_rate == 1.0 and applied.traffic.bandit.arms[0].weight == 1
    await set_traffic(channel, tenant.admin, skill_id, pb.TrafficConfig())
    replayed = await set_traffic(
        channel, tenant.admin, skill_id, shadow, expected_revision=3, request_id=request_id
    )
    assert replayed == applied
    current = (
        await stub(channel).GetDeployment(
            pb.GetDeploymentRequest(skill_id=skill_id), metadata=md(tenant.train)
        )
    ).deployment
    assert (current.revision, current.stage) == (5, pb.Deployment.STAGE_BASELINE)
    code, reason, _ = await fails(
        set_traffic(channel, tenant.admin, skill_id, canary(v2.policy_id), request_id=request_id)
    )
    assert (code, reason) == (grpc.StatusCode.ALREADY_EXISTS, "REQUEST_ID_REUSED")


async def test_promote_then_rollback_restores_the_previous_baseline(
    channel: grpc.aio.Channel, tenant: Tenant
) -> None:
    skill_id = unique_skill()
    await create_skill(channel, tenant.admin, skill_id)
    v1 = await create_policy(channel, tenant.admin, skill_id)
    v2 = await create_policy(channel, tenant.admin, skill_id)
    v3 = await create_policy(channel, tenant.admin, skill_id)
    code, reason, _ = await fails(
        stub(channel).RollbackDeployment(
            pb.RollbackDeploymentRequest(skill_id=skill_id, reason="undo", request_id=rid()),
            metadata=md(tenant.admin),
        )
    )
    assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "NO_EARLIER_REVISION")

    await promote(channel, tenant.admin, skill_id, v1.policy_id)  # rev 2
    await set_traffic(
        channel,
        tenant.admin,
        skill_id,
        pb.TrafficConfig(
            shadow=pb.ShadowTraffic(policy_ids=[v3.policy_id], sample_rate=0.5),
            canary=pb.CanaryTraffic(policy_id=v2.policy_id, percent=20),
        ),
    )  # rev 3
    promoted = await promote(channel, tenant.admin, skill_id, v2.policy_id)  # rev 4
    dep = promoted.deployment
    assert (dep.baseline_policy_id, dep.revision) == (v2.policy_id, 4)
    # The promoted canary left the strategy; the shadow stayed.
    assert not dep.traffic.HasField("canary")
    assert list(dep.traffic.shadow.policy_ids) == [v3.policy_id]
    assert dep.stage == pb.Deployment.STAGE_SHADOW
    old = await stub(channel).GetPolicy(
        pb.GetPolicyRequest(policy_id=v1.policy_id), metadata=md(tenant.train)
    )
    assert old.policy.state == pb.Policy.STATE_RETIRED
    code, reason, _ = await fails(promote(channel, tenant.admin, skill_id, v1.policy_id))
    assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "POLICY_NOT_CANDIDATE")

    code, _, fields = await fails(
        stub(channel).RollbackDeployment(
            pb.RollbackDeploymentRequest(
                skill_id=skill_id, to_revision=4, reason="undo", request_id=rid()
            ),
            metadata=md(tenant.admin),
        )
    )
    assert (code, fields) == (grpc.StatusCode.INVALID_ARGUMENT, ["to_revision"])
    code, reason, _ = await fails(
        stub(channel).RollbackDeployment(
            pb.RollbackDeploymentRequest(
                skill_id=skill_id, reason="undo", request_id=rid(), expected_revision=3
            ),
            metadata=md(tenant.admin),
        )
    )
    assert (code, reason) == (grpc.StatusCode.ABORTED, "REVISION_MISMATCH")

    rolled = (
        await stub(channel).RollbackDeployment(
            pb.RollbackDeploymentRequest(
                skill_id=skill_id, reason="v2 regressed", request_id=rid(), expected_revision=4
            ),
            metadata=md(tenant.admin),
        )
    ).deployment
    # Back to v1 as baseline; v2 (now RETIRED) gets no canary traffic back, so v1 takes
    # all live traffic; the shadow of revision 3 is restored.
    assert (rolled.baseline_policy_id, rolled.revision) == (v1.policy_id, 5)
    assert not rolled.traffic.HasField("canary") and rolled.reason == "v2 regressed"
    assert list(rolled.traffic.shadow.policy_ids) == [v3.policy_id]
    states = {
        p.policy_id: p.state
        for p in (
            await stub(channel).ListPolicies(
                pb.ListPoliciesRequest(skill_id=skill_id), metadata=md(tenant.train)
            )
        ).policies
    }
    assert states == {
        v1.policy_id: pb.Policy.STATE_ACTIVE,
        v2.policy_id: pb.Policy.STATE_RETIRED,
        v3.policy_id: pb.Policy.STATE_CANDIDATE,
    }
    active = await stub(channel).ListPolicies(
        pb.ListPoliciesRequest(skill_id=skill_id, state=pb.Policy.STATE_ACTIVE),
        metadata=md(tenant.train),
    )
    assert [p.policy_id for p in active.policies] == [v1.policy_id]
    skill = await stub(channel).GetSkill(
        pb.GetSkillRequest(skill_id=skill_id), metadata=md(tenant.train)
    )
    assert skill.skill.baseline_policy_id == v1.policy_id

    # Rolling back to the first promotion: baseline only, 100% to v1.
    to_two = (
        await stub(channel).RollbackDeployment(
            pb.RollbackDeploymentRequest(
                skill_id=skill_id, to_revision=2, reason="clean slate", request_id=rid()
            ),
            metadata=md(tenant.admin),
        )
    ).deployment
    assert (to_two.baseline_policy_id, to_two.revision) == (v1.policy_id, 6)
    assert to_two.traffic == pb.TrafficConfig() and to_two.stage == pb.Deployment.STAGE_BASELINE
    code, reason, _ = await fails(
        stub(channel).RollbackDeployment(
            pb.RollbackDeploymentRequest(
                skill_id=skill_id, to_revision=1, reason="x", request_id=rid()
            ),
            metadata=md(tenant.admin),
        )
    )
    assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "REVISION_HAS_NO_BASELINE")


async def test_other_tenants_see_nothing(
    stack: RunningStack, channel: grpc.aio.Channel, tenant: Tenant
) -> None:
    skill_id = unique_skill()
    await create_skill(channel, tenant.admin, skill_id)
    v1 = await create_policy(channel, tenant.admin, skill_id)
    await promote(channel, tenant.admin, skill_id, v1.policy_id)
    v2 = await create_policy(channel, tenant.admin, skill_id)
    other = await make_tenant(stack, channel, "intruder")
    s, a, t = stub(channel), md(other.admin), md(other.train)
    calls = [
        s.GetSkill(pb.GetSkillRequest(skill_id=skill_id), metadata=t),
        s.GetPolicy(pb.GetPolicyRequest(policy_id=v1.policy_id), metadata=t),
        s.ListPolicies(pb.ListPoliciesRequest(skill_id=skill_id), metadata=t),
        s.DiffPolicies(
            pb.DiffPoliciesRequest(base_policy_id=v1.policy_id, target_policy_id=v2.policy_id),
            metadata=t,
        ),
        s.GetDeployment(pb.GetDeploymentRequest(skill_id=skill_id), metadata=t),
        s.CreatePolicy(
            pb.CreatePolicyRequest(policy=policy(skill_id), request_id=rid()), metadata=a
        ),
        s.SetTraffic(
            pb.SetTrafficRequest(
                skill_id=skill_id, traffic=canary(v2.policy_id), reason="x", request_id=rid()
            ),
            metadata=a,
        ),
        s.PromotePolicy(
            pb.PromotePolicyRequest(
                skill_id=skill_id, policy_id=v2.policy_id, reason="x", request_id=rid()
            ),
            metadata=a,
        ),
        s.RollbackDeployment(
            pb.RollbackDeploymentRequest(skill_id=skill_id, reason="x", request_id=rid()),
            metadata=a,
        ),
    ]
    for call in calls:
        code, _, _ = await fails(call)
        assert code == grpc.StatusCode.NOT_FOUND
    # The intruder's own skill of the same name cannot point at the victim's policies.
    await create_skill(channel, other.admin, skill_id)
    w1 = await create_policy(channel, other.admin, skill_id)
    assert w1.policy_id == v1.policy_id and w1.tenant_id == other.tenant_id
    assert (await s.ListSkills(pb.ListSkillsRequest(), metadata=t)).skills[0].tenant_id == (
        other.tenant_id
    )
    events = await s.ListAuditEvents(pb.ListAuditEventsRequest(), metadata=a)
    assert {e.tenant_id for e in events.audit_events} == {other.tenant_id}
    # The victim's deployment is untouched.
    mine = await s.GetDeployment(
        pb.GetDeploymentRequest(skill_id=skill_id), metadata=md(tenant.train)
    )
    assert mine.deployment.revision == 2


async def test_deployment_changes_are_notified(
    stack: RunningStack, channel: grpc.aio.Channel, tenant: Tenant
) -> None:
    skill_id = unique_skill()
    await create_skill(channel, tenant.admin, skill_id)
    v1 = await create_policy(channel, tenant.admin, skill_id)
    v2 = await create_policy(channel, tenant.admin, skill_id)
    received: asyncio.Queue[str] = asyncio.Queue()
    conn = await asyncpg.connect(stack.database_url)
    try:
        await conn.add_listener(
            "rlaas_deployments", lambda _c, _pid, _ch, payload: received.put_nowait(payload)
        )
        await promote(channel, tenant.admin, skill_id, v1.policy_id)
        dep = await set_traffic(channel, tenant.admin, skill_id, canary(v2.policy_id))
        wanted = {f"{tenant.tenant_id}/{skill_id}/2", f"{tenant.tenant_id}/{skill_id}/3"}
        got: set[str] = set()
        while not wanted <= got:
            got.add(await asyncio.wait_for(received.get(), timeout=1.0))
        assert dep.revision == 3
        # A refused change notifies nobody.
        await fails(
            set_traffic(channel, tenant.admin, skill_id, canary(v2.policy_id), expected_revision=1)
        )
        with pytest.raises(TimeoutError):
            while True:
                payload = await asyncio.wait_for(received.get(), timeout=0.3)
                assert not payload.startswith(f"{tenant.tenant_id}/{skill_id}/")
    finally:
        await conn.close()


# ---- audit log -------------------------------------------------------------------


async def busy_tenant(stack: RunningStack, channel: grpc.aio.Channel) -> tuple[Tenant, str]:
    """A tenant with a few dozen audited changes."""
    t = await make_tenant(stack, channel, "audited")
    skill_id = unique_skill()
    await create_skill(channel, t.admin, skill_id)
    ids = [(await create_policy(channel, t.admin, skill_id)).policy_id for _ in range(4)]
    await promote(channel, t.admin, skill_id, ids[0])
    for pct in range(0, 100, 10):
        await set_traffic(channel, t.admin, skill_id, canary(ids[1], pct), reason=f"ramp {pct}")
    await promote(channel, t.admin, skill_id, ids[1])
    await stub(channel).RollbackDeployment(
        pb.RollbackDeploymentRequest(skill_id=skill_id, reason="regressed", request_id=rid()),
        metadata=md(t.admin),
    )
    return t, skill_id


async def verify(channel: grpc.aio.Channel, key: str, **kw: int) -> pb.VerifyAuditLogResponse:
    return await stub(channel).VerifyAuditLog(pb.VerifyAuditLogRequest(**kw), metadata=md(key))


async def test_audit_log_records_every_change_and_its_chain_verifies(
    stack: RunningStack, channel: grpc.aio.Channel
) -> None:
    t, skill_id = await busy_tenant(stack, channel)
    total = 1 + 4 + 1 + 10 + 1 + 1
    events: list[pb.AuditEvent] = []
    token = ""
    while True:
        page = await stub(channel).ListAuditEvents(
            pb.ListAuditEventsRequest(page_size=7, page_token=token), metadata=md(t.admin)
        )
        events += page.audit_events
        token = page.next_page_token
        if not token:
            break
    assert [e.sequence for e in events] == list(range(total, 0, -1))  # newest first
    oldest, newest = events[-1], events[0]
    assert oldest.prev_hash == "0" * 64 and oldest.action == RPC + "CreateSkill"
    assert all(a.prev_hash == b.hash for a, b in itertools.pairwise(events))
    assert newest.action == RPC + "RollbackDeployment" and newest.reason == "regressed"
    assert newest.resource_type == "Deployment" and newest.resource_id == skill_id
    assert newest.before["revision"] == "13" and newest.after["revision"] == "14"
    assert newest.actor_tenant_id == t.tenant_id and newest.actor_display_name
    assert not oldest.HasField("before") and oldest.after["skill_id"] == skill_id

    verdict = await verify(channel, t.admin)
    assert (verdict.valid, verdict.checked_count, verdict.head_hash) == (True, total, newest.hash)
    ranged = await verify(channel, t.admin, from_sequence=5, to_sequence=9)
    assert (ranged.valid, ranged.checked_count) == (True, 5)
    code, _, fields = await fails(verify(channel, t.admin, from_sequence=9, to_sequence=5))
    assert (code, fields) == (grpc.StatusCode.INVALID_ARGUMENT, ["from_sequence"])

    filtered = await stub(channel).ListAuditEvents(
        pb.ListAuditEventsRequest(action=RPC + "SetTraffic", resource_id=skill_id),
        metadata=md(t.admin),
    )
    assert len(filtered.audit_events) == 10
    assert {e.reason for e in filtered.audit_events} == {f"ramp {p}" for p in range(0, 100, 10)}
    start = events[5].event_time
    since = await stub(channel).ListAuditEvents(
        pb.ListAuditEventsRequest(start_time=start), metadata=md(t.admin)
    )
    assert [e.sequence for e in since.audit_events] == list(range(total, total - 6, -1))
    code, _, fields = await fails(
        stub(channel).ListAuditEvents(
            pb.ListAuditEventsRequest(start_time=newest.event_time, end_time=oldest.event_time),
            metadata=md(t.admin),
        )
    )
    assert (code, fields) == (grpc.StatusCode.INVALID_ARGUMENT, ["start_time"])
    code, _, _ = await fails(
        stub(channel).ListAuditEvents(pb.ListAuditEventsRequest(), metadata=md(t.train))
    )
    assert code == grpc.StatusCode.PERMISSION_DENIED


async def test_audit_log_detects_an_edited_row(
    stack: RunningStack, channel: grpc.aio.Channel
) -> None:
    t, _ = await busy_tenant(stack, channel)
    assert (await verify(channel, t.admin)).valid
    [original] = await db(
        stack, "SELECT reason FROM audit_events WHERE tenant_id = $1 AND sequence = 9", t.tenant_id
    )
    await db(
        stack,
        "UPDATE audit_events SET reason = 'nothing to see' WHERE tenant_id = $1 AND sequence = 9",
        t.tenant_id,
    )
    verdict = await verify(channel, t.admin)
    assert (verdict.valid, verdict.first_invalid_sequence) == (False, 9)
    assert "edited" in verdict.detail and verdict.checked_count == 9
    assert (await verify(channel, t.admin, from_sequence=1, to_sequence=8)).valid

    await db(
        stack,
        "UPDATE audit_events SET reason = $2 WHERE tenant_id = $1 AND sequence = 9",
        t.tenant_id,
        original["reason"],
    )
    assert (await verify(channel, t.admin)).valid
    await db(
        stack,
        "UPDATE audit_events SET after = replace(after, '\"revision\"', '\"revisions\"') "
        "WHERE tenant_id = $1 AND sequence = 12",
        t.tenant_id,
    )
    verdict = await verify(channel, t.admin)
    assert (verdict.valid, verdict.first_invalid_sequence) == (False, 12)


async def test_audit_log_detects_deleted_and_reordered_rows(
    stack: RunningStack, channel: grpc.aio.Channel
) -> None:
    t, _ = await busy_tenant(stack, channel)
    await db(stack, "DELETE FROM audit_events WHERE tenant_id = $1 AND sequence = 7", t.tenant_id)
    verdict = await verify(channel, t.admin)
    assert (verdict.valid, verdict.first_invalid_sequence) == (False, 7)
    assert "missing" in verdict.detail

    t2, _ = await busy_tenant(stack, channel)
    for old, new in ((4, -4), (5, 4), (-4, 5)):  # swap entries 4 and 5
        await db(
            stack,
            "UPDATE audit_events SET sequence = $3 WHERE tenant_id = $1 AND sequence = $2",
            t2.tenant_id,
            old,
            new,
        )
    verdict = await verify(channel, t2.admin)
    assert (verdict.valid, verdict.first_invalid_sequence) == (False, 4)

    t3, _ = await busy_tenant(stack, channel)
    await db(stack, "DELETE FROM audit_events WHERE tenant_id = $1 AND sequence > 15", t3.tenant_id)
    verdict = await verify(channel, t3.admin)
    assert (verdict.valid, verdict.first_invalid_sequence) == (False, 16)
