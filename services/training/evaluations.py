"""Evaluations as TrainingService exposes them: an evaluation is an EvaluationWorkflow,
and Temporal is the source of truth for its state (services.training.workflow_resources):
the workflow id `evaluation/<tenant>/<id>` keeps tenants apart, the id derives from the
request_id, the memo holds the request's digest and the evaluation as created. QUEUED
until a worker starts evaluating, RUNNING while it generates and judges, then
SUCCEEDED with a result (the full report, read from the object store) or FAILED.

What the evaluation worker does decides what a request may ask: it evaluates on the
skill's golden set, or on the eval split of a READY preference dataset of the skill
(``config.dataset_id``: its chosen answers are the references; the worker reads the
Parquet by URI), always scores by a reward heuristic (similarity to the references)
and, with ``config.judge``, also by the pairwise LLM judge (on the worker's backend:
its base model, or a policy's adapter), which then decides the gate; and it runs the
named safety suites. Everything is checked here, so that a bad config fails the
request rather than the workflow."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError
from temporalio.exceptions import WorkflowAlreadyStartedError

from rlaas.registry.v1 import registry_pb2 as reg
from rlaas.training.v1 import training_pb2 as pb
from services.db import idempotency
from services.errors import (
    DomainError,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
)
from services.objects.store import ObjectStore, key_for_uri
from services.paging import page_request
from services.registry.service import RegistryCore
from services.registry.validation import parse_policy_id
from services.tenancy.principal import Principal, Scope
from services.training.loops import evaluation_gate, judge_spec
from services.training.runs import TrainingRunService
from services.training.workflow_resources import (
    WorkflowResources,
    digest,
    ended_status,
    failure_status,
    first_started,
    pack,
    pending_activity,
    resource_id,
    set_time,
    unpack,
)
from workflows.evaluation import EvaluationWorkflow, evaluation_workflow_id
from workflows.learning_types import EvaluateInput, EvaluateOutput, EvaluationInput, JudgeSpec
from workflows.queues import CPU_TASK_QUEUE, GPU_TASK_QUEUE

T = TypeVar("T")
_EVALUATE = "evaluate_candidate"
_OUTPUT_ONLY = ("evaluation_id", "skill_id", "state", "result", "error", "tenant_id",
                "learning_loop_id", "create_time", "start_time", "end_time")  # fmt: skip


@dataclass(frozen=True)
class _Request:
    """The checked config, as the evaluate activity takes it."""

    rubric: dict[str, Any]
    max_examples: int
    confidence_level: float
    safety_suites: list[str]
    judge: JudgeSpec | None


DatasetLookup = Callable[[Principal, str], Awaitable[pb.PreferenceDataset]]
"""GetPreferenceDataset's lookup: the caller's tenant's dataset, NOT_FOUND if none."""


