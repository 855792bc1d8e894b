"""The family job: the main job's learning loop, once per simulated user of the family
(``simulation.family``), with the platform's own defaults for dataset, training and the
evaluation gate.

For one persona, through the public gRPC API only, as a tenant would use it:

1. a fresh tenant creates the persona's skill (``support_reply`` or ``triage_note``) and a
   baseline policy on the base model (no adapter) whose prompt template carries the
   skill's system message, so the application sends only the user message and the
   platform's own template is what the model sees; the baseline is promoted;
2. the baseline answers ``held_out`` held-out cases (pinned, opted out of training); the
   persona reviews each answer (the review is only measured);
3. a learning loop starts with the platform's defaults for dataset, training and gate:
   only the iteration count, the feedback threshold, a short interval and a short rollout
   plan (as the main job's) are set. It waits for its threshold;
4. ``feedback_events`` training cases go through the application: Infer, the persona's
   review, SubmitFeedback (edited text, sent, time to send, sometimes a rating); for
   triage also a task result (RecordTaskResult: was the category right). The last one
   meets the threshold (the timings count from then). While the loop rolls out (and,
   with more than one iteration, while it waits for the next), the application keeps
   serving training cases reviewed by the persona;
5. each candidate that reaches its rollout answers the same held-out cases as it starts
   (before the canary can retire it); after the loop: each iteration's outcome, gate
   scorers and held-out comparison, and the last candidate (measured then if the gate
   rejected it) compared with the baseline: win-rate with its CI and sign test, edit
   similarity, send rate, rating, and per hidden rule the share of held-out answers
   meeting it, before and after.

Reused from the main job: ``simulation.job.BASE_MODEL``, ``app_channel`` (by the bench),
``simulation.report.compare_held_out`` (win-rate, CI, sign test). The main job's
application (``traffic.SupportApp``) puts its own system message in every request and
reviews with the main job's user, and ``report.score`` grades the main job's four rules,
so this module has its own small application (``FamilyApp``) and per-persona scoring.
"""

from __future__ import annotations

import asyncio
import json
import time
import traceback
import uuid
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import grpc
import numpy as np
from google.protobuf import duration_pb2, json_format
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from rlaas.inference.v1 import inference_pb2 as inf
from rlaas.inference.v1 import inference_pb2_grpc
from rlaas.registry.v1 import registry_pb2 as reg
from rlaas.registry.v1 import registry_pb2_grpc
from rlaas.telemetry.v1 import telemetry_pb2 as tel
from rlaas.telemetry.v1 import telemetry_pb2_grpc
from rlaas.training.v1 import training_pb2 as trn
from rlaas.training.v1 import training_pb2_grpc
from simulation import report as rep
from simulation.family import (
    SKILL_PROMPTS,
    Case,
    Persona,
    Skill,
    TriageMessage,
    held_out_cases,
    training_cases,
    triage_correct,
)
from simulation.job import BASE_MODEL, CANARY_MARGIN
from simulation.report import LiveRequest
from simulation.simulated_user import Review
from simulation.traffic import bearer, submit_review

SKILL_IDS: dict[Skill, str] = {"support": "support_reply", "triage": "triage_note"}
"""The platform skill each family skill is served as."""


