"""Learning-loop benchmark, on a real embedded stack (started here, in a temp dir, on
free ports, with the default model) and its real workers.

- iteration: one iteration on CPU with SmolLM2-135M-Instruct, from "threshold reached"
  (the loop is started after 64 emails were answered and edited through the API, so it
  begins at once) to "candidate in shadow" (GetRollout reports SHADOW): dataset, DPO on
  the GPU queue's worker, registration, the evaluation gate. Goal: <= 5 min for 64 pairs.
  Each phase's start is taken from GetLearningLoop polled every second.
- orchestration: LearningLoopWorkflow + RolloutWorkflow for one full iteration (every
  activity, the child workflow, shadow -> canary -> full) with instant activities under
  the real names, on the same Temporal server. Goal: <= 1 s. Reference in the same run:
  the stack-check workflow (one trivial activity on each worker queue, on the stack's
  own workers): the floor of Temporal round trips here.

Results go to bench/results/loop.json.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import statistics
import time
import uuid
from pathlib import Path
from typing import Any

from temporalio import activity
from temporalio.client import Client
from temporalio.worker import Worker

from bench.stack import embedded_stack
from infra.operator_key import temporary_operator_key
from rlaas.training.v1 import training_pb2 as trn
from services.config import Settings
from simulation.job import Job, JobConfig, app_channel, loop_config
from workflows.learning_loop import LearningLoopWorkflow
from workflows.learning_types import (
    BaselineOutput,
    BuildDatasetOutput,
    CountFeedbackOutput,
    EvaluateOutput,
    LoopConfig,
    LoopState,
    ObserveOutput,
    RegisterCandidateOutput,
    RolloutPlan,
    SetStageOutput,
    TrainAdapterOutput,
)
from workflows.queues import CPU_TASK_QUEUE
from workflows.rollout import RolloutWorkflow
from workflows.stack_check import StackCheckInput, StackCheckWorkflow

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "loop.json"
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
ITERATION = os.environ.get("BENCH_LOOP_ITERATION", "1") != "0"
"""BENCH_LOOP_ITERATION=0 skips the real iteration (~12 min of CPU training)."""


# ---- orchestration overhead ----------------------------------------------------------


def _instant_activities() -> list[Any]:
    """Every activity of an iteration, answering at once (names as the real ones)."""

    @activity.defn(name="count_new_feedback")
    async def count(_: Any) -> CountFeedbackOutput:
        return CountFeedbackOutput(count=100, watermark="")

    @activity.defn(name="build_preference_dataset")
    async def build(_: Any) -> BuildDatasetOutput:
        return BuildDatasetOutput("file:///d.parquet", "0" * 64, 64)

    @activity.defn(name="current_baseline")
    async def baseline(_: Any) -> BaselineOutput:
        return BaselineOutput("s@v1")

    @activity.defn(name="train_adapter")
    async def train(_: Any) -> TrainAdapterOutput:
        return TrainAdapterOutput("file:///a", "0" * 64, 0.1, 16)

    @activity.defn(name="register_candidate")
    async def register(_: Any) -> RegisterCandidateOutput:
        return RegisterCandidateOutput("s@v2")

    @activity.defn(name="evaluate_candidate")
    async def evaluate(_: Any) -> EvaluateOutput:
        return EvaluateOutput(True, 0.8, 0.6, 0.9, 0.01)

    @activity.defn(name="set_rollout_stage")
    async def set_stage(_: Any) -> SetStageOutput:
        return SetStageOutput(1)

    @activity.defn(name="observe_rollout")
    async def observe(_: Any) -> ObserveOutput:
        return ObserveOutput(100, "accept", "instant")

    return [count, build, baseline, train, register, evaluate, set_stage, observe]


async def orchestration(temporal_target: str) -> dict[str, Any]:
    client = await Client.connect(temporal_target)
    queue = f"bench-{uuid.uuid4().hex[:8]}"
    plan = RolloutPlan(shadow_requests=1, canary_min_requests=1, poll_interval_s=0.01)
    iteration_s, floor_s = [], []
    async with Worker(
        client, task_queue=queue,
        workflows=[LearningLoopWorkflow, RolloutWorkflow],
        activities=_instant_activities(),
    ):  # fmt: skip
        for i in range(ROUNDS + 1):
            config = LoopConfig(
                min_new_feedback=1, max_iterations=1, gpu_task_queue=queue, rollout=plan
            )
            state = LoopState("t", "s", f"bench-{uuid.uuid4().hex[:8]}", config)
            t0 = time.perf_counter()
            result: LoopState = await client.execute_workflow(
                LearningLoopWorkflow.run, state, id=state.loop_id, task_queue=queue
            )
            took = time.perf_counter() - t0
            assert result.history[-1].outcome == "promoted", result.history
            t0 = time.perf_counter()
            await client.execute_workflow(
                StackCheckWorkflow.run, StackCheckInput("bench"),
                id=f"bench-floor-{uuid.uuid4().hex[:8]}", task_queue=CPU_TASK_QUEUE,
            )  # fmt: skip
            if i:  # the first round warms the worker up
                iteration_s.append(took)
                floor_s.append(time.perf_counter() - t0)
    p50 = statistics.median(iteration_s)
    return {
        "iteration_s_p50": round(p50, 3),
        "iteration_s_max": round(max(iteration_s), 3),
        "stack_check_workflow_s_p50": round(statistics.median(floor_s), 3),
        "ratio_to_stack_check_workflow": round(p50 / statistics.median(floor_s), 1),
        "rounds": len(iteration_s),
        "goal_s": 1.0,
        "meets_goal": p50 <= 1.0,
    }


# ---- one real iteration ---------------------------------------------------------------


async def real_iteration(settings: Settings) -> dict[str, Any]:
    key, cleanup = await temporary_operator_key(settings, minutes=60, purpose="loop bench")
    try:
        async with app_channel(settings.grpc_target) as channel:
            from rlaas.registry.v1 import registry_pb2 as reg
            from rlaas.registry.v1 import registry_pb2_grpc

            tenant = await registry_pb2_grpc.RegistryServiceStub(channel).CreateTenant(
                reg.CreateTenantRequest(tenant=reg.Tenant(display_name="loop bench"),
                                        request_id=str(uuid.uuid4())),
                metadata=(("authorization", f"Bearer {key}"),),
            )  # fmt: skip
            cfg = JobConfig(out_dir=settings.state_dir / "demo")
            job = Job(channel, tenant.admin_api_key_secret, tenant.tenant.tenant_id, cfg, print)
            await job.create_baseline()
            await job.collect()
            started = await job.training.StartLearningLoop(
                trn.StartLearningLoopRequest(
                    learning_loop=trn.LearningLoop(skill_id="support_email",
                                                   config=loop_config(cfg)),
                    request_id=str(uuid.uuid4()),
                ),
                metadata=job.md,
            )  # fmt: skip
            loop_id = started.learning_loop.learning_loop_id
            t0 = time.perf_counter()
            phases: dict[str, float] = {}
            while True:
                loop = (
                    await job.training.GetLearningLoop(
                        trn.GetLearningLoopRequest(learning_loop_id=loop_id), metadata=job.md
                    )
                ).learning_loop
                name = trn.LearningLoop.Phase.Name(loop.phase).removeprefix("PHASE_").lower()
                phases.setdefault(name, round(time.perf_counter() - t0, 1))
                rollout = await job.current_rollout()
                if rollout is not None and rollout.stage == trn.Rollout.STAGE_SHADOW:
                    break
                if loop.state != trn.LearningLoop.STATE_RUNNING:
                    raise RuntimeError(f"the loop ended before shadow: {loop}")
                await asyncio.sleep(1)
            to_shadow = time.perf_counter() - t0
            await job.training.PauseLearningLoop(
                trn.PauseLearningLoopRequest(learning_loop_id=loop_id,
                                             request_id=str(uuid.uuid4())),
                metadata=job.md,
            )  # fmt: skip
            return {
                "pairs_offered": cfg.feedback_before_training,
                "threshold_to_shadow_s": round(to_shadow, 1),
                "phase_started_at_s": phases,
                "goal_s": 300,
                "meets_goal": to_shadow <= 300,
            }
    finally:
        await cleanup()


async def main() -> dict[str, Any]:
    with embedded_stack("rlaas-bench-loop-") as settings:
        overhead = await orchestration(settings.temporal_target)
        print("orchestration:", overhead)
        iteration: dict[str, Any] = {"skipped": "BENCH_LOOP_ITERATION=0"}
        if ITERATION:
            iteration = await real_iteration(settings)
        print("iteration:", iteration)
    return {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "orchestration_overhead": overhead,
        "iteration_cpu_smollm2": iteration,
    }


def run() -> None:
    result = asyncio.run(main())
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    run()