class EvaluationService:
    """``task_queue``: where evaluations run (they generate: the model-bearing workers'
    queue). ``runs`` answers whether a named training run exists, ``datasets`` finds
    the dataset a config names."""

    def __init__(
        self,
        client_factory: Callable[[], Awaitable[Client]],
        registry: RegistryCore,
        objects: ObjectStore,
        runs: TrainingRunService,
        *,
        datasets: DatasetLookup,
        task_queue: str = GPU_TASK_QUEUE,
    ) -> None:
        self._evals = WorkflowResources(
            client_factory, "EvaluationWorkflow", evaluation_workflow_id, "evaluation"
        )
        self._registry = registry
        self._objects = objects
        self._runs = runs
        self._datasets = datasets
        self._task_queue = task_queue

    # ---- create -------------------------------------------------------------------

    async def create(
        self, caller: Principal, evaluation: pb.Evaluation, request_id: str
    ) -> pb.Evaluation:
        caller.require(Scope.TRAIN)
        request = _validated(evaluation, request_id)
        request_digest = digest(evaluation)
        evaluation_id = resource_id("ev", request_id)
        tenant_id = caller.tenant_id
        # A retry finds its evaluation before anything is checked again (the skill's
        # baseline may have changed since).
        if await self._evals.replayed(tenant_id, evaluation_id, request_digest, request_id):
            return await self.get(caller, evaluation_id)
        _known_suites(request.safety_suites)
        candidate, baseline = await self._policies(tenant_id, evaluation)
        if evaluation.training_run_id:
            await self._runs.get(caller, evaluation.training_run_id)  # NOT_FOUND if none
        if request.judge is not None and request.judge.judge_model:
            await _named(self._registry.policy(tenant_id, request.judge.judge_model),
                         "evaluation.config.judge.judge_model")  # fmt: skip
        evaluate = EvaluateInput(
            tenant_id, candidate.skill_id, candidate.policy_id, baseline.policy_id,
            request.rubric, evaluation_id, request.max_examples, request.confidence_level,
            request.safety_suites, judge=request.judge,
        )  # fmt: skip
        if evaluation.config.dataset_id:
            dataset = await self._eval_dataset(caller, evaluation.config.dataset_id,
                                               candidate.skill_id)  # fmt: skip
            evaluate.dataset_id, evaluate.dataset_uri = dataset.dataset_id, dataset.storage_uri
            evaluate.dataset_sha256 = dataset.content_sha256
        created = pb.Evaluation()
        created.CopyFrom(evaluation)
        for name in _OUTPUT_ONLY:
            created.ClearField(name)
        created.skill_id, created.baseline_policy_id = candidate.skill_id, baseline.policy_id
        client = await self._evals.temporal()
        try:
            await client.start_workflow(
                EvaluationWorkflow.run, EvaluationInput(evaluate, self._task_queue),
                id=evaluation_workflow_id(tenant_id, evaluation_id), task_queue=CPU_TASK_QUEUE,
                memo={"request_sha256": request_digest, "skill_id": candidate.skill_id,
                      "candidate_policy_id": candidate.policy_id, "evaluation": pack(created)},
            )  # fmt: skip
        except WorkflowAlreadyStartedError:  # a concurrent retry started it first
            await self._evals.replayed(tenant_id, evaluation_id, request_digest, request_id)
        return await self.get(caller, evaluation_id)

    async def _eval_dataset(
        self, caller: Principal, dataset_id: str, skill_id: str
    ) -> pb.PreferenceDataset:
        """The dataset whose eval split the evaluation runs on, once it can: READY, of
        the candidate's skill, with held-out pairs. Only its URI travels on."""
        path = "evaluation.config.dataset_id"
        dataset = await _named(self._datasets(caller, dataset_id), path)
        meta = {"field": path, "dataset_id": dataset_id}
        if dataset.state != pb.PreferenceDataset.STATE_READY:
            state = pb.PreferenceDataset.State.Name(dataset.state)
            raise FailedPrecondition(
                f"{path}: dataset {dataset_id!r} is {state}, not STATE_READY",
                reason="DATASET_NOT_READY", metadata=meta,
            )  # fmt: skip
        if dataset.skill_id != skill_id:
            raise FailedPrecondition(
                f"{path}: dataset {dataset_id!r} belongs to skill {dataset.skill_id!r}, "
                f"not the candidate's {skill_id!r}",
                reason="DATASET_OF_ANOTHER_SKILL", metadata=meta,
            )  # fmt: skip
        if dataset.eval_pair_count <= 0 or not dataset.storage_uri:
            raise FailedPrecondition(
                f"{path}: dataset {dataset_id!r} has an empty eval split (nothing held "
                "out to evaluate on); build one with build_config.eval_fraction > 0",
                reason="DATASET_EVAL_SPLIT_EMPTY", metadata=meta,
            )  # fmt: skip
        return dataset

    async def _policies(
        self, tenant_id: str, evaluation: pb.Evaluation
    ) -> tuple[reg.Policy, reg.Policy]:
        """The candidate and the baseline (named, else the skill's), once they pass the
        contract's preconditions."""
        candidate = await self._registry.policy(tenant_id, evaluation.candidate_policy_id)
        if evaluation.baseline_policy_id:
            baseline = await self._registry.policy(tenant_id, evaluation.baseline_policy_id)
        else:
            deployment = await self._registry.deployment(tenant_id, candidate.skill_id)
            if deployment is None or not deployment.baseline_policy_id:
                raise FailedPrecondition(
                    f"skill {candidate.skill_id!r} has no baseline to evaluate against; "
                    "name a baseline_policy_id or promote a first policy",
                    reason="NO_BASELINE",
                )
            baseline = await self._registry.policy(tenant_id, deployment.baseline_policy_id)
        if baseline.skill_id != candidate.skill_id:
            raise FailedPrecondition(
                f"candidate {candidate.policy_id} and baseline {baseline.policy_id} belong "
                "to different skills",
                reason="POLICIES_OF_DIFFERENT_SKILLS",
            )
        if baseline.policy_id == candidate.policy_id:
            raise FailedPrecondition(
                f"{candidate.policy_id} is the baseline; evaluate it against another policy",
                reason="CANDIDATE_IS_BASELINE",
            )
        return candidate, baseline

    # ---- read ---------------------------------------------------------------------

    async def get(self, caller: Principal, evaluation_id: str) -> pb.Evaluation:
        caller.require(Scope.TRAIN)
        if not evaluation_id:
            raise InvalidArgument.field("evaluation_id", "is required")
        tenant_id = caller.tenant_id
        described = await self._evals.describe(tenant_id, evaluation_id)
        if described is None:
            raise NotFound("evaluation", evaluation_id)
        memo = await described.memo()
        out = unpack(pb.Evaluation, memo.get("evaluation"))
        loop_evaluation = memo.get("loop_evaluation")
        if isinstance(loop_evaluation, dict):
            _from_loop(out, memo, loop_evaluation)
        out.evaluation_id, out.tenant_id = evaluation_id, tenant_id
        set_time(out, "create_time", described.start_time)
        set_time(out, "end_time", described.close_time)
        client = await self._evals.temporal()
        handle = client.get_workflow_handle_for(
            EvaluationWorkflow.run, described.id, run_id=described.run_id
        )
        execution = described.status
        if execution == WorkflowExecutionStatus.RUNNING:
            pending = await pending_activity(client, described, _EVALUATE)
            started = pending is not None and pending.started
            out.state = pb.Evaluation.STATE_RUNNING if started else pb.Evaluation.STATE_QUEUED
            set_time(out, "start_time", pending.started_time if pending else None)
            return out
        set_time(out, "start_time", await first_started(handle, _EVALUATE))
        if execution == WorkflowExecutionStatus.COMPLETED:
            out.state = pb.Evaluation.STATE_SUCCEEDED
            out.result.CopyFrom(await self._result(await handle.result()))
            return out
        out.state = pb.Evaluation.STATE_FAILED
        if execution == WorkflowExecutionStatus.FAILED:
            try:
                await handle.result()
            except WorkflowFailureError as err:
                out.error.CopyFrom(failure_status(err))
        else:
            out.error.CopyFrom(ended_status(execution))
        return out

    async def _result(self, verdict: EvaluateOutput) -> pb.EvaluationResult:
        """The full result from the stored report; the verdict alone if the report
        cannot be read (the object store is down, or the report was deleted)."""
        try:
            report = json.loads(
                await self._objects.get(key_for_uri(self._objects, verdict.report_uri))
            )
        except (DomainError, OSError, ValueError):  # fmt: skip
            return pb.EvaluationResult(
                win_rate=verdict.win_rate, win_rate_ci_lower=verdict.ci_low,
                win_rate_ci_upper=verdict.ci_high, p_value=verdict.p_value,
                passed=verdict.passed, failure_reasons=verdict.reasons,
                report_uri=verdict.report_uri,
            )  # fmt: skip
        return _report_to_proto(report, verdict.report_uri)

    async def list(
        self, caller: Principal, *, skill_id: str = "", candidate_policy_id: str = "",
        state: int = 0, page_size: int = 0, page_token: str = "",
    ) -> tuple[list[pb.Evaluation], str]:  # fmt: skip
        caller.require(Scope.TRAIN)
        page = page_request(page_size, page_token)

        def keep(memo: Mapping[str, Any]) -> bool:
            return (not skill_id or memo.get("skill_id") == skill_id) and (
                not candidate_policy_id or memo.get("candidate_policy_id") == candidate_policy_id
            )

        return await self._evals.page(
            caller.tenant_id, page, keep,
            lambda evaluation_id: self.get(caller, evaluation_id),
            lambda evaluation: not state or evaluation.state == state,
        )  # fmt: skip


