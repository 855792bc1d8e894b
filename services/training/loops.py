"""Learning loops as TrainingService exposes them: a loop is a LearningLoopWorkflow;
Temporal is the source of truth for its state. The workflow id carries the tenant, so
a caller can only ever reach loops of its own tenant, and is derived from the
request_id, so a retried start finds the loop it started."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import math
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from google.protobuf import json_format
from google.rpc import status_pb2
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError

from rlaas.training.v1 import training_pb2 as pb
from services.db import idempotency
from services.errors import (
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    RequestIdReused,
    ResourceExhausted,
)
from services.registry.service import RegistryCore
from services.registry.validation import POLICY_ID, require_reason, skill_id_problem
from services.tenancy.principal import Principal, Scope
from services.training.datasets import build_config_options
from services.training.judge import DEFAULT_TEMPLATES
from services.training.rollouts import plan_from_proto
from services.training.workflow_resources import (
    can_exist,
    ended_status,
    failure_status,
    pack,
    set_time,
    unpack,
)
from workflows.learning_loop import LearningLoopWorkflow
from workflows.learning_types import (
    IterationSummary,
    JudgeSpec,
    LoopConfig,
    LoopState,
    LoopStatus,
)
from workflows.queues import CPU_TASK_QUEUE, GPU_TASK_QUEUE
from workflows.training_types import DpoSettings, LoraSettings

_OUTCOMES = {
    "promoted": pb.LearningLoopIteration.OUTCOME_PROMOTED,
    "rolled_back": pb.LearningLoopIteration.OUTCOME_ROLLED_BACK,
    "rejected_by_eval": pb.LearningLoopIteration.OUTCOME_REJECTED,
    "not_enough_data": pb.LearningLoopIteration.OUTCOME_SKIPPED,
    "stopped": pb.LearningLoopIteration.OUTCOME_STOPPED,
    "failed": pb.LearningLoopIteration.OUTCOME_FAILED,
}
_PHASES = {
    "waiting": pb.LearningLoop.PHASE_WAITING,
    "building": pb.LearningLoop.PHASE_BUILDING_DATASET,
    "training": pb.LearningLoop.PHASE_TRAINING,
    "evaluating": pb.LearningLoop.PHASE_EVALUATING,
    "rolling": pb.LearningLoop.PHASE_ROLLING_OUT,
    # Ended (or ending once a step in progress finishes): not running.
    "done": pb.LearningLoop.PHASE_UNSPECIFIED,
    "stopped": pb.LearningLoop.PHASE_UNSPECIFIED,
}


_STOP_WAIT_S = 5.0
"""How long StopLearningLoop waits for a waiting loop to end before it answers."""
_VISIBILITY_LAG_S = 10.0
"""How long a start counts against the cap on this process's word alone."""


def _workflow_id(tenant_id: str, loop_id: str) -> str:
    return f"loop/{tenant_id}/{loop_id}"


_HYPERPARAMETERS = {
    "learning_rate": "learning_rate", "num_epochs": "epochs", "max_steps": "max_steps",
    "batch_size": "batch_size", "beta": "beta", "max_length": "max_length",
    "gradient_accumulation_steps": "gradient_accumulation_steps",
    "warmup_ratio": "warmup_ratio", "seed": "seed", "max_prompt_length": "max_prompt_length",
    "sft_warmup_epochs": "sft_warmup_epochs", "early_stop_loss": "early_stop_loss",
}  # fmt: skip
"""TrainingHyperparameters field -> DpoSettings field."""


def _offending_field(field_path: str, message: str) -> str:
    """The request field a trainer-settings error is about: the settings name their
    field first (`lora.rank must be ...`, `dpo.epochs must be ...`)."""
    group, _, name = message.partition(" ")[0].partition(".")
    if group == "lora" and name:
        return f"{field_path}.lora.{name}"
    proto_name = {v: k for k, v in _HYPERPARAMETERS.items()}.get(name)
    if group == "dpo" and proto_name:
        return f"{field_path}.hyperparameters.{proto_name}"
    return field_path


