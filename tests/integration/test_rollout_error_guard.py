"""The rollout guard watches error rates, through the real stack: a candidate whose
adapter no longer loads (its weights were damaged after registration) fails every
request it serves. In shadow the guard rolls it back before any user sees a failure;
in a canary the failed requests users did get are logged and counted, and the guard
rolls back. The candidate ends RETIRED; GetRollout reports both arms' metrics."""

from __future__ import annotations

import uuid
from pathlib import Path

import grpc
import pytest
from google.protobuf import duration_pb2
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from rlaas.inference.v1 import inference_pb2 as inf
from rlaas.inference.v1 import inference_pb2_grpc
from rlaas.registry.v1 import registry_pb2 as reg
from rlaas.telemetry.v1 import telemetry_pb2 as tel
from rlaas.telemetry.v1 import telemetry_pb2_grpc
from rlaas.training.v1 import training_pb2 as pb
from rlaas_sdk.adapters import upload_requests
from tests.conftest import RunningStack
from tests.helpers import stored_path
from tests.integration.test_training_rollouts import Skill, eventually, rid, skill

pytestmark = pytest.mark.integration


async def broken_candidate(s: Skill, stack: RunningStack, tmp_path: Path) -> str:
    """A CANDIDATE with a real LoRA adapter whose weights are overwritten once it is
    registered: the backend refuses it (sha256 mismatch) on every request."""
    from tests.backends.tiny import build_lora_adapter

    directory = tmp_path / "adapter"
    build_lora_adapter(stack.tiny.model_dir, directory, seed=7)
    uploaded = (await s.registry.UploadAdapter(upload_requests(directory), metadata=s.md())).adapter
    made = await s.registry.CreatePolicy(
        reg.CreatePolicyRequest(
            policy=reg.Policy(
                skill_id=s.skill_id, base_model="tiny", description="damaged",
                generation_defaults=reg.GenerationConfig(max_tokens=4),
                adapter=uploaded,
            ),
            request_id=rid(),
        ),
        metadata=s.md(),
    )  # fmt: skip
    weights = stored_path(uploaded.artifact_uri) / "adapter_model.safetensors"
    weights.write_bytes(b"damaged after registration")
    return made.policy.policy_id


def request(user: str, request_id: str | None = None) -> inf.InferRequest:
    return inf.InferRequest(
        request_id=request_id or rid(), skill="support_email", user_id=user,
        messages=[tel.ChatMessage(role=tel.ChatMessage.ROLE_USER, content="Where is my order?")],
    )  # fmt: skip


def seconds(value: float) -> duration_pb2.Duration:
    out = duration_pb2.Duration()
    out.FromNanoseconds(int(value * 1e9))
    return out


async def state(s: Skill, policy_id: str) -> int:
    got = await s.registry.GetPolicy(reg.GetPolicyRequest(policy_id=policy_id), metadata=s.md())
    return got.policy.state


def arms(rollout: pb.Rollout) -> dict[str, pb.ArmMetrics]:
    return {a.policy_id: a for a in rollout.arm_metrics}


async def test_a_failing_candidate_is_rolled_back_in_shadow_before_users_see_it(
    stack: RunningStack, channel: grpc.aio.Channel, tmp_path: Path
) -> None:
    s = await skill(channel, stack, "error-guard-shadow")
    candidate = await broken_candidate(s, stack, tmp_path)
    infer = inference_pb2_grpc.InferenceServiceStub(channel)
    rollout = (
        await s.training.CreateRollout(
            pb.CreateRolloutRequest(
                rollout=pb.Rollout(
                    candidate_policy_id=candidate,
                    plan=pb.RolloutPlan(
                        canary_steps=[pb.CanaryStep(percent=50)],
                        auto_advance=True,
                        guard=pb.RegressionGuard(min_samples=10),
                    ),
                ),
                request_id=rid(),
            ),
            metadata=s.md(),
        )
    ).rollout
    await eventually(s.deployment, lambda d: list(d.traffic.shadow.policy_ids) == [candidate])
    # Users are served by the baseline all along; every shadow run of the candidate fails.
    for i in range(14):
        answer = await infer.Infer(request(f"user-{i}"), metadata=s.md())
        assert answer.policy_id == s.baseline and answer.text
    done = await eventually(
        lambda: s.get(rollout.rollout_id), lambda r: r.state == pb.Rollout.STATE_COMPLETED
    )
    assert done.stage == pb.Rollout.STAGE_ROLLED_BACK and done.automatic_rollback
    assert "error rate 100%" in done.rollback_reason, done.rollback_reason
    metrics = arms(done)
    assert metrics[candidate].error_rate == 1.0 and metrics[candidate].request_count >= 10
    assert metrics[s.baseline].error_rate == 0.0 and metrics[s.baseline].request_count >= 10
    assert metrics[s.baseline].latency_p95.ToNanoseconds() > 0
    deployment = await s.deployment()
    assert deployment.baseline_policy_id == s.baseline
    assert await state(s, candidate) == reg.Policy.STATE_RETIRED
    assert not deployment.traffic.HasField("shadow") or not deployment.traffic.shadow.policy_ids


