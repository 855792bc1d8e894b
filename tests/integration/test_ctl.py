"""rlaasctl as an operator uses it: a subprocess against the real server."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid

import grpc
import pytest

from rlaas.registry.v1 import registry_pb2 as reg
from rlaas.registry.v1 import registry_pb2_grpc
from tests.conftest import RunningStack
from tests.helpers import ROOT, md, new_tenant

pytestmark = pytest.mark.integration


def ctl(stack: RunningStack, key: str, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "services.ctl", "--target", stack.grpc_target]
    return subprocess.run(
        [*command, "--api-key", key, *args],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


async def test_promote_canary_rollback_status_loops_and_exit_codes(
    stack: RunningStack, channel: grpc.aio.Channel
) -> None:
    _, admin = await new_tenant(channel, stack.admin_key, "ctl")
    r = registry_pb2_grpc.RegistryServiceStub(channel)
    await r.CreateSkill(
        reg.CreateSkillRequest(skill=reg.Skill(skill_id="drafts"), request_id=str(uuid.uuid4())),
        metadata=md(admin),
    )
    for _ in range(2):
        await r.CreatePolicy(
            reg.CreatePolicyRequest(
                policy=reg.Policy(skill_id="drafts", base_model="tiny"),
                request_id=str(uuid.uuid4()),
            ),
            metadata=md(admin),
        )

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return ctl(stack, admin, *args)

    listed = await asyncio.to_thread(run, "policies", "list", "drafts")
    assert listed.returncode == 0 and "drafts@v1" in listed.stdout and "drafts@v2" in listed.stdout
    promoted = await asyncio.to_thread(run, "promote", "drafts", "drafts@v1", "--reason", "first")
    assert promoted.returncode == 0 and "baseline drafts@v1" in promoted.stdout
    canary = await asyncio.to_thread(
        run,
        "--output",
        "json",
        "canary",
        "drafts",
        "drafts@v2",
        "--percent",
        "25",
        "--reason",
        "try",
    )
    assert canary.returncode == 0
    assert json.loads(canary.stdout)["deployment"]["traffic"]["canary"]["percent"] == 25
    rolled = await asyncio.to_thread(run, "rollback", "drafts", "--reason", "regression")
    assert rolled.returncode == 0 and "baseline drafts@v1 | baseline only" in rolled.stdout
    status = json.loads(
        (await asyncio.to_thread(run, "--output", "json", "status", "drafts")).stdout
    )
    assert status["deployment"]["baselinePolicyId"] == "drafts@v1"
    assert "canary" not in status["deployment"].get("traffic", {})
    audit = await asyncio.to_thread(run, "--output", "json", "audit")
    assert audit.returncode == 0 and json.loads(audit.stdout).get("verified", True)

    started = await asyncio.to_thread(
        run, "--output", "json", "loops", "start", "drafts", "--min-new-feedback", "100000"
    )
    loop_id = json.loads(started.stdout)["learningLoop"]["learningLoopId"]
    paused = await asyncio.to_thread(run, "loops", "pause", loop_id)
    assert paused.returncode == 0 and "paused/" in paused.stdout
    assert loop_id in (await asyncio.to_thread(run, "loops", "list")).stdout

    # Meaningful exit codes.
    assert (await asyncio.to_thread(run, "status", "no_such_skill")).returncode == 3
    assert (
        await asyncio.to_thread(ctl, stack, "rlaas_" + "0" * 16 + "_x", "status", "drafts")
    ).returncode == 4
    bad = await asyncio.to_thread(run, "promote", "drafts", "drafts@v9", "--reason", "x")
    assert bad.returncode == 3 and "NOT_FOUND" in bad.stderr


async def test_rollouts_start_promote_and_roll_back_change_what_is_served(
    stack: RunningStack, channel: grpc.aio.Channel
) -> None:
    from rlaas.inference.v1 import inference_pb2 as inf
    from rlaas.inference.v1 import inference_pb2_grpc
    from rlaas.telemetry.v1 import telemetry_pb2 as tel

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