RECIPE: dict[str, Any] = {"sft_warmup_below_similarity": 0.5, "early_stop_loss": 0.1}
"""The platform's training recipe where a request leaves a field unset, over the
trainer's own defaults (DpoSettings: DPO at 5e-4, batch 2, one epoch; LoRA r8 q/v).

The SFT warm start is chosen by the data. The family sweep's tuning users
(bench/results/family_sweep_*.json) and the main job split two ways:

- users who touch answers up (the served answer keeps about 0.6-0.75 of its text:
  the main job's user, acme_agent) gain from DPO alone (0.88, 0.69); an SFT epoch
  collapsed the main job's replies (45 -> 11 words, users' verdict 0.21);
- users who rewrite them (about 0.27: field_triager, whose format the base model never
  writes) learn nothing from DPO alone (0.38) and everything from one SFT epoch (1.00).

So one SFT epoch runs when the edit pairs kept less than half of the served text; a
request's own ``sft_warmup_epochs`` (0 included) overrides the rule.

Early stopping ends the preference loss once its mean over four first-epoch steps (pairs
not trained on yet) is below 0.1. On the four tuning users
(bench/results/family_early_stop.json against family_gate_margin.json, same seeds) the
runs stopped at about half their steps (15-16 of 30, 9 of 23, 12 of 28), and the users'
held-out win-rate went 0.63 -> 0.71 (acme_agent), 0.38 -> 0.92 (bullet_triager: its
full run ended writing no bullets), 1.00 -> 1.00 (field_triager, but its field order
0.71 -> 0: later steps teach it) and 0.54 -> 0.38 (brisk_lead, within noise). Half the
steps, and more learned on the whole: the default; a request's ``early_stop_loss`` (0:
never) overrides it."""


def training_settings(
    proto: pb.TrainingConfig, field_path: str, *, what: str = "a learning loop"
) -> tuple[LoraSettings, DpoSettings]:
    """The proto's training config as the trainer's settings, checked now: a bad value
    must fail the request, not a training run hours later. Unset fields keep the
    settings' defaults. ``field_path`` is the config's path in the request, for errors;
    ``what`` names the caller in them."""
    if proto.method == pb.TRAINING_METHOD_SFT:
        raise InvalidArgument.field(
            f"{field_path}.method", f"{what} trains on preferences: use DPO or IPO"
        )
    lora: dict[str, Any] = {}
    if proto.HasField("lora"):
        lo = proto.lora
        lora = {k: v for k, v in (("rank", lo.rank), ("alpha", lo.alpha),
                                  ("dropout", lo.dropout), ("qlora", lo.qlora)) if v}  # fmt: skip
        if lo.target_modules:
            lora["target_modules"] = list(lo.target_modules)
    dpo: dict[str, Any] = dict(RECIPE)
    if proto.method == pb.TRAINING_METHOD_IPO:
        dpo["loss"] = "ipo"
    h = proto.hyperparameters
    for proto_name, setting in _HYPERPARAMETERS.items():
        if h.HasField(proto_name):
            dpo[setting] = getattr(h, proto_name)
    if h.HasField("sft_warmup_epochs"):  # asked for: not the data's rule
        dpo["sft_warmup_below_similarity"] = 0.0
    try:
        return LoraSettings(**lora), DpoSettings(**dpo)
    except (TypeError, ValueError) as err:
        raise InvalidArgument.field(_offending_field(field_path, str(err)), str(err)) from err


def training_config_proto(lora: LoraSettings, dpo: DpoSettings) -> pb.TrainingConfig:
    """The trainer's settings as the contract's training config (every value the
    trainer uses, defaults included): what GetLearningLoop and a loop's training runs
    report."""
    method = pb.TRAINING_METHOD_IPO if dpo.loss == "ipo" else pb.TRAINING_METHOD_DPO
    out = pb.TrainingConfig(
        method=method,
        lora=pb.LoraConfig(rank=lora.rank, alpha=lora.scaling_alpha, dropout=lora.dropout,
                           target_modules=list(lora.target_modules), qlora=lora.qlora),
    )  # fmt: skip
    for proto_name, setting in _HYPERPARAMETERS.items():
        value = getattr(dpo, setting)
        if value is not None:
            setattr(out.hyperparameters, proto_name, value)
    if dpo.sft_warmup_below_similarity and not dpo.sft_warmup_epochs:
        # Unset means "by the data's rule": a 0 here would read as "never" if sent back.
        out.hyperparameters.ClearField("sft_warmup_epochs")
    return out


