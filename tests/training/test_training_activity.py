"""The train_adapter activity through temporalio's ActivityEnvironment, on the tiny model
and a local object store: heartbeats, artifacts, resume after an interrupted attempt,
and permanent failures."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import io
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from services.objects.store import LocalObjectStore, key_for_uri
from tests.backends.tiny import build_tiny_model
from tests.training.test_trainer import GOLDEN, PAIRS
from workers.training_activities import (
    TrainAdapterInput,
    TrainAdapterOutput,
    TrainingActivities,
)
from workflows.training_types import DpoSettings

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")

DPO = DpoSettings(max_steps=6, batch_size=2, learning_rate=5e-3, seed=1)


def _parquet(pairs: list[dict[str, Any]], **columns: Any) -> bytes:
    rows = [
        {
            # The dataset builder stores chat prompts as JSON text.
            "prompt": p["prompt"] if isinstance(p["prompt"], str) else json.dumps(p["prompt"]),
            "chosen": p["chosen"],
            "rejected": p["rejected"],
            "reward_margin": 0.5,
            **columns,
        }
        for p in pairs
    ]
    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), buf)
    return buf.getvalue()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture
async def setup(tmp_path: Path, model_dir: Path) -> tuple[LocalObjectStore, TrainingActivities]:
    store = LocalObjectStore(tmp_path / "objects")
    await store.ensure_ready()
    await store.put("datasets/t1/s1/v1/pairs.parquet", _parquet(PAIRS))
    await store.put("datasets/t1/s1/golden/pairs.parquet", _parquet(GOLDEN))
    acts = TrainingActivities(store, tmp_path / "models", model_dir, heartbeat_every_s=0.2)
    return store, acts


def _input(store: LocalObjectStore, run_id: str, **kw: Any) -> TrainAdapterInput:
    values: dict[str, Any] = {
        "tenant_id": "t1",
        "skill_id": "s1",
        "run_id": run_id,
        "dataset_uri": store.uri("datasets/t1/s1/v1/pairs.parquet"),
        "parent_policy_id": "s1@v1",
        "dataset_version": 1,
        "reward_config_version": "rc-3",
        "judge_version": "judge-1",
        "dpo": DPO,
        "checkpoint_every": 2,
    }
    values.update(kw)
    return TrainAdapterInput(**values)


def _run(env: ActivityEnvironment, acts: TrainingActivities, inp: TrainAdapterInput) -> Any:
    return env.run(acts.train_adapter, inp)


async def test_train_adapter_heartbeats_and_stores_artifacts(
    setup: tuple[LocalObjectStore, TrainingActivities],
) -> None:
    store, acts = setup
    beats: list[dict[str, Any]] = []
    env = ActivityEnvironment()
    env.on_heartbeat = lambda *details: beats.append(details[0])
    inp = _input(
        store,
        "run-1",
        golden_dataset_uri=store.uri("datasets/t1/s1/golden/pairs.parquet"),
        dpo=dataclasses.replace(DPO, replay_fraction=0.2),
    )
    out: TrainAdapterOutput = await _run(env, acts, inp)

    assert all(set(b) >= {"step", "loss", "checkpoint_uri"} for b in beats)
    steps = [b["step"] for b in beats]
    # Each step wakes the heartbeater, which sends the latest state (so close steps
    # may share one heartbeat).
    assert steps == sorted(steps) and steps[-1] == 6 and len(set(steps)) >= 3
    with_checkpoint = [b for b in beats if b["checkpoint_uri"]]
    assert with_checkpoint and with_checkpoint[0]["checkpoint_step"] == 2
    assert "checkpoints/t1/s1/run-1/step-" in with_checkpoint[0]["checkpoint_uri"]
    assert all(isinstance(b["loss"], float) for b in beats if b["step"])

    prefix = "adapters/t1/s1/run-1"
    assert out.adapter_uri == store.uri(prefix)
    assert out.steps == 6 and out.resumed_from_step == 0
    names = sorted(k.rsplit("/", 1)[1] for k in await store.list(prefix + "/"))
    assert names == [
        "adapter_config.json",
        "adapter_model.safetensors",
        "lineage.json",
        "loss_curve.png",
        "metrics.json",
    ]
    weights = await store.get(f"{prefix}/adapter_model.safetensors")
    assert hashlib.sha256(weights).hexdigest() == out.adapter_sha256
    assert (await store.get(f"{prefix}/loss_curve.png")).startswith(b"\x89PNG")
    metrics = json.loads(await store.get(f"{prefix}/metrics.json"))
    assert len(metrics["losses"]) == 6 and metrics["replay_pairs"] == 1
    assert out.metrics["final_loss"] == metrics["final_loss"] == out.final_loss

    lineage = json.loads(await store.get(key_for_uri(store, out.lineage_uri)))
    assert lineage == out.lineage
    dataset = await store.get("datasets/t1/s1/v1/pairs.parquet")
    assert lineage["dataset_sha256"] == hashlib.sha256(dataset).hexdigest()
    assert lineage["dataset_version"] == 1 and lineage["reward_config_version"] == "rc-3"
    assert lineage["judge_version"] == "judge-1" and lineage["parent_policy_id"] == "s1@v1"
    assert lineage["adapter_sha256"] == out.adapter_sha256
    assert lineage["reference_model"] == lineage["base_model"] == "model"
    assert lineage["training_config"]["dpo"]["max_steps"] == 6
    assert lineage["seed"] == 1 and "trl==" in lineage["trainer_version"]
    assert lineage["code_version"].startswith("rlaas==")
    # The run succeeded: its checkpoints are gone.
    assert await store.list("checkpoints/t1/s1/run-1/") == []


async def test_rewritten_edits_get_the_warm_start_and_the_run_records_it(
    setup: tuple[LocalObjectStore, TrainingActivities],
) -> None:
    """The platform's rule end to end: the stored dataset's pair sources reach the
    trainer, which measures how much of the served answers users kept (PAIRS' chosen
    and rejected share almost nothing) and warms up with SFT; the run says so."""
    store, acts = setup
    await store.put("datasets/t1/s1/v2/pairs.parquet",
                    _parquet(PAIRS, source="PAIR_SOURCE_EDIT", split="train"))  # fmt: skip
    rule = dataclasses.replace(DPO, max_steps=2, sft_warmup_below_similarity=0.5)
    inp = _input(store, "run-warm", dpo=rule,
                 dataset_uri=store.uri("datasets/t1/s1/v2/pairs.parquet"))  # fmt: skip
    out: TrainAdapterOutput = await _run(ActivityEnvironment(), acts, inp)
    assert out.metrics["edit_similarity"] < 0.5
    assert out.metrics["sft_warmup_steps"] == 2  # one epoch of 4 pairs at batch 2
    assert "SFT warm-start (2 steps)" in out.lineage["reference_model"]
    # Without the sources (an uploaded file of bare pairs) nothing is known to be an edit.
    bare = _input(store, "run-bare", dpo=rule)
    out = await _run(ActivityEnvironment(), acts, bare)
    assert "edit_similarity" not in out.metrics and out.metrics["sft_warmup_steps"] == 0


async def test_a_retry_resumes_from_the_heartbeat_checkpoint(
    setup: tuple[LocalObjectStore, TrainingActivities],
) -> None:
    store, acts = setup
    dpo = dataclasses.replace(DPO, max_steps=10)
    inp = _input(store, "run-2", dpo=dpo, checkpoint_every=3)

    # Attempt 1: cancelled right after its checkpoint at step 6 (a lost worker would
    # leave the same trace: heartbeat details pointing at an uploaded checkpoint).
    first = ActivityEnvironment()
    beats: list[dict[str, Any]] = []

    def on_heartbeat(*details: Any) -> None:
        beats.append(details[0])
        if details[0]["checkpoint_step"] == 6:
            first.cancel()

    first.on_heartbeat = on_heartbeat
    with pytest.raises(asyncio.CancelledError):
        await _run(first, acts, inp)
    last = beats[-1]
    assert last["checkpoint_step"] == 6 and 6 <= last["step"] < 9
    assert await store.list("checkpoints/t1/s1/run-2/") == [
        "checkpoints/t1/s1/run-2/step-6/checkpoint.tar"  # step-3's was replaced
    ]

    # Attempt 2 gets those details, as Temporal hands them to a retry.
    second = ActivityEnvironment()
    second.info = dataclasses.replace(second.info, attempt=2, heartbeat_details=[last])
    resumed_beats: list[dict[str, Any]] = []
    second.on_heartbeat = lambda *details: resumed_beats.append(details[0])
    out: TrainAdapterOutput = await _run(second, acts, inp)

    assert out.resumed_from_step == 6 and out.steps == 10
    assert min(b["step"] for b in resumed_beats) >= 6  # never back at step 0
    assert resumed_beats[-1]["step"] == 10
    assert out.lineage["resumed_from_step"] == 6
    metrics = json.loads(await store.get(key_for_uri(store, out.metrics_uri)))
    assert len(metrics["losses"]) == 10  # the curve covers both attempts

    # The same run uninterrupted gives the same adapter (exact resume).
    clean_inp = _input(store, "run-3", dpo=dpo, checkpoint_every=3)
    clean: TrainAdapterOutput = await _run(ActivityEnvironment(), acts, clean_inp)
    assert clean.adapter_sha256 == out.adapter_sha256


async def test_a_retry_resumes_from_a_newer_checkpoint_than_the_heartbeat_names(
    setup: tuple[LocalObjectStore, TrainingActivities],
) -> None:
    """Heartbeats are throttled: the server may still hold details naming a checkpoint
    that the dead worker replaced (and deleted) since. The retry takes the newest."""
    store, acts = setup
    inp = _input(store, "run-7", dpo=dataclasses.replace(DPO, max_steps=8), checkpoint_every=2)
    first = ActivityEnvironment()
    beats: list[dict[str, Any]] = []

    def on_heartbeat(*details: Any) -> None:
        beats.append(details[0])
        if details[0]["checkpoint_step"] == 4:
            first.cancel()

    first.on_heartbeat = on_heartbeat
    with pytest.raises(asyncio.CancelledError):
        await _run(first, acts, inp)
    stale = next(b for b in beats if b["checkpoint_step"] == 2)
    assert await store.list("checkpoints/t1/s1/run-7/") == [
        "checkpoints/t1/s1/run-7/step-4/checkpoint.tar"  # the named step-2 one is gone
    ]

    second = ActivityEnvironment()
    second.info = dataclasses.replace(second.info, attempt=2, heartbeat_details=[stale])
    resumed_beats: list[dict[str, Any]] = []
    second.on_heartbeat = lambda *details: resumed_beats.append(details[0])
    out: TrainAdapterOutput = await _run(second, acts, inp)
    assert out.resumed_from_step == 4 and out.steps == 8
    assert resumed_beats[0]["checkpoint_step"] == 4 and resumed_beats[0]["step"] >= 4
    assert await store.list("checkpoints/t1/s1/run-7/") == []


async def test_missing_dataset_is_a_permanent_failure(
    setup: tuple[LocalObjectStore, TrainingActivities],
) -> None:
    store, acts = setup
    inp = _input(store, "run-4", dataset_uri=store.uri("datasets/t1/s1/nope.parquet"))
    with pytest.raises(ApplicationError) as err:
        await _run(ActivityEnvironment(), acts, inp)
    assert err.value.non_retryable and err.value.type == "NOT_FOUND:NOT_FOUND"


@pytest.mark.parametrize(
    ("change", "kind"),
    [
        ({"checkpoint_every": -1}, "INVALID_ARGUMENT:INVALID_TRAINING_CONFIG"),
        ({"run_id": "a/b"}, "INVALID_ARGUMENT:INVALID_ARGUMENT"),
        ({"dataset_uri": "s3://elsewhere/x.parquet"}, "INVALID_ARGUMENT:INVALID_ARGUMENT"),
        ({"dataset_sha256": "0" * 64}, "FAILED_PRECONDITION:DATASET_CHANGED"),
    ],
)
async def test_bad_config_is_a_permanent_failure(
    setup: tuple[LocalObjectStore, TrainingActivities], change: dict[str, Any], kind: str
) -> None:
    store, acts = setup
    inp = dataclasses.replace(_input(store, "run-5"), **change)
    with pytest.raises(ApplicationError) as err:
        await _run(ActivityEnvironment(), acts, inp)
    assert err.value.non_retryable and err.value.type == kind


async def test_a_dataset_without_pair_columns_is_a_permanent_failure(
    setup: tuple[LocalObjectStore, TrainingActivities],
) -> None:
    store, acts = setup
    buf = io.BytesIO()
    pq.write_table(pa.table({"prompt": ["x"], "answer": ["y"]}), buf)
    await store.put("datasets/t1/s1/bad.parquet", buf.getvalue())
    inp = _input(store, "run-6", dataset_uri=store.uri("datasets/t1/s1/bad.parquet"))
    with pytest.raises(ApplicationError, match="lacks column") as err:
        await _run(ActivityEnvironment(), acts, inp)
    assert err.value.non_retryable
