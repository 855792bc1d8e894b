"""TrainingService's training-run and evaluation RPCs through the real server, the real
workers (the GPU-queue worker trains and evaluates with the stack's tiny model) and
Temporal: a run on a dataset built from telemetry sent through the API trains and
registers a candidate; an evaluation of a candidate against the baseline reports a
win-rate with its confidence interval; cancel; errors with their codes and fields;
tenant isolation; request_id replay; `rlaasctl runs` and `rlaasctl evals`."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import random
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

from rlaas.inference.v1 import inference_pb2 as inf
from rlaas.inference.v1 import inference_pb2_grpc
from rlaas.options.v1 import options_pb2
from rlaas.registry.v1 import registry_pb2 as reg
from rlaas.registry.v1 import registry_pb2_grpc
from rlaas.telemetry.v1 import telemetry_pb2 as tel
from rlaas.telemetry.v1 import telemetry_pb2_grpc
from rlaas.training.v1 import training_pb2 as pb
from rlaas.training.v1 import training_pb2_grpc
from services.objects.store import LocalObjectStore
from tests.conftest import RunningStack
from tests.helpers import ROOT, md, new_tenant, rich_error, scoped_key, upload_adapter

pytestmark = pytest.mark.integration

T = TypeVar("T")
SKILL = "support_email"
# Small and fast on the tiny model: a couple of optimiser steps.
DPO = pb.TrainingConfig(
    method=pb.TRAINING_METHOD_DPO,
    lora=pb.LoraConfig(rank=4),
    hyperparameters=pb.TrainingHyperparameters(max_steps=2, batch_size=2, max_length=64),
)


WORDS = [
    "parcel", "refund", "blender", "jacket", "invoice", "courier", "warranty", "discount",
    "address", "tracking", "cancel", "exchange", "broken", "missing", "late", "charge",
    "twice", "colour", "size", "voucher", "gift", "wrap", "saturday", "express",
]  # fmt: skip


UNFINISHED = (pb.TrainingRun.STATE_QUEUED, pb.TrainingRun.STATE_RUNNING)


def rid() -> str:
    return str(uuid.uuid4())


@dataclass
class Tenant:
    tenant_id: str
    admin: str
    train_key: str
    baseline: str
    candidate: str  # a CANDIDATE with one of the tiny model's adapters
    registry: registry_pb2_grpc.RegistryServiceStub
    training: training_pb2_grpc.TrainingServiceStub

    def md(self) -> tuple[tuple[str, str], ...]:
        return md(self.train_key)

    async def create_run(self, run: pb.TrainingRun, request_id: str = "") -> pb.TrainingRun:
        request = pb.CreateTrainingRunRequest(training_run=run, request_id=request_id or rid())
        return (await self.training.CreateTrainingRun(request, metadata=self.md())).training_run

    async def get_run(self, run_id: str) -> pb.TrainingRun:
        request = pb.GetTrainingRunRequest(training_run_id=run_id)
        return (await self.training.GetTrainingRun(request, metadata=self.md())).training_run

    async def cancel_run(self, run_id: str, request_id: str = "") -> pb.TrainingRun:
        request = pb.CancelTrainingRunRequest(
            training_run_id=run_id, request_id=request_id or rid()
        )
        return (await self.training.CancelTrainingRun(request, metadata=self.md())).training_run

    async def create_eval(self, evaluation: pb.Evaluation, request_id: str = "") -> pb.Evaluation:
        request = pb.CreateEvaluationRequest(evaluation=evaluation, request_id=request_id or rid())
        return (await self.training.CreateEvaluation(request, metadata=self.md())).evaluation

    async def get_eval(self, evaluation_id: str) -> pb.Evaluation:
        request = pb.GetEvaluationRequest(evaluation_id=evaluation_id)
        return (await self.training.GetEvaluation(request, metadata=self.md())).evaluation

    async def policies(self) -> list[reg.Policy]:
        request = reg.ListPoliciesRequest(skill_id=SKILL, page_size=100)
        listed = await self.registry.ListPolicies(request, metadata=md(self.admin))
        return sorted(listed.policies, key=lambda p: p.version)


async def tenant(
    channel: grpc.aio.Channel, stack: RunningStack, name: str, *, baseline: bool = True
) -> Tenant:
    """A fresh tenant with the skill, its baseline v1 (promoted unless ``baseline`` is
    False) and a CANDIDATE v2 carrying the tiny model's adapter "a"."""
    tenant_id, admin = await new_tenant(channel, stack.admin_key, name)
    r = registry_pb2_grpc.RegistryServiceStub(channel)
    await r.CreateSkill(
        reg.CreateSkillRequest(skill=reg.Skill(skill_id=SKILL), request_id=rid()),
        metadata=md(admin),
    )
    uploaded = await upload_adapter(channel, admin, stack.tiny.adapters["a"][0])
    ids = []
    for adapter in (None, uploaded):
        policy = reg.Policy(skill_id=SKILL, base_model="tiny", adapter=adapter,
                            generation_defaults=reg.GenerationConfig(max_tokens=6))  # fmt: skip
        made = await r.CreatePolicy(
            reg.CreatePolicyRequest(policy=policy, request_id=rid()), metadata=md(admin)
        )
        ids.append(made.policy.policy_id)
    if baseline:
        await r.PromotePolicy(
            reg.PromotePolicyRequest(skill_id=SKILL, policy_id=ids[0], reason="first",
                                     request_id=rid()),
            metadata=md(admin),
        )  # fmt: skip
    train_key = await scoped_key(channel, admin, options_pb2.SCOPE_TRAIN)
    return Tenant(tenant_id, admin, train_key, ids[0], ids[1], r,
                  training_pb2_grpc.TrainingServiceStub(channel))  # fmt: skip