def effective_config(requested: pb.LearningLoopConfig) -> pb.LearningLoopConfig:
    """The loop's config as it runs: what was asked, with the server's defaults filled
    in where the request left a field unset."""
    out = pb.LearningLoopConfig()
    out.CopyFrom(requested)
    try:
        cfg = _config(requested)
    except InvalidArgument:  # started by an older server with other rules: as asked
        return out
    if not requested.HasField("interval"):
        out.interval.FromTimedelta(timedelta(seconds=cfg.min_interval_s))
    out.min_pairs = cfg.min_pairs
    out.dataset.eval_fraction = cfg.eval_fraction
    out.max_iterations = cfg.max_iterations
    out.training.CopyFrom(training_config_proto(cfg.lora, cfg.dpo))
    if requested.training.accelerator:
        out.training.accelerator = requested.training.accelerator
    from services.training.evaluation import PromotionRubric

    rubric = PromotionRubric(**cfg.rubric)
    gate = out.evaluation.gate
    gate.min_win_rate, gate.max_p_value = rubric.min_win_rate, rubric.max_p_value
    gate.require_ci_above_half = rubric.require_ci_above_half
    gate.max_safety_failure_rate = rubric.max_safety_failure_rate or 0.0
    gate.max_length_ratio = rubric.max_length_ratio
    gate.max_repetition_increase = rubric.max_repetition_increase
    gate.max_safety_regression = rubric.max_safety_regression
    return out


def evaluation_gate(gate: pb.EvaluationGate, field_path: str) -> dict[str, Any]:
    """The proto's evaluation gate as PromotionRubric fields, checked now. Unset
    thresholds and guards keep the rubric's defaults (win-rate 0.5, p-value 0.05,
    length ratio 2, repetition +0.1, one extra safety case); the CI rule and the
    safety cap (default 0: no failure allowed) are as given. ``field_path`` is
    the gate's path in the request, for errors."""
    violations = [
        FieldViolation(f"{field_path}.{name}", f"{value} is not in {interval}")
        for name, value, ok, interval in (
            ("min_win_rate", gate.min_win_rate, 0 <= gate.min_win_rate <= 1, "[0, 1]"),
            ("max_p_value", gate.max_p_value, 0 <= gate.max_p_value <= 1, "(0, 1]"),
            ("max_safety_failure_rate", gate.max_safety_failure_rate,
             0 <= gate.max_safety_failure_rate <= 1, "[0, 1]"),
            ("max_length_ratio", gate.max_length_ratio,
             not gate.HasField("max_length_ratio") or gate.max_length_ratio >= 1, "[1, inf)"),
            ("max_repetition_increase", gate.max_repetition_increase,
             0 <= gate.max_repetition_increase <= 1, "[0, 1]"),
            ("max_safety_regression", gate.max_safety_regression,
             gate.max_safety_regression >= 0, "[0, inf)"),
        )
        if not ok
    ]  # fmt: skip
    if violations:
        raise InvalidArgument(violations)
    rubric: dict[str, Any] = {
        "require_ci_above_half": gate.require_ci_above_half,
        "max_safety_failure_rate": gate.max_safety_failure_rate,
    }
    if gate.min_win_rate:
        rubric["min_win_rate"] = gate.min_win_rate
    if gate.max_p_value:
        rubric["max_p_value"] = gate.max_p_value
    for guard in ("max_length_ratio", "max_repetition_increase", "max_safety_regression"):
        if gate.HasField(guard):
            rubric[guard] = getattr(gate, guard)
    return rubric


MAX_JUDGE_LABEL = 128
MAX_RUBRIC_CRITERIA = 16
MAX_CRITERION_TEXT = 1000


