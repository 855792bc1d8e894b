"""RolloutWorkflow: shadow -> canary steps -> full, rolled back automatically on regression.

Each stage polls an activity that compares the candidate's online reward, error rate
and (if the plan asks) p95 latency with the baseline's (sequential tests: it answers
continue, accept or reject). The plan says
whether there is a shadow stage, which canary steps follow (each with a minimum
duration), whether a satisfied stage advances by itself or waits for `promote`, how
large a reward drop the guard tolerates, and whether a reject rolls back or is only
reported. Signals promote (to the next stage, or to full), rollback (now), pause and
resume; the `status` query tells where it is. Traffic changes go through the registry
(audited, announced to every server).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from workflows.learning_types import (
        ArmStats,
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
# Histories recorded before this patch froze the guard while paused; newer runs keep
# judging (a paused rollout still rolls back on regression) and restart the stage
# clock on resume.
GUARD_WHILE_PAUSED = "rollout-guard-while-paused"
# A paused rollout may stay paused for days: the guard checks less often meanwhile, so
# the event history stays bounded.
_PAUSED_POLL_FACTOR = 10.0


def rollout_workflow_id(tenant_id: str, rollout_id: str) -> str:
    """The tenant in the id keeps tenants apart: a caller only ever reaches ids under
    its own tenant's prefix."""
    return f"rollout/{tenant_id}/{rollout_id}"


@dataclass(frozen=True)
class _Stage:
    name: str  # "shadow" | "canary"
    step: int
    percent: float
    min_s: float


def _stages(inp: RolloutInput) -> list[_Stage]:
    plan = inp.plan
    shadow = [] if plan.skip_shadow else [_Stage("shadow", 0, 0.0, plan.shadow_min_s)]
    canary = [_Stage("canary", i, s.percent, s.min_duration_s) for i, s in enumerate(plan.steps())]
    return shadow + canary