@dataclass(frozen=True)
class FamilyJobConfig:
    held_out: int = 24
    """Held-out cases answered by the baseline and by the candidate."""
    feedback_events: int = 80
    """Training cases answered and reviewed before the loop starts; also the loop's
    ``min_new_feedback``."""
    max_tokens: int = 96
    iterations: int = 1
    """The loop's ``max_iterations``."""
    concurrency: int = 8
    seed: int = 11
    """Seed of the training stream (the held-out stream has its own, ``held_out_seed``)."""
    held_out_seed: int = 2027
    shadow_s: int = 5
    canary_percent: float = 50.0
    guard_min_samples: int = 8
    interval_s: int = 2
    max_rollout_requests: int = 480
    """Give up (stop the loop) after this many live requests while the loop runs."""
    loop_timeout_s: float = 3 * 3600
    """Give up (stop the loop) after this long."""
    poll_s: float = 1.0
    """How often the loop is polled while no traffic needs driving."""
    hyperparameters: dict[str, float] = field(default_factory=dict)
    """A sweep's overrides of the platform's training defaults
    (``TrainingHyperparameters`` field -> value); empty: the defaults, as any tenant."""
    lora_rank: int = 0
    """A sweep's LoRA rank (0: the default)."""
    lora_modules: tuple[str, ...] = ()
    """A sweep's LoRA target modules (empty: the default)."""

    def __post_init__(self) -> None:
        for name in ("held_out", "feedback_events", "max_tokens", "iterations", "concurrency"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")


def training_pool(cfg: FamilyJobConfig) -> int:
    """Training cases a run may draw: the feedback, then the loop's live traffic up to its
    cap (the last batch may pass it by one batch)."""
    return cfg.feedback_events + cfg.max_rollout_requests + 2 * cfg.concurrency


def loop_config(cfg: FamilyJobConfig) -> trn.LearningLoopConfig:
    """Only what makes a run decide in minutes; dataset, training and the evaluation gate
    are the platform's defaults (GetLearningLoop reports them)."""
    training = None
    if cfg.hyperparameters or cfg.lora_rank or cfg.lora_modules:
        training = trn.TrainingConfig(
            method=trn.TRAINING_METHOD_DPO,
            hyperparameters=trn.TrainingHyperparameters(**cfg.hyperparameters),
            lora=trn.LoraConfig(rank=cfg.lora_rank, target_modules=list(cfg.lora_modules)),
        )
    return trn.LearningLoopConfig(
        min_new_feedback=cfg.feedback_events,
        max_iterations=cfg.iterations,
        interval=duration_pb2.Duration(seconds=cfg.interval_s),
        training=training,
        rollout=trn.RolloutPlan(
            shadow_duration=duration_pb2.Duration(seconds=cfg.shadow_s),
            canary_steps=[trn.CanaryStep(percent=cfg.canary_percent)],
            auto_advance=True,
            # A non-inferiority canary, as the main job's (simulation.job.CANARY_MARGIN).
            guard=trn.RegressionGuard(
                min_samples=cfg.guard_min_samples, max_reward_drop=CANARY_MARGIN
            ),
        ),
    )


# ---- results ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """One draft and the persona's review of it."""

    case: Case
    policy_id: str
    text: str
    review: Review


@dataclass(frozen=True)
class ArmScore:
    """One policy on the held-out cases, as the persona judges it."""

    policy_id: str
    examples: int
    edit_similarity: float
    send_rate: float
    mean_rating: float
    """Every answer graded the way the persona rates (the live persona rates only some)."""
    rules_met: dict[str, float]
    """Share of answers meeting each hidden rule, in the persona's order."""
    task_accuracy: float | None = None
    """Triage only: share of notes naming the right category (``triage_correct``)."""


@dataclass(frozen=True)
class Comparison:
    """Candidate vs baseline on the same held-out cases (``report.compare_held_out``)."""

    examples: int
    wins: int
    losses: int
    ties: int
    win_rate: float
    win_rate_ci: tuple[float, float]
    confidence_level: float
    sign_test_p_value: float
    guarded: dict[str, tuple[float, float, float]] = field(default_factory=dict)
    """Send rate and the persona's rating, candidate minus baseline: (mean, CI low,
    CI high); worse beyond noise when the whole interval is below zero."""


@dataclass(frozen=True)
class IterationSummary:
    iteration: int
    outcome: str
    reason: str
    candidate_policy_id: str
    evaluation_passed: bool
    gate_win_rate: float
    gate_win_rate_ci: tuple[float, float]
    rollout_id: str
    error: str = ""
    evaluation_id: str = ""
    gate_scorers: dict[str, tuple[float, float, float]] = field(default_factory=dict)
    """Every scorer the gate computed: (win-rate, CI low, CI high), the deciding one
    included; from GetEvaluation."""
    gate_failure_reasons: tuple[str, ...] = ()
    gate_metrics: dict[str, tuple[float, float]] = field(default_factory=dict)
    """The gate's metrics on the generated answers: (candidate, baseline)."""
    gate_safety: dict[str, dict[str, list[tuple[str, str]]]] = field(default_factory=dict)
    """Per safety suite, the cases each policy failed and why:
    ``{suite: {"candidate": [(case, reason)], "baseline": [...]}}``."""
    gate_seconds: float | None = None
    """How long the gate took (the evaluation's start to end)."""
    training_run_id: str = ""
    training: dict[str, Any] = field(default_factory=dict)
    """The iteration's training run as GetTrainingRun reports it: steps done and planned,
    whether early stopping ended it, the last loss and reward accuracy, its seconds, and
    its reference model (which names an SFT warm start)."""
    held_out: Comparison | None = None
    """The candidate against the baseline on the held-out cases, measured as its rollout
    started (so a candidate the canary then rolled back is measured too): what the gate's
    verdict is checked against."""


@dataclass
class PersonaResult:
    persona: str
    split: str
    skill: str
    skill_id: str
    config: dict[str, Any] = field(default_factory=dict)
    tenant_id: str = ""
    baseline_policy_id: str = ""
    candidate_policy_id: str = ""
    outcome: str = ""
    """The last iteration's outcome (``promoted``, ``rejected``, ``rolled_back``, ...);
    ``no_iteration`` when the loop ended without one, empty when it never started."""
    gate_passed: bool | None = None
    gate_win_rate: float | None = None
    gate_win_rate_ci: tuple[float, float] | None = None
    iterations: list[IterationSummary] = field(default_factory=list)
    learning_loop: dict[str, Any] = field(default_factory=dict)
    """Id, state, error and ``config``: the loop's config as GetLearningLoop reports it,
    the platform's defaults filled in."""
    rollout: dict[str, Any] = field(default_factory=dict)
    feedback_events: int = 0
    """Feedback events submitted before the loop started."""
    task_results: int = 0
    live_requests: int = 0
    """Every live (not held-out) request, feedback events and loop-time traffic."""
    live_by_policy: dict[str, int] = field(default_factory=dict)
    """Loop-time live requests by the policy that served them."""
    baseline: ArmScore | None = None
    candidate: ArmScore | None = None
    comparison: Comparison | None = None
    candidate_state: str = ""
    """The candidate policy's state after the loop (``active``, ``retired``, ...)."""
    candidate_skipped: str = ""
    """Why the candidate was not measured on the held-out cases, if it was not."""
    undecided: str = ""
    """Set when the rollout decided nothing within ``max_rollout_requests``: the
    candidate was measured while it still served, then the loop was stopped."""
    timings_s: dict[str, float] = field(default_factory=dict)
    error: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)