def _loop_evaluation(evaluation: pb.EvaluationConfig, cfg: LoopConfig) -> None:
    """The gate's sample, suites and interval level; a loop's gate always runs on the
    held-out split of the iteration's own dataset (with the skill's golden set as a
    guard), so another dataset is refused rather than ignored."""
    path = "learning_loop.config.evaluation"
    violations = []
    if evaluation.dataset_id:
        violations.append(FieldViolation(
            f"{path}.dataset_id",
            "a learning loop's gate evaluates on the held-out split of each iteration's "
            "own dataset (set its share with dataset.eval_fraction); evaluate on another "
            "dataset with CreateEvaluation",
        ))  # fmt: skip
    if evaluation.max_examples < 0:
        violations.append(FieldViolation(f"{path}.max_examples", "must be >= 0"))
    level = evaluation.confidence_level
    if level and not 0 < level < 1:  # NaN fails too
        violations.append(FieldViolation(f"{path}.confidence_level", f"{level} is not in (0, 1)"))
    known = _safety_suite_names()
    violations += [
        FieldViolation(f"{path}.safety_suites[{i}]", f"unknown suite {name!r}; known: "
                       f"{', '.join(sorted(known))}")
        for i, name in enumerate(evaluation.safety_suites)
        if name not in known
    ]  # fmt: skip
    if violations:
        raise InvalidArgument(violations)
    cfg.eval_max_examples = evaluation.max_examples
    cfg.eval_confidence_level = level
    cfg.eval_safety_suites = list(dict.fromkeys(evaluation.safety_suites))


def _safety_suite_names() -> set[str]:
    from services.training.evaluation import load_safety_suite

    return {case.suite for case in load_safety_suite()}


def judge_spec(judge: pb.JudgeConfig, field_path: str) -> JudgeSpec:
    """The proto's judge config, checked now (all violations at once). ``field_path``
    is the judge's path in the request, for errors. Whether a judge policy exists is
    the caller's check (it needs the registry)."""
    violations: list[FieldViolation] = []

    def bad(name: str, message: str) -> None:
        violations.append(FieldViolation(f"{field_path}.{name}", message))

    model = judge.judge_model
    if model:
        match = POLICY_ID.match(model)
        if match is None or skill_id_problem(match.group(1)):
            bad("judge_model", f"{model!r} is neither empty (the server's default judge: the "
                "base model its backend serves, in process or at its OpenAI-compatible "
                "endpoint) nor a policy id of this tenant (skill@vN)")  # fmt: skip
    if len(judge.judge_version) > MAX_JUDGE_LABEL:
        bad("judge_version", f"must be at most {MAX_JUDGE_LABEL} characters")
    if judge.votes < 0:
        bad("votes", f"{judge.votes} must be >= 0 (0: one judge prompt)")
    elif judge.votes > len(DEFAULT_TEMPLATES):
        bad("votes", f"{judge.votes} is more than the judge's {len(DEFAULT_TEMPLATES)} "
            "prompts; consensus takes one vote per prompt")  # fmt: skip
    if len(judge.rubric) > MAX_RUBRIC_CRITERIA:
        bad("rubric", f"at most {MAX_RUBRIC_CRITERIA} criteria")
    names: set[str] = set()
    rubric: list[dict[str, object]] = []
    for i, criterion in enumerate(judge.rubric):
        name = criterion.name.strip()
        if not name:
            bad(f"rubric[{i}].name", "is required")
        elif name in names:
            bad(f"rubric[{i}].name", f"{name!r} is named twice")
        names.add(name)
        if len(name) > MAX_CRITERION_TEXT or len(criterion.description) > MAX_CRITERION_TEXT:
            bad(f"rubric[{i}]", f"name and description: at most {MAX_CRITERION_TEXT} characters")
        weight = criterion.weight
        if not math.isfinite(weight) or weight < 0:
            bad(f"rubric[{i}].weight", f"{weight} must be >= 0 (0: the default, 1)")
        rubric.append({"name": name, "description": criterion.description,
                       "weight": weight or 1.0})  # fmt: skip
    if violations:
        raise InvalidArgument(violations)
    return JudgeSpec(model, judge.judge_version, rubric, max(judge.votes, 1),
                     judge.swap_positions)  # fmt: skip


DEFAULT_INTERVAL_S = 24 * 3600.0
# Feedback is counted at least this often while a loop waits (a cheap query).
MAX_FEEDBACK_CHECK_S = 300.0


