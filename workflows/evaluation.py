"""EvaluationWorkflow: one offline evaluation as TrainingService exposes it. The
evaluate activity generates with both policies where the model is (the GPU queue),
judges them on the golden set and the safety suites, stores the full report in the
object store and returns the verdict with its statistics and the report's URI, which
is this workflow's result. Deterministic, no I/O.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from workflows.learning_types import EvaluateOutput, EvaluationInput, EvaluationStatus

_RETRY = RetryPolicy(maximum_attempts=5)


def evaluation_workflow_id(tenant_id: str, evaluation_id: str) -> str:
    """The tenant in the id keeps tenants apart: a caller only ever reaches ids under
    its own tenant's prefix."""
    return f"evaluation/{tenant_id}/{evaluation_id}"


@workflow.defn
class EvaluationWorkflow:
    def __init__(self) -> None:
        self._phase = "evaluating"

    @workflow.query
    def status(self) -> EvaluationStatus:
        return EvaluationStatus(self._phase)

    @workflow.run
    async def run(self, inp: EvaluationInput) -> EvaluateOutput:
        verdict: EvaluateOutput = await workflow.execute_activity(
            "evaluate_candidate",
            inp.evaluate,
            result_type=EvaluateOutput,
            task_queue=inp.task_queue,
            start_to_close_timeout=timedelta(seconds=inp.timeout_s),
            retry_policy=_RETRY,
        )
        self._phase = "succeeded"
        return verdict
