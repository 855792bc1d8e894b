"""CreateEvaluation with a pairwise LLM judge and on a preference dataset's eval split,
through the real server, Temporal and the GPU-queue worker (the stack's tiny model
answers and judges, on the local backend): the result carries the win-rate by the judge
and by the reward heuristic, each with its interval and p-value; a repeated evaluation
reads every verdict from the judge's cache; a dataset's held-out prompts replace the
golden set; bad configs fail with their codes and fields."""

from __future__ import annotations

import json
import random

import grpc
import pytest
from temporalio.client import Client

from rlaas.inference.v1 import inference_pb2 as inf
from rlaas.inference.v1 import inference_pb2_grpc
from rlaas.options.v1 import options_pb2
from rlaas.telemetry.v1 import telemetry_pb2 as tel
from rlaas.telemetry.v1 import telemetry_pb2_grpc
from rlaas.training.v1 import training_pb2 as pb
from services.objects.store import LocalObjectStore, key_for_uri
from services.training.evaluation import load_golden_set
from services.training.preferences import read_parquet
from services.training.workflow_resources import pack
from tests.conftest import RunningStack
from tests.helpers import md, rich_error, scoped_key
from tests.integration.test_training_runs import (
    SKILL,
    WORDS,
    Tenant,
    create_dataset,
    error_reason,
    eventually,
    fails,
    rid,
    tenant,
)
from workflows.evaluation import EvaluationWorkflow, evaluation_workflow_id
from workflows.learning_types import EvaluateInput, EvaluationInput, JudgeSpec
from workflows.queues import CPU_TASK_QUEUE

pytestmark = pytest.mark.integration

FINISHED = (pb.Evaluation.STATE_SUCCEEDED, pb.Evaluation.STATE_FAILED)
SMALL = {"max_examples": 2, "safety_suites": ["jailbreak"]}


async def evaluate(t: Tenant, candidate: str, config: pb.EvaluationConfig) -> pb.EvaluationResult:
    created = await t.create_eval(pb.Evaluation(candidate_policy_id=candidate, config=config))
    done = await eventually(
        lambda: t.get_eval(created.evaluation_id), lambda e: e.state in FINISHED
    )
    assert done.state == pb.Evaluation.STATE_SUCCEEDED, done.error
    return done.result


async def test_a_judged_evaluation_reports_judge_and_heuristic_win_rates_and_caches_verdicts(
    stack: RunningStack, channel: grpc.aio.Channel
) -> None:
    t = await tenant(channel, stack, "evals-judge")
    tone = pb.RubricCriterion(name="tone", description="polite")
    judge = pb.JudgeConfig(votes=2, swap_positions=True, judge_version="tiny-judge-1",
                           rubric=[tone])  # fmt: skip
    config = pb.EvaluationConfig(judge=judge, **SMALL)
    first = await evaluate(t, t.candidate, config)

    assert first.example_count == 2
    by_judge, by_similarity = first.win_rates
    assert by_judge.scorer == "judge" and by_judge.scorer_version.startswith("judge-")
    assert by_similarity.scorer == "reference_similarity" and not by_similarity.scorer_version
    for estimate in first.win_rates:
        assert estimate.wins + estimate.losses + estimate.ties == 2
        assert 0 <= estimate.win_rate_ci_lower <= estimate.win_rate <= estimate.win_rate_ci_upper
        assert 0 <= estimate.p_value <= 1
    # The gate's statistics are the judge's.
    assert (first.win_rate, first.p_value, first.wins) == (
        by_judge.win_rate, by_judge.p_value, by_judge.wins,
    )  # fmt: skip
    summary = first.judge
    assert summary.judge_version == by_judge.scorer_version
    assert (summary.judge_version_label, summary.judge_model) == ("tiny-judge-1", "")
    assert summary.verdict_count == 2 * 2 * 2  # pairs x prompts (votes) x both orders
    assert 0 <= summary.invalid_verdict_count <= summary.verdict_count
    assert all(s.rationale.startswith("p(candidate better)=") for s in first.samples)
    # Verdicts are cached in the object store by content hash, under the judge version.
    store = LocalObjectStore(stack.settings.objects_dir)
    cached = list((store.root / "judge-cache" / t.tenant_id / summary.judge_version).glob("*.json"))
    assert len(cached) >= summary.verdict_count - summary.cache_hits > 0

    # The same evaluation again (greedy answers repeat): every verdict from the cache.
    again = await evaluate(t, t.candidate, config)
    assert again.judge.judge_version == summary.judge_version
    assert again.judge.cache_hits == again.judge.verdict_count == summary.verdict_count
    assert [w.win_rate for w in again.win_rates] == [w.win_rate for w in first.win_rates]
    # Another tenant judging the very same texts shares nothing: not even a cache hit.
    other = await tenant(channel, stack, "evals-judge-other")
    theirs = await evaluate(other, other.candidate, config)
    assert theirs.judge.verdict_count == summary.verdict_count
    assert theirs.judge.cache_hits == 0

    # A policy of the tenant as the judge (its adapter on the same backend): another judge.
    by_policy = await evaluate(
        t, t.candidate, pb.EvaluationConfig(judge=pb.JudgeConfig(judge_model=t.candidate), **SMALL)
    )
    assert by_policy.judge.judge_model == t.candidate
    assert by_policy.judge.judge_version != summary.judge_version
    assert by_policy.judge.verdict_count == 2  # one prompt, one order


