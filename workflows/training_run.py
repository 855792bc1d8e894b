"""TrainingRunWorkflow: one training run as TrainingService exposes it. It trains a LoRA
adapter on the model-bearing (GPU) queue, with a heartbeat timeout so that a dead
worker is noticed and the retry resumes from the last checkpoint, then registers the
adapter as the skill's next CANDIDATE policy (`skill@vN+1`).

The `status` query tells the phase; the step and loss of a run in progress are the
train activity's heartbeat details, which the service reads from the workflow's pending
activities (the workflow never sees heartbeats itself). Cancelling the workflow cancels
training; once the adapter exists the registration is allowed to finish, so a run
either produces its policy or produces none. Deterministic, no I/O.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from workflows.learning_types import (
        RegisterCandidateInput,
        RegisterCandidateOutput,
        TrainAdapterOutput,
        TrainingRunInput,
        TrainingRunResult,
        TrainingRunStatus,
    )

_TIMEOUT = timedelta(minutes=10)
_RETRY = RetryPolicy(maximum_attempts=5)


def training_run_workflow_id(tenant_id: str, training_run_id: str) -> str:
    """The tenant in the id keeps tenants apart: a caller only ever reaches ids under
    its own tenant's prefix."""
    return f"training-run/{tenant_id}/{training_run_id}"


@workflow.defn
class TrainingRunWorkflow:
    def __init__(self) -> None:
        self._phase = "training"
        self._policy_id = ""

    @workflow.query
    def status(self) -> TrainingRunStatus:
        return TrainingRunStatus(self._phase, self._policy_id)

    @workflow.run
    async def run(self, inp: TrainingRunInput) -> TrainingRunResult:
        train = inp.train
        trained: TrainAdapterOutput = await workflow.execute_activity(
            "train_adapter",
            train,
            result_type=TrainAdapterOutput,
            task_queue=inp.task_queue,
            start_to_close_timeout=timedelta(seconds=inp.timeout_s),
            heartbeat_timeout=timedelta(seconds=inp.heartbeat_timeout_s),
            retry_policy=RetryPolicy(maximum_attempts=inp.max_attempts),
        )
        self._phase = "registering"
        registering = workflow.start_activity(
            "register_candidate",
            RegisterCandidateInput(train.tenant_id, train.skill_id, train.parent_policy_id,
                                   trained.adapter_uri, trained.adapter_sha256, train.run_id),
            result_type=RegisterCandidateOutput,
            start_to_close_timeout=_TIMEOUT,
            retry_policy=_RETRY,
        )  # fmt: skip
        try:
            candidate = await asyncio.shield(registering)
        except asyncio.CancelledError:
            # A cancel that arrives after training is too late: the adapter exists and
            # its registration is one idempotent call, so the run finishes and the
            # service reports it SUCCEEDED rather than leaving a half-made policy.
            candidate = await registering
        self._phase, self._policy_id = "succeeded", candidate.policy_id
        return TrainingRunResult(trained, candidate.policy_id)
