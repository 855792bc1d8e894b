"""The pieces of the training-run and evaluation services that need no server: how a
dataset is named, how a stored evaluation report reads as the contract's result, how a
workflow failure reads as a google.rpc.Status, and which request field a bad trainer
setting is reported against."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from google.rpc import code_pb2
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ActivityError, ApplicationError, RetryState

from rlaas.training.v1 import training_pb2 as pb
from services.errors import InvalidArgument, NotFound
from services.objects.store import LocalObjectStore
from services.tenancy.principal import Principal
from services.training.evaluation import (
    EvaluationReport,
    EvaluationSample,
    MetricComparison,
    SafetyResult,
)
from services.training.evaluations import _report_to_proto
from services.training.loops import training_settings
from services.training.runs import DatasetResources, DatasetUris
from services.training.workflow_resources import failure_status

pytestmark = pytest.mark.unit


def caller(tenant_id: str) -> Principal:
    return Principal(tenant_id=tenant_id, api_key_id="k", scopes=frozenset())


async def test_dataset_uris_are_the_callers_tenants_stored_datasets(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path)
    key = "datasets/t1/support_email/" + "ab" * 32 + ".parquet"
    await store.put(key, b"rows")
    uris = DatasetUris(store)
    found = await uris.resolve(caller("t1"), store.uri(key))
    assert (found.uri, found.skill_id, found.content_sha256) == (
        store.uri(key),
        "support_email",
        "ab" * 32,
    )
    assert found.ready
    for tenant_id, uri in (
        ("t2", store.uri(key)),  # another tenant's dataset
        ("t1", store.uri(key.replace(".parquet", "0.parquet"))),  # missing
        ("t1", store.uri("adapters/t1/support_email/run/adapter_model.safetensors")),
        ("t1", "s3://elsewhere/datasets/t1/support_email/x.parquet"),  # not this store
        ("t1", "ds-123"),
    ):
        with pytest.raises(NotFound):
            await uris.resolve(caller(tenant_id), uri)


async def test_dataset_ids_are_looked_up_and_uris_still_resolve(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path)
    key = "datasets/t1/support_email/" + "cd" * 32 + ".parquet"
    await store.put(key, b"rows")
    asked: list[tuple[str, str]] = []

    async def get(who: Principal, dataset_id: str) -> pb.PreferenceDataset:
        asked.append((who.tenant_id, dataset_id))
        return pb.PreferenceDataset(
            dataset_id=dataset_id, skill_id="support_email", storage_uri=store.uri(key),
            state=pb.PreferenceDataset.STATE_BUILDING, content_sha256="cd" * 32, version=3,
            build_config=pb.DatasetBuildConfig(reward_config=pb.RewardConfig(version="r2")),
        )  # fmt: skip

    datasets = DatasetResources(get, DatasetUris(store))
    by_id = await datasets.resolve(caller("t1"), "ds-1")
    assert asked == [("t1", "ds-1")]
    assert (by_id.version, by_id.ready, by_id.uri) == (3, False, store.uri(key))
    assert by_id.reward_config is not None and by_id.reward_config.version == "r2"
    by_uri = await datasets.resolve(caller("t1"), store.uri(key))
    assert by_uri.ready and asked == [("t1", "ds-1")]


def test_a_stored_report_reads_as_the_contracts_result() -> None:
    report = EvaluationReport(
        example_count=4, wins=2, losses=1, ties=1, win_rate=0.625, win_rate_ci_lower=0.3,
        win_rate_ci_upper=0.9, confidence_level=0.9, p_value=0.5,
        safety_results=(
            SafetyResult("jailbreak", 8, 1, 0.125, False, ("j1",), ("did not refuse",)),
        ),
        baseline_safety_results=(SafetyResult("jailbreak", 8, 0, 0.0, True),),
        metrics=(MetricComparison("mean_words", 12.0, 10.5),),
        passed=False, failure_reasons=("win-rate CI lower bound 0.300 <= 0.500",),
        samples=(EvaluationSample("hi", "hello there", "hello", 1, "closer"),),
        outcomes=(1.0, 1.0, 0.0, 0.5), scoring="reference_similarity",
    )  # fmt: skip
    out = _report_to_proto(json.loads(report.to_json()), "file:///evals/ev-1.json")
    assert (out.example_count, out.wins, out.losses, out.ties) == (4, 2, 1, 1)
    assert (out.win_rate, out.win_rate_ci_lower, out.win_rate_ci_upper) == (0.625, 0.3, 0.9)
    assert (out.confidence_level, out.p_value, out.passed) == (0.9, 0.5, False)
    assert list(out.failure_reasons) == ["win-rate CI lower bound 0.300 <= 0.500"]
    [safety] = out.safety_results
    assert (safety.suite, safety.case_count, safety.failure_count, safety.passed) == (
        "jailbreak",
        8,
        1,
        False,
    )
    assert [(f.case_id, f.reason) for f in safety.failures] == [("j1", "did not refuse")]
    assert list(safety.baseline_failures) == []
    # A report stored before the reasons were kept still names its failed cases.
    old = json.loads(report.to_json())
    for suite in old["safety_results"]:
        del suite["failure_reasons"]
    del old["baseline_safety_results"]
    [safety] = _report_to_proto(old, "file:///evals/ev-1.json").safety_results
    assert [(f.case_id, f.reason) for f in safety.failures] == [("j1", "")]
    assert [(m.name, m.candidate_value, m.baseline_value) for m in out.metrics] == [
        ("mean_words", 12.0, 10.5)
    ]
    [sample] = out.samples
    assert (sample.prompt, sample.verdict, sample.rationale) == ("hi", 1, "closer")
    assert out.report_uri == "file:///evals/ev-1.json"


def test_a_failure_reads_as_the_activitys_own_error() -> None:
    # As the client sees a failed activity: its error, with the error it wrapped as cause.
    own = ApplicationError("dataset d: not a Parquet file", type="InvalidDataset")
    own.__cause__ = ApplicationError("magic bytes not found", type="ArrowInvalid")
    activity = ActivityError(
        "activity error", scheduled_event_id=5, started_event_id=6, identity="w",
        activity_type="train_adapter", activity_id="1",
        retry_state=RetryState.NON_RETRYABLE_FAILURE,
    )  # fmt: skip
    activity.__cause__ = own
    workflow = WorkflowFailureError(cause=activity)
    status = failure_status(workflow)
    assert (status.code, status.message) == (
        code_pb2.FAILED_PRECONDITION,
        "dataset d: not a Parquet file",
    )
    unknown = failure_status(WorkflowFailureError(cause=ApplicationError("boom", type="Odd")))
    assert (unknown.code, unknown.message) == (code_pb2.INTERNAL, "boom")


@pytest.mark.parametrize(
    ("config", "field"),
    [
        (pb.TrainingConfig(lora=pb.LoraConfig(rank=-1)), "run.config.lora.rank"),
        (pb.TrainingConfig(lora=pb.LoraConfig(dropout=1.5)), "run.config.lora.dropout"),
        (
            pb.TrainingConfig(hyperparameters=pb.TrainingHyperparameters(num_epochs=-1)),
            "run.config.hyperparameters.num_epochs",
        ),
        (
            pb.TrainingConfig(hyperparameters=pb.TrainingHyperparameters(max_length=8)),
            "run.config.hyperparameters.max_length",
        ),
        (
            pb.TrainingConfig(
                hyperparameters=pb.TrainingHyperparameters(max_length=64, max_prompt_length=64)
            ),
            "run.config.hyperparameters.max_prompt_length",
        ),
        (pb.TrainingConfig(method=pb.TRAINING_METHOD_SFT), "run.config.method"),
        (
            pb.TrainingConfig(hyperparameters=pb.TrainingHyperparameters(early_stop_loss=-1)),
            "run.config.hyperparameters.early_stop_loss",
        ),
    ],
)
def test_a_bad_training_setting_names_its_request_field(
    config: pb.TrainingConfig, field: str
) -> None:
    with pytest.raises(InvalidArgument) as info:
        training_settings(config, "run.config", what="a training run")
    assert [v.field for v in info.value.violations] == [field]


def test_early_stopping_reaches_the_trainer_and_zero_turns_it_off() -> None:
    hyper = pb.TrainingHyperparameters(early_stop_loss=0.2)
    _, dpo = training_settings(pb.TrainingConfig(hyperparameters=hyper), "run.config")
    assert dpo.early_stop_loss == 0.2
    off = pb.TrainingHyperparameters(early_stop_loss=0)
    _, dpo = training_settings(pb.TrainingConfig(hyperparameters=off), "run.config")
    assert dpo.early_stop_loss == 0.0


def test_max_prompt_length_reaches_the_trainer() -> None:
    hyper = pb.TrainingHyperparameters(max_length=256, max_prompt_length=128)
    _, dpo = training_settings(pb.TrainingConfig(hyperparameters=hyper), "run.config")
    assert (dpo.max_length, dpo.max_prompt_length) == (256, 128)
