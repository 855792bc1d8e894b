"""evaluate_candidate: candidate vs baseline on the skill's golden set (or a preference
dataset's eval split, read by URI) and the safety suite, on the model-bearing (GPU-queue)
worker, scored by similarity to the references and, when asked, by the pairwise LLM
judge; the full report goes to the object store, the verdict and its statistics back to
the workflow."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

from temporalio import activity

from rlaas.registry.v1 import registry_pb2 as reg
from services.activity_errors import permanent
from services.errors import DomainError, FailedPrecondition, InvalidArgument, NotFound
from services.inference.backends.base import AdapterRef, Backend, Scorer
from services.inference.prompting import build_messages
from services.objects.store import ObjectStore, key_for_uri
from services.registry.service import RegistryCore
from services.training.evaluation import (
    EvaluationReport,
    Generate,
    GoldenExample,
    HeldOutPair,
    PromotionRubric,
    SafetyCase,
    Serve,
    backend_generator,
    evaluate_candidate,
    golden_set_for,
    load_golden_set,
    load_safety_suite,
    outcomes_of_margins,
    preference_margins,
    with_held_out_estimate,
)
from services.training.gate_answers import GateAnswerCache, PolicyIdentity, answer_key
from services.training.judge import JudgeCache, PairwiseJudge, RubricCriterion, templates_for_votes
from services.training.preferences import content_sha256, read_parquet, render_prompt
from workflows.learning_types import (
    EvaluateInput,
    EvaluateOutput,
    JudgeSpec,
    WarmGateInput,
    WarmGateOutput,
)

_WARM_UP_CONCURRENCY = 8
"""Requests a warm-up keeps in flight: a few, so that each one's deadline (counted from
when it is queued) covers one small batch beside serving."""


def _adapter(policy: reg.Policy) -> AdapterRef | None:
    if not policy.adapter.artifact_uri:
        return None
    return AdapterRef(policy.policy_id, policy.adapter.artifact_uri, policy.adapter.sha256)


def _served_by(policy: reg.Policy) -> Serve:
    """The policy's prompt template around a prompt, exactly as the gateway serves it
    (no retrieval here: golden and safety prompts carry their own context)."""

    def serve(messages: list[dict[str, str]]) -> list[dict[str, str]]:
        return build_messages(policy, messages, context=[], user_id="", skill=policy.skill_id)

    return serve


def _packaged_prompts(
    policy: reg.Policy, golden: list[GoldenExample], safety: list[SafetyCase]
) -> list[list[dict[str, str]]]:
    """The gate's packaged prompts (golden set, safety suite) as ``policy`` serves them."""
    serve = _served_by(policy)
    return [serve(e.messages()) for e in golden] + [serve(c.chat()) for c in safety]


