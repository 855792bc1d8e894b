"""LearningLoopWorkflow: one per skill, forever (continue-as-new keeps history small).

An iteration: wait until enough new feedback has arrived (or `run_now`) -> build a
preference dataset (rewards computed from the feedback; URI out) -> train a LoRA adapter
on the GPU queue (heartbeats, resumes from its checkpoint if a worker dies) -> register
it as candidate `skill@vN+1` -> evaluate it against the baseline (gate) -> roll it out
(child RolloutWorkflow: shadow, canary, full, or rollback). Deterministic, no I/O: every
effect is an activity.
"""

from __future__ import annotations

import contextlib
import dataclasses
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, ChildWorkflowError

with workflow.unsafe.imports_passed_through():
    from workflows.evaluation import EvaluationWorkflow, evaluation_workflow_id
    from workflows.learning_types import (
        BaselineInput,
        BaselineOutput,
        BuildDatasetInput,
        BuildDatasetOutput,
        CountFeedbackInput,
        CountFeedbackOutput,
        EvaluateInput,
        EvaluateOutput,
        EvaluationInput,
        IterationSummary,
        LoopState,
        LoopStatus,
        RegisterCandidateInput,
        RegisterCandidateOutput,
        RolloutInput,
        RolloutResult,
        TrainAdapterInput,
        TrainAdapterOutput,
        TrainingRunInput,
        TrainingRunResult,
        WarmGateInput,
        WarmGateOutput,
    )
    from workflows.rollout import RolloutWorkflow, rollout_workflow_id
    from workflows.training_run import TrainingRunWorkflow, training_run_workflow_id

_TIMEOUT = timedelta(minutes=10)
_RETRY = RetryPolicy(maximum_attempts=5)
_HISTORY_KEPT = 20
ROLLOUT_WORKFLOW_ID = "loop-rollout-workflow-id"
# Histories recorded before this patch paused only the loop; newer runs pause (and
# resume) the iteration's running rollout with it.
PAUSE_FORWARDS_TO_ROLLOUT = "loop-pause-forwards-to-rollout"
# Histories recorded before this patch waited for feedback alone; newer runs also keep
# the schedule (`min_interval_s` between iteration starts).
SCHEDULED_ITERATIONS = "loop-scheduled-iterations"
# Histories recorded before this patch trained and evaluated with the loop's own
# activities and failed the loop when a step failed; newer runs train and evaluate as
# child TrainingRun/Evaluation workflows (listed and read like any other) and a failed
# step fails only its iteration.
LOOP_CHILD_RESOURCES = "loop-runs-and-evaluations-as-resources"
# Histories recorded before this patch left the gate to answer every prompt; newer runs
# have the baseline answer the gate's packaged prompts while the loop waits for
# feedback, so the gate after the threshold generates for the candidate alone there.
GATE_WARM_UP = "loop-gate-warm-up"
_WARM_UP_TIMEOUT = timedelta(minutes=30)