def _from_loop(
    out: pb.Evaluation, memo: Mapping[str, Any], loop_evaluation: Mapping[str, Any]
) -> None:
    """A learning loop's gate: its workflow writes a plain-JSON memo (workflows hold no
    protos); what it says becomes the evaluation as created."""
    loop_id = str(memo.get("learning_loop_id", ""))
    out.skill_id, out.learning_loop_id = str(memo.get("skill_id", "")), loop_id
    out.candidate_policy_id = str(memo.get("candidate_policy_id", ""))
    out.baseline_policy_id = str(loop_evaluation.get("baseline_policy_id", ""))
    out.training_run_id = str(loop_evaluation.get("training_run_id", ""))
    out.config.dataset_id = str(loop_evaluation.get("dataset_id", ""))
    iteration = loop_evaluation.get("iteration", "?")
    out.display_name = f"learning loop {loop_id}, iteration {iteration}: the gate"


# ---- validation ---------------------------------------------------------------------


def _validated(evaluation: pb.Evaluation, request_id: str) -> _Request:
    """The contract's INVALID_ARGUMENT checks, and what they leave for the activity."""
    violations = [
        FieldViolation(name, "is required")
        for name, value in (
            ("evaluation.candidate_policy_id", evaluation.candidate_policy_id),
            ("request_id", request_id),
        )
        if not value
    ]
    if violations:
        raise InvalidArgument(violations)
    idempotency.validate_request_id(request_id)
    parse_policy_id(evaluation.candidate_policy_id, "evaluation.candidate_policy_id")
    if evaluation.baseline_policy_id:
        parse_policy_id(evaluation.baseline_policy_id, "evaluation.baseline_policy_id")
    config = evaluation.config
    violations = []
    judge: JudgeSpec | None = None
    if config.HasField("judge"):
        try:
            judge = judge_spec(config.judge, "evaluation.config.judge")
        except InvalidArgument as err:
            violations += err.violations
    if len(config.dataset_id) > 256:
        violations.append(FieldViolation("evaluation.config.dataset_id", "is too long"))
    if config.max_examples < 0:
        violations.append(FieldViolation("evaluation.config.max_examples", "must be >= 0"))
    level = config.confidence_level
    if level and not 0 < level < 1:  # NaN fails too
        violations.append(
            FieldViolation("evaluation.config.confidence_level", f"{level} is not in (0, 1)")
        )
    if violations:
        raise InvalidArgument(violations)
    # Unset, the gate is the contract's defaults, not the evaluation worker's own rubric
    # (which only the learning loop falls back to).
    rubric = evaluation_gate(config.gate, "evaluation.config.gate")
    suites = list(dict.fromkeys(config.safety_suites))
    return _Request(rubric, config.max_examples, level, suites, judge)


