"""TrainingService preference datasets on the real stack: telemetry (interactions and
edits) through the public API, datasets built, read, listed and exported through it,
the files read back from the object store; a learning loop's build recorded in the same
catalogue; rlaasctl over all of it."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import random
import subprocess
import sys
import uuid
from collections.abc import Awaitable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import grpc
import pyarrow.parquet as pq
import pytest
from google.rpc import code_pb2
from temporalio.testing import ActivityEnvironment

from rlaas.options.v1 import options_pb2
from rlaas.registry.v1 import registry_pb2 as reg
from rlaas.registry.v1 import registry_pb2_grpc
from rlaas.telemetry.v1 import telemetry_pb2 as tel
from rlaas.telemetry.v1 import telemetry_pb2_grpc
from rlaas.training.v1 import training_pb2 as pb
from rlaas.training.v1 import training_pb2_grpc
from rlaas.training.v1.training_pb2 import PreferenceDataset as Dataset
from services.db.engine import create_engine
from services.objects.store import LocalObjectStore
from tests.conftest import RunningStack
from tests.helpers import ROOT, md, new_tenant, rich_error, scoped_key
from workers.dataset_activities import DatasetActivities
from workflows.learning_types import BuildDatasetInput

pytestmark = pytest.mark.integration

SKILL = "support_email"
_WORD_TEXT = (
    "parcel refund blender jacket invoice courier warranty discount address tracking cancel "
    "exchange broken missing late charge twice colour size voucher gift wrap saturday express "
    "insurance subscription pause review receipt bulk office shelf"
)
WORDS = _WORD_TEXT.split()


def rid() -> str:
    return str(uuid.uuid4())


def window(skill: str, start: datetime | None, end: datetime, display_name: str = "") -> Dataset:
    ds = Dataset(skill_id=skill, display_name=display_name)
    if start is not None:
        ds.start_time.FromDatetime(start)
    ds.end_time.FromDatetime(end)
    return ds


async def create(
    s: training_pb2_grpc.TrainingServiceStub,
    key: str,
    ds: Dataset,
    request_id: str = "",
) -> Dataset:
    request = pb.CreatePreferenceDatasetRequest(
        preference_dataset=ds, request_id=request_id or rid()
    )
    return (await s.CreatePreferenceDataset(request, metadata=md(key))).preference_dataset


def read_uri(uri: str) -> bytes:
    assert uri.startswith("file://"), uri
    return Path(unquote(urlparse(uri).path)).read_bytes()


async def expect(code: grpc.StatusCode, call: Awaitable[Any]) -> tuple[str | None, set[str]]:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    err = rich_error(info.value)
    assert err.code == code, err
    return err.reason, {f for f, _ in err.field_violations}


async def seed_telemetry(channel: grpc.aio.Channel, key: str, n: int) -> None:
    """n interactions the user edited before sending, plus one prompt with two answers
    rated apart (a reward-ranked pair): enough for a dataset past the 16-pair minimum."""
    t = telemetry_pb2_grpc.TelemetryServiceStub(channel)
    rng = random.Random(7)
    for k in range(n):
        created = await t.CreateInteraction(
            tel.CreateInteractionRequest(
                interaction=tel.Interaction(
                    skill=SKILL, thread_id=f"thread-{k}",
                    input=tel.InteractionInput(text=f"{' '.join(rng.sample(WORDS, 7))} #{k}?"),
                ),
                output=tel.Output(text="Thanks for your message."), request_id=rid(),
            ),
            metadata=md(key),
        )  # fmt: skip
        edited = f"Hi, about #{k}: {' '.join(rng.sample(WORDS, 9))}. Best regards"
        await t.SubmitFeedback(
            tel.SubmitFeedbackRequest(
                interaction_id=created.interaction.interaction_id, request_id=rid(),
                feedback=tel.Feedback(
                    output_id=created.output.output_id,
                    implicit=tel.ImplicitFeedback(edited_text=edited, sent=True),
                ),
            ),
            metadata=md(key),
        )  # fmt: skip


@pytest.fixture(scope="module")
async def tenant(stack: RunningStack, channel: grpc.aio.Channel) -> dict[str, object]:
    """A tenant with the skill, 24 edited interactions in [start, end), and keys."""
    tenant_id, admin = await new_tenant(channel, stack.admin_key, "datasets")
    r = registry_pb2_grpc.RegistryServiceStub(channel)
    await r.CreateSkill(
        reg.CreateSkillRequest(skill=reg.Skill(skill_id=SKILL), request_id=rid()),
        metadata=md(admin),
    )
    ingest = await scoped_key(channel, admin, options_pb2.SCOPE_INGEST)
    start = datetime.now(UTC) - timedelta(seconds=1)
    await seed_telemetry(channel, ingest, 24)
    await asyncio.sleep(0.05)
    end = datetime.now(UTC)
    train = await scoped_key(channel, admin, options_pb2.SCOPE_TRAIN)
    return {"id": tenant_id, "admin": admin, "train": train, "start": start, "end": end}


async def test_create_get_list_export_and_idempotency(
    stack: RunningStack, channel: grpc.aio.Channel, tenant: dict[str, object]
) -> None:
    s = training_pb2_grpc.TrainingServiceStub(channel)
    key, start, end = str(tenant["train"]), tenant["start"], tenant["end"]
    assert isinstance(start, datetime) and isinstance(end, datetime)
    first_rid = rid()
    request = pb.CreatePreferenceDatasetRequest(
        preference_dataset=window(SKILL, start, end, display_name="first"), request_id=first_rid
    )
    made = (await s.CreatePreferenceDataset(request, metadata=md(key))).preference_dataset
    assert made.state == Dataset.STATE_READY, made.error
    assert made.version == 1 and made.tenant_id == tenant["id"] and made.skill_id == SKILL
    assert made.pair_count >= 16 and made.interaction_count == made.pair_count
    assert made.train_pair_count + made.eval_pair_count == made.pair_count
    assert made.eval_pair_count >= 1  # split by thread: 24 threads, 10% held out
    assert dict(made.pair_counts_by_source) == {"PAIR_SOURCE_EDIT": made.pair_count}
    assert len(made.content_sha256) == 64 and made.storage_uri.startswith("file://")
    assert made.content_sha256 in made.storage_uri and made.mean_reward_margin > 0
    assert made.build_config.eval_fraction == pytest.approx(0.1)
    assert made.end_time.ToDatetime(tzinfo=UTC) == end
    assert made.HasField("create_time") and made.HasField("complete_time")
    got = (
        await s.GetPreferenceDataset(
            pb.GetPreferenceDatasetRequest(dataset_id=made.dataset_id), metadata=md(key)
        )
    ).preference_dataset
    assert got == made

    # A retry returns the original; reusing the id for another dataset is refused.
    again = (await s.CreatePreferenceDataset(request, metadata=md(key))).preference_dataset
    assert again == made
    other = pb.CreatePreferenceDatasetRequest(
        preference_dataset=window(SKILL, start, end, display_name="other"), request_id=first_rid
    )
    reason, _ = await expect(
        grpc.StatusCode.ALREADY_EXISTS, s.CreatePreferenceDataset(other, metadata=md(key))
    )
    assert reason == "REQUEST_ID_REUSED"

    # The same window again: a new version, the same content, the same object.
    second = await create(s, key, window(SKILL, start, end))
    assert second.dataset_id != made.dataset_id and second.version == 2
    assert (second.content_sha256, second.storage_uri) == (made.content_sha256, made.storage_uri)

    listed = await s.ListPreferenceDatasets(
        pb.ListPreferenceDatasetsRequest(skill_id=SKILL), metadata=md(key)
    )
    assert [d.dataset_id for d in listed.preference_datasets][:2] == [
        second.dataset_id, made.dataset_id
    ]  # fmt: skip
    failed_only = await s.ListPreferenceDatasets(
        pb.ListPreferenceDatasetsRequest(state=Dataset.STATE_FAILED), metadata=md(key)
    )
    assert made.dataset_id not in {d.dataset_id for d in failed_only.preference_datasets}

    await _exports(s, key, made)


async def _exports(s: training_pb2_grpc.TrainingServiceStub, key: str, made: Dataset) -> None:
    async def export(fmt: int, split: int = 0, request_id: str = "") -> pb.ExportDatasetResponse:
        request = pb.ExportDatasetRequest(
            dataset_id=made.dataset_id, format=fmt, split=split,
            request_id=request_id or rid(),
        )  # fmt: skip
        response: pb.ExportDatasetResponse = await s.ExportDataset(request, metadata=md(key))
        return response

    for fmt, names in (
        (pb.DATASET_FORMAT_DPO_JSONL, {"prompt", "chosen", "rejected"}),
        (pb.DATASET_FORMAT_OPENAI_CHAT_JSONL, {"messages"}),
        (pb.DATASET_FORMAT_ANTHROPIC_JSONL, {"input", "output"}),
    ):
        out = await export(fmt)
        assert isinstance(out, pb.ExportDatasetResponse)
        data = read_uri(out.uri)
        lines = [json.loads(line) for line in data.decode().splitlines()]
        assert out.format == fmt and out.row_count == len(lines) == made.pair_count
        assert all(set(line) == names for line in lines)
        assert (out.size_bytes, out.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    chat = json.loads(read_uri(out.uri).decode().splitlines()[0])  # anthropic, last one
    assert chat["input"].startswith("\n\nHuman: ") and chat["input"].endswith("\n\nAssistant:")

    parquet = await export(pb.DATASET_FORMAT_PARQUET, pb.DATASET_SPLIT_TRAIN)
    assert isinstance(parquet, pb.ExportDatasetResponse)
    table = pq.read_table(io.BytesIO(read_uri(parquet.uri)))
    assert table.num_rows == parquet.row_count == made.train_pair_count
    assert set(table.column("split").to_pylist()) == {"train"}
    # Deterministic: the same dataset, split and format give the same bytes; a retry
    # with the same request_id answers the same.
    eval_id = rid()
    first = await export(pb.DATASET_FORMAT_DPO_JSONL, pb.DATASET_SPLIT_EVAL, eval_id)
    retry = await export(pb.DATASET_FORMAT_DPO_JSONL, pb.DATASET_SPLIT_EVAL, eval_id)
    fresh = await export(pb.DATASET_FORMAT_DPO_JSONL, pb.DATASET_SPLIT_EVAL)
    assert first == retry == fresh
    assert isinstance(first, pb.ExportDatasetResponse)
    assert first.row_count == made.eval_pair_count
    reason, _ = await expect(
        grpc.StatusCode.ALREADY_EXISTS, export(pb.DATASET_FORMAT_PARQUET, 0, eval_id)
    )
    assert reason == "REQUEST_ID_REUSED"


async def test_errors_validation_preconditions_and_tenancy(
    stack: RunningStack, channel: grpc.aio.Channel, tenant: dict[str, object]
) -> None:
    s = training_pb2_grpc.TrainingServiceStub(channel)
    key = str(tenant["train"])
    bad = Dataset(build_config=pb.DatasetBuildConfig(
        eval_fraction=0.9, reward_config=pb.RewardConfig(thumb_weight=-1),
    ))  # fmt: skip
    _, fields = await expect(
        grpc.StatusCode.INVALID_ARGUMENT,
        s.CreatePreferenceDataset(
            pb.CreatePreferenceDatasetRequest(preference_dataset=bad), metadata=md(key)
        ),
    )
    assert fields == {
        "request_id", "preference_dataset.skill_id",
        "preference_dataset.build_config.eval_fraction",
        "preference_dataset.build_config.reward_config.thumb_weight",
    }  # fmt: skip
    now = datetime.now(UTC)
    _, fields = await expect(
        grpc.StatusCode.INVALID_ARGUMENT,
        s.CreatePreferenceDataset(
            pb.CreatePreferenceDatasetRequest(
                preference_dataset=window(SKILL, now, now - timedelta(days=1)), request_id=rid()
            ),
            metadata=md(key),
        ),
    )
    assert fields == {"preference_dataset.start_time"}
    _, fields = await expect(
        grpc.StatusCode.INVALID_ARGUMENT,
        s.ExportDataset(pb.ExportDatasetRequest(), metadata=md(key)),
    )
    assert fields == {"dataset_id", "format", "request_id"}
    await expect(
        grpc.StatusCode.INVALID_ARGUMENT,
        s.GetPreferenceDataset(pb.GetPreferenceDatasetRequest(), metadata=md(key)),
    )
    await expect(
        grpc.StatusCode.INVALID_ARGUMENT,
        s.ListPreferenceDatasets(
            pb.ListPreferenceDatasetsRequest(page_token="garbage"), metadata=md(key)
        ),
    )

    # Unknown skill and policy: NOT_FOUND.
    for ds in (
        Dataset(skill_id="no_such_skill"),
        Dataset(skill_id=SKILL, build_config=pb.DatasetBuildConfig(policy_ids=[f"{SKILL}@v9"])),
    ):
        await expect(
            grpc.StatusCode.NOT_FOUND,
            s.CreatePreferenceDataset(
                pb.CreatePreferenceDatasetRequest(preference_dataset=ds, request_id=rid()),
                metadata=md(key),
            ),
        )

    # A window without telemetry: the build fails, recorded as a FAILED dataset that
    # says why; it cannot be exported.
    long_ago = datetime(2020, 1, 1, tzinfo=UTC)
    failed = await create(s, key, window(SKILL, long_ago, long_ago + timedelta(days=1)))
    assert failed.state == Dataset.STATE_FAILED
    assert failed.error.code == code_pb2.FAILED_PRECONDITION
    assert "preference pairs" in failed.error.message and not failed.content_sha256
    reason, _ = await expect(
        grpc.StatusCode.FAILED_PRECONDITION,
        s.ExportDataset(
            pb.ExportDatasetRequest(
                dataset_id=failed.dataset_id, format=pb.DATASET_FORMAT_DPO_JSONL, request_id=rid()
            ),
            metadata=md(key),
        ),
    )
    assert reason == "DATASET_NOT_READY"

    # Another tenant sees none of it.
    _, other_admin = await new_tenant(channel, stack.admin_key, "datasets-other")
    other = await scoped_key(channel, other_admin, options_pb2.SCOPE_TRAIN)
    await expect(
        grpc.StatusCode.NOT_FOUND,
        s.GetPreferenceDataset(
            pb.GetPreferenceDatasetRequest(dataset_id=failed.dataset_id), metadata=md(other)
        ),
    )
    await expect(
        grpc.StatusCode.NOT_FOUND,
        s.ExportDataset(
            pb.ExportDatasetRequest(
                dataset_id=failed.dataset_id, format=pb.DATASET_FORMAT_DPO_JSONL, request_id=rid()
            ),
            metadata=md(other),
        ),
    )
    listed = await s.ListPreferenceDatasets(pb.ListPreferenceDatasetsRequest(), metadata=md(other))
    assert not listed.preference_datasets
    # An ingest-only key may not touch datasets.
    ingest = await scoped_key(channel, str(tenant["admin"]), options_pb2.SCOPE_INGEST)
    await expect(
        grpc.StatusCode.PERMISSION_DENIED,
        s.ListPreferenceDatasets(pb.ListPreferenceDatasetsRequest(), metadata=md(ingest)),
    )


async def test_paging_walks_every_dataset_once(
    channel: grpc.aio.Channel, tenant: dict[str, object]
) -> None:
    s = training_pb2_grpc.TrainingServiceStub(channel)
    key = str(tenant["train"])
    long_ago = datetime(2021, 1, 1, tzinfo=UTC)
    for days in range(3):  # empty windows build (FAILED) in no time
        await create(s, key, window(SKILL, long_ago, long_ago + timedelta(days=days + 1)))
    everything = await s.ListPreferenceDatasets(
        pb.ListPreferenceDatasetsRequest(), metadata=md(key)
    )
    seen, token = [], ""
    while True:
        page = await s.ListPreferenceDatasets(
            pb.ListPreferenceDatasetsRequest(page_size=1, page_token=token), metadata=md(key)
        )
        seen += [d.dataset_id for d in page.preference_datasets]
        token = page.next_page_token
        if not token:
            break
    assert seen == [d.dataset_id for d in everything.preference_datasets]
    assert len(seen) >= 3
    times = [d.create_time.ToDatetime() for d in everything.preference_datasets]
    assert times == sorted(times, reverse=True)


async def test_a_learning_loops_build_is_recorded_once(
    stack: RunningStack, channel: grpc.aio.Channel, tenant: dict[str, object]
) -> None:
    s = training_pb2_grpc.TrainingServiceStub(channel)
    key, tenant_id, end = str(tenant["train"]), str(tenant["id"]), tenant["end"]
    assert isinstance(end, datetime)
    engine = create_engine(stack.database_url, pool_size=2)
    env = ActivityEnvironment()
    env.info = replace(env.info, workflow_id=f"loop/{tenant_id}/{SKILL}-abc")
    activities = DatasetActivities(engine, LocalObjectStore(stack.settings.objects_dir))
    inp = BuildDatasetInput(tenant_id, SKILL, "", end.isoformat(), 8)
    try:
        built = await env.run(activities.build_preference_dataset, inp)
        retried = await env.run(activities.build_preference_dataset, inp)  # a retry
    finally:
        await engine.dispose()
    assert built == retried and built.dataset_uri
    listed = await s.ListPreferenceDatasets(
        pb.ListPreferenceDatasetsRequest(skill_id=SKILL), metadata=md(key)
    )
    from_loop = [d for d in listed.preference_datasets if d.learning_loop_id]
    [dataset] = from_loop
    assert dataset.learning_loop_id == f"{SKILL}-abc" and dataset.state == Dataset.STATE_READY
    assert (dataset.storage_uri, dataset.content_sha256) == (
        built.dataset_uri, built.dataset_sha256
    )  # fmt: skip
    # The loop reads the whole history up to `until` with the skill's defaults: the
    # API builds the same content from the same window.
    api_built = await create(s, key, window(SKILL, None, end))
    assert api_built.content_sha256 == dataset.content_sha256
    assert api_built.version == dataset.version + 1  # one version sequence per skill


def ctl(stack: RunningStack, key: str, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "rlaasctl", "--target", stack.grpc_target]
    return subprocess.run(
        [*command, "--api-key", key, *args],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


async def test_rlaasctl_datasets(stack: RunningStack, tenant: dict[str, object]) -> None:
    key, start, end = str(tenant["train"]), tenant["start"], tenant["end"]
    assert isinstance(start, datetime) and isinstance(end, datetime)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return ctl(stack, key, "--output", "json", "datasets", *args)

    made = await asyncio.to_thread(
        run, "create", SKILL, "--start", start.isoformat(), "--end", end.isoformat(),
        "--source", "edit", "--display-name", "from ctl",
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    dataset = json.loads(made.stdout)["preferenceDataset"]
    assert dataset["state"] == "STATE_READY" and int(dataset["pairCount"]) >= 16
    got = await asyncio.to_thread(run, "get", dataset["datasetId"])
    assert json.loads(got.stdout)["preferenceDataset"]["contentSha256"] == dataset["contentSha256"]
    listed = await asyncio.to_thread(run, "list", "--skill", SKILL, "--state", "ready")
    ids = [d["datasetId"] for d in json.loads(listed.stdout)["preferenceDatasets"]]
    assert ids[0] == dataset["datasetId"]
    exported = await asyncio.to_thread(
        run, "export", dataset["datasetId"], "--format", "dpo", "--split", "train"
    )
    out = json.loads(exported.stdout)
    assert exported.returncode == 0 and out["format"] == "DATASET_FORMAT_DPO_JSONL"
    assert len(read_uri(out["uri"]).decode().splitlines()) == int(out["rowCount"])
    text = await asyncio.to_thread(ctl, stack, key, "datasets", "get", dataset["datasetId"])
    assert text.returncode == 0 and f"{SKILL} v" in text.stdout and "ready" in text.stdout
    missing = await asyncio.to_thread(run, "get", "ds-nope")
    assert missing.returncode == 3 and json.loads(missing.stderr)["code"] == "NOT_FOUND"
    no_skill = await asyncio.to_thread(run, "create", "")
    assert no_skill.returncode == 2


async def test_a_loops_dataset_config_and_window_build_what_the_api_builds(
    stack: RunningStack, channel: grpc.aio.Channel, tenant: dict[str, object]
) -> None:
    from google.protobuf import json_format

    s = training_pb2_grpc.TrainingServiceStub(channel)
    key, tenant_id = str(tenant["train"]), str(tenant["id"])
    start, end = tenant["start"], tenant["end"]
    assert isinstance(start, datetime) and isinstance(end, datetime)
    # What StartLearningLoop stores from `learning_loop.config.dataset`/`data_window`.
    config = pb.DatasetBuildConfig(max_pairs=18, seed=5, pair_sources=[pb.PAIR_SOURCE_EDIT])
    as_json = json_format.MessageToDict(config)
    engine = create_engine(stack.database_url, pool_size=2)
    activities = DatasetActivities(engine, LocalObjectStore(stack.settings.objects_dir))
    env = ActivityEnvironment()

    def build(window_s: float) -> BuildDatasetInput:
        return BuildDatasetInput(tenant_id, SKILL, "", end.isoformat(), 16, 0.0, as_json, window_s)

    try:
        shaped = await env.run(
            activities.build_preference_dataset, build((end - start).total_seconds())
        )
        empty = await env.run(activities.build_preference_dataset, build(0.001))
    finally:
        await engine.dispose()
    assert shaped.pairs == 18  # capped, and edits only (24 were there)
    ds = window(SKILL, start, end)
    ds.build_config.CopyFrom(config)
    api_built = await create(s, key, ds)
    assert api_built.content_sha256 == shaped.dataset_sha256
    # A window with no telemetry in it: nothing to train on, whatever came before.
    assert (empty.dataset_uri, empty.pairs) == ("", 0)