def rule_rates(rules: Sequence[str], reviews: Sequence[Review]) -> dict[str, float]:
    """Per rule, the share of reviews whose draft met it (0 for an empty set)."""
    n = len(reviews)
    return {rule: (sum(rule in r.rules_met for r in reviews) / n if n else 0.0) for rule in rules}


def arm_score(persona: Persona[Any], policy_id: str, answers: Sequence[Answer]) -> ArmScore:
    if not answers:
        raise ValueError("need at least one answer to score")
    reviews = [a.review for a in answers]
    correct = [triage_correct(a.case, a.text) for a in answers if isinstance(a.case, TriageMessage)]
    accuracy = float(np.mean(correct)) if persona.skill == "triage" and correct else None
    return ArmScore(
        policy_id=policy_id,
        examples=len(answers),
        edit_similarity=float(np.mean([r.similarity for r in reviews])),
        send_rate=float(np.mean([r.sent for r in reviews])),
        mean_rating=float(np.mean([persona.rating_of(r) for r in reviews])),
        rules_met=rule_rates(persona.rules, reviews),
        task_accuracy=accuracy,
    )


def compare(
    baseline: Sequence[Answer], candidate: Sequence[Answer], *, confidence_level: float = 0.95,
    rating: Callable[[Review], int] | None = None,
) -> Comparison:  # fmt: skip
    """Paired by case (the same held-out cases in the same order): the candidate wins a
    case when the persona kept more of its answer."""
    if [a.case.case_id for a in baseline] != [a.case.case_id for a in candidate]:
        raise ValueError("baseline and candidate must answer the same cases in the same order")
    h = rep.compare_held_out(
        baseline[0].policy_id if baseline else "",
        [a.review for a in baseline],
        candidate[0].policy_id if candidate else "",
        [a.review for a in candidate],
        confidence_level=confidence_level,
    )
    return Comparison(
        examples=h.examples,
        wins=h.wins,
        losses=h.losses,
        ties=h.ties,
        win_rate=h.win_rate,
        win_rate_ci=h.win_rate_ci,
        confidence_level=h.confidence_level,
        sign_test_p_value=h.sign_test_p_value,
        guarded={
            "send_rate": rep.paired_difference(
                [float(a.review.sent) for a in candidate],
                [float(a.review.sent) for a in baseline], confidence_level=confidence_level,
            ),
            **({"rating": rep.paired_difference(
                [float(rating(a.review)) for a in candidate],
                [float(rating(a.review)) for a in baseline], confidence_level=confidence_level,
            )} if rating is not None else {}),
        },
    )  # fmt: skip