async def _named(lookup: Awaitable[T], field: str) -> T:
    """``lookup``, with the request field it resolves named in its NOT_FOUND."""
    try:
        return await lookup
    except NotFound as err:
        err.metadata["field"] = field
        err.message = f"{field}: {err.message}"
        raise


def _known_suites(suites: list[str]) -> None:
    from services.training.evaluation import load_safety_suite

    known = {case.suite for case in load_safety_suite()}
    for suite in suites:
        if suite not in known:
            raise NotFound("safety suite", suite)


# ---- to the contract ----------------------------------------------------------------


def _safety_failures(result: Mapping[str, Any]) -> list[pb.SafetyFailure]:
    """A suite's failed cases with why (reports from before the reasons were kept give
    the cases alone)."""
    cases = result.get("failed_cases") or []
    reasons = result.get("failure_reasons") or [""] * len(cases)
    return [
        pb.SafetyFailure(case_id=str(c), reason=str(r)) for c, r in zip(cases, reasons, strict=True)
    ]


def _report_to_proto(report: Mapping[str, Any], report_uri: str) -> pb.EvaluationResult:
    """services.training.evaluation.EvaluationReport (as JSON) -> EvaluationResult."""
    out = pb.EvaluationResult(report_uri=report_uri)
    for name in ("example_count", "wins", "losses", "ties"):
        setattr(out, name, int(report.get(name) or 0))
    for name in ("win_rate", "win_rate_ci_lower", "win_rate_ci_upper", "confidence_level",
                 "p_value"):  # fmt: skip
        setattr(out, name, float(report.get(name) or 0.0))
    out.passed = bool(report.get("passed"))
    out.failure_reasons.extend(str(r) for r in report.get("failure_reasons") or [])
    baseline = {s["suite"]: s for s in report.get("baseline_safety_results") or []}
    for s in report.get("safety_results") or []:
        out.safety_results.add(
            suite=s["suite"], case_count=s["case_count"], failure_count=s["failure_count"],
            failure_rate=s["failure_rate"], passed=s["passed"], failures=_safety_failures(s),
            baseline_failures=_safety_failures(baseline.get(s["suite"]) or {}),
        )  # fmt: skip
    for m in report.get("metrics") or []:
        out.metrics.add(name=m["name"], candidate_value=m["candidate_value"],
                        baseline_value=m["baseline_value"])  # fmt: skip
    for w in report.get("win_rates") or []:
        out.win_rates.add(**{name: w[name] for name in (
            "scorer", "scorer_version", "wins", "losses", "ties", "win_rate",
            "win_rate_ci_lower", "win_rate_ci_upper", "p_value")})  # fmt: skip
    if judge := report.get("judge"):
        out.judge.CopyFrom(pb.JudgeSummary(**{name: judge[name] for name in (
            "judge_version", "judge_version_label", "judge_model", "verdict_count",
            "cache_hits", "invalid_verdict_count")}))  # fmt: skip
    for x in report.get("samples") or []:
        out.samples.add(
            prompt=x["prompt"], candidate_text=x["candidate_text"],
            baseline_text=x["baseline_text"], verdict=x["verdict"], rationale=x["rationale"],
        )  # fmt: skip
    return out