async def test_canary_errors_are_logged_counted_and_rolled_back(
    stack: RunningStack, channel: grpc.aio.Channel, tmp_path: Path
) -> None:
    s = await skill(channel, stack, "error-guard-canary")
    candidate = await broken_candidate(s, stack, tmp_path)
    infer = inference_pb2_grpc.InferenceServiceStub(channel)
    telemetry = telemetry_pb2_grpc.TelemetryServiceStub(channel)
    rollout = (
        await s.training.CreateRollout(
            pb.CreateRolloutRequest(
                rollout=pb.Rollout(
                    candidate_policy_id=candidate,
                    plan=pb.RolloutPlan(
                        shadow_duration=seconds(0),
                        canary_steps=[pb.CanaryStep(percent=50)],
                        auto_advance=True,
                        guard=pb.RegressionGuard(min_samples=5),
                    ),
                ),
                request_id=rid(),
            ),
            metadata=s.md(),
        )
    ).rollout
    await eventually(s.deployment, lambda d: d.traffic.canary.policy_id == candidate)

    failures: list[tuple[str, str, str]] = []  # (user, request_id, interaction_id)
    served = 0
    for i in range(30):
        user, request_id = f"user-{i}", str(uuid.uuid4())
        try:
            answer = await infer.Infer(request(user, request_id), metadata=s.md())
        except grpc.aio.AioRpcError as err:
            assert err.code() == grpc.StatusCode.FAILED_PRECONDITION, err
            status = rpc_status.from_call(err)
            assert status is not None
            info = error_details_pb2.ErrorInfo()
            assert any(d.Unpack(info) for d in status.details if d.Is(info.DESCRIPTOR))
            failures.append((user, request_id, info.metadata["interaction_id"]))
        else:
            assert answer.policy_id == s.baseline
            served += 1
    assert failures and served, (len(failures), served)

    # The failure is data: an interaction of the candidate whose output ended in ERROR.
    user, request_id, interaction_id = failures[0]
    logged = await telemetry.GetInteraction(
        tel.GetInteractionRequest(interaction_id=interaction_id), metadata=s.md()
    )
    assert logged.interaction.policy_id == candidate
    assert [o.finish_reason for o in logged.outputs] == [tel.FINISH_REASON_ERROR]
    # A retry runs again (a user sticks to an arm) instead of replaying the failure.
    with pytest.raises(grpc.aio.AioRpcError) as again:
        await infer.Infer(request(user, request_id), metadata=s.md())
    assert again.value.code() == grpc.StatusCode.FAILED_PRECONDITION

    done = await eventually(
        lambda: s.get(rollout.rollout_id), lambda r: r.state == pb.Rollout.STATE_COMPLETED
    )
    assert done.stage == pb.Rollout.STAGE_ROLLED_BACK and done.automatic_rollback
    assert "error rate 100%" in done.rollback_reason, done.rollback_reason
    metrics = arms(done)
    assert metrics[candidate].request_count >= len(failures)
    assert metrics[candidate].error_rate == 1.0 and metrics[s.baseline].error_rate == 0.0
    assert await state(s, candidate) == reg.Policy.STATE_RETIRED
    # Rolled back: every user is served again.
    for i in range(6):
        answer = await infer.Infer(request(f"after-{i}"), metadata=s.md())
        assert answer.policy_id == s.baseline
