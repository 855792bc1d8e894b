"""build_preference_dataset: rewards + pairs from a skill's telemetry, stored as a
content-addressed Parquet dataset; only its URI goes back to the workflow. The dataset
is also recorded as a TrainingService ``PreferenceDataset`` (learning_loop_id set), so
GetPreferenceDataset and ListPreferenceDatasets show what the loop trained on."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import activity

from services.db.engine import create_session_factory
from services.errors import FailedPrecondition
from services.objects.store import ObjectStore
from services.rewards.engines import reward_config_for
from services.training.datasets import BuildSpec, golden_prompts, record_loop_dataset
from services.training.preferences import BuildOptions, build_dataset_from_db
from workflows.learning_types import BuildDatasetInput, BuildDatasetOutput


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
        config = reward_config_for(inp.skill_id)
        options = BuildOptions(min_pairs=inp.min_pairs)
        if inp.eval_fraction:
            options = dataclasses.replace(options, eval_fraction=inp.eval_fraction)
        until = datetime.fromisoformat(inp.until) if inp.until else None
        if until is not None and until.tzinfo is None:
            until = until.replace(tzinfo=UTC)
        try:
            version = await build_dataset_from_db(
                self._engine,
                self._objects,
                inp.tenant_id,
                inp.skill_id,
                config,
                options,
                end_time=until,
                eval_prompts=golden_prompts(),  # never train on what the gate evaluates on
            )
        except FailedPrecondition as err:
            if err.reason != "NOT_ENOUGH_PAIRS":
                raise
            return BuildDatasetOutput("", "", int(err.metadata.get("pairs", 0)), config.version)
        workflow_id = activity.info().workflow_id or ""
        spec = BuildSpec(
            inp.skill_id, "", None, until or started, config, options,
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
