"""rlaasctl as an operator uses it: a real subprocess against the real server.

The promotion/rollback flow is checked twice over: what the router then serves (Infer
answers name their policy), and that `--output json` prints exactly the JSON of the RPC
the command stands for."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from google.protobuf import json_format

from rlaas.inference.v1 import inference_pb2 as inf
from rlaas.inference.v1 import inference_pb2_grpc
from rlaas.options.v1 import options_pb2
from rlaas.registry.v1 import registry_pb2 as reg
from rlaas.registry.v1 import registry_pb2_grpc
from rlaas.telemetry.v1 import telemetry_pb2 as tel
from tests.conftest import RunningStack
from tests.helpers import ROOT, md, new_tenant, scoped_key, stored_path
from tests.unit.test_ctl_cli import LEAF_COMMANDS

pytestmark = pytest.mark.integration


def ctl(stack: RunningStack, key: str, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "rlaasctl", "--target", stack.grpc_target]
    return subprocess.run(
        [*command, "--api-key", key, *args],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def as_dict(message: Any) -> dict[str, Any]:
    return json_format.MessageToDict(message)


async def served_by(channel: grpc.aio.Channel, key: str, skill: str, policy_id: str) -> None:
    """Infer until the router answers with `policy_id` (traffic changes reach every
    server within a second: NOTIFY plus the cache TTL)."""
    stub = inference_pb2_grpc.InferenceServiceStub(channel)
    deadline, seen = time.monotonic() + 10, ""
    while time.monotonic() < deadline:
        answer = await stub.Infer(
            inf.InferRequest(
                skill=skill, user_id="u1", request_id=str(uuid.uuid4()),
                messages=[tel.ChatMessage(role=tel.ChatMessage.ROLE_USER, content="hi")],
            ),
            metadata=md(key),
        )  # fmt: skip
        seen = answer.policy_id
        if seen == policy_id:
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"{skill} is served by {seen}, not {policy_id}")


async def test_promotion_and_rollback_through_rlaasctl_change_what_is_served(
    stack: RunningStack, channel: grpc.aio.Channel
) -> None:
    tenant_id, admin = await new_tenant(channel, stack.admin_key, "ctl-flow")
    registry = registry_pb2_grpc.RegistryServiceStub(channel)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        done = ctl(stack, admin, *args)
        assert done.returncode == 0, (args, done.stderr)
        return done

    async def json_of(*args: str) -> dict[str, Any]:
        done = await asyncio.to_thread(run, *args, "--output", "json")
        parsed: dict[str, Any] = json.loads(done.stdout)
        return parsed

    await json_of("skills", "create", "flow", "--display-name", "ctl flow")
    # Two adapters of the tiny model, uploaded and registered from the terminal.
    policies = []
    for name in ("a", "b"):
        uri, sha = stack.tiny.adapters[name]
        made = await json_of(
            "policies", "create", "flow", "--base-model", "tiny-llama", "--adapter-dir",
            str(stored_path(uri)), "--max-tokens", "2", "--description", f"adapter {name}",
        )  # fmt: skip
        policy_id = made["policy"]["policyId"]
        got = await registry.GetPolicy(
            reg.GetPolicyRequest(policy_id=policy_id), metadata=md(admin)
        )
        assert made == as_dict(got)  # the RPC's own JSON, field for field
        adapter = made["policy"]["adapter"]
        # The tenant's own copy, content-addressed, not the directory it came from.
        assert adapter["sha256"] == sha and adapter["rank"] > 0
        assert f"/adapters/{tenant_id}/uploads/{sha}-" in adapter["artifactUri"]
        policies.append(policy_id)
    a, b = policies
    assert (a, b) == ("flow@v1", "flow@v2")
    listed = await asyncio.to_thread(run, "policies", "list", "flow")
    assert listed.stdout.splitlines()[0].split()[:2] == ["POLICY", "STATE"]
    assert "flow@v2  candidate" in listed.stdout and "flow@v1  candidate" in listed.stdout

    async def status() -> dict[str, Any]:
        printed = await json_of("status", "flow")
        rpc = await registry.GetDeployment(reg.GetDeploymentRequest(skill_id="flow"),
                                           metadata=md(admin))  # fmt: skip
        assert printed == as_dict(rpc)
        deployment: dict[str, Any] = printed["deployment"]
        return deployment

    # promote: the JSON printed is PromotePolicy's response (a replay with the same
    # request_id returns the original result, so the RPC can be asked for it again).
    promoted = await json_of("--request-id", "flow-promote-1", "promote", "flow", a,
                             "--reason", "first baseline")  # fmt: skip
    replay = await registry.PromotePolicy(
        reg.PromotePolicyRequest(skill_id="flow", policy_id=a, reason="first baseline",
                                 request_id="flow-promote-1"),
        metadata=md(admin),
    )  # fmt: skip
    assert promoted == as_dict(replay)
    assert (await status())["baselinePolicyId"] == a
    await served_by(channel, admin, "flow", a)
    infer = await json_of("infer", "flow", "hello", "--user-id", "u1")
    assert infer["policyId"] == a and infer["routing"]["reason"] == "REASON_BASELINE"

    # canary: 100% of users to b.
    await json_of("canary", "flow", b, "--percent", "100", "--reason", "try b")
    deployment = await status()
    assert deployment["stage"] == "STAGE_CANARY"
    assert deployment["traffic"]["canary"] == {"policyId": b, "percent": 100.0}
    await served_by(channel, admin, "flow", b)
    text = await asyncio.to_thread(run, "status", "flow")
    assert f"baseline {a} | canary {b} at 100%" in text.stdout

    # promote b: the new baseline.
    await json_of("promote", "flow", b, "--reason", "b won")
    deployment = await status()
    assert deployment["baselinePolicyId"] == b and "canary" not in deployment.get("traffic", {})
    await served_by(channel, admin, "flow", b)
    assert (await json_of("infer", "flow", "hello"))["policyId"] == b

    # rollback: the revision before (a with b's canary), minus the now-RETIRED b.
    rolled = await json_of("--request-id", "flow-rollback-1", "rollback", "flow",
                           "--reason", "b regressed")  # fmt: skip
    replay_rb = await registry.RollbackDeployment(
        reg.RollbackDeploymentRequest(skill_id="flow", reason="b regressed",
                                      request_id="flow-rollback-1"),
        metadata=md(admin),
    )  # fmt: skip
    assert rolled == as_dict(replay_rb)
    deployment = await status()
    assert deployment["baselinePolicyId"] == a and "canary" not in deployment.get("traffic", {})
    await served_by(channel, admin, "flow", a)
    assert (await json_of("infer", "flow", "hello"))["policyId"] == a
    states = {
        p["policyId"]: p["state"] for p in (await json_of("policies", "list", "flow"))["policies"]
    }
    assert states == {a: "STATE_ACTIVE", b: "STATE_RETIRED"}

    # Every step is in the audit log, and the chain verifies.
    audit = await json_of("audit", "list", "--resource-type", "Deployment")
    actions = [e["action"].rsplit("/", 1)[-1] for e in audit["auditEvents"]]
    assert actions[:4] == ["RollbackDeployment", "PromotePolicy", "SetTraffic", "PromotePolicy"]
    verified = await json_of("audit", "verify")
    assert verified["valid"] is True and int(verified["checkedCount"]) >= 7


async def test_exit_codes_and_error_details_from_the_real_server(
    stack: RunningStack, channel: grpc.aio.Channel
) -> None:
    _, admin = await new_tenant(channel, stack.admin_key, "ctl-errors")
    ingest = await scoped_key(channel, admin, options_pb2.SCOPE_INGEST)

    def run(*args: str, key: str = admin) -> subprocess.CompletedProcess[str]:
        return ctl(stack, key, *args)

    assert (await asyncio.to_thread(run, "skills", "create", "errs")).returncode == 0
    # A bad key: UNAUTHENTICATED, 4.
    bad_key = await asyncio.to_thread(run, "status", "errs", key="rlaas_" + "0" * 16 + "_x")
    assert bad_key.returncode == 4 and bad_key.stderr.startswith("rlaasctl: UNAUTHENTICATED")
    # A key without the scope: PERMISSION_DENIED, 4.
    scoped = await asyncio.to_thread(run, "promote", "errs", "errs@v1", "--reason", "x",
                                     key=ingest)  # fmt: skip
    assert scoped.returncode == 4 and "PERMISSION_DENIED" in scoped.stderr
    # An unknown policy: NOT_FOUND, 3, with the ErrorInfo reason.
    unknown = await asyncio.to_thread(run, "promote", "errs", "errs@v9", "--reason", "x")
    assert unknown.returncode == 3 and unknown.stderr.startswith("rlaasctl: NOT_FOUND: ")
    assert "\n  reason: " in unknown.stderr and not unknown.stdout
    missing = await asyncio.to_thread(run, "policies", "get", "errs@v9", "--output", "json")
    assert missing.returncode == 3 and json.loads(missing.stderr)["code"] == "NOT_FOUND"
    # Invalid arguments: 2, and each offending field named (text and JSON).
    invalid = await asyncio.to_thread(run, "skills", "create", "Not Snake")
    assert invalid.returncode == 2 and "  field skill.skill_id: " in invalid.stderr
    invalid_json = await asyncio.to_thread(
        run, "--output", "json", "policies", "create", "errs", "--base-model", "tiny-llama",
        "--temperature", "9", "--adapter-uri", "file:///nowhere",
    )  # fmt: skip
    assert invalid_json.returncode == 2
    report = json.loads(invalid_json.stderr)
    assert report["code"] == "INVALID_ARGUMENT"
    violations = [v["field"] for d in report["details"] for v in d.get("fieldViolations", [])]
    assert "policy.generation_defaults.temperature" in violations
    assert "policy.adapter.sha256" in violations
    reasons = [d["reason"] for d in report["details"] if "reason" in d]
    assert reasons and all(
        d["@type"].startswith("type.googleapis.com/google.rpc.") for d in report["details"]
    )
    # A conflict: FAILED_PRECONDITION / ABORTED, 5.
    assert (await asyncio.to_thread(run, "policies", "create", "errs", "--base-model",
                                    "tiny-llama")).returncode == 0  # fmt: skip
    assert (
        await asyncio.to_thread(run, "promote", "errs", "errs@v1", "--reason", "go")
    ).returncode == 0
    stale = await asyncio.to_thread(
        run, "canary", "errs", "errs@v1", "--percent", "5", "--reason", "x",
        "--expected-revision", "1",
    )  # fmt: skip
    assert stale.returncode == 5 and "ABORTED" in stale.stderr
    again = await asyncio.to_thread(run, "promote", "errs", "errs@v1", "--reason", "again")
    assert again.returncode == 5 and "FAILED_PRECONDITION" in again.stderr


async def test_every_command_prints_the_rpcs_json(
    stack: RunningStack, channel: grpc.aio.Channel
) -> None:
    """Each leaf command of the tree, once, with `--output json`: stdout is the response's
    JSON, or (where the call is refused, e.g. an id that does not exist) stderr is the
    error's JSON with the exit code of its class."""
    covered: set[str] = set()

    async def j(command: str, *args: str, key: str, code: int = 0) -> dict[str, Any]:
        done = await asyncio.to_thread(ctl, stack, key, *command.split(), *args,
                                       "--output", "json")  # fmt: skip
        assert done.returncode == code, (command, args, done.stdout, done.stderr)
        covered.add(command)
        parsed: dict[str, Any] = json.loads(done.stdout if code == 0 else done.stderr)
        if code:
            assert parsed["code"] and parsed["message"]
        return parsed

    operator = stack.admin_key
    made = await j("tenants create", "ctl tour", key=operator)
    tenant_id, admin = made["tenant"]["tenantId"], made["adminApiKeySecret"]
    assert (await j("tenants get", tenant_id, key=operator))["tenant"]["displayName"] == "ctl tour"
    assert tenant_id in {t["tenantId"] for t in (await j("tenants list", key=operator))["tenants"]}
    assert (await j("whoami", key=admin))["tenantId"] == tenant_id

    key = await j("keys create", "ci", "--scope", "ingest", "--scope", "infer", key=admin)
    key_id = key["apiKey"]["apiKeyId"]
    assert key["secret"].startswith("rlaas_")
    scopes = (await j("keys get", key_id, key=admin))["apiKey"]["scopes"]
    assert sorted(scopes) == ["SCOPE_INFER", "SCOPE_INGEST"]
    assert key_id in {k["apiKeyId"] for k in (await j("keys list", key=admin))["apiKeys"]}
    assert (await j("keys revoke", key_id, key=admin))["apiKey"]["state"] == "STATE_REVOKED"

    await j("skills create", "tour", "--label", "team=cli", key=admin)
    assert (await j("skills get", "tour", key=admin))["skill"]["labels"] == {"team": "cli"}
    assert [s["skillId"] for s in (await j("skills list", key=admin))["skills"]] == ["tour"]
    for extra in ([], ["--system-prompt", "be brief"], ["--blocked-term", "x"]):
        await j("policies create", "tour", "--base-model", "tiny-llama", "--max-tokens", "2",
                *extra, key=admin)  # fmt: skip
    assert len((await j("policies list", "tour", key=admin))["policies"]) == 3
    assert (await j("policies get", "tour@v2", key=admin))["policy"]["promptTemplate"] == {
        "systemPrompt": "be brief"
    }
    diff = await j("policies diff", "tour@v1", "tour@v2", key=admin)
    assert [c["fieldPath"] for c in diff["changes"]] == ["prompt_template.system_prompt"]

    await j("promote", "tour", "tour@v1", "--reason", "start", key=admin)
    assert (await j("status", "tour", key=admin))["deployment"]["baselinePolicyId"] == "tour@v1"
    await j("canary", "tour", "tour@v2", "--percent", "10", "--reason", "try", key=admin)
    shadow = await j("traffic", "tour", "--reason", "shadow v3", "--shadow", "tour@v3",
                     "--ab", "tour@v1=1", "tour@v2=3", key=admin)  # fmt: skip
    assert shadow["deployment"]["traffic"]["shadow"]["policyIds"] == ["tour@v3"]
    assert len(shadow["deployment"]["traffic"]["abSplit"]["arms"]) == 2
    cleared = await j("traffic", "tour", "--reason", "baseline only", key=admin)
    assert cleared["deployment"]["stage"] == "STAGE_BASELINE"
    await j("rollback", "tour", "--reason", "back to the split", key=admin)
    listed = await j("deployments list", key=admin)
    assert listed["deployments"][0]["traffic"]["abSplit"]
    await j("traffic", "tour", "--reason", "baseline only", key=admin)

    answer = await j("infer", "tour", "hello", "--user-id", "u1", "--max-tokens", "2", key=admin)
    interaction = answer["interactionId"]
    await j("feedback", interaction, "--thumb", "up", "--sent", key=admin)
    got = await j("telemetry get", interaction, key=admin)
    assert got["feedback"][0]["explicit"]["thumb"] == "THUMB_UP"
    assert got["feedback"][0]["implicit"]["sent"] is True
    listed = await j("telemetry list", "--skill", "tour", "--has-feedback", key=admin)
    assert [x["interactionId"] for x in listed["interactions"]] == [interaction]
    await j("telemetry settings", key=admin)
    now = datetime.now(UTC)
    window = ["--start", (now - timedelta(hours=1)).isoformat(),
              "--end", (now + timedelta(minutes=1)).isoformat()]  # fmt: skip
    exported = await j("telemetry export", *window, "--skill", "tour", key=admin)
    # >= 1: a server that has not yet seen the last traffic change may dual-run the shadow.
    assert int(exported["interactionCount"]) >= 1 and exported["files"]
    await j("telemetry compact", *window, key=admin)
    assert (await j("audit verify", key=admin))["valid"] is True
    listed = (await j("audit list", "--resource-type", "Deployment", key=admin))["auditEvents"]
    assert listed
    erased = await j("audit erase", listed[-1]["auditEventId"], key=admin)
    assert erased["auditEvents"][0]["eraseTime"]
    assert (await j("audit verify", key=admin))["valid"] is True  # still intact

    rollout = await j("rollouts start", "tour@v2", "--skip-shadow", "--canary", "50", "--manual",
                      key=admin)  # fmt: skip
    rollout_id = rollout["rollout"]["rolloutId"]
    assert (await j("rollouts get", rollout_id, key=admin))["rollout"][
        "candidatePolicyId"
    ] == "tour@v2"
    await j("rollouts pause", rollout_id, key=admin)
    await j("rollouts resume", rollout_id, key=admin)
    await j("rollouts promote", rollout_id, "--to", "full", "--reason", "ok", key=admin)
    await j("rollouts rollback", rollout_id, "--reason", "too late", key=admin, code=5)
    assert (await j("rollouts list", "--skill", "tour", key=admin))["rollouts"]

    loop = await j("loops start", "tour", "--min-new-feedback", "100000", key=admin)
    loop_id = loop["learningLoop"]["learningLoopId"]
    await j("loops get", loop_id, key=admin)
    await j("loops pause", loop_id, key=admin)
    await j("loops resume", loop_id, key=admin)
    assert loop_id in {
        x["learningLoopId"] for x in (await j("loops list", key=admin))["learningLoops"]
    }
    stopped = await j("loops stop", loop_id, "--reason", "tour over", key=admin)
    assert stopped["learningLoop"]["state"] == "STATE_STOPPED"
    await j("loops pause", loop_id, key=admin, code=5)  # an ended loop: FAILED_PRECONDITION

    erased = await j("skills erase-text", "tour", key=admin)
    assert not erased["skill"].get("labels") and erased["erasedAuditEventCount"] > 0

    # Training-side commands whose success paths other tests exercise: the refusals.
    await j("datasets create", "no_such_skill", key=admin, code=3)
    await j("datasets get", "ds-nope", key=admin, code=3)
    await j("datasets export", "ds-nope", "--format", "dpo", key=admin, code=3)
    await j("datasets list", "--skill", "tour", key=admin)
    await j("runs create", "tour", "ds-nope", key=admin, code=3)
    await j("runs get", "run-nope", key=admin, code=3)
    await j("runs cancel", "run-nope", key=admin, code=3)
    await j("runs list", key=admin)
    await j("evals create", "tour@v99", key=admin, code=3)
    await j("evals get", "ev-nope", key=admin, code=3)
    await j("evals list", key=admin)

    # Retrieval memory: an index, a document, a filtered search, then deletes.
    created = await j("indexes create", "handbook", "--chunk-size", "200", key=admin)
    assert created["index"]["chunking"]["chunkSize"] == 200
    up = await j("docs upsert", "handbook", "returns", "--text",
                 "Returns are accepted within 30 days of delivery.", "--metadata", "lang=en",
                 "--metadata", "year=2026", key=admin)  # fmt: skip
    assert up["results"][0]["outcome"] == "OUTCOME_CREATED"
    got = await j("docs get", "handbook", "returns", key=admin)
    assert got["document"]["metadata"] == {"lang": "en", "year": 2026}
    assert got["chunks"][0]["text"].startswith("Returns are accepted")
    assert [
        d["documentId"] for d in (await j("docs list", "handbook", key=admin))["documents"]
    ] == ["returns"]
    found = await j("search", "handbook", "how long can I return it", "--metadata", "year=2026",
                    "--mode", "dense", key=admin)  # fmt: skip
    assert found["hits"][0]["chunk"]["documentId"] == "returns"
    assert (await j("indexes get", "handbook", key=admin))["index"]["documentCount"] == "1"
    assert [x["indexId"] for x in (await j("indexes list", key=admin))["indexes"]] == ["handbook"]
    await j("docs delete", "handbook", "returns", key=admin)
    await j("indexes delete", "handbook", key=admin)
    await j("indexes get", "handbook", key=admin, code=3)

    assert covered == set(LEAF_COMMANDS), set(LEAF_COMMANDS) ^ covered