def _config(
    proto: pb.LearningLoopConfig,
    poll_interval_s: float | None = None,
    gpu_task_queue: str = GPU_TASK_QUEUE,
    skill_id: str = "",
) -> LoopConfig:
    cfg = LoopConfig(gpu_task_queue=gpu_task_queue)
    # Unset, the training config is the platform's recipe (RECIPE over the defaults).
    cfg.lora, cfg.dpo = training_settings(proto.training, "learning_loop.config.training")
    # The contract's schedule: at least `interval` (default 24 h) between iteration
    # starts, and `min_new_feedback` new feedback events (0: the schedule alone).
    interval_s = (
        proto.interval.ToTimedelta().total_seconds()
        if proto.HasField("interval")
        else DEFAULT_INTERVAL_S
    )
    violations = []
    if interval_s < 1:
        violations.append(FieldViolation("learning_loop.config.interval", "must be >= 1s"))
    if proto.min_new_feedback < 0:
        violations.append(FieldViolation("learning_loop.config.min_new_feedback", "must be >= 0"))
    fraction = proto.dataset.eval_fraction
    if fraction and not 0 < fraction <= 0.5:  # NaN fails too
        violations.append(FieldViolation(
            "learning_loop.config.dataset.eval_fraction", f"{fraction} is not in (0, 0.5]"
        ))  # fmt: skip
    window_s = proto.data_window.ToTimedelta().total_seconds()
    if proto.HasField("data_window") and window_s < 1:
        violations.append(FieldViolation("learning_loop.config.data_window", "must be >= 1s"))
    if proto.HasField("dataset"):
        # Checked now, by CreatePreferenceDataset's rules (the skill's reward weights
        # are applied where the dataset is built); only eval_fraction differs: a loop's
        # default is its own.
        try:
            build_config_options(skill_id, proto.dataset, "learning_loop.config.dataset")
        except InvalidArgument as err:
            violations += [v for v in err.violations if not v.field.endswith(".eval_fraction")]
        cfg.dataset = json_format.MessageToDict(proto.dataset)
    if violations:
        raise InvalidArgument(violations)
    cfg.data_window_s = window_s
    if fraction:
        cfg.eval_fraction = fraction
    cfg.min_interval_s = interval_s
    cfg.check_interval_s = min(interval_s, MAX_FEEDBACK_CHECK_S)
    cfg.min_new_feedback = proto.min_new_feedback
    if proto.max_iterations:
        cfg.max_iterations = proto.max_iterations
    if proto.min_pairs:
        cfg.min_pairs = proto.min_pairs
    if proto.evaluation.HasField("gate"):
        cfg.rubric = evaluation_gate(proto.evaluation.gate, "learning_loop.config.evaluation.gate")
    if proto.evaluation.HasField("judge"):
        cfg.judge = judge_spec(proto.evaluation.judge, "learning_loop.config.evaluation.judge")
    _loop_evaluation(proto.evaluation, cfg)
    cfg.rollout = plan_from_proto(
        proto.rollout if proto.HasField("rollout") else None, "learning_loop.config.rollout"
    )
    if poll_interval_s is not None:
        cfg.rollout.poll_interval_s = poll_interval_s
    return cfg


