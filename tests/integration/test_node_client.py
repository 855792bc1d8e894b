"""The Node/TypeScript example (sdk/node, on the ts-proto client generated into gen/ts)
against the real server: what it logs, asks and sends is checked through the Python
gRPC API. Node and the npm packages come from `make node-deps` (CI has node): a missing
one fails the test instead of skipping it."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import uuid
from dataclasses import dataclass
from typing import Any

import grpc
import pytest

from rlaas.options.v1 import options_pb2
from rlaas.registry.v1 import registry_pb2 as reg
from rlaas.registry.v1 import registry_pb2_grpc
from rlaas.telemetry.v1 import telemetry_pb2 as tel
from rlaas.telemetry.v1 import telemetry_pb2_grpc
from tests.conftest import RunningStack
from tests.helpers import ROOT, md, new_tenant, scoped_key

pytestmark = pytest.mark.integration

NODE_DIR = ROOT / "sdk" / "node"
TSX = NODE_DIR / "node_modules" / ".bin" / "tsx"
EXAMPLE = "examples/support_flow.ts"
SKILL = "node_support"


@dataclass
class NodeTenant:
    tenant_id: str
    admin: str
    app_key: str  # SCOPE_INGEST + SCOPE_INFER: what the example needs, nothing more
    policy_id: str


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str

    def summary(self) -> dict[str, Any]:
        """The example's last line: a JSON object with the ids it got back."""
        return dict(json.loads(self.stdout.strip().splitlines()[-1]))


def rid() -> str:
    return str(uuid.uuid4())


@pytest.fixture(scope="module")
async def tenant(stack: RunningStack, channel: grpc.aio.Channel) -> NodeTenant:
    tenant_id, admin = await new_tenant(channel, stack.admin_key, "node-client")
    registry = registry_pb2_grpc.RegistryServiceStub(channel)
    await registry.CreateSkill(
        reg.CreateSkillRequest(skill=reg.Skill(skill_id=SKILL), request_id=rid()),
        metadata=md(admin),
    )
    made = await registry.CreatePolicy(
        reg.CreatePolicyRequest(
            policy=reg.Policy(
                skill_id=SKILL,
                base_model="tiny-llama",
                prompt_template=reg.PromptTemplate(system_prompt="answer briefly"),
                generation_defaults=reg.GenerationConfig(max_tokens=8, temperature=0.0),
            ),
            request_id=rid(),
        ),
        metadata=md(admin),
    )
    policy_id = made.policy.policy_id
    await registry.PromotePolicy(
        reg.PromotePolicyRequest(
            skill_id=SKILL, policy_id=policy_id, reason="node test", request_id=rid()
        ),
        metadata=md(admin),
    )
    key = await scoped_key(channel, admin, options_pb2.SCOPE_INGEST, options_pb2.SCOPE_INFER)
    return NodeTenant(tenant_id, admin, key, policy_id)


async def run_example(stack: RunningStack, api_key: str, skill: str = SKILL) -> Run:
    assert shutil.which("node"), "node is not installed (the Node client tests need node >= 20)"
    assert TSX.exists(), f"{TSX.relative_to(ROOT)} is missing: run `make node-deps`"
    env = {k: v for k, v in os.environ.items() if not k.startswith("RLAAS_")}
    env.update(RLAAS_TARGET=stack.grpc_target, RLAAS_API_KEY=api_key, RLAAS_SKILL=skill)
    proc = await asyncio.create_subprocess_exec(
        str(TSX),
        EXAMPLE,
        cwd=NODE_DIR,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    assert proc.returncode is not None
    return Run(proc.returncode, out.decode(), err.decode())


async def test_example_logs_infers_and_sends_feedback(
    stack: RunningStack, channel: grpc.aio.Channel, tenant: NodeTenant
) -> None:
    run = await run_example(stack, tenant.app_key)
    assert run.returncode == 0, run.stdout + run.stderr
    got = run.summary()
    assert got["policy_id"] == tenant.policy_id and got["text"].strip()
    assert f"answer from {tenant.policy_id}" in run.stdout

    telemetry = telemetry_pb2_grpc.TelemetryServiceStub(channel)
    reader = md(tenant.admin)

    # 1. The interaction the app logged itself, with its output, in the key's tenant.
    logged = await telemetry.GetInteraction(
        tel.GetInteractionRequest(interaction_id=got["logged_interaction_id"]), metadata=reader
    )
    assert logged.interaction.tenant_id == tenant.tenant_id
    assert logged.interaction.source == tel.INTERACTION_SOURCE_CLIENT
    assert logged.interaction.skill == SKILL
    assert logged.interaction.input.text == "Where is my order #1234?"
    assert logged.interaction.labels["channel"] == "node-example"
    assert [o.text for o in logged.outputs] == ["Your order #1234 ships tomorrow."]

    # 2. The answer: logged by the gateway, with the text the example printed.
    served = await telemetry.GetInteraction(
        tel.GetInteractionRequest(interaction_id=got["interaction_id"]), metadata=reader
    )
    assert served.interaction.source == tel.INTERACTION_SOURCE_GATEWAY
    assert served.interaction.policy_id == tenant.policy_id
    assert served.interaction.user_id == "node-example-user"
    assert [(o.output_id, o.text) for o in served.outputs] == [(got["output_id"], got["text"])]

    # 3. The feedback on that answer, every field as the example sent it.
    assert [f.feedback_id for f in served.feedback] == [got["feedback_id"]]
    feedback = served.feedback[0]
    assert feedback.output_id == got["output_id"]
    assert feedback.explicit.thumb == tel.ExplicitFeedback.THUMB_UP
    assert feedback.explicit.rating == 5
    assert feedback.implicit.edited_text == got["edited_text"]
    assert feedback.implicit.sent is True and feedback.implicit.time_to_send_ms == 4200


async def test_example_fails_on_a_bad_key(stack: RunningStack) -> None:
    run = await run_example(stack, "rlaas_0000000000000000_not-a-real-key")
    assert run.returncode == 1
    assert "error: UNAUTHENTICATED" in run.stderr, run.stderr
    assert "logged interaction" not in run.stdout


async def test_example_reports_a_missing_skill(stack: RunningStack, tenant: NodeTenant) -> None:
    run = await run_example(stack, tenant.app_key, skill="no_such_skill")
    assert run.returncode == 1
    # Logging an interaction for any skill is allowed; answering needs the skill.
    assert "logged interaction" in run.stdout
    assert "error: NOT_FOUND" in run.stderr, run.stderr
