"""build_preference_dataset: rewards + pairs from a skill's telemetry, stored as a
content-addressed Parquet dataset; only its URI goes back to the workflow. The dataset
is also recorded as a TrainingService ``PreferenceDataset`` (learning_loop_id set), so
GetPreferenceDataset and ListPreferenceDatasets show what the loop trained on."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from google.protobuf import json_format
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import activity

from rlaas.training.v1 import training_pb2 as pb
from services.activity_errors import permanent
from services.db.engine import create_session_factory
from services.errors import FailedPrecondition, InvalidArgument
from services.objects.store import ObjectStore
from services.rewards.engines import RewardConfig, reward_config_for
from services.training.datasets import (
    BuildSpec,
    build_config_options,
    golden_prompts,
    record_loop_dataset,
)
from services.training.preferences import BuildOptions, build_dataset_from_db
from workflows.learning_types import BuildDatasetInput, BuildDatasetOutput


def _build_config(inp: BuildDatasetInput) -> tuple[RewardConfig, BuildOptions]:
    """The loop's dataset config (checked when the loop started) as the builder's
    reward config and options; the skill's defaults when it set none."""
    if not inp.build_config:
        return reward_config_for(inp.skill_id), BuildOptions()
    proto = json_format.ParseDict(inp.build_config, pb.DatasetBuildConfig())
    try:
        return build_config_options(inp.skill_id, proto, "learning_loop.config.dataset")
    except InvalidArgument as err:  # rules tightened since the loop started
        raise permanent(err, f"the loop's dataset config: {err.message}") from err


def _loop_id(workflow_id: str, tenant_id: str) -> str:
    """The loop's id from its workflow id (``loop/<tenant>/<loop_id>``, as
    TrainingService starts loops); "" for a workflow started some other way."""
    prefix = f"loop/{tenant_id}/"
    return workflow_id.removeprefix(prefix) if workflow_id.startswith(prefix) else ""


class DatasetActivities:
    def __init__(self, engine: AsyncEngine, objects: ObjectStore) -> None:
        self._engine = engine
        self._sessions = create_session_factory(engine)
        self._objects = objects

    @activity.defn(name="build_preference_dataset")
    async def build_preference_dataset(self, inp: BuildDatasetInput) -> BuildDatasetOutput:
        started = datetime.now(UTC)
        config, options = _build_config(inp)
        options = dataclasses.replace(options, min_pairs=inp.min_pairs)
        if inp.eval_fraction:
            options = dataclasses.replace(options, eval_fraction=inp.eval_fraction)
        until = datetime.fromisoformat(inp.until) if inp.until else None
        if until is not None and until.tzinfo is None:
            until = until.replace(tzinfo=UTC)
        since = None
        if inp.window_s:
            since = (until or started) - timedelta(seconds=inp.window_s)
        try:
            version = await build_dataset_from_db(
                self._engine,
                self._objects,
                inp.tenant_id,
                inp.skill_id,
                config,
                options,
                start_time=since,
                end_time=until,
                eval_prompts=golden_prompts(),  # never train on what the gate evaluates on
            )
        except FailedPrecondition as err:
            if err.reason != "NOT_ENOUGH_PAIRS":
                raise
            return BuildDatasetOutput("", "", int(err.metadata.get("pairs", 0)), config.version)
        workflow_id = activity.info().workflow_id or ""
        spec = BuildSpec(
            inp.skill_id, "", since, until or started, config, options, options.policy_ids,
            learning_loop_id=_loop_id(workflow_id, inp.tenant_id),
        )  # fmt: skip
        # One record per loop iteration (the workflow's `until` names it), however
        # often this activity is retried.
        recorded = await record_loop_dataset(
            self._sessions,
            tenant_id=inp.tenant_id,
            spec=spec,
            version=version,
            iteration_key=f"{workflow_id}@{inp.until}",
            create_time=started,
        )
        return BuildDatasetOutput(
            version.uri, version.content_sha256, version.pair_count,
            version.reward_config_version, recorded.dataset_id,
        )  # fmt: skip