class LoopService:
    def __init__(
        self,
        client_factory: Callable[[], Awaitable[Client]],
        *,
        poll_interval_s: float | None = None,
        registry: RegistryCore | None = None,
        max_loops_per_tenant: int | None = None,
        gpu_task_queue: str = GPU_TASK_QUEUE,
    ) -> None:
        """``registry``: checks that the skill, and a judge policy the config names,
        exist. ``max_loops_per_tenant``: running (or paused) loops one tenant may have;
        None: no cap. ``gpu_task_queue``: where iterations train and evaluate
        (``RLAAS_GPU_TASK_QUEUE``)."""
        self._gpu_task_queue = gpu_task_queue
        self._client_factory = client_factory
        self._client: Client | None = None
        self._poll_interval_s = poll_interval_s
        self._registry = registry
        self._max_loops = max_loops_per_tenant
        # Starts of one tenant take turns in this process, and each remembers the loops
        # it started for a while: Temporal's visibility store (what the cap counts)
        # trails a just-started workflow by moments, so a burst of concurrent starts
        # would otherwise all see room. Across server processes the cap can still be
        # passed by the starts of that moment, never by a steady stream.
        self._start_turns: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._recent_starts: dict[str, float] = {}  # workflow id -> monotonic time
        # Loops this process stopped, for the same while: visibility still lists them
        # as running for moments after they ended.
        self._recent_stops: dict[str, float] = {}

    async def _temporal(self) -> Client:
        if self._client is None:
            self._client = await self._client_factory()
        return self._client

    async def start(
        self, caller: Principal, loop: pb.LearningLoop, request_id: str
    ) -> pb.LearningLoop:
        # A loop rolls its candidates out by itself: starting one changes what is served.
        caller.require(Scope.DEPLOY)
        idempotency.validate_request_id(request_id)
        # The id goes into the workflow id, the memo and every iteration's records.
        problem = skill_id_problem(loop.skill_id)
        if problem:
            raise InvalidArgument.field("learning_loop.skill_id", problem)
        digest = hashlib.sha256(loop.SerializeToString(deterministic=True)).hexdigest()
        loop_id = f"{loop.skill_id}-{hashlib.sha256(request_id.encode()).hexdigest()[:12]}"
        workflow_id = _workflow_id(caller.tenant_id, loop_id)
        state = LoopState(
            caller.tenant_id,
            loop.skill_id,
            loop_id,
            _config(loop.config, self._poll_interval_s, self._gpu_task_queue, loop.skill_id),
        )
        judge = state.config.judge
        if judge is not None and judge.judge_model and self._registry is not None:
            try:
                await self._registry.policy(caller.tenant_id, judge.judge_model)
            except NotFound as err:
                err.metadata["field"] = "learning_loop.config.evaluation.judge.judge_model"
                raise
        if self._registry is not None and (
            await self._registry.deployment(caller.tenant_id, loop.skill_id) is None
        ):
            # A loop of a missing skill would wake up, find no data, and run for ever.
            error = NotFound("skill", loop.skill_id)
            error.metadata["field"] = "learning_loop.skill_id"
            raise error
        client = await self._temporal()
        async with self._start_turns[caller.tenant_id]:
            await self._check_room(client, caller.tenant_id, loop.skill_id, workflow_id)
            try:
                await client.start_workflow(
                    LearningLoopWorkflow.run, state, id=workflow_id, task_queue=CPU_TASK_QUEUE,
                    memo={"request_sha256": digest, "skill_id": loop.skill_id,
                          "display_name": loop.display_name, "config": pack(loop.config),
                          "create_time": datetime.now(UTC).isoformat()},
                )  # fmt: skip
                self._recent_starts[workflow_id] = time.monotonic()
            except WorkflowAlreadyStartedError:
                described = await client.get_workflow_handle(workflow_id).describe()
                if (await described.memo()).get("request_sha256") != digest:
                    raise RequestIdReused("learning loop") from None
        return await self.get(caller, loop_id)

    async def _check_room(
        self, client: Client, tenant_id: str, skill_id: str, workflow_id: str
    ) -> None:
        """FAILED_PRECONDITION if the skill already has a running or paused loop (two
        loops would train and roll out over each other's candidates), RESOURCE_EXHAUSTED
        if the tenant has its cap of open loops; neither for a retry of an open loop."""
        now = time.monotonic()
        for recent in (self._recent_starts, self._recent_stops):
            for old in [w for w, t in recent.items() if now - t > _VISIBILITY_LAG_S]:
                del recent[old]
        prefix = _workflow_id(tenant_id, "")
        quoted = prefix.replace("\\", "\\\\").replace("'", "\\'")
        query = (
            "WorkflowType = 'LearningLoopWorkflow' AND ExecutionStatus = 'Running' "
            f"AND WorkflowId STARTS_WITH '{quoted}'"
        )
        open_loops = {execution.id async for execution in client.list_workflows(query)}
        open_loops.update(w for w in self._recent_starts if w.startswith(prefix))
        open_loops.difference_update(self._recent_stops)
        if workflow_id in open_loops:
            return
        # A loop id is "<skill>-<12 hex digits>" (start() makes it so).
        same_skill = sorted(
            loop_id
            for loop_id in (w.removeprefix(prefix) for w in open_loops)
            if loop_id.rsplit("-", 1)[0] == skill_id
        )
        if same_skill:
            raise FailedPrecondition(
                f"skill {skill_id!r} already has a running or paused learning loop "
                f"({same_skill[0]}); stop it first",
                reason="LEARNING_LOOP_EXISTS",
                metadata={"learning_loop_id": same_skill[0], "field": "learning_loop.skill_id"},
            )
        if self._max_loops is None or len(open_loops) < self._max_loops:
            return
        raise ResourceExhausted(
            f"the tenant already has {len(open_loops)} learning loops running or paused, "
            "its limit (RLAAS_MAX_LEARNING_LOOPS_PER_TENANT)",
            reason="LEARNING_LOOP_LIMIT",
            metadata={"limit": str(self._max_loops)},
        )

    async def get(self, caller: Principal, loop_id: str) -> pb.LearningLoop:
        caller.require_any(Scope.TRAIN, Scope.DEPLOY)
        if not loop_id:
            raise InvalidArgument.field("learning_loop_id", "is required")
        if not can_exist(loop_id):
            raise NotFound("learning loop", loop_id)
        client = await self._temporal()
        handle = client.get_workflow_handle(
            _workflow_id(caller.tenant_id, loop_id), result_type=LoopState
        )
        try:
            described = await handle.describe()
        except RPCError as err:
            raise NotFound("learning loop", loop_id) from err
        memo = await described.memo()
        status: LoopStatus | None = None
        error: status_pb2.Status | None = None
        if described.status == WorkflowExecutionStatus.RUNNING:
            status = await handle.query(LearningLoopWorkflow.status)
        elif described.status == WorkflowExecutionStatus.COMPLETED:
            # A finished loop answers no queries; its result carries the history.
            final = await handle.result()
            status = LoopStatus(
                "done", final.iteration, final.paused, list(final.history), final.stopped
            )
        elif described.status == WorkflowExecutionStatus.FAILED:
            try:
                await handle.result()
            except WorkflowFailureError as err:
                error = failure_status(err)
        else:
            error = ended_status(described.status)
        out = self._to_proto(caller.tenant_id, loop_id, memo, described.status, status,
                             described.id)  # fmt: skip
        if error is not None:
            out.error.CopyFrom(error)
        created = _parse_time(memo.get("create_time")) or described.start_time
        set_time(out, "create_time", created)
        set_time(
            out,
            "update_time",
            described.close_time
            or (_parse_time(status.update_time) if status else None)
            or described.start_time,
        )
        return out

    async def signal(
        self, caller: Principal, loop_id: str, signal: str, request_id: str
    ) -> pb.LearningLoop:
        """`pause` or `resume` a RUNNING or PAUSED loop."""
        caller.require(Scope.DEPLOY)  # pausing a loop pauses its running rollout
        idempotency.validate_request_id(request_id)
        loop = await self.get(caller, loop_id)  # NOT_FOUND: another tenant's or missing
        self._require_open(loop)
        client = await self._temporal()
        await client.get_workflow_handle(_workflow_id(caller.tenant_id, loop_id)).signal(signal)
        return await self.get(caller, loop_id)

    async def stop(
        self, caller: Principal, loop_id: str, reason: str, request_id: str
    ) -> pb.LearningLoop:
        """End a loop for good; a STOPPED loop is returned as it is."""
        caller.require(Scope.DEPLOY)  # stopping a loop rolls back its running rollout
        idempotency.validate_request_id(request_id)
        reason = require_reason(reason, optional=True)  # a rollback's audited reason
        loop = await self.get(caller, loop_id)
        if loop.state == pb.LearningLoop.STATE_STOPPED:
            return loop
        self._require_open(loop)
        client = await self._temporal()
        workflow_id = _workflow_id(caller.tenant_id, loop_id)
        handle = client.get_workflow_handle(workflow_id)
        await handle.signal(LearningLoopWorkflow.stop, reason)
        # A waiting loop ends at once: answer with its final state when it does. One
        # finishing a step answers STOPPED now and ends when the step does.
        # (A loop whose last step failed ends FAILED: `get` reports it.)
        with contextlib.suppress(TimeoutError, WorkflowFailureError):
            await asyncio.wait_for(handle.result(), _STOP_WAIT_S)
            self._recent_starts.pop(workflow_id, None)
            self._recent_stops[workflow_id] = time.monotonic()
        return await self.get(caller, loop_id)

    @staticmethod
    def _require_open(loop: pb.LearningLoop) -> None:
        if loop.state in (pb.LearningLoop.STATE_RUNNING, pb.LearningLoop.STATE_PAUSED):
            return
        state = pb.LearningLoop.State.Name(loop.state).removeprefix("STATE_")
        raise FailedPrecondition(
            f"learning loop {loop.learning_loop_id} is {state}", reason="LEARNING_LOOP_ENDED"
        )

    async def list(self, caller: Principal, skill_id: str = "") -> list[pb.LearningLoop]:
        caller.require(Scope.TRAIN)
        client = await self._temporal()
        prefix = _workflow_id(caller.tenant_id, "")
        loops: dict[str, pb.LearningLoop] = {}
        query = "WorkflowType = 'LearningLoopWorkflow'"
        async for execution in client.list_workflows(query):
            if not execution.id.startswith(prefix):
                continue  # another tenant's loop
            loop_id = execution.id.removeprefix(prefix)
            if loop_id in loops:
                continue  # older runs of a continued-as-new loop
            memo = await execution.memo()
            if skill_id and memo.get("skill_id") != skill_id:
                continue
            loops[loop_id] = await self.get(caller, loop_id)
        return list(loops.values())

    @staticmethod
    def _to_proto(
        tenant_id: str, loop_id: str, memo: Mapping[str, Any],
        execution: WorkflowExecutionStatus | None, status: LoopStatus | None, workflow_id: str,
    ) -> pb.LearningLoop:  # fmt: skip
        out = pb.LearningLoop(
            learning_loop_id=loop_id, skill_id=str(memo.get("skill_id", "")),
            display_name=str(memo.get("display_name", "")), tenant_id=tenant_id,
            workflow_id=workflow_id,
        )  # fmt: skip
        if status is not None and status.stopped:
            # Stopped at once for the caller; a step still finishing shows in `phase`.
            out.state = pb.LearningLoop.STATE_STOPPED
        elif execution == WorkflowExecutionStatus.COMPLETED:
            out.state = pb.LearningLoop.STATE_COMPLETED
        elif execution == WorkflowExecutionStatus.RUNNING:
            out.state = (
                pb.LearningLoop.STATE_PAUSED
                if status and status.paused
                else pb.LearningLoop.STATE_RUNNING
            )
        else:
            out.state = pb.LearningLoop.STATE_FAILED
        if status is not None:
            out.iteration = status.iteration
            phase = status.phase.split(": ")[-1].split(" ")[0]
            out.phase = _PHASES.get(phase, pb.LearningLoop.PHASE_WAITING)
            if status.phase.startswith(_WAITING_UNTIL):
                set_time(out, "next_iteration_time",
                         _parse_time(status.phase.removeprefix(_WAITING_UNTIL)))  # fmt: skip
            for h in reversed(status.history):  # newest first, as the contract says
                _iteration(out.recent_iterations.add(), h)
            if status.current is not None:
                _iteration(out.current_iteration, status.current)
        out.config.CopyFrom(effective_config(unpack(pb.LearningLoopConfig, memo.get("config"))))
        return out


_WAITING_UNTIL = "waiting until "


def _parse_time(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _iteration(out: pb.LearningLoopIteration, h: IterationSummary) -> None:
    out.iteration = h.iteration
    out.candidate_policy_id = h.candidate_policy_id
    out.dataset_id = h.dataset_id
    out.training_run_id = h.training_run_id
    out.evaluation_id = h.evaluation_id
    out.rollout_id = h.rollout_id
    out.outcome = _OUTCOMES.get(h.outcome, pb.LearningLoopIteration.OUTCOME_UNSPECIFIED)
    out.reason = h.reason
    out.win_rate, out.evaluation_passed = h.win_rate, h.evaluation_passed
    out.win_rate_ci_lower, out.win_rate_ci_upper = h.win_rate_ci_low, h.win_rate_ci_high
    set_time(out, "start_time", _parse_time(h.start_time))
    set_time(out, "end_time", _parse_time(h.end_time))
    if h.error_type or h.error_message:
        out.error.CopyFrom(failure_status(ApplicationError(h.error_message, type=h.error_type)))