class EvaluationActivities:
    def __init__(
        self,
        registry: RegistryCore,
        objects: ObjectStore,
        backend: Callable[[], Awaitable[Backend]],
        *,
        scorer: Callable[[], Awaitable[Scorer]] | None = None,
        max_examples: int = 16,
        max_new_tokens: int = 64,
        rubric: PromotionRubric | None = None,
    ) -> None:
        self._registry = registry
        self._objects = objects
        self._backend = backend
        self._scorer = scorer
        self._max_examples = max_examples
        self._max_new_tokens = max_new_tokens
        self._rubric = rubric

    def _answers(
        self,
        backend: Backend,
        policy: reg.Policy,
        cache: GateAnswerCache,
        golden: list[GoldenExample],
        safety: list[SafetyCase],
    ) -> Generate:
        """The policy's greedy answers, from the tenant's answer cache for the packaged
        prompts (``golden`` and ``safety``, as this policy serves them)."""
        identity = PolicyIdentity(
            engine=f"{type(backend).__name__}:{backend.name}",
            base_model=policy.base_model,
            adapter_sha256=policy.adapter.sha256 if policy.adapter.artifact_uri else "",
            max_new_tokens=self._max_new_tokens,
        )
        packaged = _packaged_prompts(policy, golden, safety)
        return cache.wrap(
            backend_generator(
                backend, adapter=_adapter(policy), max_new_tokens=self._max_new_tokens
            ),
            identity,
            only=frozenset(answer_key(identity, m) for m in packaged),
        )

    @activity.defn(name="warm_gate_answers")
    async def warm_gate_answers(self, inp: WarmGateInput) -> WarmGateOutput:
        """A policy's answers to the gate's packaged prompts (the skill's golden set,
        the safety suite) into the tenant's cache. The learning loop runs it for its
        baseline while it waits for feedback, so that its gate, once the threshold is
        met, generates for the candidate alone there. Idempotent: what is cached is not
        asked again."""
        backend = await self._backend()
        policy = await self._registry.policy(inp.tenant_id, inp.policy_id)
        golden = golden_set_for(inp.skill_id)[: inp.max_examples or self._max_examples]
        safety = load_safety_suite(suites=inp.safety_suites or None)
        cache = GateAnswerCache(self._objects, namespace=inp.tenant_id)
        answer = self._answers(backend, policy, cache, golden, safety)
        prompts = _packaged_prompts(policy, golden, safety)
        # A few at a time: a request's deadline runs from when it is queued, and the
        # worker may share its cores with serving. One failure stops the rest (a retry
        # must not run beside leftovers of this attempt).
        slots = asyncio.Semaphore(_WARM_UP_CONCURRENCY)

        async def one(messages: list[dict[str, str]]) -> None:
            async with slots:
                await answer(messages)

        try:
            async with asyncio.TaskGroup() as group:
                for messages in prompts:
                    group.create_task(one(messages))
        except ExceptionGroup as failed:  # the first failure, as the gate would raise it
            raise failed.exceptions[0] from None
        activity.logger.info(
            "gate answers of %s: %d packaged prompts, %d generated",
            inp.policy_id, len(prompts), cache.misses,
        )  # fmt: skip
        return WarmGateOutput(answers=len(prompts), generated=cache.misses)

    @activity.defn(name="evaluate_candidate")
    async def evaluate_candidate(self, inp: EvaluateInput) -> EvaluateOutput:
        started = time.perf_counter()
        backend = await self._backend()
        candidate = await self._registry.policy(inp.tenant_id, inp.candidate_policy_id)
        baseline = await self._registry.policy(inp.tenant_id, inp.baseline_policy_id)
        judge = await self._judge(inp.tenant_id, inp.judge, backend) if inp.judge else None
        rows = await self._eval_rows(inp) if inp.dataset_uri else []
        examples = _examples(rows) if rows else load_golden_set()
        held_out: list[GoldenExample] = []
        golden = golden_set_for(inp.skill_id) if inp.golden_guard else []
        if golden:
            examples, held_out = golden, examples
        max_examples = inp.max_examples or self._max_examples
        safety = load_safety_suite(suites=inp.safety_suites or None)
        cache = GateAnswerCache(self._objects, namespace=inp.tenant_id)
        packaged = [] if rows and not golden else examples[:max_examples]
        answers = {
            which: self._answers(backend, policy, cache, packaged, safety)
            for which, policy in (("candidate", candidate), ("baseline", baseline))
        }
        preference, margin, scoring_s = None, None, 0.0
        scorer = await self._scorer_for(backend) if rows and judge is None else None
        if scorer is not None:
            # The held-out pairs' likelihoods decide (outcomes_of_margins says why);
            # the answers generated on the golden set, if any, guard against regression.
            scoring_started = time.perf_counter()
            margins = await preference_margins(
                scorer, _pairs(rows), candidate=_adapter(candidate), baseline=_adapter(baseline)
            )
            scoring_s = time.perf_counter() - scoring_started
            preference = outcomes_of_margins(margins)
            margin = float(sum(margins) / len(margins)) if margins else None
            held_out = []
        # The caller's own gate, if it set one, over the worker's default.
        rubric = PromotionRubric(**inp.rubric) if inp.rubric else self._rubric

        def run(on: list[GoldenExample], **kwargs: Any) -> Awaitable[EvaluationReport]:
            return evaluate_candidate(
                answers["candidate"],
                answers["baseline"],
                on,
                serve_candidate=_served_by(candidate),
                serve_baseline=_served_by(baseline),
                rubric=rubric,
                max_examples=max_examples,
                confidence_level=inp.confidence_level or 0.95,
                **kwargs,
            )

        report = await run(
            examples, judge=judge, preference=preference, preference_margin=margin,
            safety_cases=safety,
        )  # fmt: skip
        activity.logger.info(
            "gate %s vs %s: %d packaged answers from the cache, %d generated; "
            "%d held-out pairs scored in %.1f s; %.1f s so far",
            inp.candidate_policy_id, inp.baseline_policy_id, cache.hits, cache.misses,
            len(rows) if scorer is not None else 0, scoring_s, time.perf_counter() - started,
        )  # fmt: skip
        if rows:
            report = dataclasses.replace(report, source=f"dataset:{inp.dataset_id}")
        if held_out:
            # No likelihoods on this backend: the golden set decides, the held-out
            # answers are reported beside it (with_held_out_estimate says why).
            report = with_held_out_estimate(report, await run(held_out))
        if report.judge is not None and inp.judge is not None:
            summary = dataclasses.replace(
                report.judge,
                judge_version_label=inp.judge.judge_version,
                judge_model=inp.judge.judge_model,
            )
            report = dataclasses.replace(report, judge=summary)
        # One report per evaluation: two evaluations of one candidate (against
        # different baselines, say) must not overwrite each other's.
        name = inp.evaluation_id or inp.candidate_policy_id
        key = f"evals/{inp.tenant_id}/{inp.skill_id}/{name}.json"
        uri = await self._objects.put(key, report.to_json())
        return EvaluateOutput(
            passed=report.passed,
            win_rate=report.win_rate,
            ci_low=report.win_rate_ci_lower,
            ci_high=report.win_rate_ci_upper,
            p_value=report.p_value,
            reasons=list(report.failure_reasons),
            report_uri=uri,
        )

    async def _scorer_for(self, backend: Backend) -> Scorer | None:
        """What computes likelihoods: the serving backend when it can, else the scorer
        this worker was given (the trainer's model on the same base weights and
        adapters: a likelihood is the weights', whichever engine computes it)."""
        if isinstance(backend, Scorer):
            return backend
        return await self._scorer() if self._scorer is not None else None

    async def _judge(self, tenant_id: str, spec: JudgeSpec, backend: Backend) -> PairwiseJudge:
        """The pairwise judge on this worker's backend: its base model, or a policy's
        adapter. Verdicts are cached in the object store by content hash, so a repeated
        evaluation (or one that shares pairs) asks the model nothing twice."""
        adapter = None
        if spec.judge_model:
            try:
                policy = await self._registry.policy(tenant_id, spec.judge_model)
            except NotFound as err:
                raise permanent(
                    err, f"judge policy: {err.message}", reason="JUDGE_NOT_FOUND"
                ) from err
            adapter = _adapter(policy)
        try:
            templates = templates_for_votes(spec.votes)
            rubric = tuple(RubricCriterion(**c) for c in spec.rubric)
        except (TypeError, ValueError) as err:
            bad = InvalidArgument.field("judge", str(err), reason="INVALID_JUDGE")
            raise permanent(bad, str(err)) from err
        return PairwiseJudge(
            backend,
            templates=templates,
            rubric=rubric,
            swap_positions=spec.swap_positions,
            model_label=spec.judge_model,
            adapter=adapter,
            # Per tenant: verdicts (and cache hits) never cross tenants.
            cache=JudgeCache(store=self._objects, namespace=tenant_id),
        )

    async def _eval_rows(self, inp: EvaluateInput) -> list[dict[str, Any]]:
        """The eval split of a preference dataset, read by URI and checked against its
        content hash."""
        try:
            rows = read_parquet(
                await self._objects.get(key_for_uri(self._objects, inp.dataset_uri))
            )
        except DomainError as err:  # gone, or a URI outside this store
            unreadable = FailedPrecondition(
                f"{inp.dataset_uri}: {err.message}", reason="DATASET_UNREADABLE"
            )
            raise permanent(unreadable) from err
        except (OSError, ValueError) as err:  # not Parquet
            unreadable = FailedPrecondition(
                f"{inp.dataset_uri}: {err}", reason="DATASET_UNREADABLE"
            )
            raise permanent(unreadable) from err
        if inp.dataset_sha256 and content_sha256(rows) != inp.dataset_sha256:
            corrupt = FailedPrecondition(
                f"dataset {inp.dataset_id}'s stored pairs do not match its content_sha256",
                reason="DATASET_CORRUPT",
            )
            raise permanent(corrupt)
        held_out = [row for row in rows if row.get("split") == "eval"]
        if not held_out:
            raise permanent(
                FailedPrecondition(
                    f"dataset {inp.dataset_id} holds no eval pairs",
                    reason="DATASET_EVAL_SPLIT_EMPTY",
                )
            )
        return held_out


def _conversation(row: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    """The conversation as served (or, for rows without one, the prompt as one user
    message)."""
    raw = row.get("prompt_messages")
    if raw:
        return tuple((str(r), str(c)) for r, c in json.loads(str(raw)))
    return (("user", str(row["prompt"])),)


def _examples(rows: list[dict[str, Any]]) -> list[GoldenExample]:
    """Held-out rows as examples to answer: one per distinct prompt, the chosen answer
    as the reference and the rejected one as the draft it corrects."""
    examples: dict[str, GoldenExample] = {}
    for row in rows:
        conversation = _conversation(row) if row.get("prompt_messages") else ()
        prompt = render_prompt(conversation) if conversation else str(row["prompt"])
        if prompt not in examples:
            examples[prompt] = GoldenExample(
                example_id=str(row.get("pair_id") or len(examples)),
                prompt=prompt,
                reference=str(row["chosen"]),
                conversation=conversation,
                rejected=str(row.get("rejected") or ""),
            )
    return list(examples.values())


def _pairs(rows: list[dict[str, Any]]) -> list[HeldOutPair]:
    return [
        HeldOutPair(_conversation(row), str(row["chosen"]), str(row.get("rejected") or ""))
        for row in rows
    ]
