"""One real learning-loop iteration on the real stack: traffic and edits through the
public API, then the stack's own workers build the dataset from Postgres, train a LoRA
adapter on the GPU queue (the tiny model here), register it as `skill@v2` and gate it
on the golden set. The gate's verdict on a random tiny model is not the point; that the
whole pipeline runs for real, and leaves a verifiable candidate behind, is."""

from __future__ import annotations

import uuid

import grpc
import pytest
from temporalio.client import Client

from rlaas.inference.v1 import inference_pb2 as inf
from rlaas.inference.v1 import inference_pb2_grpc
from rlaas.options.v1 import options_pb2
from rlaas.registry.v1 import registry_pb2 as reg
from rlaas.registry.v1 import registry_pb2_grpc
from rlaas.telemetry.v1 import telemetry_pb2 as tel
from rlaas.telemetry.v1 import telemetry_pb2_grpc
from rlaas.training.v1 import training_pb2 as trn
from rlaas.training.v1 import training_pb2_grpc
from services.objects.store import LocalObjectStore
from services.training.evaluation import golden_set_for, load_safety_suite
from tests.conftest import RunningStack
from tests.helpers import md, new_tenant, scoped_key
from workflows.learning_loop import LearningLoopWorkflow
from workflows.learning_types import LoopConfig, LoopState, RolloutPlan
from workflows.queues import CPU_TASK_QUEUE

pytestmark = pytest.mark.e2e
PROMPTS = ["hello", "one two three", "what is the capital of france", "red green blue",
           "the quick brown fox", "please answer briefly"]  # fmt: skip


def rid() -> str:
    return str(uuid.uuid4())


def user(text: str) -> list[tel.ChatMessage]:
    return [tel.ChatMessage(role=tel.ChatMessage.ROLE_USER, content=text)]


