"""`buf curl` (from buf-bin) against the real server, with the schema from server
reflection only: the README's calls for the main flows, and errors as a user sees them."""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest

from rlaas.inference.v1 import inference_pb2
from rlaas.registry.v1 import registry_pb2, registry_pb2_grpc
from rlaas.telemetry.v1 import telemetry_pb2
from rlaas.training.v1 import training_pb2
from tests.conftest import RunningStack
from tests.helpers import md, new_tenant

pytestmark = pytest.mark.integration

BUF = Path(sys.executable).parent / "buf"
SKILL = "curl_support"
FILES = (inference_pb2, registry_pb2, telemetry_pb2, training_pb2)


@dataclass
class Curl:
    returncode: int
    stdout: str
    stderr: str

    @property
    def body(self) -> dict[str, Any]:
        assert self.returncode == 0, self.stdout + self.stderr
        return dict(json.loads(self.stdout))

    @property
    def error(self) -> dict[str, Any]:
        """The google.rpc.Status buf curl prints (on stderr) for a failed RPC."""
        return dict(json.loads(self.stderr))


async def buf_curl(stack: RunningStack, *args: str) -> Curl:
    assert BUF.exists(), f"{BUF} is missing: run `make setup` (buf-bin)"
    proc = await asyncio.create_subprocess_exec(
        str(BUF),
        "curl",
        "--protocol",
        "grpc",
        "--http2-prior-knowledge",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    assert proc.returncode is not None
    return Curl(proc.returncode, out.decode(), err.decode())


async def call(stack: RunningStack, key: str, method: str, body: dict[str, Any]) -> Curl:
    """One RPC, e.g. `rlaas.inference.v1.InferenceService/Infer`, as the README writes it."""
    return await buf_curl(
        stack,
        "-H",
        f"x-api-key: {key}",
        "-d",
        json.dumps(body),
        f"http://{stack.grpc_target}/{method}",
    )


def rid() -> str:
    return str(uuid.uuid4())


def policy_body(prompt: str) -> dict[str, Any]:
    return {
        "policy": {
            "skillId": SKILL,
            "baseModel": "tiny-llama",
            "promptTemplate": {"systemPrompt": prompt},
            "generationDefaults": {"maxTokens": 8, "temperature": 0},
        },
        "requestId": rid(),
    }


@pytest.fixture(scope="module")
async def admin(stack: RunningStack, channel: grpc.aio.Channel) -> str:
    """A fresh tenant's admin key, with a skill whose v1 is the baseline, set up over
    buf curl as the README does it."""
    _, key = await new_tenant(channel, stack.admin_key, "buf-curl")
    reg = "rlaas.registry.v1.RegistryService"
    made = await call(
        stack, key, f"{reg}/CreateSkill", {"skill": {"skillId": SKILL}, "requestId": rid()}
    )
    assert made.body["skill"]["skillId"] == SKILL
    v1 = (await call(stack, key, f"{reg}/CreatePolicy", policy_body("be brief"))).body
    assert v1["policy"]["policyId"] == f"{SKILL}@v1"
    assert v1["policy"]["state"] == "STATE_CANDIDATE"
    promote = {"skillId": SKILL, "policyId": f"{SKILL}@v1", "reason": "first", "requestId": rid()}
    promoted = (await call(stack, key, f"{reg}/PromotePolicy", promote)).body
    assert promoted["deployment"]["baselinePolicyId"] == f"{SKILL}@v1"
    assert promoted["policy"]["state"] == "STATE_ACTIVE"
    return key


async def test_reflection_lists_the_four_services_and_every_method(stack: RunningStack) -> None:
    base = f"http://{stack.grpc_target}"
    services = (await buf_curl(stack, "--list-services", base)).stdout.split()
    methods = set((await buf_curl(stack, "--list-methods", base)).stdout.split())
    for file in FILES:
        for service in file.DESCRIPTOR.services_by_name.values():
            assert service.full_name in services
            for method in service.methods:
                assert f"{service.full_name}/{method.name}" in methods
    assert "grpc.health.v1.Health" in services


async def test_infer_log_and_feedback(stack: RunningStack, admin: str) -> None:
    # Infer: the gateway answers with the baseline and logs the interaction itself.
    question = {"role": "ROLE_USER", "content": "Where is my order #1234?"}
    answer = (
        await call(
            stack,
            admin,
            "rlaas.inference.v1.InferenceService/Infer",
            {"skill": SKILL, "userId": "u-42", "messages": [question], "requestId": rid()},
        )
    ).body
    assert answer["policyId"] == f"{SKILL}@v1" and answer["text"].strip()
    assert answer["routing"]["reason"] == "REASON_BASELINE"
    assert int(answer["usage"]["completionTokens"]) > 0

    # Log an interaction the app answered itself, then feedback on the gateway's answer.
    tel = "rlaas.telemetry.v1.TelemetryService"
    logged = (
        await call(
            stack,
            admin,
            f"{tel}/CreateInteraction",
            {
                "interaction": {"skill": SKILL, "input": {"text": "Can I return it?"}},
                "output": {"text": "Yes, within 30 days."},
                "requestId": rid(),
            },
        )
    ).body
    assert logged["interaction"]["source"] == "INTERACTION_SOURCE_CLIENT"
    assert logged["output"]["text"] == "Yes, within 30 days."
    feedback = {
        "interactionId": answer["interactionId"],
        "feedback": {
            "explicit": {"thumb": "THUMB_UP"},
            "implicit": {"editedText": "It ships tomorrow.", "sent": True},
        },
        "requestId": rid(),
    }
    stored = (await call(stack, admin, f"{tel}/SubmitFeedback", feedback)).body
    feedback_id = stored["feedback"]["feedbackId"]

    read = (
        await call(
            stack, admin, f"{tel}/GetInteraction", {"interactionId": answer["interactionId"]}
        )
    ).body
    assert read["interaction"]["source"] == "INTERACTION_SOURCE_GATEWAY"
    assert [o["text"] for o in read["outputs"]] == [answer["text"]]
    assert [f["feedbackId"] for f in read["feedback"]] == [feedback_id]
    assert read["feedback"][0]["implicit"] == {"editedText": "It ships tomorrow.", "sent": True}


async def test_promote_then_rollback(
    stack: RunningStack, channel: grpc.aio.Channel, admin: str
) -> None:
    reg = "rlaas.registry.v1.RegistryService"
    before = (await call(stack, admin, f"{reg}/GetDeployment", {"skillId": SKILL})).body
    baseline = before["deployment"]["baselinePolicyId"]
    v2 = (await call(stack, admin, f"{reg}/CreatePolicy", policy_body("be kind"))).body
    v2_id = v2["policy"]["policyId"]
    promote = {"skillId": SKILL, "policyId": v2_id, "reason": "try v2", "requestId": rid()}
    promoted = (await call(stack, admin, f"{reg}/PromotePolicy", promote)).body
    assert promoted["deployment"]["baselinePolicyId"] == v2_id
    rollback = {"skillId": SKILL, "reason": "regression", "requestId": rid()}
    rolled = (await call(stack, admin, f"{reg}/RollbackDeployment", rollback)).body
    assert rolled["deployment"]["baselinePolicyId"] == baseline
    assert int(rolled["deployment"]["revision"]) > int(promoted["deployment"]["revision"])

    # The registry agrees (read through the Python client, not buf).
    got = await registry_pb2_grpc.RegistryServiceStub(channel).GetDeployment(
        registry_pb2.GetDeploymentRequest(skill_id=SKILL), metadata=md(admin)
    )
    assert got.deployment.baseline_policy_id == baseline


async def test_bad_key_is_unauthenticated(stack: RunningStack) -> None:
    got = await call(
        stack, "rlaas_0000000000000000_wrong", "rlaas.registry.v1.RegistryService/ListSkills", {}
    )
    # buf curl exits with the gRPC code shifted left by three bits.
    assert got.returncode == grpc.StatusCode.UNAUTHENTICATED.value[0] << 3
    assert got.error["code"] == "unauthenticated"
    assert got.stdout == ""


async def test_bad_request_names_the_field(stack: RunningStack, admin: str) -> None:
    got = await call(
        stack,
        admin,
        "rlaas.inference.v1.InferenceService/Infer",
        {"skill": SKILL, "requestId": rid()},
    )
    assert got.returncode == grpc.StatusCode.INVALID_ARGUMENT.value[0] << 3
    assert got.error["code"] == "invalid_argument"
    assert "messages" in got.error["message"]