async def eventually(
    read: Callable[[], Awaitable[T]], ok: Callable[[T], bool], within_s: float = 240
) -> T:
    """Training and evaluation run on the stack's one GPU-queue worker, one at a time."""
    deadline = time.monotonic() + within_s
    while True:
        value = await read()
        if ok(value):
            return value
        assert time.monotonic() < deadline, f"never became true: {value}"
        await asyncio.sleep(0.5)


async def fails(call: Awaitable[object]) -> tuple[grpc.StatusCode, str | None, list[str]]:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    err = rich_error(info.value)
    return err.code, err.reason, [f for f, _ in err.field_violations]


def error_reason(status: status_pb2.Status) -> str:
    """The ErrorInfo reason of a resource's ``error``, as the server's errors carry it."""
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return info.reason
    return ""


def put_dataset(stack: RunningStack, tenant_id: str, skill: str, data: bytes) -> str:
    """A dataset object where the dataset builder would store it; its URI."""
    store = LocalObjectStore(stack.settings.objects_dir)
    key = f"datasets/{tenant_id}/{skill}/{hashlib.sha256(data).hexdigest()}.parquet"
    path = store.root / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return store.uri(key)


async def create_dataset(t: Tenant) -> pb.PreferenceDataset:
    """CreatePreferenceDataset over everything the skill has logged (built within the
    call: READY, or FAILED without enough pairs)."""
    request = pb.CreatePreferenceDatasetRequest(
        preference_dataset=pb.PreferenceDataset(skill_id=SKILL), request_id=rid()
    )
    made = await t.training.CreatePreferenceDataset(request, metadata=t.md())
    return made.preference_dataset


async def dataset_from_api_telemetry(
    channel: grpc.aio.Channel, t: Tenant, n: int = 20
) -> pb.PreferenceDataset:
    """Traffic and edits through the public API, then a READY dataset of them."""
    infer_key = await scoped_key(channel, t.admin, options_pb2.SCOPE_INFER)
    ingest_key = await scoped_key(channel, t.admin, options_pb2.SCOPE_INGEST)
    g = inference_pb2_grpc.InferenceServiceStub(channel)
    telemetry = telemetry_pb2_grpc.TelemetryServiceStub(channel)
    rng = random.Random(n)
    for i in range(n):
        # Varied words: near-duplicate pairs, and prompts like the golden set's, are
        # filtered out of a dataset.
        text = f"{' '.join(rng.sample(WORDS, 6))} #{i}?"
        question = tel.ChatMessage(role=tel.ChatMessage.ROLE_USER, content=text)
        answer = await g.Infer(
            inf.InferRequest(skill=SKILL, user_id=f"u{i}", thread_id=f"th{i}",
                             request_id=rid(), messages=[question]),
            metadata=md(infer_key),
        )  # fmt: skip
        edited = f"Hello, about #{i}: {' '.join(rng.sample(WORDS, 8))}. Kind regards"
        await telemetry.SubmitFeedback(
            tel.SubmitFeedbackRequest(
                interaction_id=answer.interaction_id, request_id=rid(),
                feedback=tel.Feedback(implicit=tel.ImplicitFeedback(edited_text=edited,
                                                                    sent=True)),
            ),
            metadata=md(ingest_key),
        )  # fmt: skip
    dataset = await create_dataset(t)
    assert dataset.state == pb.PreferenceDataset.STATE_READY, dataset.error
    return dataset


