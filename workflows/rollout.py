"""RolloutWorkflow: shadow -> canary -> full, rolled back automatically on regression.

Each stage polls an activity that compares the candidate's online reward and error rate
with the baseline's (a sequential test: it answers continue, accept or reject). Signals
promote (skip ahead), rollback (now), pause and resume; the `status` query tells where it
is. Traffic changes go through the registry (audited, announced to every server).
"""

from __future__ import annotations

import contextlib
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from workflows.learning_types import (
        ObserveInput,
        ObserveOutput,
        RolloutInput,
        RolloutResult,
        RolloutStatus,
        SetStageInput,
        SetStageOutput,
    )

_TIMEOUT = timedelta(seconds=60)
_RETRY = RetryPolicy(maximum_attempts=5)


@workflow.defn
class RolloutWorkflow:
    def __init__(self) -> None:
        self._stage = "starting"
        self._paused = False
        self._command: str | None = None  # "promote" | "rollback"
        self._reason = ""

    @workflow.signal
    def promote(self) -> None:
        self._command = "promote"

    @workflow.signal
    def rollback(self, reason: str = "manual rollback") -> None:
        self._command = "rollback"
        self._reason = reason

    @workflow.signal
    def pause(self) -> None:
        self._paused = True

    @workflow.signal
    def resume(self) -> None:
        self._paused = False

    @workflow.query
    def status(self) -> RolloutStatus:
        return RolloutStatus(self._stage, self._paused, self._reason)

    async def _set(self, inp: RolloutInput, stage: str, percent: float = 0.0) -> None:
        await workflow.execute_activity(
            "set_rollout_stage",
            SetStageInput(
                inp.tenant_id, inp.skill_id, stage, inp.candidate_policy_id, percent,
                inp.rollout_id, self._reason or f"rollout {inp.rollout_id}: {stage}",
            ),
            result_type=SetStageOutput,
            start_to_close_timeout=_TIMEOUT,
            retry_policy=_RETRY,
        )  # fmt: skip

    async def _watch(self, inp: RolloutInput, stage: str, since: str) -> str:
        """Poll until the stage decides: 'accept', 'reject' or a signal's command."""
        deadline = workflow.now() + timedelta(seconds=inp.plan.max_stage_s)
        while True:
            # A signal wins at once; a pause holds the stage where it is.
            await workflow.wait_condition(lambda: not self._paused or self._command is not None)
            if self._command is not None:
                return self._command
            observed: ObserveOutput = await workflow.execute_activity(
                "observe_rollout",
                ObserveInput(inp.tenant_id, inp.skill_id, inp.candidate_policy_id,
                             inp.baseline_policy_id, since, stage,
                             inp.plan.shadow_requests if stage == "shadow"
                             else inp.plan.canary_min_requests),
                result_type=ObserveOutput,
                start_to_close_timeout=_TIMEOUT,
            retry_policy=_RETRY,
            )  # fmt: skip
            if observed.decision in ("accept", "reject"):
                self._reason = observed.reason
                return observed.decision
            if workflow.now() >= deadline:
                self._reason = f"{stage} undecided after {inp.plan.max_stage_s:.0f} s"
                return "reject"
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(
                    lambda: self._command is not None,
                    timeout=timedelta(seconds=inp.plan.poll_interval_s),
                )

    @workflow.run
    async def run(self, inp: RolloutInput) -> RolloutResult:
        for stage, percent in (("shadow", 0.0), ("canary", inp.plan.canary_percent)):
            self._stage = stage
            since = workflow.now().isoformat()
            await self._set(inp, stage, percent)
            decision = await self._watch(inp, stage, since)
            if decision in ("reject", "rollback"):
                self._stage = "rolled_back"
                if decision == "reject" and not self._reason:
                    self._reason = f"regression in {stage}"
                await self._set(inp, "rollback")
                workflow.logger.info("rollout rolled back: %s", self._reason)
                return RolloutResult("rolled_back", stage, self._reason)
            if decision == "promote":
                break
        self._stage = "full"
        await self._set(inp, "promote")
        return RolloutResult("promoted", "full", self._reason)