async def test_one_real_iteration(stack: RunningStack, channel: grpc.aio.Channel) -> None:
    tenant_id, admin = await new_tenant(channel, stack.admin_key, "loop-e2e")
    infer_key = await scoped_key(channel, admin, options_pb2.SCOPE_INFER)
    ingest_key = await scoped_key(channel, admin, options_pb2.SCOPE_INGEST)
    r = registry_pb2_grpc.RegistryServiceStub(channel)
    skill = "support_email"
    await r.CreateSkill(
        reg.CreateSkillRequest(skill=reg.Skill(skill_id=skill), request_id=rid()),
        metadata=md(admin),
    )
    v1 = await r.CreatePolicy(
        reg.CreatePolicyRequest(
            policy=reg.Policy(
                skill_id=skill,
                base_model="tiny",
                generation_defaults=reg.GenerationConfig(max_tokens=6),
            ),
            request_id=rid(),
        ),
        metadata=md(admin),
    )
    await r.PromotePolicy(
        reg.PromotePolicyRequest(
            skill_id=skill, policy_id=v1.policy.policy_id, reason="start", request_id=rid()
        ),
        metadata=md(admin),
    )
    g = inference_pb2_grpc.InferenceServiceStub(channel)
    t = telemetry_pb2_grpc.TelemetryServiceStub(channel)
    for i in range(36):
        prompt = f"{PROMPTS[i % len(PROMPTS)]} {i}"
        answer = await g.Infer(
            inf.InferRequest(
                skill=skill, user_id=f"u{i}", thread_id=f"th{i}", request_id=rid(),
                messages=user(prompt),
            ),
            metadata=md(infer_key),
        )  # fmt: skip
        # The user rewrites every answer into what they would send.
        edited = f"hello {i} : the answer is paris , thank you"
        await t.SubmitFeedback(
            tel.SubmitFeedbackRequest(
                interaction_id=answer.interaction_id, request_id=rid(),
                feedback=tel.Feedback(implicit=tel.ImplicitFeedback(edited_text=edited, sent=True)),
            ),
            metadata=md(ingest_key),
        )  # fmt: skip

    client = await Client.connect(stack.settings.temporal_target)
    loop_id = f"loop-e2e-{uuid.uuid4().hex[:8]}"
    state = LoopState(
        tenant_id=tenant_id, skill_id=skill, loop_id=loop_id,
        config=LoopConfig(
            min_new_feedback=1, check_interval_s=1, min_pairs=8, max_iterations=1,
            rollout=RolloutPlan(shadow_requests=1000, poll_interval_s=1, max_stage_s=5),
        ),
    )  # fmt: skip
    # Started as TrainingService starts loops (its workflow id and memo), with a plan
    # the contract cannot express (a 5 s fail-safe), so that GetLearningLoop reads it.
    result: LoopState = await client.execute_workflow(
        LearningLoopWorkflow.run, state, id=f"loop/{tenant_id}/{loop_id}",
        task_queue=CPU_TASK_QUEUE, memo={"skill_id": skill},
    )  # fmt: skip
    [summary] = result.history
    # The baseline answered the gate's packaged prompts while the loop waited (on the
    # GPU worker), and the gate added the candidate's: one cached answer per policy and
    # prompt (16 golden prompts, the worker's default, and the safety suite).
    history = await client.get_workflow_handle(f"loop/{tenant_id}/{loop_id}").fetch_history()
    scheduled = {
        e.event_id: e.activity_task_scheduled_event_attributes.activity_type.name
        for e in history.events
        if e.HasField("activity_task_scheduled_event_attributes")
    }
    completed = [
        scheduled[e.activity_task_completed_event_attributes.scheduled_event_id]
        for e in history.events
        if e.HasField("activity_task_completed_event_attributes")
    ]
    assert completed.count("warm_gate_answers") == 1, completed
    cached = await LocalObjectStore(stack.settings.objects_dir).list(f"gate-answers/{tenant_id}/")
    assert len(cached) == 2 * (len(golden_set_for(skill)[:16]) + len(load_safety_suite()))
    # A finished loop still reports its iterations (from its result: it takes no queries).
    train_key = await scoped_key(channel, admin, options_pb2.SCOPE_TRAIN)
    finished = (
        await training_pb2_grpc.TrainingServiceStub(channel).GetLearningLoop(
            trn.GetLearningLoopRequest(learning_loop_id=loop_id), metadata=md(train_key)
        )
    ).learning_loop
    assert finished.state == trn.LearningLoop.STATE_COMPLETED and finished.iteration == 1
    [reported] = finished.recent_iterations
    assert reported.candidate_policy_id == summary.candidate_policy_id
    assert reported.outcome != trn.LearningLoopIteration.OUTCOME_UNSPECIFIED
    # The iteration names the dataset it trained on, readable as a resource.
    assert reported.dataset_id == summary.dataset_id != ""
    dataset = (
        await training_pb2_grpc.TrainingServiceStub(channel).GetPreferenceDataset(
            trn.GetPreferenceDatasetRequest(dataset_id=reported.dataset_id),
            metadata=md(train_key),
        )
    ).preference_dataset
    assert dataset.learning_loop_id == loop_id and dataset.pair_count > 0
    assert summary.outcome in ("promoted", "rolled_back", "rejected_by_eval"), summary
    await _iteration_is_visible(channel, train_key, skill, loop_id, finished, reported)
    assert summary.dataset_uri.startswith("file://") and summary.adapter_uri.startswith("file://")
    candidate = await r.GetPolicy(
        reg.GetPolicyRequest(policy_id=summary.candidate_policy_id), metadata=md(admin)
    )
    assert candidate.policy.policy_id == f"{skill}@v2"
    assert candidate.policy.parent_policy_id == v1.policy.policy_id
    assert len(candidate.policy.adapter.sha256) == 64
    pin = inf.InferRequest(
        skill=skill, policy_id=candidate.policy.policy_id, request_id=rid(),
        messages=user("hello"),
    )  # fmt: skip
    if summary.outcome == "rolled_back":
        # The gate passed it; no traffic arrived for the shadow stage within its 5 s:
        # the fail-safe rolled back, and the rollback retired the candidate.
        assert summary.evaluation_passed
        deployment = await r.GetDeployment(
            reg.GetDeploymentRequest(skill_id=skill), metadata=md(admin)
        )
        assert deployment.deployment.baseline_policy_id == v1.policy.policy_id
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await g.Infer(pin, metadata=md(infer_key))
        assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "retired" in str(info.value.details())
    else:
        # The candidate serves: its adapter loads (sha verified) and answers.
        pinned = await g.Infer(pin, metadata=md(infer_key))
        assert pinned.policy_id == candidate.policy.policy_id