def ctl(stack: RunningStack, key: str, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "rlaasctl", "--target", stack.grpc_target]
    return subprocess.run(
        [*command, "--api-key", key, "--output", "json", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


# ---- training runs ------------------------------------------------------------------


async def test_a_run_on_a_dataset_from_api_telemetry_registers_a_candidate(
    stack: RunningStack, channel: grpc.aio.Channel
) -> None:
    t = await tenant(channel, stack, "runs-train")
    dataset = (await dataset_from_api_telemetry(channel, t)).dataset_id
    run = pb.TrainingRun(skill_id=SKILL, dataset_id=dataset, config=DPO, display_name="first",
                         labels={"team": "support"})  # fmt: skip
    request_id = rid()
    created = await t.create_run(run, request_id)
    assert created.state in (pb.TrainingRun.STATE_QUEUED, pb.TrainingRun.STATE_RUNNING)
    assert created.training_run_id.startswith("tr-") and created.tenant_id == t.tenant_id
    assert (created.skill_id, created.dataset_id, created.display_name) == (SKILL, dataset, "first")
    assert created.parent_policy_id == t.baseline and created.base_model == "tiny"
    assert created.config == DPO and dict(created.labels) == {"team": "support"}
    assert created.lineage.dataset_id == dataset and created.lineage.parent_policy_id == t.baseline
    assert created.lineage.workflow_id == f"training-run/{t.tenant_id}/{created.training_run_id}"
    assert created.HasField("create_time") and not created.HasField("end_time")
    # A retry returns the same run and starts nothing new.
    assert (await t.create_run(run, request_id)).training_run_id == created.training_run_id

    done = await eventually(
        lambda: t.get_run(created.training_run_id), lambda r: r.state not in UNFINISHED
    )
    assert done.state == pb.TrainingRun.STATE_SUCCEEDED, done.error
    assert done.progress.step == 2 and done.progress.total_steps == 2 and done.progress.loss > 0
    assert done.HasField("start_time") and done.HasField("end_time")
    lineage = done.lineage
    assert lineage.produced_policy_id == f"{SKILL}@v3"  # v1 baseline, v2 the tiny adapter
    assert len(lineage.adapter_sha256) == 64 and lineage.adapter_uri.startswith("file://")
    assert lineage.device == "cpu" and "trl==" in lineage.trainer_version
    assert len(lineage.dataset_sha256) == 64 and lineage.reference_model
    assert lineage.dataset_version == 1 and lineage.reward_config.version
    produced = await t.registry.GetPolicy(
        reg.GetPolicyRequest(policy_id=lineage.produced_policy_id), metadata=md(t.admin)
    )
    policy = produced.policy
    assert policy.state == reg.Policy.STATE_CANDIDATE and policy.parent_policy_id == t.baseline
    assert policy.adapter.sha256 == lineage.adapter_sha256
    assert policy.adapter.training_run_id == done.training_run_id

    listed = await t.training.ListTrainingRuns(
        pb.ListTrainingRunsRequest(skill_id=SKILL, state=pb.TrainingRun.STATE_SUCCEEDED),
        metadata=t.md(),
    )
    assert [r.training_run_id for r in listed.training_runs] == [done.training_run_id]
    # Finished: nothing to cancel.
    code, reason, _ = await fails(t.cancel_run(done.training_run_id))
    assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "RUN_FINISHED")
    # The run's candidate, evaluated with the run named: the run must exist.
    unknown = pb.Evaluation(candidate_policy_id=lineage.produced_policy_id,
                            training_run_id="tr-0000000000000000")  # fmt: skip
    assert (await fails(t.create_eval(unknown)))[0] == grpc.StatusCode.NOT_FOUND


async def test_early_stopping_ends_a_run_early_and_its_progress_says_so(
    stack: RunningStack, channel: grpc.aio.Channel
) -> None:
    t = await tenant(channel, stack, "runs-early")
    dataset = (await dataset_from_api_telemetry(channel, t)).dataset_id
    config = pb.TrainingConfig()
    config.CopyFrom(DPO)
    config.hyperparameters.ClearField("max_steps")  # one epoch over the train split
    # Any DPO loss (log 2 at the start) is below 9: the run stops after the four steps
    # the rule reads, well before the epoch's end.
    config.hyperparameters.early_stop_loss = 9.0
    created = await t.create_run(pb.TrainingRun(skill_id=SKILL, dataset_id=dataset,
                                                config=config))  # fmt: skip
    done = await eventually(
        lambda: t.get_run(created.training_run_id), lambda r: r.state not in UNFINISHED
    )
    assert done.state == pb.TrainingRun.STATE_SUCCEEDED, done.error
    assert done.progress.stopped_early
    assert done.progress.step == 4 < done.progress.total_steps
    assert done.config.hyperparameters.early_stop_loss == 9.0
    assert done.lineage.produced_policy_id  # a stopped run still ships its adapter


async def test_a_cancelled_run_ends_cancelled_without_a_policy(
    stack: RunningStack, channel: grpc.aio.Channel
) -> None:
    t = await tenant(channel, stack, "runs-cancel")
    dataset = (await dataset_from_api_telemetry(channel, t)).dataset_id
    long = pb.TrainingConfig()
    long.CopyFrom(DPO)
    long.hyperparameters.max_steps = 400
    created = await t.create_run(pb.TrainingRun(skill_id=SKILL, dataset_id=dataset, config=long))
    # Training: the trainer's first heartbeat is the run's progress.
    running = await eventually(
        lambda: t.get_run(created.training_run_id),
        lambda r: r.progress.HasField("update_time") or r.state not in UNFINISHED,
    )
    assert running.state == pb.TrainingRun.STATE_RUNNING and running.HasField("start_time")
    request_id = rid()
    cancelled = await t.cancel_run(created.training_run_id, request_id)
    assert cancelled.state == pb.TrainingRun.STATE_CANCELLED and cancelled.HasField("end_time")
    # Retried, and cancelled again: unchanged.
    assert (await t.cancel_run(created.training_run_id, request_id)) == cancelled
    assert (await t.cancel_run(created.training_run_id)).state == pb.TrainingRun.STATE_CANCELLED
    assert (await t.get_run(created.training_run_id)).state == pb.TrainingRun.STATE_CANCELLED
    await asyncio.sleep(1.0)
    assert [p.policy_id for p in await t.policies()] == [t.baseline, t.candidate]


async def test_a_run_that_cannot_train_fails_with_the_reason(
    stack: RunningStack, channel: grpc.aio.Channel
) -> None:
    t = await tenant(channel, stack, "runs-fail")
    broken = put_dataset(stack, t.tenant_id, SKILL, b"not parquet at all")
    created = await t.create_run(pb.TrainingRun(skill_id=SKILL, dataset_id=broken, config=DPO))
    failed = await eventually(lambda: t.get_run(created.training_run_id),
                              lambda r: r.state == pb.TrainingRun.STATE_FAILED)  # fmt: skip
    assert "not a Parquet file" in failed.error.message
    assert failed.error.code == grpc.StatusCode.FAILED_PRECONDITION.value[0]
    assert error_reason(failed.error) == "INVALID_DATASET"
    assert not failed.lineage.produced_policy_id
    code, reason, _ = await fails(t.cancel_run(created.training_run_id))
    assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "RUN_FINISHED")
    assert [p.policy_id for p in await t.policies()] == [t.baseline, t.candidate]


