"""Histories recorded by earlier workflow code (tests/data/histories, see record.py there)
must replay against today's code: a workflow that was running when a new worker
deployed continues from its history, so any change of commands must sit behind
`workflow.patched`. Replay runs locally; no server needed."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from workflows.evaluation import EvaluationWorkflow
from workflows.learning_loop import LearningLoopWorkflow
from workflows.rollout import RolloutWorkflow
from workflows.training_run import TrainingRunWorkflow

pytestmark = pytest.mark.unit

HISTORIES = sorted((Path(__file__).resolve().parent.parent / "data" / "histories").glob("*.json"))


def _read(path: Path) -> str:
    return path.read_text()


def test_histories_are_there() -> None:
    assert len(HISTORIES) >= 5


@pytest.mark.parametrize("path", HISTORIES, ids=lambda p: p.stem)
async def test_saved_history_replays(path: Path) -> None:
    history = WorkflowHistory.from_json(f"wf-{path.stem}", _read(path))
    replayer = Replayer(
        workflows=[LearningLoopWorkflow, RolloutWorkflow, TrainingRunWorkflow, EvaluationWorkflow]
    )
    await replayer.replay_workflow(history)
