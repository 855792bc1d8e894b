"""The learning loop's small activities against the real registry, gateway and Postgres
(run through Temporal's ActivityEnvironment)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import grpc
import pytest
from temporalio.testing import ActivityEnvironment

from rlaas.inference.v1 import inference_pb2 as inf
from rlaas.inference.v1 import inference_pb2_grpc
from rlaas.options.v1 import options_pb2
from rlaas.registry.v1 import registry_pb2 as reg
from rlaas.registry.v1 import registry_pb2_grpc
from rlaas.telemetry.v1 import telemetry_pb2 as tel
from rlaas.telemetry.v1 import telemetry_pb2_grpc
from services.db.engine import create_engine, create_session_factory
from services.objects.store import LocalObjectStore
from tests.conftest import RunningStack
from tests.helpers import md, new_tenant, scoped_key, upload_adapter
from workers.learning_activities import LearningActivities
from workflows.learning_types import (
    BaselineInput,
    CountFeedbackInput,
    ObserveInput,
    RegisterCandidateInput,
    SetStageInput,
)

pytestmark = pytest.mark.integration


def rid() -> str:
    return str(uuid.uuid4())


async def test_register_stage_observe_and_count(
    stack: RunningStack, channel: grpc.aio.Channel
) -> None:
    tenant_id, admin = await new_tenant(channel, stack.admin_key, "loop-activities")
    infer_key = await scoped_key(channel, admin, options_pb2.SCOPE_INFER)
    ingest_key = await scoped_key(channel, admin, options_pb2.SCOPE_INGEST)
    r = registry_pb2_grpc.RegistryServiceStub(channel)
    skill = "drafts"
    await r.CreateSkill(
        reg.CreateSkillRequest(skill=reg.Skill(skill_id=skill), request_id=rid()),
        metadata=md(admin),
    )
    v1 = (await r.CreatePolicy(
        reg.CreatePolicyRequest(policy=reg.Policy(skill_id=skill, base_model="tiny",
                                                  generation_defaults=reg.GenerationConfig(max_tokens=4)),
                                request_id=rid()),
        metadata=md(admin),
    )).policy.policy_id  # fmt: skip
    await r.PromotePolicy(
        reg.PromotePolicyRequest(skill_id=skill, policy_id=v1, reason="start", request_id=rid()),
        metadata=md(admin),
    )
    engine = create_engine(stack.database_url, pool_size=2)
    acts = LearningActivities(
        engine, create_session_factory(engine), LocalObjectStore(stack.settings.objects_dir)
    )
    env = ActivityEnvironment()
    try:
        assert (
            await env.run(acts.current_baseline, BaselineInput(tenant_id, skill))
        ).policy_id == v1
        uploaded = await upload_adapter(channel, admin, stack.tiny.adapters["a"][0])
        uri, sha = uploaded.artifact_uri, uploaded.sha256
        made = RegisterCandidateInput(tenant_id, skill, v1, uri, sha, "run-1")
        candidate = (await env.run(acts.register_candidate, made)).policy_id
        assert candidate == f"{skill}@v2"
        # A retried activity replays: no v3.
        assert (await env.run(acts.register_candidate, made)).policy_id == candidate
        got = await r.GetPolicy(reg.GetPolicyRequest(policy_id=candidate), metadata=md(admin))
        assert got.policy.parent_policy_id == v1 and got.policy.adapter.sha256 == sha

        since = datetime.now(UTC).isoformat()
        await env.run(
            acts.set_rollout_stage,
            SetStageInput(tenant_id, skill, "canary", candidate, 50, "ro-1", "test"),
        )
        await asyncio.sleep(1.0)  # the documented propagation bound
        g = inference_pb2_grpc.InferenceServiceStub(channel)
        t = telemetry_pb2_grpc.TelemetryServiceStub(channel)
        served: dict[str, int] = {}
        for i in range(60):
            hello = tel.ChatMessage(role=tel.ChatMessage.ROLE_USER, content="hello")
            answer = await g.Infer(
                inf.InferRequest(skill=skill, user_id=f"u{i}", request_id=rid(), messages=[hello]),
                metadata=md(infer_key),
            )
            served[answer.policy_id] = served.get(answer.policy_id, 0) + 1
            # Users dislike the candidate: they rewrite and discard its answers, and send
            # the baseline's untouched. No thumbs, no ratings: the guard must read the
            # implicit signals (through the skill's reward engine) to reject the canary.
            if answer.policy_id == candidate:
                implicit = tel.ImplicitFeedback(
                    edited_text="Completely different reply written by hand.",
                    sent=False,
                    time_to_send_ms=240_000,
                )
            else:
                implicit = tel.ImplicitFeedback(
                    edited_text=answer.text, sent=True, time_to_send_ms=3_000
                )
            await t.SubmitFeedback(
                tel.SubmitFeedbackRequest(interaction_id=answer.interaction_id, request_id=rid(),
                                          feedback=tel.Feedback(implicit=implicit)),
                metadata=md(ingest_key),
            )  # fmt: skip
        assert set(served) == {v1, candidate}
        counted = await env.run(
            acts.count_new_feedback, CountFeedbackInput(tenant_id, skill, since)
        )
        assert counted.count == 60
        observed = await env.run(
            acts.observe_rollout, ObserveInput(tenant_id, skill, candidate, v1, since, "canary", 10)
        )
        assert observed.decision == "reject", observed
        await env.run(
            acts.set_rollout_stage,
            SetStageInput(tenant_id, skill, "rollback", candidate, 0, "ro-1", "regression"),
        )
        deployment = await r.GetDeployment(
            reg.GetDeploymentRequest(skill_id=skill), metadata=md(admin)
        )
        assert deployment.deployment.baseline_policy_id == v1
        assert deployment.deployment.traffic.WhichOneof("strategy") is None
    finally:
        await engine.dispose()


async def test_dataset_and_evaluation_activities(
    stack: RunningStack, channel: grpc.aio.Channel
) -> None:
    import json
    from urllib.parse import unquote

    from services.inference.backends.local import LocalBackend, LocalBackendConfig
    from services.registry.service import RegistryCore
    from services.training.evaluation import load_safety_suite
    from workers.dataset_activities import DatasetActivities
    from workers.evaluation_activities import EvaluationActivities
    from workflows.learning_types import (
        BuildDatasetInput,
        EvaluateInput,
        WarmGateInput,
        WarmGateOutput,
    )

    tenant_id, admin = await new_tenant(channel, stack.admin_key, "loop-eval")
    r = registry_pb2_grpc.RegistryServiceStub(channel)
    skill = "support_email"
    await r.CreateSkill(
        reg.CreateSkillRequest(skill=reg.Skill(skill_id=skill), request_id=rid()),
        metadata=md(admin),
    )
    ids = []
    for upload in (False, True):
        policy = reg.Policy(skill_id=skill, base_model="tiny")
        if upload:
            policy.adapter.CopyFrom(
                await upload_adapter(channel, admin, stack.tiny.adapters["a"][0])
            )
        made = await r.CreatePolicy(
            reg.CreatePolicyRequest(policy=policy, request_id=rid()), metadata=md(admin)
        )
        ids.append(made.policy.policy_id)
    engine = create_engine(stack.database_url, pool_size=2)
    objects = LocalObjectStore(stack.settings.objects_dir)
    backend = LocalBackend(LocalBackendConfig(model_dir=stack.tiny.model_dir))
    env = ActivityEnvironment()
    try:
        # A tenant with no feedback yet: not enough pairs, so no dataset (and no training).
        built = await env.run(
            DatasetActivities(engine, objects).build_preference_dataset,
            BuildDatasetInput(tenant_id, skill, "", datetime.now(UTC).isoformat(), 8),
        )
        assert (built.dataset_uri, built.pairs) == ("", 0)

        async def open_backend() -> LocalBackend:
            return backend

        evaluation = EvaluationActivities(
            RegistryCore(create_session_factory(engine), objects), objects, open_backend,
            max_examples=6, max_new_tokens=8,
        )  # fmt: skip
        verdict = await env.run(
            evaluation.evaluate_candidate, EvaluateInput(tenant_id, skill, ids[1], ids[0])
        )
        assert 0.0 <= verdict.win_rate <= 1.0 and verdict.ci_low <= verdict.ci_high
        key = verdict.report_uri.split("/objects/", 1)[1]
        report = json.loads(await objects.get(unquote(key)))
        assert report["example_count"] == 6 and report["passed"] == verdict.passed

        # The packaged prompts' answers (6 golden, the safety suite) are cached per
        # policy: evaluating the same pair again asks the model nothing and decides the
        # same; the answers stay in the tenant's own namespace.
        cached = await objects.list(f"gate-answers/{tenant_id}/")
        assert len(cached) == 2 * (6 + len(load_safety_suite()))
        requests = backend.stats["requests"]
        again = await env.run(
            evaluation.evaluate_candidate,
            EvaluateInput(tenant_id, skill, ids[1], ids[0], evaluation_id="again"),
        )
        assert backend.stats["requests"] == requests
        assert (again.win_rate, again.passed, again.p_value) == (
            verdict.win_rate, verdict.passed, verdict.p_value,
        )  # fmt: skip
        assert sorted(await objects.list(f"gate-answers/{tenant_id}/")) == sorted(cached)
        # A new candidate against the same baseline: only the candidate is asked.
        policy = reg.Policy(skill_id=skill, base_model="tiny")
        policy.adapter.CopyFrom(await upload_adapter(channel, admin, stack.tiny.adapters["b"][0]))
        third = (await r.CreatePolicy(
            reg.CreatePolicyRequest(policy=policy, request_id=rid()), metadata=md(admin)
        )).policy.policy_id  # fmt: skip
        await env.run(evaluation.evaluate_candidate, EvaluateInput(tenant_id, skill, third, ids[0]))
        packaged = 6 + len(load_safety_suite())
        assert backend.stats["requests"] == requests + packaged
        # The loop's warm-up, for a policy no gate has seen (its own system prompt): every
        # packaged prompt answered once; a second warm-up, and then its gate, ask nothing.
        brief = reg.Policy(skill_id=skill, base_model="tiny")
        brief.prompt_template.system_prompt = "Be brief."
        fourth = (await r.CreatePolicy(
            reg.CreatePolicyRequest(policy=brief, request_id=rid()), metadata=md(admin)
        )).policy.policy_id  # fmt: skip
        warm = WarmGateInput(tenant_id, skill, fourth, max_examples=6)
        assert await env.run(evaluation.warm_gate_answers, warm) == WarmGateOutput(
            packaged, packaged
        )
        assert await env.run(evaluation.warm_gate_answers, warm) == WarmGateOutput(packaged, 0)
        requests = backend.stats["requests"]
        await env.run(evaluation.evaluate_candidate, EvaluateInput(tenant_id, skill, third, fourth))
        assert backend.stats["requests"] == requests
    finally:
        await backend.close()
        await engine.dispose()
