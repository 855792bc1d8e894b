"""The main job until the learning loop lands: bring-up check of the whole stack
through its public interfaces only (gRPC with an API key, Temporal, Milvus).

Without ``--api-key`` it mints a short-lived operator admin key through the domain core
(the operator runs this on the machine that holds the database) and revokes it at the
end, so no secret is left lying around.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Awaitable, Callable

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from infra.operator_key import temporary_operator_key
from infra.stack import milvus_ready
from rlaas.inference.v1 import inference_pb2, inference_pb2_grpc
from rlaas.options.v1 import options_pb2
from rlaas.registry.v1 import registry_pb2, registry_pb2_grpc
from rlaas.telemetry.v1 import telemetry_pb2, telemetry_pb2_grpc
from rlaas_sdk import Client
from services.app import service_specs
from services.config import Settings
from services.temporal import connect
from workflows.queues import CPU_TASK_QUEUE
from workflows.stack_check import StackCheckInput, StackCheckResult, StackCheckWorkflow


def _md(key: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {key}"),)


async def _expect_code(call: Awaitable[object], code: grpc.StatusCode) -> None:
    try:
        await call
    except grpc.aio.AioRpcError as err:
        if err.code() == code:
            return
        raise AssertionError(f"expected {code.name}, got {err.code().name}") from err
    raise AssertionError(f"expected {code.name}, got OK")


async def run_smoke(
    settings: Settings, api_key: str | None, echo: Callable[[str], None] = print
) -> int:
    cleanup = None
    if api_key is None:
        api_key, cleanup = await temporary_operator_key(settings)
    try:
        async with grpc.aio.insecure_channel(settings.grpc_target) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            for spec in service_specs().values():
                reply = await health.Check(
                    health_pb2.HealthCheckRequest(service=spec.descriptor.full_name), timeout=5
                )
                status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
                echo(f"health       {spec.descriptor.full_name}: {status}")
                if reply.status != health_pb2.HealthCheckResponse.SERVING:
                    return 1

            registry = registry_pb2_grpc.RegistryServiceStub(channel)
            me = await registry.GetCallerIdentity(
                registry_pb2.GetCallerIdentityRequest(), metadata=_md(api_key), timeout=5
            )
            echo(f"auth         caller tenant={me.tenant_id} key={me.api_key_id}")

            made = await registry.CreateApiKey(
                registry_pb2.CreateApiKeyRequest(
                    api_key=registry_pb2.ApiKey(
                        display_name="smoke ingest key", scopes=[options_pb2.SCOPE_INGEST]
                    ),
                    request_id=str(uuid.uuid4()),
                ),
                metadata=_md(api_key),
                timeout=5,
            )
            await _expect_code(
                registry.ListApiKeys(
                    registry_pb2.ListApiKeysRequest(), metadata=_md(made.secret), timeout=5
                ),
                grpc.StatusCode.PERMISSION_DENIED,
            )
            echo("auth         ingest-only key on an admin RPC: PERMISSION_DENIED")

            # Telemetry through the SDK, as an application would send it.
            with Client(settings.grpc_target, made.secret) as sdk:
                interaction_id = sdk.log(
                    "smoke_check",
                    input="Contact me at smoke@example.com about order 1234.",
                    output="Your order ships today.",
                    user_id="smoke-user",
                )
                sdk.feedback(interaction_id, thumb=+1, edited_text="It ships today.", sent=True)
                if not sdk.flush(timeout_s=30):
                    echo("telemetry    SDK could not deliver its events")
                    return 1
            telemetry = telemetry_pb2_grpc.TelemetryServiceStub(channel)
            got = await telemetry.GetInteraction(
                telemetry_pb2.GetInteractionRequest(interaction_id=interaction_id),
                metadata=_md(made.secret),
                timeout=5,
            )
            echo(
                f"telemetry    interaction {interaction_id}: {len(got.outputs)} output, "
                f"{len(got.feedback)} feedback; stored input: {got.interaction.input.text!r}"
            )
            await registry.RevokeApiKey(
                registry_pb2.RevokeApiKeyRequest(
                    api_key_id=made.api_key.api_key_id, request_id=str(uuid.uuid4())
                ),
                metadata=_md(api_key),
                timeout=5,
            )
            await _expect_code(
                registry.GetCallerIdentity(
                    registry_pb2.GetCallerIdentityRequest(), metadata=_md(made.secret), timeout=5
                ),
                grpc.StatusCode.UNAUTHENTICATED,
            )
            echo("auth         revoked key: UNAUTHENTICATED")

            # The gateway on the real model: a skill, a policy, a deployment, an answer.
            # Fixed request ids make a re-run replay these instead of adding more.
            await registry.CreateSkill(
                registry_pb2.CreateSkillRequest(
                    skill=registry_pb2.Skill(skill_id="smoke_check"), request_id="smoke-skill-1"
                ),
                metadata=_md(api_key),
                timeout=10,
            )
            wanted = registry_pb2.Policy(
                skill_id="smoke_check",
                base_model="SmolLM2-135M-Instruct",
                prompt_template=registry_pb2.PromptTemplate(
                    system_prompt="You are a friendly support agent. Answer briefly."
                ),
                generation_defaults=registry_pb2.GenerationConfig(max_tokens=40),
            )
            # Keyed by content: the same policy replays, a changed one becomes vN+1.
            content = hashlib.sha256(wanted.SerializeToString(deterministic=True)).hexdigest()
            policy = await registry.CreatePolicy(
                registry_pb2.CreatePolicyRequest(policy=wanted, request_id=f"smoke-{content[:24]}"),
                metadata=_md(api_key),
                timeout=10,
            )
            await registry.PromotePolicy(
                registry_pb2.PromotePolicyRequest(
                    skill_id="smoke_check", policy_id=policy.policy.policy_id,
                    reason="smoke job", request_id=f"smoke-promote-{policy.policy.policy_id}",
                ),
                metadata=_md(api_key),
                timeout=10,
            )  # fmt: skip
            echo("inference    loading the model (the first run dequantizes the GGUF, ~20 s)")
            answer = await inference_pb2_grpc.InferenceServiceStub(channel).Infer(
                inference_pb2.InferRequest(
                    skill="smoke_check",
                    messages=[
                        telemetry_pb2.ChatMessage(
                            role=telemetry_pb2.ChatMessage.ROLE_USER,
                            content="Hi, when will my order arrive?",
                        )
                    ],
                    user_id="smoke-user",
                    request_id=str(uuid.uuid4()),
                ),
                metadata=_md(api_key),
                timeout=300,
            )
            echo(
                f"inference    {answer.policy_id} ({answer.usage.completion_tokens} tokens, "
                f"{answer.latency.ToTimedelta().total_seconds():.2f} s): {answer.text.strip()!r}"
            )

        client = await connect(settings)
        result: StackCheckResult = await client.execute_workflow(
            StackCheckWorkflow.run,
            StackCheckInput("smoke", settings.gpu_task_queue),
            id=f"stack-check-{uuid.uuid4()}",
            task_queue=CPU_TASK_QUEUE,
        )
        echo(f"temporal     cpu queue ran on {result.cpu.worker} ({result.cpu.device})")
        echo(f"temporal     gpu queue ran on {result.gpu.worker} ({result.gpu.device})")

        token = settings.milvus_token.get_secret_value() if settings.milvus_token else None
        await milvus_ready(settings.milvus_target, token)
        echo(f"milvus       {settings.milvus_target}: list_collections OK")
        echo("smoke: PASSED")
        return 0
    finally:
        if cleanup is not None:
            await cleanup()