@workflow.defn
class RolloutWorkflow:
    def __init__(self) -> None:
        self._stage = "starting"
        self._step = 0
        self._percent = 0.0
        self._stage_start = ""
        self._paused = False
        self._resumed = False
        self._command: str | None = None  # "promote" | "rollback"
        self._target = "full"  # of a promote: "full" | "next" | "canary"
        self._reason = ""
        self._awaiting = False
        self._automatic = False
        self._revision = 0
        self._start_revision = 0
        self._guard_while_paused = False
        self._arms: list[ArmStats] = []

    @workflow.signal
    def promote(self, target: str = "full", reason: str = "") -> None:
        """`full` (what the argument-less signal always meant), `next` (the next canary
        step, full after the last) or `canary` (from shadow to the first step). The
        reason goes to the audit log with the traffic change it causes."""
        if target == "canary" and self._stage != "shadow":
            return  # already past shadow: nothing to advance to
        self._command, self._target = "promote", target
        if reason:
            self._reason = reason

    @workflow.signal
    def rollback(self, reason: str = "manual rollback") -> None:
        if self._stage in ("full", "rolled_back"):
            return  # finished: a late rollback must not rewrite the reason
        self._command = "rollback"
        self._reason = reason

    @workflow.signal
    def pause(self) -> None:
        self._paused = True

    @workflow.signal
    def resume(self) -> None:
        # Only a real pause -> resume restarts the stage clock.
        self._resumed = self._resumed or (self._paused and self._guard_while_paused)
        self._paused = False

    @workflow.query
    def status(self) -> RolloutStatus:
        return RolloutStatus(
            self._stage, self._paused, self._reason, self._step,
            self._percent if self._stage == "canary" else 0.0, self._stage_start,
            self._awaiting, self._automatic, self._revision, self._arms,
        )  # fmt: skip

    def _enter(self, stage: str, step: int = 0, percent: float = 0.0) -> None:
        self._stage, self._step, self._percent = stage, step, percent
        self._stage_start = workflow.now().isoformat()

    async def _set(
        self, inp: RolloutInput, stage: str, percent: float = 0.0, step: int = 0
    ) -> None:
        done: SetStageOutput = await workflow.execute_activity(
            "set_rollout_stage",
            SetStageInput(
                inp.tenant_id, inp.skill_id, stage, inp.candidate_policy_id, percent,
                inp.rollout_id, self._reason or f"rollout {inp.rollout_id}: {stage}",
                step, inp.plan.shadow_sample_rate,
                # A rollback restores the deployment as it was before the rollout's
                # first change, not merely the revision before the last step.
                self._start_revision if stage == "rollback" else 0,
            ),
            result_type=SetStageOutput,
            start_to_close_timeout=_TIMEOUT,
            retry_policy=_RETRY,
        )  # fmt: skip
        if not self._start_revision and stage in ("shadow", "canary"):
            self._start_revision = done.revision - 1
        self._revision = done.revision

    async def _watch(self, inp: RolloutInput, stage: _Stage, since: str) -> str:
        """Poll until the stage decides: 'accept', 'reject' or a signal's command.
        An accept counts once the stage's minimum duration has passed and the rollout
        is not paused; a reject counts at once, paused or not."""
        plan = inp.plan
        start = workflow.now()
        accepted = False
        while True:
            if not self._guard_while_paused:
                # Old histories: a pause held everything, the guard included.
                await workflow.wait_condition(lambda: not self._paused or self._command is not None)
            if self._command is not None:
                return self._command
            if self._resumed:  # the stage's clock restarts on resume
                self._resumed = False
                start = workflow.now()
                self._stage_start = start.isoformat()
            observed: ObserveOutput = await workflow.execute_activity(
                "observe_rollout",
                ObserveInput(inp.tenant_id, inp.skill_id, inp.candidate_policy_id,
                             inp.baseline_policy_id, since, stage.name,
                             plan.shadow_requests if stage.name == "shadow"
                             else plan.canary_min_requests,
                             plan.max_reward_drop, plan.max_error_rate_increase,
                             plan.max_latency_p95_increase_s),
                result_type=ObserveOutput,
                start_to_close_timeout=_TIMEOUT,
                retry_policy=_RETRY,
            )  # fmt: skip
            self._arms = observed.arms
            if observed.decision == "reject":
                self._reason = observed.reason
                return "reject"
            if observed.decision == "accept":
                accepted = True
                self._reason = observed.reason
            now, held = workflow.now(), self._paused and self._guard_while_paused
            if accepted and not held and now >= start + timedelta(seconds=stage.min_s):
                return "accept"
            limit = max(plan.max_stage_s, stage.min_s)
            if not accepted and not held and now >= start + timedelta(seconds=limit):
                self._reason = f"{stage.name} undecided after {limit:.0f} s"
                return "reject"
            await self._sleep(plan.poll_interval_s)

    async def _sleep(self, seconds: float) -> None:
        """Wait one poll interval; a command (or a resume) ends the wait early."""
        if self._guard_while_paused and self._paused:
            seconds *= _PAUSED_POLL_FACTOR
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(
                lambda: self._command is not None or self._resumed,
                timeout=timedelta(seconds=seconds),
            )

    async def _hold(self, reason: str) -> str:
        """Keep the traffic as it is until a caller promotes or rolls back."""
        self._reason, self._awaiting = reason, True
        await workflow.wait_condition(lambda: self._command is not None)
        self._awaiting = False
        assert self._command is not None
        return self._command

    async def _decide(self, inp: RolloutInput, stage: _Stage, since: str) -> str:
        decision = await self._watch(inp, stage, since)
        if decision == "accept" and not inp.plan.auto_advance:
            return await self._hold(f"{stage.name} passed ({self._reason}); waiting for promote")
        if decision == "reject" and inp.plan.disable_auto_rollback:
            reason = self._reason or f"regression in {stage.name}"
            return await self._hold(f"{reason} (automatic rollback disabled)")
        return decision

    @workflow.run
    async def run(self, inp: RolloutInput) -> RolloutResult:
        self._guard_while_paused = workflow.patched(GUARD_WHILE_PAUSED)
        stages = _stages(inp)
        i = 0
        while i < len(stages):
            stage = stages[i]
            self._enter(stage.name, stage.step, stage.percent)
            since = self._stage_start
            await self._set(inp, stage.name, stage.percent, stage.step)
            decision = await self._decide(inp, stage, since)
            if decision in ("reject", "rollback"):
                return await self._roll_back(inp, stage.name, automatic=decision == "reject")
            if decision == "promote":
                self._command = None  # consumed; a later stage waits for a new one
                if self._target == "full":
                    break
            i += 1
        self._enter("full")
        await self._set(inp, "promote")
        return RolloutResult(
            "promoted", "full", self._reason, revision=self._revision, arms=self._arms
        )

    async def _roll_back(self, inp: RolloutInput, stage: str, *, automatic: bool) -> RolloutResult:
        self._enter("rolled_back")
        self._automatic = automatic
        if automatic and not self._reason:
            self._reason = f"regression in {stage}"
        await self._set(inp, "rollback")
        workflow.logger.info("rollout rolled back: %s", self._reason)
        return RolloutResult(
            "rolled_back", stage, self._reason, automatic, self._revision, self._arms
        )