async def telemetry(channel: grpc.aio.Channel, t: Tenant, n: int, *, one_thread: bool) -> None:
    """Traffic and edits through the public API (every interaction in one thread, or
    each in its own)."""
    infer_key = await scoped_key(channel, t.admin, options_pb2.SCOPE_INFER)
    ingest_key = await scoped_key(channel, t.admin, options_pb2.SCOPE_INGEST)
    g = inference_pb2_grpc.InferenceServiceStub(channel)
    sink = telemetry_pb2_grpc.TelemetryServiceStub(channel)
    rng = random.Random(n)
    for i in range(n):
        text = f"{' '.join(rng.sample(WORDS, 6))} #{i}?"
        question = tel.ChatMessage(role=tel.ChatMessage.ROLE_USER, content=text)
        thread = "th" if one_thread else f"th{i}"
        answer = await g.Infer(
            inf.InferRequest(skill=SKILL, user_id=f"u{i}", thread_id=thread, request_id=rid(),
                             messages=[question]),
            metadata=md(infer_key),
        )  # fmt: skip
        edited = f"Hello, about #{i}: {' '.join(rng.sample(WORDS, 8))}. Kind regards"
        await sink.SubmitFeedback(
            tel.SubmitFeedbackRequest(
                interaction_id=answer.interaction_id, request_id=rid(),
                feedback=tel.Feedback(implicit=tel.ImplicitFeedback(edited_text=edited,
                                                                    sent=True)),
            ),
            metadata=md(ingest_key),
        )  # fmt: skip