def _enum_name(enum: Any, value: int, prefix: str) -> str:
    return str(enum.Name(value)).removeprefix(prefix).lower()


def iteration_summary(it: trn.LearningLoopIteration) -> IterationSummary:
    return IterationSummary(
        iteration=it.iteration,
        outcome=_enum_name(trn.LearningLoopIteration.Outcome, it.outcome, "OUTCOME_"),
        reason=it.reason,
        candidate_policy_id=it.candidate_policy_id,
        evaluation_passed=it.evaluation_passed,
        gate_win_rate=it.win_rate,
        gate_win_rate_ci=(it.win_rate_ci_lower, it.win_rate_ci_upper),
        rollout_id=it.rollout_id,
        error=it.error.message if it.HasField("error") else "",
        evaluation_id=it.evaluation_id,
        training_run_id=it.training_run_id,
    )


def training_summary(run: trn.TrainingRun) -> dict[str, Any]:
    """What a sweep reads of a training run: how far it went and how long it took."""
    progress = run.progress
    seconds = None
    if run.HasField("start_time") and run.HasField("end_time"):
        seconds = _seconds(run.start_time, run.end_time)
    return {
        "steps": progress.step,
        "total_steps": progress.total_steps,
        "stopped_early": progress.stopped_early,
        "final_loss": progress.loss,
        "reward_accuracy": progress.reward_accuracy,
        "seconds": seconds,
        "reference_model": run.lineage.reference_model,
    }


def with_gate(summary: IterationSummary, evaluation: trn.Evaluation) -> IterationSummary:
    """The iteration with its gate evaluation's scorers and reasons."""
    result = evaluation.result
    return replace(
        summary,
        gate_scorers={
            w.scorer: (w.win_rate, w.win_rate_ci_lower, w.win_rate_ci_upper)
            for w in result.win_rates
        },
        gate_failure_reasons=tuple(result.failure_reasons),
        gate_metrics={m.name: (m.candidate_value, m.baseline_value) for m in result.metrics},
        gate_safety={
            r.suite: {
                "candidate": [(f.case_id, f.reason) for f in r.failures],
                "baseline": [(f.case_id, f.reason) for f in r.baseline_failures],
            }
            for r in result.safety_results
        },
        gate_seconds=_seconds(evaluation.start_time, evaluation.end_time)
        if evaluation.HasField("start_time") and evaluation.HasField("end_time")
        else None,
    )


def _seconds(start: Any, end: Any) -> float:
    return round((end.ToDatetime() - start.ToDatetime()).total_seconds(), 1)


def apply_loop(result: PersonaResult, loop: trn.LearningLoop) -> None:
    """The finished loop's iterations (oldest first), the last one's outcome and gate,
    and the loop's effective config."""
    result.learning_loop = {
        "learning_loop_id": loop.learning_loop_id,
        "state": _enum_name(trn.LearningLoop.State, loop.state, "STATE_"),
        "error": loop.error.message if loop.HasField("error") else "",
        # Zeros included: a default of 0 (e.g. the gate's safety cap) is a setting too.
        "config": json_format.MessageToDict(
            loop.config,
            preserving_proto_field_name=True,
            always_print_fields_with_no_presence=True,
        ),
    }
    result.iterations = [iteration_summary(it) for it in reversed(loop.recent_iterations)]
    if not result.iterations:
        result.outcome = "no_iteration"
        return
    last = result.iterations[-1]
    result.outcome = last.outcome
    result.candidate_policy_id = last.candidate_policy_id
    if last.candidate_policy_id:
        result.gate_passed = last.evaluation_passed
        result.gate_win_rate = last.gate_win_rate
        result.gate_win_rate_ci = last.gate_win_rate_ci


def rollout_dict(rollout: trn.Rollout | None) -> dict[str, Any]:
    if rollout is None:
        return {}
    return {
        "rollout_id": rollout.rollout_id,
        "candidate": rollout.candidate_policy_id,
        "stage": _enum_name(trn.Rollout.Stage, rollout.stage, "STAGE_"),
        "automatic_rollback": rollout.automatic_rollback,
        "reason": rollout.rollback_reason,
    }