async def _iteration_is_visible(
    channel: grpc.aio.Channel, train_key: str, skill: str, loop_id: str,
    loop: trn.LearningLoop, reported: trn.LearningLoopIteration,
) -> None:  # fmt: skip
    """GetLearningLoop fills every field of a finished iteration and of the loop, and
    the iteration's training run and gate are resources of their own: read, listed,
    and tied back to the loop."""
    assert reported.HasField("start_time") and reported.HasField("end_time")
    assert reported.start_time.ToDatetime() <= reported.end_time.ToDatetime()
    assert loop.HasField("create_time") and loop.HasField("update_time")
    assert loop.create_time.ToDatetime() <= reported.start_time.ToDatetime()
    # The config as it ran: the server's defaults filled in.
    assert loop.config.min_pairs > 0 and loop.config.training.lora.rank > 0
    assert loop.config.training.hyperparameters.learning_rate > 0
    assert loop.config.evaluation.gate.min_win_rate > 0
    training = training_pb2_grpc.TrainingServiceStub(channel)
    run = (
        await training.GetTrainingRun(
            trn.GetTrainingRunRequest(training_run_id=reported.training_run_id),
            metadata=md(train_key),
        )
    ).training_run
    assert run.state == trn.TrainingRun.STATE_SUCCEEDED, run.error
    assert (run.learning_loop_id, run.skill_id) == (loop_id, skill)
    assert run.dataset_id == reported.dataset_id
    assert run.lineage.produced_policy_id == reported.candidate_policy_id
    assert run.config.lora.rank == loop.config.training.lora.rank
    assert run.progress.step > 0 and run.HasField("end_time")
    runs = await training.ListTrainingRuns(
        trn.ListTrainingRunsRequest(skill_id=skill), metadata=md(train_key)
    )
    assert [r.training_run_id for r in runs.training_runs] == [reported.training_run_id]
    evaluation = (
        await training.GetEvaluation(
            trn.GetEvaluationRequest(evaluation_id=reported.evaluation_id),
            metadata=md(train_key),
        )
    ).evaluation
    assert evaluation.state == trn.Evaluation.STATE_SUCCEEDED, evaluation.error
    assert evaluation.learning_loop_id == loop_id
    assert evaluation.candidate_policy_id == reported.candidate_policy_id
    assert evaluation.training_run_id == reported.training_run_id
    # The iteration's own held-out pairs decided, by their likelihoods under both
    # policies; the skill's golden set guarded (answers scored by similarity).
    assert evaluation.config.dataset_id == reported.dataset_id
    scorers = [(w.scorer, w.scorer_version) for w in evaluation.result.win_rates]
    assert scorers == [("held_out_preference", ""), ("reference_similarity", "")]
    assert evaluation.result.win_rate == pytest.approx(reported.win_rate)
    assert evaluation.result.passed == reported.evaluation_passed
    assert reported.win_rate_ci_lower <= reported.win_rate <= reported.win_rate_ci_upper
    if not reported.evaluation_passed:
        assert reported.reason and reported.outcome == trn.LearningLoopIteration.OUTCOME_REJECTED
    evaluations = await training.ListEvaluations(
        trn.ListEvaluationsRequest(skill_id=skill), metadata=md(train_key)
    )
    assert [e.evaluation_id for e in evaluations.evaluations] == [reported.evaluation_id]