async def test_an_evaluation_on_a_datasets_eval_split(
    stack: RunningStack, channel: grpc.aio.Channel
) -> None:
    t = await tenant(channel, stack, "evals-dataset")
    await telemetry(channel, t, 18, one_thread=False)
    dataset = await create_dataset(t)
    assert dataset.state == pb.PreferenceDataset.STATE_READY and dataset.eval_pair_count > 0
    store = LocalObjectStore(stack.settings.objects_dir)
    rows = read_parquet(await store.get(key_for_uri(store, dataset.storage_uri)))
    held_out = {r["prompt"] for r in rows if r["split"] == "eval"}
    chosen = {r["chosen"] for r in rows if r["split"] == "eval"}

    config = pb.EvaluationConfig(dataset_id=dataset.dataset_id, safety_suites=["jailbreak"])
    result = await evaluate(t, t.candidate, config)
    assert result.example_count == len(held_out)
    assert {s.prompt for s in result.samples} <= held_out
    assert len(result.samples) == min(5, len(held_out))
    assert not held_out & {g.prompt for g in load_golden_set()}
    # Without a judge: the held-out pairs' likelihoods under both policies decide (one
    # outcome per prompt); the answers' edit direction, from each rejected draft towards
    # the chosen answer, is reported beside them.
    by_preference, by_direction = result.win_rates
    assert by_preference.scorer == "held_out_preference" and not result.HasField("judge")
    assert by_preference.win_rate == result.win_rate
    assert by_preference.wins + by_preference.losses + by_preference.ties == len(held_out)
    assert by_direction.scorer == "edit_direction"
    # How far the pairs moved, beside which way: reported, the baseline's own is 0.
    [margin] = [m for m in result.metrics if m.name == "held_out_preference_margin"]
    assert margin.baseline_value == 0.0 and margin.candidate_value != 0.0
    report = json.loads(await store.get(key_for_uri(store, result.report_uri)))
    assert report["source"] == f"dataset:{dataset.dataset_id}"
    assert chosen  # the references the direction was measured towards

    # Errors name the field: another tenant's (or no) dataset, not READY, no eval split.
    async def create(dataset_id: str, who: Tenant = t) -> tuple[grpc.StatusCode, str | None]:
        ev = pb.Evaluation(candidate_policy_id=who.candidate,
                           config=pb.EvaluationConfig(dataset_id=dataset_id))  # fmt: skip
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await who.create_eval(ev)
        err = rich_error(info.value)
        assert err.message.startswith("evaluation.config.dataset_id: "), err.message
        return err.code, err.reason

    other = await tenant(channel, stack, "evals-dataset-other")
    assert (await create(dataset.dataset_id, other))[0] == grpc.StatusCode.NOT_FOUND
    assert (await create("ds-missing"))[0] == grpc.StatusCode.NOT_FOUND
    failed = await create_dataset(other)  # no telemetry yet: too few pairs
    assert failed.state == pb.PreferenceDataset.STATE_FAILED
    assert await create(failed.dataset_id, other) == (
        grpc.StatusCode.FAILED_PRECONDITION, "DATASET_NOT_READY",
    )  # fmt: skip
    # One thread is one unit of the split: depending on the seed's hash it is held out
    # whole or not at all; a seed that keeps it in train leaves the eval split empty.
    await telemetry(channel, other, 16, one_thread=True)
    for seed in range(8):
        request = pb.CreatePreferenceDatasetRequest(
            preference_dataset=pb.PreferenceDataset(
                skill_id=SKILL, build_config=pb.DatasetBuildConfig(seed=seed)
            ),
            request_id=rid(),
        )
        made = await other.training.CreatePreferenceDataset(request, metadata=other.md())
        one_thread = made.preference_dataset
        assert one_thread.state == pb.PreferenceDataset.STATE_READY, one_thread.error
        if one_thread.eval_pair_count == 0:
            break
    assert one_thread.eval_pair_count == 0 and one_thread.train_pair_count > 0
    assert await create(one_thread.dataset_id, other) == (
        grpc.StatusCode.FAILED_PRECONDITION, "DATASET_EVAL_SPLIT_EMPTY",
    )  # fmt: skip


async def test_judge_config_errors_name_the_field(
    stack: RunningStack, channel: grpc.aio.Channel
) -> None:
    t = await tenant(channel, stack, "evals-judge-errors")

    async def create(judge: pb.JudgeConfig) -> tuple[grpc.StatusCode, list[str], str]:
        ev = pb.Evaluation(candidate_policy_id=t.candidate,
                           config=pb.EvaluationConfig(judge=judge))  # fmt: skip
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await t.create_eval(ev)
        err = rich_error(info.value)
        return err.code, [f for f, _ in err.field_violations], err.message

    bad = pb.JudgeConfig(judge_model="gpt-4o", votes=-1,
                         rubric=[pb.RubricCriterion(name="", weight=-2)])  # fmt: skip
    code, fields, _ = await create(bad)
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert sorted(fields) == [
        "evaluation.config.judge.judge_model", "evaluation.config.judge.rubric[0].name",
        "evaluation.config.judge.rubric[0].weight", "evaluation.config.judge.votes",
    ]  # fmt: skip
    code, fields, _ = await create(pb.JudgeConfig(votes=4))
    assert (code, fields) == (grpc.StatusCode.INVALID_ARGUMENT, ["evaluation.config.judge.votes"])
    code, _, message = await create(pb.JudgeConfig(judge_model=f"{SKILL}@v99"))
    assert code == grpc.StatusCode.NOT_FOUND and "evaluation.config.judge.judge_model" in message
    # A learning loop's gate takes the same judge, checked the same way at start.
    loop = pb.LearningLoop(skill_id=SKILL, config=pb.LearningLoopConfig(
        evaluation=pb.EvaluationConfig(judge=pb.JudgeConfig(votes=-1))))  # fmt: skip
    start = pb.StartLearningLoopRequest(learning_loop=loop, request_id=rid())
    # Starting a loop moves traffic: the tenant admin's key (deploy scope) does it.
    code, _, fields = await fails(t.training.StartLearningLoop(start, metadata=md(t.admin)))
    assert (code, fields) == (
        grpc.StatusCode.INVALID_ARGUMENT, ["learning_loop.config.evaluation.judge.votes"],
    )  # fmt: skip
    unknown = pb.JudgeConfig(judge_model=f"{SKILL}@v99")
    missing = pb.LearningLoop(skill_id=SKILL, config=pb.LearningLoopConfig(
        evaluation=pb.EvaluationConfig(judge=unknown)))  # fmt: skip
    start = pb.StartLearningLoopRequest(learning_loop=missing, request_id=rid())
    assert (await fails(t.training.StartLearningLoop(start, metadata=md(t.admin))))[0] == (
        grpc.StatusCode.NOT_FOUND
    )