async def test_run_errors_name_the_field_and_the_precondition(
    stack: RunningStack, channel: grpc.aio.Channel
) -> None:
    t = await tenant(channel, stack, "runs-errors")
    dataset = put_dataset(stack, t.tenant_id, SKILL, b"x")

    async def create(**kw: object) -> tuple[grpc.StatusCode, str | None, list[str]]:
        fields: dict[str, object] = {"skill_id": SKILL, "dataset_id": dataset, "config": DPO}
        fields.update(kw)
        return await fails(t.create_run(pb.TrainingRun(**fields)))

    request = pb.CreateTrainingRunRequest(training_run=pb.TrainingRun())
    code, _, violations = await fails(t.training.CreateTrainingRun(request, metadata=t.md()))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert violations == ["training_run.skill_id", "training_run.dataset_id",
                          "training_run.config.method", "request_id"]  # fmt: skip
    bad_rank = pb.TrainingConfig(method=pb.TRAINING_METHOD_DPO, lora=pb.LoraConfig(rank=-1))
    assert (await create(config=bad_rank))[2] == ["training_run.config.lora.rank"]
    for name, value in (("beta", 0.0), ("learning_rate", -1.0), ("warmup_ratio", 1.0)):
        config = pb.TrainingConfig(method=pb.TRAINING_METHOD_IPO)
        setattr(config.hyperparameters, name, value)
        assert (await create(config=config))[2] == [f"training_run.config.hyperparameters.{name}"]
    sft = pb.TrainingConfig(method=pb.TRAINING_METHOD_SFT)
    assert (await create(config=sft))[2] == ["training_run.config.method"]
    assert (await create(parent_policy_id="nope"))[2] == ["training_run.parent_policy_id"]
    assert (await create(base_model="another-model"))[2] == ["training_run.base_model"]

    assert (await create(skill_id="no_such_skill"))[0] == grpc.StatusCode.NOT_FOUND
    assert (await create(parent_policy_id=f"{SKILL}@v9"))[0] == grpc.StatusCode.NOT_FOUND
    assert (await create(dataset_id="ds-123"))[0] == grpc.StatusCode.NOT_FOUND
    missing = dataset.replace(".parquet", "0.parquet")
    assert (await create(dataset_id=missing))[0] == grpc.StatusCode.NOT_FOUND
    empty = await create_dataset(t)  # nothing logged: the build FAILED
    assert (await create(dataset_id=empty.dataset_id))[:2] == (
        grpc.StatusCode.FAILED_PRECONDITION, "DATASET_NOT_READY",
    )  # fmt: skip
    other_skill = put_dataset(stack, t.tenant_id, "other_skill", b"y")
    assert (await create(dataset_id=other_skill))[:2] == (
        grpc.StatusCode.FAILED_PRECONDITION, "DATASET_OF_ANOTHER_SKILL",
    )  # fmt: skip
    qlora = pb.TrainingConfig(method=pb.TRAINING_METHOD_DPO, lora=pb.LoraConfig(qlora=True))
    gpu = pb.TrainingConfig(method=pb.TRAINING_METHOD_DPO, accelerator=pb.ACCELERATOR_GPU)
    import torch

    if not torch.cuda.is_available():  # the stack's training worker has no GPU here
        for config in (qlora, gpu):
            assert (await create(config=config))[:2] == (
                grpc.StatusCode.FAILED_PRECONDITION, "NO_GPU_WORKER",
            )  # fmt: skip
    bare = await tenant(channel, stack, "runs-no-baseline", baseline=False)
    bare_dataset = put_dataset(stack, bare.tenant_id, SKILL, b"z")
    no_baseline = pb.TrainingRun(skill_id=SKILL, dataset_id=bare_dataset, config=DPO)
    assert (await fails(bare.create_run(no_baseline)))[:2] == (
        grpc.StatusCode.FAILED_PRECONDITION, "NO_BASELINE",
    )  # fmt: skip

    get = pb.GetTrainingRunRequest()
    assert (await fails(t.training.GetTrainingRun(get, metadata=t.md())))[2] == ["training_run_id"]
    get.training_run_id = "tr-0000000000000000"
    assert (await fails(t.training.GetTrainingRun(get, metadata=t.md())))[0] == (
        grpc.StatusCode.NOT_FOUND
    )
    cancel = pb.CancelTrainingRunRequest()
    code, _, violations = await fails(t.training.CancelTrainingRun(cancel, metadata=t.md()))
    assert (code, violations) == (grpc.StatusCode.INVALID_ARGUMENT,
                                  ["training_run_id", "request_id"])  # fmt: skip
    listing = pb.ListTrainingRunsRequest(page_size=-1)
    assert (await fails(t.training.ListTrainingRuns(listing, metadata=t.md())))[2] == ["page_size"]
    listing = pb.ListTrainingRunsRequest(page_token="!!")
    assert (await fails(t.training.ListTrainingRuns(listing, metadata=t.md())))[2] == ["page_token"]
    # No run was started by any of it.
    listed = await t.training.ListTrainingRuns(pb.ListTrainingRunsRequest(), metadata=t.md())
    assert list(listed.training_runs) == []


