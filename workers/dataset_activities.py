"""build_preference_dataset: rewards + pairs from a skill's telemetry, stored as a
content-addressed Parquet dataset; only its URI goes back to the workflow."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import activity

from services.errors import FailedPrecondition
from services.objects.store import ObjectStore
from services.rewards.engines import reward_config_for
from services.training.evaluation import load_golden_set
from services.training.preferences import BuildOptions, build_dataset_from_db
from workflows.learning_types import BuildDatasetInput, BuildDatasetOutput


class DatasetActivities:
    def __init__(self, engine: AsyncEngine, objects: ObjectStore) -> None:
        self._engine = engine
        self._objects = objects

    @activity.defn(name="build_preference_dataset")
    async def build_preference_dataset(self, inp: BuildDatasetInput) -> BuildDatasetOutput:
        config = reward_config_for(inp.skill_id)
        # Never train on what the gate evaluates on.
        eval_prompts = [g.prompt for g in load_golden_set()]
        try:
            version = await build_dataset_from_db(
                self._engine,
                self._objects,
                inp.tenant_id,
                inp.skill_id,
                config,
                BuildOptions(min_pairs=inp.min_pairs),
                end_time=datetime.fromisoformat(inp.until) if inp.until else None,
                eval_prompts=eval_prompts,
            )
        except FailedPrecondition as err:
            if err.reason != "NOT_ENOUGH_PAIRS":
                raise
            return BuildDatasetOutput("", "", int(err.metadata.get("pairs", 0)), config.version)
        return BuildDatasetOutput(
            version.uri, version.content_sha256, version.pair_count, version.reward_config_version
        )