async def test_an_evaluation_whose_judge_or_dataset_is_gone_fails_with_their_code(
    stack: RunningStack, channel: grpc.aio.Channel
) -> None:
    """What the worker finds wrong reaches GetEvaluation with the server's own code and
    reason (not INTERNAL): a judge policy gone since the evaluation was created is
    NOT_FOUND, a dataset whose stored pairs are gone FAILED_PRECONDITION."""
    t = await tenant(channel, stack, "evals-gone")

    async def failed(evaluation_id: str) -> pb.Evaluation:
        done = await eventually(lambda: t.get_eval(evaluation_id), lambda e: e.state in FINISHED)
        assert done.state == pb.Evaluation.STATE_FAILED, done
        return done

    # A judge that is gone by the time the worker builds it: CreateEvaluation checks
    # that the judge exists, so the evaluation is started as the server starts one.
    evaluation_id = f"ev-gone-{rid()[:8]}"
    as_created = pb.Evaluation(candidate_policy_id=t.candidate, skill_id=SKILL,
                               baseline_policy_id=t.baseline)  # fmt: skip
    evaluate = EvaluateInput(
        t.tenant_id, SKILL, t.candidate, t.baseline, evaluation_id=evaluation_id,
        max_examples=2, safety_suites=["jailbreak"],
        judge=JudgeSpec(judge_model=f"{SKILL}@v99"),
    )  # fmt: skip
    client = await Client.connect(stack.settings.temporal_target)
    await client.start_workflow(
        EvaluationWorkflow.run, EvaluationInput(evaluate, stack.settings.gpu_task_queue),
        id=evaluation_workflow_id(t.tenant_id, evaluation_id), task_queue=CPU_TASK_QUEUE,
        memo={"request_sha256": "", "skill_id": SKILL, "candidate_policy_id": t.candidate,
              "evaluation": pack(as_created)},
    )  # fmt: skip
    gone = await failed(evaluation_id)
    assert gone.error.code == grpc.StatusCode.NOT_FOUND.value[0], gone.error
    assert error_reason(gone.error) == "JUDGE_NOT_FOUND"
    assert f"{SKILL}@v99" in gone.error.message

    # A READY dataset whose Parquet was deleted after it was built.
    await telemetry(channel, t, 18, one_thread=False)
    dataset = await create_dataset(t)
    assert dataset.state == pb.PreferenceDataset.STATE_READY and dataset.eval_pair_count > 0
    store = LocalObjectStore(stack.settings.objects_dir)
    await store.delete(key_for_uri(store, dataset.storage_uri))
    config = pb.EvaluationConfig(dataset_id=dataset.dataset_id, safety_suites=["jailbreak"])
    created = await t.create_eval(pb.Evaluation(candidate_policy_id=t.candidate, config=config))
    unreadable = await failed(created.evaluation_id)
    assert unreadable.error.code == grpc.StatusCode.FAILED_PRECONDITION.value[0]
    assert error_reason(unreadable.error) == "DATASET_UNREADABLE"