async def test_runs_are_tenant_scoped_and_request_ids_are_not_reusable(
    stack: RunningStack, channel: grpc.aio.Channel
) -> None:
    a = await tenant(channel, stack, "runs-tenant-a")
    b = await tenant(channel, stack, "runs-tenant-b")
    dataset = put_dataset(stack, a.tenant_id, SKILL, b"never read")
    request_id = rid()
    run = pb.TrainingRun(skill_id=SKILL, dataset_id=dataset, config=DPO)
    created = await a.create_run(run, request_id)
    other = pb.TrainingRun(skill_id=SKILL, dataset_id=dataset, config=DPO, display_name="x")
    assert (await fails(a.create_run(other, request_id)))[:2] == (
        grpc.StatusCode.ALREADY_EXISTS, "REQUEST_ID_REUSED",
    )  # fmt: skip
    # Tenant B: not its run, not its dataset; the same request_id is B's own to use.
    assert (await fails(b.get_run(created.training_run_id)))[0] == grpc.StatusCode.NOT_FOUND
    assert (await fails(b.cancel_run(created.training_run_id)))[0] == grpc.StatusCode.NOT_FOUND
    stolen = pb.TrainingRun(skill_id=SKILL, dataset_id=dataset, config=DPO)
    assert (await fails(b.create_run(stolen, request_id)))[0] == grpc.StatusCode.NOT_FOUND
    listed = await b.training.ListTrainingRuns(pb.ListTrainingRunsRequest(), metadata=b.md())
    assert list(listed.training_runs) == []
    # A's own list pages through its runs, newest first.
    second = await a.create_run(pb.TrainingRun(skill_id=SKILL, dataset_id=dataset, config=DPO))
    seen: list[str] = []
    token = ""
    for _ in range(3):
        page = await a.training.ListTrainingRuns(
            pb.ListTrainingRunsRequest(page_size=1, page_token=token), metadata=a.md()
        )
        seen += [r.training_run_id for r in page.training_runs]
        token = page.next_page_token
        if not token:
            break
    assert seen == [second.training_run_id, created.training_run_id]
    for run_id in seen:  # free the training worker (unless they failed already)
        with contextlib.suppress(grpc.aio.AioRpcError):
            await a.cancel_run(run_id)