async def test_rollouts_start_promote_and_roll_back_change_what_is_served(
    stack: RunningStack, channel: grpc.aio.Channel
) -> None:
    _, admin = await new_tenant(channel, stack.admin_key, "ctl-rollouts")
    r = registry_pb2_grpc.RegistryServiceStub(channel)
    await r.CreateSkill(
        reg.CreateSkillRequest(skill=reg.Skill(skill_id="notes"), request_id=str(uuid.uuid4())),
        metadata=md(admin),
    )
    for _ in range(3):
        await r.CreatePolicy(
            reg.CreatePolicyRequest(
                policy=reg.Policy(skill_id="notes", base_model="tiny",
                                  generation_defaults=reg.GenerationConfig(max_tokens=2)),
                request_id=str(uuid.uuid4()),
            ),
            metadata=md(admin),
        )  # fmt: skip
    await r.PromotePolicy(
        reg.PromotePolicyRequest(skill_id="notes", policy_id="notes@v1", reason="start",
                                 request_id=str(uuid.uuid4())),
        metadata=md(admin),
    )  # fmt: skip

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return ctl(stack, admin, *args)

    async def served() -> str:
        answer = await inference_pb2_grpc.InferenceServiceStub(channel).Infer(
            inf.InferRequest(
                skill="notes", user_id="u1", request_id=str(uuid.uuid4()),
                messages=[tel.ChatMessage(role=tel.ChatMessage.ROLE_USER, content="hi")],
            ),
            metadata=md(admin),
        )  # fmt: skip
        return answer.policy_id

    started = await asyncio.to_thread(
        run, "--output", "json", "rollouts", "start", "notes@v2",
        "--skip-shadow", "--canary", "100", "--manual",
    )  # fmt: skip
    assert started.returncode == 0, started.stderr
    rollout_id = json.loads(started.stdout)["rollout"]["rolloutId"]
    got = await asyncio.to_thread(run, "rollouts", "get", rollout_id)
    assert "notes@v2 vs notes@v1" in got.stdout
    await asyncio.sleep(2)  # the canary step reaches every server (NOTIFY, < 1 s)
    assert await served() == "notes@v2"  # 100% canary
    promoted = await asyncio.to_thread(
        run, "rollouts", "promote", rollout_id, "--to", "full", "--reason", "looks good"
    )
    assert promoted.returncode == 0 and "completed/full" in promoted.stdout, promoted
    status = json.loads(
        (await asyncio.to_thread(run, "--output", "json", "status", "notes")).stdout
    )
    assert status["deployment"]["baselinePolicyId"] == "notes@v2"

    second = await asyncio.to_thread(
        run, "--output", "json", "rollouts", "start", "notes@v3",
        "--skip-shadow", "--canary", "100", "--manual",
    )  # fmt: skip
    second_id = json.loads(second.stdout)["rollout"]["rolloutId"]
    await asyncio.sleep(2)
    assert await served() == "notes@v3"
    rolled = await asyncio.to_thread(
        run, "rollouts", "rollback", second_id, "--reason", "complaints"
    )
    assert (
        rolled.returncode == 0 and "rolled_back" in rolled.stdout and "complaints" in rolled.stdout
    )
    await asyncio.sleep(2)
    assert await served() == "notes@v2"
    listed = await asyncio.to_thread(run, "rollouts", "list", "--skill", "notes")
    assert listed.stdout.index(second_id) < listed.stdout.index(rollout_id)  # newest first
    # A completed rollout cannot be rolled back: FAILED_PRECONDITION, exit code 5.
    again = await asyncio.to_thread(run, "rollouts", "rollback", rollout_id, "--reason", "x")
    assert again.returncode == 5 and "FAILED_PRECONDITION" in again.stderr
