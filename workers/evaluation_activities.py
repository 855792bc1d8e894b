"""evaluate_candidate: candidate vs baseline on the skill's golden set and the safety
suite, on the model-bearing (GPU-queue) worker; the full report goes to the object
store, the verdict and its statistics back to the workflow."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from temporalio import activity

from rlaas.registry.v1 import registry_pb2 as reg
from services.inference.backends.base import AdapterRef, Backend
from services.objects.store import ObjectStore
from services.registry.service import RegistryCore
from services.training.evaluation import (
    PromotionRubric,
    backend_generator,
    evaluate_candidate,
    load_golden_set,
    load_safety_suite,
)
from workflows.learning_types import EvaluateInput, EvaluateOutput


def _adapter(policy: reg.Policy) -> AdapterRef | None:
    if not policy.adapter.artifact_uri:
        return None
    return AdapterRef(policy.policy_id, policy.adapter.artifact_uri, policy.adapter.sha256)


class EvaluationActivities:
    def __init__(
        self,
        registry: RegistryCore,
        objects: ObjectStore,
        backend: Callable[[], Awaitable[Backend]],
        *,
        max_examples: int = 16,
        max_new_tokens: int = 64,
        rubric: PromotionRubric | None = None,
    ) -> None:
        self._registry = registry
        self._objects = objects
        self._backend = backend
        self._max_examples = max_examples
        self._max_new_tokens = max_new_tokens
        self._rubric = rubric

    @activity.defn(name="evaluate_candidate")
    async def evaluate_candidate(self, inp: EvaluateInput) -> EvaluateOutput:
        backend = await self._backend()
        candidate = await self._registry.policy(inp.tenant_id, inp.candidate_policy_id)
        baseline = await self._registry.policy(inp.tenant_id, inp.baseline_policy_id)
        report = await evaluate_candidate(
            backend_generator(
                backend, adapter=_adapter(candidate), max_new_tokens=self._max_new_tokens
            ),
            backend_generator(
                backend, adapter=_adapter(baseline), max_new_tokens=self._max_new_tokens
            ),
            load_golden_set(),
            safety_cases=load_safety_suite(suites=inp.safety_suites or None),
            # The caller's own gate, if it set one, over the worker's default.
            rubric=PromotionRubric(**inp.rubric) if inp.rubric else self._rubric,
            max_examples=inp.max_examples or self._max_examples,
            confidence_level=inp.confidence_level or 0.95,
        )
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