@workflow.defn
class LearningLoopWorkflow:
    def __init__(self) -> None:
        self._state: LoopState | None = None
        self._run_now = False
        self._phase_name = "starting"
        self._phase_time = ""
        self._current: IterationSummary | None = None
        self._rollout: workflow.ChildWorkflowHandle[Any, RolloutResult] | None = None
        self._warm_up: workflow.ActivityHandle[WarmGateOutput] | None = None
        self._stop_reason = "learning loop stopped"

    @property
    def _phase(self) -> str:
        return self._phase_name

    @_phase.setter
    def _phase(self, phase: str) -> None:
        # workflow.now() is replay-safe: the time of the task that changed the phase.
        if phase != self._phase_name:
            self._phase_name, self._phase_time = phase, workflow.now().isoformat()

    @workflow.signal
    async def pause(self) -> None:
        if self._state is not None:
            self._state.paused = True
        await self._forward("pause")

    @workflow.signal
    async def resume(self) -> None:
        if self._state is not None:
            self._state.paused = False
        await self._forward("resume")

    async def _forward(self, signal: str) -> None:
        """Pause or resume the running rollout with the loop (a paused rollout holds
        its stage; its guard still rolls back on regression)."""
        if self._rollout is None or not workflow.patched(PAUSE_FORWARDS_TO_ROLLOUT):
            return
        # The child may finish while the signal travels: nothing left to pause then.
        with contextlib.suppress(Exception):
            await self._rollout.signal(signal)

    @workflow.signal
    def run_now(self) -> None:
        self._run_now = True

    @workflow.signal
    async def stop(self, reason: str = "") -> None:
        """End the loop at the next step boundary; roll back a rollout in progress so
        the baseline keeps serving. No patch: the behaviour starts only with this new
        signal, which no earlier history holds, so those replay unchanged."""
        if self._state is None or self._state.stopped:
            return
        self._state.stopped = True
        self._stop_reason = reason or self._stop_reason
        await self._roll_back_for_stop()

    async def _roll_back_for_stop(self) -> None:
        if self._rollout is None:
            return
        with contextlib.suppress(Exception):  # the child may have just finished
            await self._rollout.signal(RolloutWorkflow.rollback, self._stop_reason)

    @workflow.query
    def status(self) -> LoopStatus:
        s = self._state
        if s is None:
            return LoopStatus(self._phase, 0, False)
        return LoopStatus(self._phase, s.iteration, s.paused, list(s.history), s.stopped,
                          self._current, self._phase_time)  # fmt: skip

    @workflow.run
    async def run(self, state: LoopState) -> LoopState:
        self._state = state
        cfg = state.config
        for _ in range(cfg.iterations_per_run):
            if cfg.max_iterations and state.iteration >= cfg.max_iterations:
                self._phase = "done"
                self._cancel_warm_up()
                return state
            await self._wait_for_feedback(state)
            if state.stopped:
                return await self._end_stopped(state)
            state.last_iteration_start = workflow.now().isoformat()
            summary = await self._iterate(state)
            state.iteration += 1
            state.history = [*state.history, summary][-_HISTORY_KEPT:]
            self._phase = f"iteration {state.iteration} {summary.outcome}"
            workflow.logger.info("iteration %d: %s", state.iteration, summary.outcome)
            if state.stopped:
                return await self._end_stopped(state)
        # Keep the event history small: carry the state into a fresh run.
        self._cancel_warm_up()
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.continue_as_new(state)

    async def _end_stopped(self, state: LoopState) -> LoopState:
        self._phase = "stopped"
        self._cancel_warm_up()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return state

    def _stopped(self, summary: IterationSummary) -> None:
        """A stop arrived during the step just done: its result is kept (a dataset, a
        registered candidate), nothing further runs."""
        summary.outcome, summary.reason = "stopped", self._stop_reason

    async def _wait_for_feedback(self, state: LoopState) -> None:
        if workflow.patched(GATE_WARM_UP):
            await self._start_warm_up(state)
        if workflow.patched(SCHEDULED_ITERATIONS):
            await self._wait_for_schedule_and_feedback(state)
        else:
            await self._wait_for_feedback_only(state)

    async def _wait_for_schedule_and_feedback(self, state: LoopState) -> None:
        """An iteration starts on `run_now`, or once the schedule allows it (at least
        `min_interval_s` after the previous start) and enough new feedback is in
        (`min_new_feedback`; 0: the schedule alone decides)."""
        cfg = state.config
        while True:
            self._phase = "paused" if state.paused else "waiting for feedback"
            await workflow.wait_condition(lambda: not state.paused or state.stopped)
            if state.stopped:
                return
            if self._run_now:
                self._run_now = False
                return
            now, due = workflow.now(), self._next_start(state)
            if due is not None and now < due:
                self._phase = f"waiting until {due.isoformat()}"
                with contextlib.suppress(TimeoutError):
                    await workflow.wait_condition(
                        lambda: self._run_now or state.paused or state.stopped, timeout=due - now
                    )
                continue
            if cfg.min_new_feedback <= 0:
                return
            counted: CountFeedbackOutput = await workflow.execute_activity(
                "count_new_feedback",
                CountFeedbackInput(state.tenant_id, state.skill_id, state.feedback_watermark),
                result_type=CountFeedbackOutput,
                start_to_close_timeout=_TIMEOUT,
                retry_policy=_RETRY,
            )
            if counted.count >= cfg.min_new_feedback:
                return
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(
                    lambda: self._run_now or state.paused or state.stopped,
                    timeout=timedelta(seconds=cfg.check_interval_s),
                )

    async def _start_warm_up(self, state: LoopState) -> None:
        """The baseline's answers to the gate's packaged prompts, generated where the
        model is while the loop waits (an idle worker then), for the gate to read from
        the cache. A shortcut, never a step: without a baseline yet, or if it fails,
        the gate answers them itself."""
        if self._warm_up is not None and not self._warm_up.done():
            return  # still at it from the last wait (an iteration that built no dataset)
        cfg = state.config
        try:
            baseline = await _current_baseline(state)
        except ActivityError:
            return  # no baseline: the iteration says so when it runs
        self._warm_up = workflow.start_activity(
            "warm_gate_answers",
            WarmGateInput(state.tenant_id, state.skill_id, baseline.policy_id,
                          cfg.eval_max_examples, list(cfg.eval_safety_suites)),
            result_type=WarmGateOutput,
            task_queue=cfg.gpu_task_queue,
            start_to_close_timeout=_WARM_UP_TIMEOUT,
            retry_policy=RetryPolicy(maximum_attempts=2),
        )  # fmt: skip

    async def _warm_up_done(self) -> None:
        """Waits for the warm-up, if one runs: the gate would otherwise ask the same
        worker the same prompts beside it. Its failure is not the gate's."""
        warm_up, self._warm_up = self._warm_up, None
        if warm_up is not None:
            with contextlib.suppress(ActivityError):
                await warm_up

    def _cancel_warm_up(self) -> None:
        if self._warm_up is not None and not self._warm_up.done():
            self._warm_up.cancel()
        self._warm_up = None

    @staticmethod
    def _next_start(state: LoopState) -> datetime | None:
        if not state.config.min_interval_s or not state.last_iteration_start:
            return None
        last = datetime.fromisoformat(state.last_iteration_start)
        return last + timedelta(seconds=state.config.min_interval_s)

    async def _wait_for_feedback_only(self, state: LoopState) -> None:
        """Histories recorded before the schedule: feedback (or `run_now`) alone."""
        cfg = state.config
        while True:
            self._phase = "paused" if state.paused else "waiting for feedback"
            await workflow.wait_condition(lambda: not state.paused or state.stopped)
            if state.stopped:
                return
            counted: CountFeedbackOutput = await workflow.execute_activity(
                "count_new_feedback",
                CountFeedbackInput(state.tenant_id, state.skill_id, state.feedback_watermark),
                result_type=CountFeedbackOutput,
                start_to_close_timeout=_TIMEOUT,
                retry_policy=_RETRY,
            )
            if self._run_now or counted.count >= cfg.min_new_feedback:
                self._run_now = False
                return
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(
                    lambda: self._run_now or state.stopped,
                    timeout=timedelta(seconds=cfg.check_interval_s),
                )

    async def _iterate(self, state: LoopState) -> IterationSummary:
        n = state.iteration + 1
        # Recording the iteration's times and ids issues no command: old histories
        # replay. Running training and evaluation as child resources does: patched.
        summary = IterationSummary(n, "", start_time=workflow.now().isoformat())
        self._current = summary
        if not workflow.patched(LOOP_CHILD_RESOURCES):
            await self._steps(state, summary, children=False)
        else:
            try:
                await self._steps(state, summary, children=True)
            except (ActivityError, ChildWorkflowError) as err:
                # A step that failed for good fails its iteration, not the loop: the
                # next iteration starts on schedule with fresh data.
                summary.outcome = "failed"
                summary.error_type, summary.error_message = _failure(err)
                summary.reason = summary.error_message
        summary.end_time = workflow.now().isoformat()
        self._current = None
        return summary

    async def _steps(self, state: LoopState, summary: IterationSummary, children: bool) -> None:
        """The iteration's steps; each fills in ``summary`` as it ends."""
        cfg, n = state.config, summary.iteration
        until = workflow.now().isoformat()
        self._phase = f"iteration {n}: building the dataset"
        dataset: BuildDatasetOutput = await workflow.execute_activity(
            "build_preference_dataset",
            # The build config and window ride in the input: no new command, so a
            # history from before they existed (both empty) replays unchanged.
            BuildDatasetInput(state.tenant_id, state.skill_id, state.feedback_watermark, until,
                              cfg.min_pairs, cfg.eval_fraction, cfg.dataset, cfg.data_window_s),
            result_type=BuildDatasetOutput,
            start_to_close_timeout=_TIMEOUT,
            retry_policy=_RETRY,
        )  # fmt: skip
        state.feedback_watermark = until
        summary.dataset_uri, summary.dataset_id = dataset.dataset_uri, dataset.dataset_id
        if not dataset.dataset_uri:
            summary.outcome, summary.reason = "not_enough_data", f"{dataset.pairs} pairs"
            return
        if state.stopped:
            self._stopped(summary)
            return
        baseline = await _current_baseline(state)
        run_id = f"{state.loop_id}-{n}"
        self._phase = f"iteration {n}: training"
        train = TrainAdapterInput(
            state.tenant_id, state.skill_id, run_id, dataset.dataset_uri, baseline.policy_id,
            dataset_id=dataset.dataset_id, lora=cfg.lora, dpo=cfg.dpo,
            checkpoint_every=cfg.train_checkpoint_every,
        )  # fmt: skip
        if children:
            summary.training_run_id = run_id
            summary.adapter_uri, summary.candidate_policy_id = await self._train_as_run(
                state, train, n
            )
        else:
            summary.adapter_uri, summary.candidate_policy_id = await self._train(state, train)
        if state.stopped:
            self._stopped(summary)
            return
        self._phase = f"iteration {n}: evaluating"
        await self._warm_up_done()
        # Evaluation generates with both policies: it runs where the model is. The
        # judge only changes the activity's input, not the commands: no patch needed
        # (histories recorded without it replay with judge=None).
        evaluate = EvaluateInput(
            state.tenant_id,
            state.skill_id,
            summary.candidate_policy_id,
            baseline.policy_id,
            cfg.rubric,
            max_examples=cfg.eval_max_examples,
            confidence_level=cfg.eval_confidence_level,
            safety_suites=list(cfg.eval_safety_suites),
            judge=cfg.judge,
        )
        if children:
            # The gate sees the skill: the skill's golden set where it has one, and the
            # held-out split of this iteration's own data (reported beside it there;
            # deciding where there is no golden set).
            evaluate.dataset_uri, evaluate.dataset_id = dataset.dataset_uri, dataset.dataset_id
            evaluate.dataset_sha256, evaluate.golden_guard = dataset.dataset_sha256, True
            summary.evaluation_id = evaluate.evaluation_id = f"{run_id}-eval"
            evaluation = await self._evaluate_as_resource(state, evaluate, run_id, n)
        else:
            evaluation = await workflow.execute_activity(
                "evaluate_candidate",
                evaluate,
                result_type=EvaluateOutput,
                task_queue=cfg.gpu_task_queue,
                start_to_close_timeout=timedelta(hours=2),
                retry_policy=_RETRY,
            )
        summary.outcome, summary.win_rate = "rejected_by_eval", evaluation.win_rate
        summary.reason = "; ".join(evaluation.reasons)
        summary.evaluation_passed = evaluation.passed
        summary.win_rate_ci_low, summary.win_rate_ci_high = evaluation.ci_low, evaluation.ci_high
        if not evaluation.passed:
            return
        if state.stopped:
            self._stopped(summary)
            return
        self._phase = f"iteration {n}: rolling out {summary.candidate_policy_id}"
        rollout = RolloutInput(
            state.tenant_id, state.skill_id, f"{run_id}-rollout",
            summary.candidate_policy_id, baseline.policy_id, cfg.rollout,
        )  # fmt: skip
        summary.rollout_id = rollout.rollout_id
        child_id, memo = _rollout_child(state, rollout, n)
        self._rollout = await workflow.start_child_workflow(
            RolloutWorkflow.run, rollout, id=child_id, memo=memo
        )
        try:
            if state.stopped:  # stopped while the child started: it must not go on
                await self._roll_back_for_stop()
            elif state.paused:  # paused while this iteration trained: the rollout waits too
                await self._forward("pause")
            result: RolloutResult = await self._rollout
        finally:
            self._rollout = None
        summary.outcome = result.outcome
        summary.reason = result.reason

    async def _train(self, state: LoopState, train: TrainAdapterInput) -> tuple[str, str]:
        """Histories recorded before LOOP_CHILD_RESOURCES: train and register as the
        loop's own activities. (adapter URI, candidate policy id)"""
        cfg = state.config
        trained: TrainAdapterOutput = await workflow.execute_activity(
            "train_adapter",
            train,
            result_type=TrainAdapterOutput,
            task_queue=cfg.gpu_task_queue,
            start_to_close_timeout=timedelta(seconds=cfg.train_timeout_s),
            heartbeat_timeout=timedelta(seconds=cfg.train_heartbeat_timeout_s),
            retry_policy=RetryPolicy(maximum_attempts=3),
        )
        candidate: RegisterCandidateOutput = await workflow.execute_activity(
            "register_candidate",
            RegisterCandidateInput(state.tenant_id, state.skill_id, train.parent_policy_id,
                                   trained.adapter_uri, trained.adapter_sha256, train.run_id),
            result_type=RegisterCandidateOutput,
            start_to_close_timeout=_TIMEOUT,
            retry_policy=_RETRY,
        )  # fmt: skip
        return trained.adapter_uri, candidate.policy_id

    async def _train_as_run(
        self, state: LoopState, train: TrainAdapterInput, n: int
    ) -> tuple[str, str]:
        """Train and register as a child TrainingRunWorkflow under the id TrainingService
        reads, so that the run is a TrainingRun like any other (GetTrainingRun,
        ListTrainingRuns, its progress and lineage). The memo says what it is in plain
        JSON (the service turns it into the contract's message)."""
        cfg = state.config
        result: TrainingRunResult = await workflow.execute_child_workflow(
            TrainingRunWorkflow.run,
            TrainingRunInput(train, cfg.gpu_task_queue, cfg.train_heartbeat_timeout_s,
                             cfg.train_timeout_s, max_attempts=3),
            id=training_run_workflow_id(state.tenant_id, train.run_id),
            memo={"skill_id": state.skill_id, "learning_loop_id": state.loop_id,
                  "loop_run": {"iteration": n, "dataset_id": train.dataset_id,
                               "parent_policy_id": train.parent_policy_id,
                               "lora": dataclasses.asdict(cfg.lora),
                               "dpo": dataclasses.asdict(cfg.dpo)}},
        )  # fmt: skip
        return result.trained.adapter_uri, result.policy_id

    async def _evaluate_as_resource(
        self, state: LoopState, evaluate: EvaluateInput, run_id: str, n: int
    ) -> EvaluateOutput:
        """Evaluate as a child EvaluationWorkflow under the id TrainingService reads (an
        Evaluation like any other: GetEvaluation, ListEvaluations, its report)."""
        return await workflow.execute_child_workflow(
            EvaluationWorkflow.run,
            EvaluationInput(evaluate, state.config.gpu_task_queue),
            id=evaluation_workflow_id(state.tenant_id, evaluate.evaluation_id),
            memo={"skill_id": state.skill_id, "learning_loop_id": state.loop_id,
                  "candidate_policy_id": evaluate.candidate_policy_id,
                  "loop_evaluation": {"iteration": n, "training_run_id": run_id,
                                      "baseline_policy_id": evaluate.baseline_policy_id,
                                      "dataset_id": evaluate.dataset_id}},
        )  # fmt: skip


