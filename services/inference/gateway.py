"""The inference gateway: route, guard, prompt, generate, log. No gRPC here.

One Infer: validate -> replay check (request_id) -> deployment (cached) -> router picks a
policy -> input guardrails -> the answer cache (``answer_cache``; a hit skips the rest up
to logging) -> retrieval from the policy's index (``grounding``) -> the policy's template
-> the backend (with the policy's adapter, under a deadline) -> output guardrails ->
groundedness and citations -> the interaction and its output logged through the
telemetry core in this process (so feedback can name it) -> the answer cached -> shadow
runs scheduled off the hot path.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Protocol, TypeAlias

import numpy as np
import structlog
from google.protobuf import duration_pb2

from rlaas.inference.v1 import inference_pb2 as inf
from rlaas.registry.v1 import registry_pb2 as reg
from rlaas.telemetry.v1 import telemetry_pb2 as tel
from services.config import Settings
from services.db.idempotency import MAX_REQUEST_ID_LENGTH
from services.errors import (
    DomainError,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    RequestIdReused,
)
from services.inference import answer_cache, grounding, metrics
from services.inference.answer_cache import AnswerCache, Hit
from services.inference.backends.base import AdapterRef, Backend, GenerationRequest
from services.inference.deployments import DeploymentCache
from services.inference.guardrails import DEFAULT_REFUSAL, screen_input, screen_output
from services.inference.prompting import build_messages_off_loop
from services.inference.router import Route, Router
from services.objects.store import ObjectStore
from services.registry.artifacts import owned_adapter_key
from services.registry.validation import generation_violations
from services.telemetry.core import TelemetryCore
from services.telemetry.events import GatewayFields
from services.telemetry.pii import Scrubber
from services.telemetry.store import Outcome
from services.tenancy.principal import Principal, Scope

log = structlog.get_logger(__name__)

_ROLES = {
    tel.ChatMessage.ROLE_SYSTEM: "system",
    tel.ChatMessage.ROLE_USER: "user",
    tel.ChatMessage.ROLE_ASSISTANT: "assistant",
    tel.ChatMessage.ROLE_TOOL: "tool",
}
_FINISH = {"stop": tel.FINISH_REASON_STOP, "length": tel.FINISH_REASON_LENGTH}
MAX_INFER_TOKENS = 8192  # the longest answer one Infer request may ask for
AnyInferRequest: TypeAlias = inf.InferRequest | inf.InferStreamRequest


class RegistryReader(Protocol):
    async def deployment(self, tenant_id: str, skill_id: str) -> reg.Deployment | None: ...
    async def policy(self, tenant_id: str, policy_id: str) -> reg.Policy: ...
    async def skill_exists(self, tenant_id: str, skill_id: str) -> bool: ...


@dataclass
class Call:
    """Everything decided before the model runs."""

    tenant_id: str
    request: AnyInferRequest
    fingerprint: bytes
    route: Route
    policy: reg.Policy
    prompt: list[dict[str, str]]
    generation: GenerationRequest
    refusal: str | None
    flags: list[str] = field(default_factory=list)
    interaction_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    output_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    started: float = field(default_factory=time.perf_counter)
    # The last user message (after input guardrails): the retrieval query.
    query: str = ""
    # The prompt's context: the policy's retrieved chunks, then the caller's own.
    context: list[tel.RetrievedChunk] = field(default_factory=list)
    retrieval_s: float = 0.0
    cache_key: answer_cache.Key | None = None
    cache_vector: np.ndarray | None = None
    hit: Hit | None = None
    # Set once the answer is known (grounded policies, cache hits).
    citations: list[tel.Citation] = field(default_factory=list)
    groundedness: tel.Groundedness | None = None


def _fingerprint(request: AnyInferRequest) -> bytes:
    return hashlib.sha256(request.SerializeToString(deterministic=True)).digest()


def _duration(seconds: float) -> duration_pb2.Duration:
    d = duration_pb2.Duration()
    d.FromNanoseconds(int(seconds * 1e9))
    return d


def _derived_request_id(request_id: str, *suffixes: str) -> str:
    """The telemetry request_id of a shadow run or a failure: the caller's id plus
    suffixes, with a long caller id replaced by its hash so the result still fits the
    telemetry limit (the caller's own id may use all of it)."""
    suffix = "".join(suffixes)
    if suffix and len(request_id) + len(suffix) > MAX_REQUEST_ID_LENGTH:
        request_id = hashlib.sha256(request_id.encode()).hexdigest()
    return request_id + suffix


def _cache_hit(hit: Hit | None) -> inf.CacheHit | None:
    if hit is None:
        return None
    kind = inf.CacheHit.KIND_EXACT if hit.kind == "exact" else inf.CacheHit.KIND_SEMANTIC
    return inf.CacheHit(
        kind=kind, similarity=hit.similarity, source_interaction_id=hit.entry.source_interaction_id
    )


def _routing(route: Route, shadow: bool = False) -> tel.RoutingDecision:
    return tel.RoutingDecision(
        arm=route.policy_id,
        reason=tel.RoutingDecision.REASON_SHADOW if shadow else route.reason,
        probability=route.probability,
        shadow=shadow,
        deployment_revision=route.revision,
        rollout_id=route.rollout_id,
        shadow_arms=list(route.shadow_policy_ids),
    )


class InferenceGateway:
    def __init__(
        self,
        settings: Settings,
        registry: RegistryReader,
        deployments: DeploymentCache,
        router: Router,
        backend: Backend,
        telemetry: TelemetryCore,
        *,
        retriever: grounding.Retriever | None = None,
        embedder: grounding.Embeds | None = None,
        objects: ObjectStore | None = None,
    ) -> None:
        self._settings = settings
        self._objects = objects
        self._registry = registry
        self._deployments = deployments
        self._router = router
        self._backend = backend
        self._telemetry = telemetry
        self._retriever = retriever
        self._embedder = embedder or grounding.LazyEmbedder()
        self.cache = AnswerCache(settings.answer_cache_max_entries)
        self._scrubber = Scrubber()
        self._shadow_tasks: set[asyncio.Task[None]] = set()

    # ---- shared preparation ------------------------------------------------------

    def _validate(self, request: AnyInferRequest) -> list[dict[str, str]]:
        violations: list[FieldViolation] = []
        if not request.request_id:
            violations.append(FieldViolation("request_id", "is required"))
        if not request.skill:
            violations.append(FieldViolation("skill", "is required"))
        if not request.messages:
            violations.append(FieldViolation("messages", "at least one message is required"))
        messages, total = [], 0
        for i, m in enumerate(request.messages):
            role = _ROLES.get(m.role)
            if role is None:
                violations.append(FieldViolation(f"messages[{i}].role", "is required"))
                continue
            total += len(m.content)
            messages.append({"role": role, "content": m.content})
        if total > self._settings.infer_max_input_chars:
            violations.append(
                FieldViolation(
                    "messages",
                    f"{total} characters; at most {self._settings.infer_max_input_chars}",
                )
            )
        if messages and not any(m["role"] == "user" for m in messages):
            violations.append(FieldViolation("messages", "needs at least one user message"))
        # The policy's checks (a NaN temperature fails them, unlike `< 0`), with the
        # gateway's tighter cap on one answer's length.
        violations += generation_violations(
            request.generation, "generation", max_tokens=MAX_INFER_TOKENS
        )
        if violations:
            raise InvalidArgument(violations)
        return messages

    def _check_adapter_owner(self, policy: reg.Policy) -> None:
        """Serve only the policy's own tenant's artifacts. The registry refuses any
        other at CreatePolicy; this also covers policies registered before it did."""
        if self._objects is None:
            return
        try:
            owned_adapter_key(self._objects, policy.tenant_id, policy.adapter.artifact_uri)
        except InvalidArgument:
            raise FailedPrecondition(
                f"policy {policy.policy_id} names an adapter outside this tenant's artifacts; "
                "register a new version with an uploaded adapter",
                reason="ADAPTER_NOT_OWNED",
            ) from None

    def _generation(self, policy: reg.Policy, request: AnyInferRequest) -> GenerationRequest:
        merged = reg.GenerationConfig()
        merged.MergeFrom(policy.generation_defaults)
        merged.MergeFrom(request.generation)  # the caller's settings win
        adapter = None
        if policy.HasField("adapter") and policy.adapter.artifact_uri:
            self._check_adapter_owner(policy)
            adapter = AdapterRef(
                name=policy.policy_id, uri=policy.adapter.artifact_uri, sha256=policy.adapter.sha256
            )
        return GenerationRequest(
            messages=[],
            adapter=adapter,
            max_new_tokens=merged.max_tokens
            if merged.HasField("max_tokens")
            else self._settings.infer_default_max_tokens,
            temperature=merged.temperature if merged.HasField("temperature") else 0.0,
            top_p=merged.top_p if merged.HasField("top_p") else 1.0,
            stop=list(merged.stop),
            seed=merged.seed if merged.HasField("seed") else None,
        )

    async def _prepare(
        self,
        tenant_id: str,
        request: AnyInferRequest,
        route: Route,
        messages: list[dict[str, str]],
        *,
        use_cache: bool = True,
    ) -> Call:
        policy = await self._deployments.policy(tenant_id, route.policy_id)
        if route.reason == tel.RoutingDecision.REASON_PINNED and (
            policy.state == reg.Policy.STATE_RETIRED
        ):
            raise FailedPrecondition(
                f"policy {policy.policy_id} is retired", reason="POLICY_RETIRED"
            )
        if policy.skill_id != request.skill:
            raise FailedPrecondition(
                f"policy {policy.policy_id} belongs to skill {policy.skill_id!r}",
                reason="POLICY_SKILL_MISMATCH",
            )
        screened = screen_input(messages, policy.guardrails, self._scrubber)
        call = Call(
            tenant_id=tenant_id,
            request=request,
            fingerprint=_fingerprint(request),
            route=route,
            policy=policy,
            prompt=[],
            generation=self._generation(policy, request),
            refusal=screened.refusal,
            flags=screened.flags,
            context=list(request.context_chunks),
            query=next(m["content"] for m in reversed(screened.messages) if m["role"] == "user"),
        )
        if call.refusal is None:
            if use_cache and policy.cache.enabled and not request.bypass_cache:
                await self._cache_lookup(call, screened.messages)
                if call.hit is not None:
                    return call  # replayed: no retrieval, no prompt
            if policy.retrieval.enabled:
                await self._retrieve(call)
        call.prompt = call.generation.messages = await build_messages_off_loop(
            tenant_id, policy, screened.messages, context=call.context,
            user_id=request.user_id, skill=request.skill,
        )  # fmt: skip
        return call

    # ---- retrieval, grounding, cache -------------------------------------------------

    def _require_retriever(self) -> grounding.Retriever:
        if self._retriever is None:
            raise FailedPrecondition(
                "this server has no retrieval service; the policy's retrieval cannot run",
                reason="RETRIEVAL_UNAVAILABLE",
            )
        return self._retriever

    async def _content_version(self, call: Call) -> int:
        if not call.policy.retrieval.enabled:
            return 0
        retriever = self._require_retriever()
        try:
            return await retriever.content_version(call.tenant_id, call.policy.retrieval.collection)
        except NotFound as err:
            raise grounding.index_missing(call.policy) from err

    async def _cache_lookup(self, call: Call, messages: list[dict[str, str]]) -> None:
        call.cache_key = answer_cache.key_for(
            call.tenant_id, call.request.skill, call.policy, await self._content_version(call),
            messages, call.generation, caller_context=call.request.context_chunks,
            user_id=call.request.user_id,
        )  # fmt: skip
        call.hit, call.cache_vector = await answer_cache.lookup(
            self.cache, call.cache_key, call.policy.cache, self._embedder
        )

    async def _retrieve(self, call: Call) -> None:
        found = await grounding.retrieve(
            self._require_retriever(), call.tenant_id, call.policy, call.query
        )
        call.context = found.chunks + call.context
        call.retrieval_s = found.seconds
        metrics.RETRIEVAL_LATENCY.labels(
            call.tenant_id, call.request.skill, call.policy.policy_id
        ).observe(found.seconds)
        key = call.cache_key
        if key is not None and key.scope.content_version != found.content_version:
            # The index changed between the lookup and the search: store the answer
            # under the version it was grounded in.
            scope = dataclasses.replace(key.scope, content_version=found.content_version)
            call.cache_key = dataclasses.replace(key, scope=scope)

    async def _ground(
        self, call: Call, text: str, flags: list[str], finish: int
    ) -> tuple[str, list[str], int]:
        """Citations and groundedness of a grounded policy's answer; the
        ``require_citations`` guardrail refuses an answer that cites nothing although
        context was retrieved."""
        if not call.policy.retrieval.enabled:
            return text, flags, finish
        checked = await grounding.check(
            self._embedder, text, call.context,
            min_groundedness=call.policy.retrieval.min_groundedness, question=call.query,
        )  # fmt: skip
        call.citations, call.groundedness = checked.citations, checked.groundedness
        flags = flags + checked.flags
        if grounding.UNGROUNDED in checked.flags:
            metrics.UNGROUNDED.labels(
                call.tenant_id, call.request.skill, call.policy.policy_id
            ).inc()
        guard = call.policy.guardrails
        if guard.require_citations and call.context and not call.citations:
            refusal = guard.refusal_message or DEFAULT_REFUSAL
            return refusal, [*flags, grounding.MISSING_CITATIONS], tel.FINISH_REASON_GUARDRAIL
        return text, flags, finish

    def _remember(self, call: Call, response: inf.InferResponse) -> None:
        """Cache a fresh answer: only whole, unrefused, grounded ones (replaying an
        answer flagged ungrounded would spread it)."""
        if call.cache_key is None or call.hit is not None:
            return
        if response.finish_reason not in (tel.FINISH_REASON_STOP, tel.FINISH_REASON_LENGTH):
            return
        if grounding.UNGROUNDED in response.guardrail_flags:
            return
        entry = answer_cache.Entry(
            text=response.text,
            finish_reason=response.finish_reason,
            flags=list(response.guardrail_flags),
            citations=list(response.citations),
            retrieved_chunks=list(response.retrieved_chunks),
            groundedness=response.groundedness if response.HasField("groundedness") else None,
            source_interaction_id=response.interaction_id,
        )
        self.cache.put(
            call.cache_key, call.cache_vector, entry, answer_cache.ttl_of(call.policy.cache)
        )

    async def _log_hit(self, call: Call) -> inf.InferResponse:
        """A cache hit, logged as an interaction of its own (feedback can name it)."""
        assert call.hit is not None
        entry = call.hit.entry
        call.context = list(entry.retrieved_chunks)
        call.citations = list(entry.citations)
        call.groundedness = entry.groundedness
        return await self._log(
            call, text=entry.text, prompt_tokens=0, completion_tokens=0,
            finish_reason=entry.finish_reason, flags=sorted(set(call.flags + entry.flags)),
        )  # fmt: skip

    async def _begin(
        self, caller: Principal, request: AnyInferRequest, *, check_replay: bool
    ) -> Call | inf.InferResponse:
        """A Call to run, or (with ``check_replay``) the stored answer when this
        request_id was served before. Unary Infer skips the check: the exactly-once
        store answers a replay with the original anyway (it only recomputes), and the
        lookup would cost every call a round trip. A stream needs it, since its first
        message must carry the original interaction id."""
        caller.require(Scope.INFER)
        messages = self._validate(request)
        if check_replay:
            # Independent reads, one round trip of wall time.
            replay, deployment = await asyncio.gather(
                self._replay(caller.tenant_id, request),
                self._deployments.get(caller.tenant_id, request.skill),
            )
            if replay is not None:
                return replay
        else:
            deployment = await self._deployments.get(caller.tenant_id, request.skill)
        if deployment is None and not await self._registry.skill_exists(
            caller.tenant_id, request.skill
        ):
            raise NotFound("skill", request.skill)
        observed = None
        if deployment is not None and deployment.traffic.WhichOneof("strategy") == "bandit":
            observed = await self._deployments.bandit_observations(caller.tenant_id, request.skill)
        route = self._router.route(
            caller.tenant_id,
            deployment,
            user_id=request.user_id,
            request_id=request.request_id,
            pinned_policy_id=request.policy_id,
            observed=observed,
        )
        return await self._prepare(caller.tenant_id, request, route, messages)

    async def _replay(self, tenant_id: str, request: AnyInferRequest) -> inf.InferResponse | None:
        found = await self._telemetry.store.find(tenant_id, request.request_id)
        if found is None:
            return None
        digest, stored = found
        if digest != _fingerprint(request):
            raise RequestIdReused("request")
        return self._stored_response(stored)

    @staticmethod
    def _stored_response(stored: list) -> inf.InferResponse:
        interaction: tel.Interaction = stored[0]
        output = stored[1] if len(stored) > 1 else tel.Output()
        response = inf.InferResponse(
            interaction_id=interaction.interaction_id,
            output_id=output.output_id,
            policy_id=output.policy_id or interaction.policy_id,
            base_model=interaction.base_model,
            text=output.text,
            usage=output.usage,
            latency=interaction.timings.total,
            finish_reason=output.finish_reason,
            routing=interaction.routing,
            guardrail_flags=list(output.guardrail_flags),
            timings=interaction.timings,
            citations=output.citations,
            retrieved_chunks=interaction.retrieved_chunks,
        )
        if output.HasField("groundedness"):
            response.groundedness.CopyFrom(output.groundedness)
        cache = output.metadata.fields.get("cache") if output.HasField("metadata") else None
        if cache is not None:
            c = cache.struct_value.fields
            response.cache.CopyFrom(
                inf.CacheHit(
                    kind=inf.CacheHit.Kind.Value(c["kind"].string_value),
                    similarity=c["similarity"].number_value,
                    source_interaction_id=c["source_interaction_id"].string_value,
                )
            )
        return response

    # ---- logging -------------------------------------------------------------------

    def _cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        s = self._settings
        return (
            prompt_tokens * s.cost_per_1k_prompt_tokens_usd
            + completion_tokens * s.cost_per_1k_completion_tokens_usd
        ) / 1000

    async def _log(
        self,
        call: Call,
        *,
        text: str,
        prompt_tokens: int,
        completion_tokens: int,
        finish_reason: int,
        flags: list[str],
        shadow_of: str = "",
        failed: bool = False,
    ) -> inf.InferResponse:
        elapsed = time.perf_counter() - call.started
        request = call.request
        usage = tel.TokenUsage(
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            total_tokens=prompt_tokens + completion_tokens,
        )
        cost = self._cost(prompt_tokens, completion_tokens)
        timings = tel.Timings(total=_duration(elapsed))
        if call.retrieval_s:
            timings.retrieval.CopyFrom(_duration(call.retrieval_s))
        routing = _routing(call.route, shadow=bool(shadow_of))
        if shadow_of:
            routing.arm = call.policy.policy_id
        interaction = tel.Interaction(
            interaction_id=call.interaction_id,
            skill=request.skill,
            user_id=request.user_id,
            thread_id=request.thread_id,
            input=tel.InteractionInput(messages=request.messages),
            served_messages=_chat(call.prompt),
            retrieved_chunks=call.context,
            policy_id=call.policy.policy_id,
            base_model=call.policy.base_model,
            timings=timings,
            usage=usage,
            cost_usd=cost,
            labels=request.labels,
            training_opt_out=request.training_opt_out,
        )
        if request.HasField("metadata"):
            interaction.metadata.CopyFrom(request.metadata)
        output = tel.Output(
            output_id=call.output_id,
            text=text or " ",
            finish_reason=finish_reason,
            usage=usage,
            timings=timings,
            cost_usd=cost,
            policy_id=call.policy.policy_id,
            guardrail_flags=flags,
            citations=call.citations,
        )
        if call.groundedness is not None:
            output.groundedness.CopyFrom(call.groundedness)
        hit = _cache_hit(call.hit)
        if hit is not None:
            # The stored record says the answer was replayed, and from which interaction
            # (Output has no field for it; a replay of this request reads it back).
            output.metadata.update({"cache": {
                "kind": inf.CacheHit.Kind.Name(hit.kind), "similarity": hit.similarity,
                "source_interaction_id": hit.source_interaction_id,
            }})  # fmt: skip
        request_id = _derived_request_id(
            request.request_id,
            f"#shadow:{call.policy.policy_id}" if shadow_of else "",
            # Under its own id: a retry of the request must run again (and be logged
            # as itself), never replay the failure.
            f"#error:{call.interaction_id}" if failed else "",
        )
        written = await self._telemetry.log_gateway_interaction(
            call.tenant_id,
            tel.CreateInteractionRequest(
                interaction=interaction, output=output, request_id=request_id
            ),
            GatewayFields(
                source=tel.INTERACTION_SOURCE_SHADOW
                if shadow_of
                else tel.INTERACTION_SOURCE_GATEWAY,
                routing=routing,
                fingerprint=call.fingerprint,
                primary_interaction_id=shadow_of,
            ),
        )
        outcome = "error" if failed else "shadow" if shadow_of else "cache_hit" if hit else "ok"
        metrics.record(
            call.tenant_id, request.skill, call.policy.policy_id, outcome=outcome,
            prompt=prompt_tokens,
            completion=completion_tokens, cost=cost, latency_s=elapsed,
        )  # fmt: skip
        if written.outcome is Outcome.REJECTED:
            assert written.error is not None
            raise written.error
        if written.outcome is Outcome.DUPLICATE:
            # A concurrent copy of this request was served first: answer as it did.
            return self._stored_response(written.stored)
        return inf.InferResponse(
            interaction_id=call.interaction_id,
            output_id=call.output_id,
            policy_id=call.policy.policy_id,
            base_model=call.policy.base_model,
            text=text,
            usage=usage,
            latency=_duration(elapsed),
            finish_reason=finish_reason,
            routing=routing,
            guardrail_flags=flags,
            timings=timings,
            citations=call.citations,
            retrieved_chunks=call.context,
            groundedness=call.groundedness,
            cache=hit,
        )

    async def _log_failure(
        self, call: Call, error: BaseException, *, text: str = "", shadow_of: str = ""
    ) -> None:
        """Log a generation that failed as an interaction whose output finished with
        ERROR, so that error rates per policy are data (the rollout guard compares
        them); the caller's error goes on unchanged, naming the interaction."""
        if isinstance(error, DomainError):
            error.metadata.setdefault("interaction_id", call.interaction_id)
        try:
            await self._log(
                call, text=text, prompt_tokens=0, completion_tokens=0,
                finish_reason=tel.FINISH_REASON_ERROR, flags=call.flags,
                shadow_of=shadow_of, failed=True,
            )  # fmt: skip
        except Exception as log_error:  # the original error matters more to the caller
            log.warning(
                "failure_not_logged", interaction_id=call.interaction_id, error=repr(log_error)
            )

    # ---- Infer ---------------------------------------------------------------------

    async def infer(self, caller: Principal, request: inf.InferRequest) -> inf.InferResponse:
        begun = await self._begin(caller, request, check_replay=False)
        if isinstance(begun, inf.InferResponse):
            return begun
        call = begun
        if call.hit is not None:
            response = await self._log_hit(call)
        elif call.refusal is not None:
            response = await self._log(
                call, text=call.refusal, prompt_tokens=0, completion_tokens=0,
                finish_reason=tel.FINISH_REASON_GUARDRAIL, flags=call.flags,
            )  # fmt: skip
        else:
            try:
                result = await self._backend.generate(
                    call.generation, timeout_s=self._settings.infer_timeout_s
                )
            except Exception as err:
                await self._log_failure(call, err)
                raise
            text, out_flags = screen_output(result.text, call.policy.guardrails, self._scrubber)
            text, flags, finish = await self._ground(
                call, text, call.flags + out_flags,
                _FINISH.get(result.finish_reason, tel.FINISH_REASON_STOP),
            )  # fmt: skip
            response = await self._log(
                call, text=text, prompt_tokens=result.prompt_tokens,
                completion_tokens=result.completion_tokens, finish_reason=finish, flags=flags,
            )  # fmt: skip
            self._remember(call, response)
        self._start_shadows(call, response.interaction_id)
        return response

    async def infer_stream(
        self, caller: Principal, request: inf.InferStreamRequest
    ) -> AsyncIterator[inf.InferStreamResponse]:
        begun = await self._begin(caller, request, check_replay=True)
        if isinstance(begun, inf.InferResponse):
            # A replay: the stored answer as a single delta.
            yield inf.InferStreamResponse(
                interaction_id=begun.interaction_id, output_id=begun.output_id, index=0,
                text_delta=begun.text, policy_id=begun.policy_id, base_model=begun.base_model,
                routing=begun.routing, finish_reason=begun.finish_reason, usage=begun.usage,
                latency=begun.latency, guardrail_flags=list(begun.guardrail_flags),
                citations=begun.citations, retrieved_chunks=begun.retrieved_chunks,
                groundedness=begun.groundedness, cache=begun.cache, timings=begun.timings,
            )  # fmt: skip
            return
        call = begun
        yield inf.InferStreamResponse(
            interaction_id=call.interaction_id, output_id=call.output_id, index=0,
            policy_id=call.policy.policy_id, base_model=call.policy.base_model,
            routing=_routing(call.route),
        )  # fmt: skip
        parts: list[str] = []
        finish = tel.FINISH_REASON_STOP
        flags = list(call.flags)
        if call.hit is not None:
            # A cache hit arrives as one delta.
            final = await self._log_hit(call)
            yield inf.InferStreamResponse(index=1, text_delta=final.text)
            yield self._last_message(final, index=2)
            self._start_shadows(call, call.interaction_id)
            return
        if call.refusal is not None:
            parts.append(call.refusal)
            finish = tel.FINISH_REASON_GUARDRAIL
            yield inf.InferStreamResponse(index=1, text_delta=call.refusal)
        else:
            try:
                index = 1
                # Output PII redaction needs whole entities, and required citations the
                # whole answer, so with either on the answer is screened as a whole and
                # sent as one delta.
                guard = call.policy.guardrails
                redact = guard.redact_output_pii or (
                    guard.require_citations and call.policy.retrieval.enabled
                )
                async for delta in self._backend.stream(
                    call.generation, timeout_s=self._settings.infer_timeout_s
                ):
                    parts.append(delta)
                    if not redact:
                        yield inf.InferStreamResponse(index=index, text_delta=delta)
                        index += 1
                text, out_flags = screen_output(
                    "".join(parts), call.policy.guardrails, self._scrubber
                )
                text, flags, finish = await self._ground(call, text, flags + out_flags, finish)
                if redact:
                    yield inf.InferStreamResponse(index=index, text_delta=text)
                parts = [text] if redact else parts
            except Exception as err:
                await self._log_failure(call, err, text="".join(parts))
                raise
        final = await self._log(
            call, text="".join(parts), prompt_tokens=0,
            completion_tokens=len(parts), finish_reason=finish, flags=flags,
        )  # fmt: skip
        self._remember(call, final)
        yield self._last_message(final, index=len(parts) + 1)
        self._start_shadows(call, call.interaction_id)

    @staticmethod
    def _last_message(final: inf.InferResponse, *, index: int) -> inf.InferStreamResponse:
        return inf.InferStreamResponse(
            index=index, finish_reason=final.finish_reason, usage=final.usage,
            latency=final.latency, guardrail_flags=list(final.guardrail_flags),
            timings=final.timings, citations=final.citations,
            retrieved_chunks=final.retrieved_chunks, groundedness=final.groundedness,
            cache=final.cache,
        )  # fmt: skip

    # ---- shadow ----------------------------------------------------------------------

    def _start_shadows(self, call: Call, primary_interaction_id: str) -> None:
        for policy_id in call.route.shadow_policy_ids:
            if policy_id == call.policy.policy_id:
                continue
            task = asyncio.create_task(self._shadow(call, policy_id, primary_interaction_id))
            self._shadow_tasks.add(task)
            task.add_done_callback(self._shadow_tasks.discard)

    async def _shadow(self, call: Call, policy_id: str, primary_interaction_id: str) -> None:
        """Run a shadow policy on the same request and log it; whatever happens here
        (errors, timeouts) never reaches the caller, who already has the answer."""
        shadow: Call | None = None
        try:
            route = Route(policy_id, tel.RoutingDecision.REASON_SHADOW, 1.0, call.route.revision,
                          (), call.route.rollout_id)  # fmt: skip
            messages = self._validate(call.request)
            # A shadow retrieves from its own policy's index, never uses the cache.
            shadow = await self._prepare(
                call.tenant_id, call.request, route, messages, use_cache=False
            )
            flags = shadow.flags
            if shadow.refusal is not None:
                text, prompt_tokens, completion_tokens = shadow.refusal, 0, 0
                finish = tel.FINISH_REASON_GUARDRAIL
            else:
                result = await self._backend.generate(
                    shadow.generation, timeout_s=self._settings.shadow_timeout_s
                )
                text, _ = screen_output(result.text, shadow.policy.guardrails, self._scrubber)
                prompt_tokens, completion_tokens = result.prompt_tokens, result.completion_tokens
                finish = _FINISH.get(result.finish_reason, tel.FINISH_REASON_STOP)
                # Graded like the primary, so shadow and primary compare on faithfulness.
                text, flags, finish = await self._ground(shadow, text, flags, finish)
            await self._log(
                shadow, text=text, prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens, finish_reason=finish, flags=flags,
                shadow_of=primary_interaction_id,
            )  # fmt: skip
        except Exception as err:  # a shadow's failure is logged, never raised
            log.warning("shadow_failed", policy_id=policy_id, error=repr(err))
            if shadow is not None:
                await self._log_failure(shadow, err, shadow_of=primary_interaction_id)

    async def drain_shadows(self, timeout_s: float = 30.0) -> None:
        """Wait for scheduled shadow runs (tests, graceful shutdown)."""
        if self._shadow_tasks:
            await asyncio.wait(list(self._shadow_tasks), timeout=timeout_s)


_ROLE_OF = {name: role for role, name in _ROLES.items()}


def _chat(prompt: list[dict[str, str]]) -> list[tel.ChatMessage]:
    """The prompt the model was given, as the interaction records it (``served_messages``:
    what datasets, training and evaluation use)."""
    return [tel.ChatMessage(role=_ROLE_OF[m["role"]], content=m["content"]) for m in prompt]