# ---- evaluations --------------------------------------------------------------------


async def test_an_evaluation_reports_win_rate_and_confidence_through_rlaasctl(
    stack: RunningStack, channel: grpc.aio.Channel
) -> None:
    t = await tenant(channel, stack, "evals")
    args = ["evals", "create", t.candidate, "--max-examples", "3", "--safety-suite", "jailbreak",
            "--confidence-level", "0.9", "--display-name", "tiny a vs base"]  # fmt: skip
    made = await asyncio.to_thread(ctl, stack, t.train_key, "--request-id", "ev-req-1", *args)
    assert made.returncode == 0, made.stderr
    created = json.loads(made.stdout)["evaluation"]
    assert created["state"] in ("STATE_QUEUED", "STATE_RUNNING")
    assert (created["candidatePolicyId"], created["baselinePolicyId"]) == (t.candidate, t.baseline)
    assert created["skillId"] == SKILL and created["displayName"] == "tiny a vs base"
    evaluation_id = created["evaluationId"]
    # A retry (same request_id, same body) is the same evaluation.
    again = await asyncio.to_thread(ctl, stack, t.train_key, "--request-id", "ev-req-1", *args)
    assert json.loads(again.stdout)["evaluation"]["evaluationId"] == evaluation_id
    reused = await asyncio.to_thread(
        ctl, stack, t.train_key, "--request-id", "ev-req-1", "evals", "create", t.candidate
    )
    assert reused.returncode == 5 and "ALREADY_EXISTS" in reused.stderr

    done = await eventually(lambda: t.get_eval(evaluation_id),
                            lambda e: e.state not in (pb.Evaluation.STATE_QUEUED,
                                                      pb.Evaluation.STATE_RUNNING))  # fmt: skip
    assert done.state == pb.Evaluation.STATE_SUCCEEDED, done.error
    result = done.result
    assert result.example_count == 3 and result.wins + result.losses + result.ties == 3
    assert 0 <= result.win_rate_ci_lower <= result.win_rate <= result.win_rate_ci_upper <= 1
    assert result.confidence_level == pytest.approx(0.9) and 0 <= result.p_value <= 1
    assert [s.suite for s in result.safety_results] == ["jailbreak"]
    [jailbreak] = result.safety_results
    assert jailbreak.case_count > 0
    # Which cases each policy failed, and why (the regression rule compares the two).
    assert len(jailbreak.failures) == jailbreak.failure_count
    for failure in [*jailbreak.failures, *jailbreak.baseline_failures]:
        assert failure.case_id.startswith("jb-") and failure.reason, failure
    assert {m.name for m in result.metrics} >= {"mean_words"}
    assert len(result.samples) == 3 and result.samples[0].prompt
    assert result.report_uri.endswith(f"/{evaluation_id}.json")
    assert result.passed == (not result.failure_reasons)
    assert done.HasField("start_time") and done.HasField("end_time")

    got = await asyncio.to_thread(ctl, stack, t.train_key, "evals", "get", evaluation_id)
    assert json.loads(got.stdout)["evaluation"]["result"]["exampleCount"] == 3
    listed = await asyncio.to_thread(
        ctl, stack, t.train_key, "evals", "list", "--candidate", t.candidate
    )
    assert [e["evaluationId"] for e in json.loads(listed.stdout)["evaluations"]] == [evaluation_id]
    none = await asyncio.to_thread(ctl, stack, t.train_key, "evals", "list", "--candidate",
                                   t.baseline)  # fmt: skip
    assert json.loads(none.stdout).get("evaluations", []) == []
    # Another tenant cannot read it.
    b = await tenant(channel, stack, "evals-other")
    assert (await fails(b.get_eval(evaluation_id)))[0] == grpc.StatusCode.NOT_FOUND
    missing = await asyncio.to_thread(ctl, stack, b.train_key, "evals", "get", evaluation_id)
    assert missing.returncode == 3