async def _current_baseline(state: LoopState) -> BaselineOutput:
    """The skill's promoted policy, which the iteration improves on."""
    result: BaselineOutput = await workflow.execute_activity(
        "current_baseline",
        BaselineInput(state.tenant_id, state.skill_id),
        result_type=BaselineOutput,
        start_to_close_timeout=_TIMEOUT,
        retry_policy=_RETRY,
    )
    return result


def _failure(err: BaseException) -> tuple[str, str]:
    """The failed step's own error (type, message), unwrapped from Temporal's."""
    cause: BaseException = err
    while isinstance(cause, ActivityError | ChildWorkflowError) and cause.__cause__ is not None:
        cause = cause.__cause__
    if isinstance(cause, ApplicationError):
        return cause.type or "", cause.message
    return type(cause).__name__, str(cause)


def _rollout_child(
    state: LoopState, rollout: RolloutInput, n: int
) -> tuple[str, dict[str, Any] | None]:
    """Workflow id and memo of an iteration's rollout. Newer runs use the id form that
    TrainingService's rollout RPCs read (`rollout/<tenant>/<rollout_id>`, the tenant
    in the id keeps tenants apart) and describe it in the memo; histories recorded
    before started the child under the loop's own id, without a memo."""
    if not workflow.patched(ROLLOUT_WORKFLOW_ID):
        return f"{state.loop_id}-rollout-{n}", None
    memo = {
        "skill_id": rollout.skill_id,
        "candidate_policy_id": rollout.candidate_policy_id,
        "baseline_policy_id": rollout.baseline_policy_id,
        "learning_loop_id": state.loop_id,
        "plan": dataclasses.asdict(rollout.plan),
    }
    return rollout_workflow_id(state.tenant_id, rollout.rollout_id), memo
