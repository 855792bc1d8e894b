"""RolloutWorkflow's plan on the real Temporal dev server, with fake activities under
the real activity names (the workflow's decisions are under test; the real activities
have tests of their own): canary steps in order with their minimum durations, waiting
for `promote`, a reported-but-not-rolled-back regression, the guard's tolerance, the
guard while paused, and a rollback that restores the pre-rollout revision."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import pytest
from temporalio import activity
from temporalio.client import Client, WorkflowHandle
from temporalio.worker import Worker

from tests.conftest import RunningStack
from workflows.learning_types import (
    CanaryStep,
    ObserveInput,
    ObserveOutput,
    RolloutInput,
    RolloutPlan,
    RolloutResult,
    RolloutStatus,
    SetStageInput,
    SetStageOutput,
)
from workflows.rollout import RolloutWorkflow

pytestmark = pytest.mark.integration

START_REVISION = 41


@dataclass
class Fakes:
    """The two activities a rollout calls: what they answer and what they were asked."""

    decide: Callable[[ObserveInput], str] = lambda inp: "accept"
    stages: list[SetStageInput] = field(default_factory=list)
    stage_times: list[float] = field(default_factory=list)
    observed: list[ObserveInput] = field(default_factory=list)

    def activities(self) -> list[Callable[..., object]]:
        @activity.defn(name="set_rollout_stage")
        async def set_stage(inp: SetStageInput) -> SetStageOutput:
            self.stages.append(inp)
            self.stage_times.append(time.monotonic())
            return SetStageOutput(revision=START_REVISION + len(self.stages))

        @activity.defn(name="observe_rollout")
        async def observe(inp: ObserveInput) -> ObserveOutput:
            self.observed.append(inp)
            return ObserveOutput(len(self.observed), self.decide(inp), f"scripted {inp.stage}")

        return [set_stage, observe]

    def trail(self) -> list[str]:
        return [f"{s.stage}:{s.percent:g}" if s.percent else s.stage for s in self.stages]


def fast(**kw: object) -> RolloutPlan:
    return RolloutPlan(shadow_requests=1, canary_min_requests=1, poll_interval_s=0.05, **kw)  # type: ignore[arg-type]


@asynccontextmanager
async def rollout(
    stack: RunningStack, fakes: Fakes, plan: RolloutPlan
) -> AsyncIterator[WorkflowHandle]:
    client = await Client.connect(stack.settings.temporal_target)
    queue = f"q-{uuid.uuid4().hex[:8]}"
    async with Worker(
        client, task_queue=queue, workflows=[RolloutWorkflow], activities=fakes.activities()
    ):
        yield await client.start_workflow(
            RolloutWorkflow.run,
            RolloutInput("t", "s", "ro-1", "s@v2", "s@v1", plan),
            id=f"rollout-test-{uuid.uuid4().hex[:8]}",
            task_queue=queue,
        )


async def until(
    handle: WorkflowHandle, check: Callable[[RolloutStatus], bool], within_s: float = 20
) -> RolloutStatus:
    deadline = time.monotonic() + within_s
    while True:
        status: RolloutStatus = await handle.query(RolloutWorkflow.status)
        if check(status):
            return status
        assert time.monotonic() < deadline, f"timed out; last status {status}"
        await asyncio.sleep(0.05)


async def test_canary_steps_advance_in_order_after_their_minimum_durations(
    stack: RunningStack,
) -> None:
    fakes = Fakes()
    steps = [CanaryStep(5), CanaryStep(25, min_duration_s=0.6), CanaryStep(50)]
    async with rollout(stack, fakes, fast(canary_steps=steps, shadow_min_s=0.4)) as handle:
        result: RolloutResult = await handle.result()
    assert result.outcome == "promoted"
    assert fakes.trail() == ["shadow", "canary:5", "canary:25", "canary:50", "promote"]
    assert [s.step for s in fakes.stages[1:4]] == [0, 1, 2]
    t = fakes.stage_times
    assert t[1] - t[0] >= 0.4  # shadow's minimum duration, although the guard accepted at once
    assert t[3] - t[2] >= 0.6  # the 25% step's
    # Each step is observed from its own start, with the canary's sample requirement.
    assert [o.stage for o in fakes.observed if o.stage == "canary"] and all(
        o.min_requests == 1 for o in fakes.observed
    )
    assert result.revision == START_REVISION + 5


async def test_skip_shadow_starts_at_the_first_canary_step(stack: RunningStack) -> None:
    fakes = Fakes()
    async with rollout(stack, fakes, fast(skip_shadow=True, canary_percent=30)) as handle:
        await handle.result()
    assert fakes.trail() == ["canary:30", "promote"]


async def test_without_auto_advance_each_stage_waits_for_promote(stack: RunningStack) -> None:
    fakes = Fakes()
    plan = fast(canary_steps=[CanaryStep(10), CanaryStep(40)], auto_advance=False)
    async with rollout(stack, fakes, plan) as handle:
        waiting = await until(handle, lambda s: s.awaiting_promote)
        assert waiting.stage == "shadow" and "waiting for promote" in waiting.reason
        await asyncio.sleep(0.5)  # the guard accepted long ago; nothing advances by itself
        assert fakes.trail() == ["shadow"]
        await handle.signal(RolloutWorkflow.promote, "next")
        waiting = await until(handle, lambda s: s.stage == "canary" and s.awaiting_promote)
        assert (waiting.canary_step, waiting.canary_percent) == (0, 10)
        await handle.signal(RolloutWorkflow.promote, "next")
        waiting = await until(handle, lambda s: s.canary_step == 1 and s.awaiting_promote)
        assert waiting.canary_percent == 40
        await handle.signal(RolloutWorkflow.promote, "next")  # after the last step: full
        result: RolloutResult = await handle.result()
    assert result.outcome == "promoted"
    assert fakes.trail() == ["shadow", "canary:10", "canary:40", "promote"]


async def test_promote_to_canary_only_leaves_shadow(stack: RunningStack) -> None:
    fakes = Fakes(decide=lambda inp: "continue")
    plan = fast(canary_steps=[CanaryStep(10), CanaryStep(40)])
    async with rollout(stack, fakes, plan) as handle:
        await until(handle, lambda s: s.stage == "shadow")
        await handle.signal(RolloutWorkflow.promote, "canary")
        await until(handle, lambda s: s.stage == "canary")
        await handle.signal(RolloutWorkflow.promote, "canary")  # past shadow: ignored
        await asyncio.sleep(0.3)
        status = await until(handle, lambda s: s.stage == "canary")
        assert status.canary_step == 0
        await handle.signal(RolloutWorkflow.promote)  # no argument: full, as it always was
        result: RolloutResult = await handle.result()
    assert result.outcome == "promoted"
    assert fakes.trail() == ["shadow", "canary:10", "promote"]


async def test_disabled_auto_rollback_reports_and_keeps_traffic(stack: RunningStack) -> None:
    fakes = Fakes(decide=lambda inp: "accept" if inp.stage == "shadow" else "reject")
    async with rollout(stack, fakes, fast(disable_auto_rollback=True)) as handle:
        held = await until(handle, lambda s: s.awaiting_promote)
        assert held.stage == "canary" and "scripted canary" in held.reason
        assert "automatic rollback disabled" in held.reason
        await asyncio.sleep(0.3)
        assert fakes.trail() == ["shadow", "canary:10"]  # traffic stays on the canary
        await handle.signal(RolloutWorkflow.rollback, "operator saw the report")
        result: RolloutResult = await handle.result()
    assert (result.outcome, result.automatic_rollback) == ("rolled_back", False)
    assert result.reason == "operator saw the report"
    assert fakes.trail() == ["shadow", "canary:10", "rollback"]


async def test_regression_rolls_back_to_the_revision_before_the_rollout(
    stack: RunningStack,
) -> None:
    fakes = Fakes(decide=lambda inp: "accept" if len(fakes.stages) < 3 else "reject")
    plan = fast(canary_steps=[CanaryStep(10), CanaryStep(40)])
    async with rollout(stack, fakes, plan) as handle:
        result: RolloutResult = await handle.result()
        status: RolloutStatus = await handle.query(RolloutWorkflow.status)
    assert fakes.trail() == ["shadow", "canary:10", "canary:40", "rollback"]
    assert (result.outcome, result.stage_reached, result.automatic_rollback) == (
        "rolled_back", "canary", True,
    )  # fmt: skip
    # Not merely the step before: the deployment as it was before the shadow stage.
    assert fakes.stages[-1].to_revision == START_REVISION
    assert status.stage == "rolled_back" and status.automatic_rollback


async def test_reward_drop_tolerance_reaches_the_guard(stack: RunningStack) -> None:
    fakes = Fakes()
    async with rollout(stack, fakes, fast(max_reward_drop=0.05, shadow_sample_rate=0.5)) as h:
        await h.result()
    assert fakes.observed and all(o.tolerance == 0.05 for o in fakes.observed)
    assert fakes.stages[0].sample_rate == 0.5


async def test_guard_still_rolls_back_while_paused(stack: RunningStack) -> None:
    regress = asyncio.Event()
    fakes = Fakes(decide=lambda inp: "reject" if regress.is_set() else "continue")
    async with rollout(stack, fakes, fast()) as handle:
        await until(handle, lambda s: s.stage == "shadow")
        await handle.signal(RolloutWorkflow.pause)
        await until(handle, lambda s: s.paused)
        regress.set()
        result: RolloutResult = await handle.result()
    assert (result.outcome, result.automatic_rollback) == ("rolled_back", True)
    assert fakes.trail() == ["shadow", "rollback"]


async def test_pause_holds_an_accepted_stage_until_resume(stack: RunningStack) -> None:
    accept = asyncio.Event()
    fakes = Fakes(decide=lambda inp: "accept" if accept.is_set() else "continue")
    async with rollout(stack, fakes, fast(shadow_min_s=1.0)) as handle:
        first = await until(handle, lambda s: s.stage == "shadow")
        await handle.signal(RolloutWorkflow.pause)
        await until(handle, lambda s: s.paused)
        accept.set()
        await asyncio.sleep(1.5)
        assert fakes.trail() == ["shadow"]  # accepted and past its duration, but paused
        resumed_at = time.monotonic()
        await handle.signal(RolloutWorkflow.resume)
        result: RolloutResult = await handle.result()
    assert result.outcome == "promoted"
    assert fakes.trail() == ["shadow", "canary:10", "promote"]
    # The stage's clock restarted on resume: its minimum duration counted again.
    assert fakes.stage_times[1] - resumed_at >= 1.0
    assert first.stage_start