async def test_a_retired_policy_can_still_be_evaluated(
    stack: RunningStack, channel: grpc.aio.Channel
) -> None:
    """A rolled-back or replaced policy is RETIRED: it serves no traffic, but measuring
    what it did is exactly what its owners want afterwards."""
    t = await tenant(channel, stack, "evals-retired")
    await t.registry.PromotePolicy(
        reg.PromotePolicyRequest(skill_id=SKILL, policy_id=t.candidate, reason="replace v1",
                                 request_id=rid()),
        metadata=md(t.admin),
    )  # fmt: skip
    retired = {p.policy_id: p.state for p in await t.policies()}
    assert retired[t.baseline] == reg.Policy.STATE_RETIRED
    # Retired as the candidate, and as the baseline it is compared with.
    for candidate, baseline in ((t.baseline, t.candidate), (t.candidate, t.baseline)):
        made = await t.create_eval(
            pb.Evaluation(candidate_policy_id=candidate, baseline_policy_id=baseline,
                          config=pb.EvaluationConfig(max_examples=2))
        )  # fmt: skip
        evaluation_id = made.evaluation_id
        done = await eventually(lambda: t.get_eval(evaluation_id),  # noqa: B023 (awaited here)
                                lambda e: e.state not in (pb.Evaluation.STATE_QUEUED,
                                                          pb.Evaluation.STATE_RUNNING))  # fmt: skip
        assert done.state == pb.Evaluation.STATE_SUCCEEDED, done.error
        assert done.result.example_count == 2