def count_by_policy(live: Sequence[LiveRequest], phases: Sequence[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in live:
        if r.phase in phases:
            out[r.policy_id] = out.get(r.policy_id, 0) + 1
    return dict(sorted(out.items()))


# ---- the application ------------------------------------------------------------------


def _rid() -> str:
    return str(uuid.uuid4())


def error_reason(err: grpc.aio.AioRpcError) -> str:
    """The ErrorInfo reason of a failed call ('' when it carries none)."""
    status = rpc_status.from_call(err)
    for detail in status.details if status is not None else []:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return str(info.reason)
    return ""


async def _all(calls: Iterable[Awaitable[Answer]]) -> list[Answer]:
    """Every call's answer; when one fails, its error is raised once all have ended, so no
    request is left running behind a failure."""
    done = await asyncio.gather(*calls, return_exceptions=True)
    for outcome in done:
        if isinstance(outcome, BaseException):
            raise outcome
    return [a for a in done if isinstance(a, Answer)]


class FamilyApp:
    """The persona's application: sends only the user message (the policy's template adds
    the skill's system message), lets the persona review each draft and sends the review
    back as feedback, with a task result for triage notes."""

    def __init__(
        self,
        channel: grpc.aio.Channel,
        api_key: str,
        skill_id: str,
        persona: Persona[Any],
        *,
        concurrency: int = 8,
        timeout_s: float = 600.0,
    ) -> None:
        self._inference = inference_pb2_grpc.InferenceServiceStub(channel)
        self._telemetry = telemetry_pb2_grpc.TelemetryServiceStub(channel)
        self._md = bearer(api_key)
        self._skill = skill_id
        self._persona = persona
        self._gate = asyncio.Semaphore(concurrency)
        self._timeout = timeout_s
        self.live: list[LiveRequest] = []
        self.feedback = 0
        self.task_results = 0

    async def _draft(
        self, case: Case, *, policy_id: str = "", held_out: bool = False
    ) -> inf.InferResponse:
        return await self._inference.Infer(
            inf.InferRequest(
                skill=self._skill,
                messages=[tel.ChatMessage(role=tel.ChatMessage.ROLE_USER, content=case.text)],
                # One customer (or sender) per case: the sticky key of a canary.
                user_id=f"{self._persona.skill}-{case.reference}",
                thread_id=case.case_id,
                policy_id=policy_id,
                training_opt_out=held_out,
                labels={"workload": "held_out" if held_out else "live"},
                request_id=_rid(),
            ),
            metadata=self._md,
            timeout=self._timeout,
        )

    async def _feedback(self, answer: inf.InferResponse, review: Review) -> None:
        await submit_review(self._telemetry, self._md, answer, review)
        self.feedback += 1

    async def _task_result(self, answer: inf.InferResponse, case: TriageMessage) -> None:
        await self._telemetry.RecordTaskResult(
            tel.RecordTaskResultRequest(
                interaction_id=answer.interaction_id,
                request_id=f"task-{answer.interaction_id}",
                task_result=tel.TaskResult(correct=triage_correct(case, answer.text)),
            ),
            metadata=self._md,
            timeout=30,
        )
        self.task_results += 1

    async def handle(self, case: Case, phase: str) -> Answer:
        """One live case: draft, review, feedback (and the task result of a note)."""
        async with self._gate:
            answer = await self._draft(case)
            review = self._persona.review(case, answer.text)
            await self._feedback(answer, review)
            if isinstance(case, TriageMessage):
                await self._task_result(answer, case)
        self.live.append(
            LiveRequest(
                len(self.live), phase, answer.policy_id, review.similarity, review.sent,
                review.rating,
            )
        )  # fmt: skip
        return Answer(case, answer.policy_id, answer.text, review)

    async def run(self, cases: Sequence[Case], phase: str) -> list[Answer]:
        return await _all(self.handle(c, phase) for c in cases)

    async def measure(self, cases: Sequence[Case], policy_id: str) -> list[Answer]:
        """Held-out drafts from one pinned policy, opted out of training, no feedback."""

        async def one(case: Case) -> Answer:
            async with self._gate:
                answer = await self._draft(case, policy_id=policy_id, held_out=True)
            return Answer(
                case, answer.policy_id, answer.text, self._persona.review(case, answer.text)
            )

        return await _all(one(c) for c in cases)


# ---- one persona ----------------------------------------------------------------------------


class _PersonaRun:
    def __init__(
        self,
        channel: grpc.aio.Channel,
        persona: Persona[Any],
        cfg: FamilyJobConfig,
        echo: Callable[[str], None],
    ) -> None:
        self.channel = channel
        self.persona = persona
        self.cfg = cfg
        self.echo = echo
        self.skill_id = SKILL_IDS[persona.skill]
        self.registry = registry_pb2_grpc.RegistryServiceStub(channel)
        self.training = training_pb2_grpc.TrainingServiceStub(channel)
        self.result = PersonaResult(
            persona=persona.name,
            split=persona.split,
            skill=persona.skill,
            skill_id=self.skill_id,
            config=asdict(cfg),
        )
        self.md: tuple[tuple[str, str], ...] = ()
        self.app: FamilyApp | None = None
        self.loop_id = ""
        self.measured: dict[str, list[Answer]] = {}
        """Held-out answers of each candidate measured as its rollout started, by policy."""
        self._stream: Iterator[Case] = iter(
            training_cases(persona.skill, training_pool(cfg), seed=cfg.seed)
        )

    def say(self, text: str) -> None:
        self.echo(f"[{self.persona.name}] {text}")

    def _cases(self, n: int) -> list[Case]:
        out = [c for _, c in zip(range(n), self._stream, strict=False)]
        if len(out) < n:
            raise RuntimeError("the training stream ran out of cases")
        return out

    async def setup(self, operator_key: str) -> str:
        tenant = await self.registry.CreateTenant(
            reg.CreateTenantRequest(
                tenant=reg.Tenant(display_name=f"family: {self.persona.name}"), request_id=_rid()
            ),
            metadata=bearer(operator_key),
        )
        self.result.tenant_id = tenant.tenant.tenant_id
        self.md = bearer(tenant.admin_api_key_secret)
        self.app = FamilyApp(
            self.channel,
            tenant.admin_api_key_secret,
            self.skill_id,
            self.persona,
            concurrency=self.cfg.concurrency,
        )
        await self.registry.CreateSkill(
            reg.CreateSkillRequest(
                skill=reg.Skill(
                    skill_id=self.skill_id, description=SKILL_PROMPTS[self.persona.skill]
                ),
                request_id=_rid(),
            ),
            metadata=self.md,
        )
        v1 = await self.registry.CreatePolicy(
            reg.CreatePolicyRequest(
                policy=reg.Policy(
                    skill_id=self.skill_id,
                    base_model=BASE_MODEL,
                    description="the base model as shipped, no adapter",
                    prompt_template=reg.PromptTemplate(
                        template_version="family-v1",
                        system_prompt=SKILL_PROMPTS[self.persona.skill],
                    ),
                    generation_defaults=reg.GenerationConfig(max_tokens=self.cfg.max_tokens),
                ),
                request_id=_rid(),
            ),
            metadata=self.md,
        )
        policy_id = v1.policy.policy_id
        await self.registry.PromotePolicy(
            reg.PromotePolicyRequest(
                skill_id=self.skill_id,
                policy_id=policy_id,
                reason="initial baseline",
                request_id=_rid(),
            ),
            metadata=self.md,
        )
        self.result.baseline_policy_id = policy_id
        self.say(f"tenant {self.result.tenant_id}, baseline {policy_id}")
        return policy_id

    async def measure(self, policy_id: str, label: str) -> list[Answer]:
        assert self.app is not None
        t0 = time.perf_counter()
        cases = held_out_cases(self.persona.skill, self.cfg.held_out, seed=self.cfg.held_out_seed)
        answers = await self.app.measure(cases, policy_id)
        self.result.timings_s[f"{label}_held_out_s"] = round(time.perf_counter() - t0, 1)
        return answers

    async def collect(self) -> None:
        assert self.app is not None
        t0 = time.perf_counter()
        await self.app.run(self._cases(self.cfg.feedback_events), "feedback")
        self.result.feedback_events = self.app.feedback
        self.result.timings_s["feedback_s"] = round(time.perf_counter() - t0, 1)
        self.say(f"{self.app.feedback} feedback events in {self.result.timings_s['feedback_s']} s")

    async def _get_loop(self) -> trn.LearningLoop:
        return (
            await self.training.GetLearningLoop(
                trn.GetLearningLoopRequest(learning_loop_id=self.loop_id), metadata=self.md
            )
        ).learning_loop

    async def start_loop(self) -> None:
        """Starts the loop before the feedback comes in, as a tenant turns learning on
        and then serves its users: the loop waits for its threshold (and has its
        baseline answer the gate's packaged prompts meanwhile)."""
        started = await self.training.StartLearningLoop(
            trn.StartLearningLoopRequest(
                learning_loop=trn.LearningLoop(
                    skill_id=self.skill_id,
                    display_name=f"family: {self.persona.name}",
                    config=loop_config(self.cfg),
                ),
                request_id=_rid(),
            ),
            metadata=self.md,
        )
        self.loop_id = started.learning_loop.learning_loop_id
        self.say(f"learning loop {self.loop_id} started")

    async def run_loop(self) -> trn.LearningLoop:
        """From the moment the feedback threshold is met (``collect`` has just ended):
        keeps the application serving while the loop rolls out or waits for the next
        iteration's feedback, until it ends."""
        assert self.app is not None
        t0 = time.perf_counter()
        live_before = len(self.app.live)
        marks: dict[str, float] = {}
        last = ""
        while True:
            loop = await self._get_loop()
            running = loop.state == trn.LearningLoop.STATE_RUNNING
            phase = _enum_name(trn.LearningLoop.Phase, loop.phase, "PHASE_") if running else "ended"
            now = round(time.perf_counter() - t0, 1)
            if phase != last:
                marks.setdefault(phase, now)
                self.say(f"loop phase {phase} at {now} s (iteration {loop.iteration})")
                last = phase
            if not running:
                break
            if time.perf_counter() - t0 > self.cfg.loop_timeout_s:
                raise TimeoutError(f"the loop did not end within {self.cfg.loop_timeout_s} s")
            rolling = loop.phase == trn.LearningLoop.PHASE_ROLLING_OUT
            waiting_again = loop.phase == trn.LearningLoop.PHASE_WAITING and bool(
                loop.recent_iterations
            )
            candidate_id = loop.current_iteration.candidate_policy_id
            if rolling and candidate_id and candidate_id not in self.measured:
                # Measured before the rollout decides: a rolled-back candidate is
                # retired, and the gateway serves a retired policy to nobody.
                self.measured[candidate_id] = await self.measure(candidate_id, "candidate")
            if rolling or waiting_again:
                await self.app.run(self._cases(self.cfg.concurrency), phase)
                if len(self.app.live) - live_before > self.cfg.max_rollout_requests:
                    if not (rolling and loop.current_iteration.candidate_policy_id):
                        raise RuntimeError(
                            f"the loop decided nothing within {self.cfg.max_rollout_requests} "
                            "live requests"
                        )
                    # The canary ran out of the bench's traffic, not the loop out of
                    # patience: the caller measures the candidate while it still serves.
                    self.result.undecided = (
                        f"the rollout decided nothing within {self.cfg.max_rollout_requests} "
                        f"live requests (at {phase}, iteration {loop.iteration})"
                    )
                    self.say(self.result.undecided)
                    break
            else:
                await asyncio.sleep(self.cfg.poll_s)
        timings = self.result.timings_s
        timings.update({f"loop_reached_{k}_s": v for k, v in marks.items()})
        if "rolling_out" in marks:
            # Marks count from the threshold: the first rollout starts in shadow.
            timings["threshold_to_shadow_s"] = marks["rolling_out"]
        timings["loop_total_s"] = round(time.perf_counter() - t0, 1)
        self.result.live_by_policy = count_by_policy(self.app.live, ("rolling_out", "waiting"))
        return loop

    async def wait_ended(self, timeout_s: float = 120.0) -> trn.LearningLoop:
        """The loop once a stop has taken effect and its iteration is recorded."""
        deadline = time.perf_counter() + timeout_s
        while True:
            loop = await self._get_loop()
            ended = loop.state != trn.LearningLoop.STATE_RUNNING
            if (ended and loop.recent_iterations) or time.perf_counter() > deadline:
                return loop
            await asyncio.sleep(self.cfg.poll_s)

    async def stop_loop(self, reason: str) -> None:
        if not self.loop_id:
            return
        try:
            loop = await self._get_loop()
            if loop.state in (trn.LearningLoop.STATE_RUNNING, trn.LearningLoop.STATE_PAUSED):
                await self.training.StopLearningLoop(
                    trn.StopLearningLoopRequest(
                        learning_loop_id=self.loop_id, reason=reason, request_id=_rid()
                    ),
                    metadata=self.md,
                )
                self.say(f"stopped loop {self.loop_id}: {reason}")
        except grpc.aio.AioRpcError as err:
            self.say(f"could not stop loop {self.loop_id}: {err.code().name} {err.details()}")

    async def gate_details(self, iterations: list[IterationSummary]) -> list[IterationSummary]:
        """Each iteration with its training run (GetTrainingRun) and its gate
        evaluation's scorers (GetEvaluation)."""
        detailed = []
        for it in iterations:
            if it.training_run_id:
                run = (
                    await self.training.GetTrainingRun(
                        trn.GetTrainingRunRequest(training_run_id=it.training_run_id),
                        metadata=self.md,
                    )
                ).training_run
                it = replace(it, training=training_summary(run))
            if it.evaluation_id:
                evaluation = (
                    await self.training.GetEvaluation(
                        trn.GetEvaluationRequest(evaluation_id=it.evaluation_id),
                        metadata=self.md,
                    )
                ).evaluation
                it = with_gate(it, evaluation)
            detailed.append(it)
        return detailed

    async def policy_state(self, policy_id: str) -> str:
        policy = (
            await self.registry.GetPolicy(
                reg.GetPolicyRequest(policy_id=policy_id), metadata=self.md
            )
        ).policy
        return _enum_name(reg.Policy.State, policy.state, "STATE_")

    async def rollout(self, rollout_id: str) -> trn.Rollout | None:
        if not rollout_id:
            return None
        return (
            await self.training.GetRollout(
                trn.GetRolloutRequest(rollout_id=rollout_id), metadata=self.md
            )
        ).rollout


async def run_persona(
    channel: grpc.aio.Channel,
    operator_key: str,
    persona: Persona[Any],
    cfg: FamilyJobConfig | None = None,
    echo: Callable[[str], None] = print,
) -> PersonaResult:
    """The whole job for one persona, as a fresh tenant (``operator_key`` creates it).

    Never raises for a failure of the stack or of the loop: the result then carries what
    was measured so far and ``error`` (a bench goes on with the next persona). A loop left
    running by a failure is stopped."""
    cfg = cfg or FamilyJobConfig()
    run = _PersonaRun(channel, persona, cfg, echo)
    result = run.result
    t0 = time.perf_counter()
    try:
        baseline_id = await run.setup(operator_key)
        baseline = await run.measure(baseline_id, "baseline")
        result.baseline = arm_score(persona, baseline_id, baseline)
        await run.start_loop()
        await run.collect()
        loop = await run.run_loop()
        if result.undecided:
            # Still in its rollout (and measured as it started): stopping retires it.
            candidate_id = loop.current_iteration.candidate_policy_id
            rollout = await run.rollout(loop.current_iteration.rollout_id)
            await run.stop_loop(result.undecided)
            loop = await run.wait_ended()
            apply_loop(result, loop)
            result.candidate_policy_id = candidate_id
            result.rollout = rollout_dict(rollout)
        else:
            apply_loop(result, loop)
        result.iterations = [
            replace(it, held_out=compare(baseline, answers, rating=persona.rating_of))
            if (answers := run.measured.get(it.candidate_policy_id))
            else it
            for it in await run.gate_details(result.iterations)
        ]
        last = result.iterations[-1] if result.iterations else None
        if not result.undecided:
            result.rollout = rollout_dict(await run.rollout(last.rollout_id if last else ""))
        run.say(f"loop ended: {result.outcome} ({last.reason if last else 'no iteration'})")
        if result.candidate_policy_id:
            result.candidate_state = await run.policy_state(result.candidate_policy_id)
            candidate = run.measured.get(result.candidate_policy_id)
            try:
                if candidate is None:  # a candidate the gate rejected never rolled out
                    candidate = await run.measure(result.candidate_policy_id, "candidate")
            except grpc.aio.AioRpcError as err:
                if err.code() != grpc.StatusCode.FAILED_PRECONDITION:
                    raise
                reason = error_reason(err) or "FAILED_PRECONDITION"
                result.candidate_skipped = f"{reason}: {err.details()}"
                run.say(f"candidate not measured: {result.candidate_skipped}")
            else:
                result.candidate = arm_score(persona, result.candidate_policy_id, candidate)
                result.comparison = compare(baseline, candidate, rating=persona.rating_of)
        else:
            result.candidate_skipped = "no candidate"
    except Exception as err:  # a failed persona must not lose the others' results
        result.error = f"{type(err).__name__}: {err}"
        run.say(f"FAILED: {result.error}\n{traceback.format_exc()}")
        await run.stop_loop(f"family job failed: {type(err).__name__}")
    finally:
        if run.app is not None:
            result.task_results = run.app.task_results
            result.live_requests = len(run.app.live)
        result.timings_s["total_s"] = round(time.perf_counter() - t0, 1)
    return result