async def test_evaluation_errors_name_the_field_and_the_precondition(
    stack: RunningStack, channel: grpc.aio.Channel
) -> None:
    t = await tenant(channel, stack, "evals-errors")

    async def create(**kw: object) -> tuple[grpc.StatusCode, str | None, list[str]]:
        fields: dict[str, object] = {"candidate_policy_id": t.candidate}
        fields.update(kw)
        return await fails(t.create_eval(pb.Evaluation(**fields)))

    request = pb.CreateEvaluationRequest(evaluation=pb.Evaluation())
    code, _, violations = await fails(t.training.CreateEvaluation(request, metadata=t.md()))
    assert (code, violations) == (grpc.StatusCode.INVALID_ARGUMENT,
                                  ["evaluation.candidate_policy_id", "request_id"])  # fmt: skip
    config = pb.EvaluationConfig(confidence_level=1.5, max_examples=-1)
    assert sorted((await create(config=config))[2]) == [
        "evaluation.config.confidence_level", "evaluation.config.max_examples",
    ]  # fmt: skip
    gate = pb.EvaluationConfig(gate=pb.EvaluationGate(min_win_rate=2, max_length_ratio=0.5))
    assert (await create(config=gate))[2] == [
        "evaluation.config.gate.min_win_rate", "evaluation.config.gate.max_length_ratio",
    ]  # fmt: skip
    judge = pb.EvaluationConfig(judge=pb.JudgeConfig(judge_model="big"))
    assert (await create(config=judge))[2] == ["evaluation.config.judge.judge_model"]
    dataset = pb.EvaluationConfig(dataset_id="ds-1")
    assert (await create(config=dataset))[0] == grpc.StatusCode.NOT_FOUND
    assert (await create(baseline_policy_id="v1"))[2] == ["evaluation.baseline_policy_id"]

    suites = pb.EvaluationConfig(safety_suites=["jailbreak", "no_such_suite"])
    assert (await create(config=suites))[0] == grpc.StatusCode.NOT_FOUND
    assert (await create(candidate_policy_id=f"{SKILL}@v9"))[0] == grpc.StatusCode.NOT_FOUND
    assert (await create(baseline_policy_id=t.candidate))[:2] == (
        grpc.StatusCode.FAILED_PRECONDITION, "CANDIDATE_IS_BASELINE",
    )  # fmt: skip
    await t.registry.CreateSkill(
        reg.CreateSkillRequest(skill=reg.Skill(skill_id="other_skill"), request_id=rid()),
        metadata=md(t.admin),
    )
    other = await t.registry.CreatePolicy(
        reg.CreatePolicyRequest(policy=reg.Policy(skill_id="other_skill", base_model="tiny"),
                                request_id=rid()),
        metadata=md(t.admin),
    )  # fmt: skip
    assert (await create(baseline_policy_id=other.policy.policy_id))[:2] == (
        grpc.StatusCode.FAILED_PRECONDITION, "POLICIES_OF_DIFFERENT_SKILLS",
    )  # fmt: skip
    bare = await tenant(channel, stack, "evals-no-baseline", baseline=False)
    no_baseline = pb.Evaluation(candidate_policy_id=bare.candidate)
    assert (await fails(bare.create_eval(no_baseline)))[:2] == (
        grpc.StatusCode.FAILED_PRECONDITION, "NO_BASELINE",
    )  # fmt: skip
    get = pb.GetEvaluationRequest()
    assert (await fails(t.training.GetEvaluation(get, metadata=t.md())))[2] == ["evaluation_id"]
    listing = pb.ListEvaluationsRequest(page_size=-1)
    assert (await fails(t.training.ListEvaluations(listing, metadata=t.md())))[2] == ["page_size"]
    listed = await t.training.ListEvaluations(pb.ListEvaluationsRequest(), metadata=t.md())
    assert list(listed.evaluations) == []


async def test_rlaasctl_runs(stack: RunningStack, channel: grpc.aio.Channel) -> None:
    t = await tenant(channel, stack, "runs-ctl")
    broken = put_dataset(stack, t.tenant_id, SKILL, b"not parquet either")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return ctl(stack, t.train_key, *args)

    made = await asyncio.to_thread(run, "runs", "create", SKILL, broken, "--method", "ipo",
                                   "--rank", "4", "--max-steps", "2", "--beta", "0.2")  # fmt: skip
    assert made.returncode == 0, made.stderr
    created = json.loads(made.stdout)["trainingRun"]
    assert created["config"]["method"] == "TRAINING_METHOD_IPO"
    assert created["config"]["lora"]["rank"] == 4
    assert created["config"]["hyperparameters"] == {"maxSteps": 2, "beta": 0.2}
    run_id = created["trainingRunId"]
    failed = await eventually(
        lambda: asyncio.to_thread(run, "runs", "get", run_id),
        lambda p: json.loads(p.stdout)["trainingRun"]["state"] == "STATE_FAILED",
    )
    assert "Parquet" in json.loads(failed.stdout)["trainingRun"]["error"]["message"]
    listed = await asyncio.to_thread(run, "runs", "list", "--skill", SKILL, "--state", "failed")
    assert [r["trainingRunId"] for r in json.loads(listed.stdout)["trainingRuns"]] == [run_id]
    cancelled = await asyncio.to_thread(run, "runs", "cancel", run_id)
    assert cancelled.returncode == 5 and "FAILED_PRECONDITION" in cancelled.stderr
    invalid = await asyncio.to_thread(run, "runs", "create", SKILL, broken, "--rank", "-2")
    assert invalid.returncode == 2 and "lora.rank" in invalid.stderr
