"""Grounded inference and the answer cache through the real server: RetrievalService
indexes on milvus-lite + Postgres, the gateway retrieving into the prompt of the tiny
Llama the stack serves, citations checked against GetDocument, the interaction read
back through telemetry, and the cache's hits, misses, invalidation and tenant isolation.

The tiny model speaks only the words of its training corpus (tests/backends/tiny.py), so
an index holding those words supports whatever it says, and an index of refund policy
prose (none of those words) supports nothing it says."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import grpc
import pytest
from google.protobuf import duration_pb2
from sqlalchemy import text

from rlaas.inference.v1 import inference_pb2 as inf
from rlaas.inference.v1 import inference_pb2_grpc
from rlaas.options.v1 import options_pb2
from rlaas.registry.v1 import registry_pb2 as reg
from rlaas.registry.v1 import registry_pb2_grpc
from rlaas.retrieval.v1 import retrieval_pb2 as rpb
from rlaas.retrieval.v1 import retrieval_pb2_grpc
from rlaas.telemetry.v1 import telemetry_pb2 as tel
from rlaas.telemetry.v1 import telemetry_pb2_grpc
from services.db.engine import create_engine
from tests.backends.tiny import CORPUS
from tests.conftest import RunningStack
from tests.helpers import md, new_tenant, rich_error, scoped_key

pytestmark = pytest.mark.integration
SKILL = "kb_answers"
EXACT, SEMANTIC = inf.CacheHit.KIND_EXACT, inf.CacheHit.KIND_SEMANTIC
# Every word the tiny model can say.
VOCABULARY = rpb.Document(
    document_id="vocabulary",
    text=". ".join(CORPUS) + ".",
    title="What the tiny model knows",
    source_uri="kb://vocabulary",
)
REFUNDS = rpb.Document(
    document_id="refunds",
    text=(
        "Refunds are available within thirty days after purchase. Items must be unused "
        "and in their original packaging. Shipping costs are never refunded."
    ),
    title="Refund rules",
)
QUESTION = "How long do I have to return an item?"
PARAPHRASE = "how many days do I have to return something?"  # cosine 0.86 with QUESTION
UNRELATED = "What is your shipping policy?"  # cosine 0.32


def rid() -> str:
    return str(uuid.uuid4())


def ask(text: str, policy_id: str, **kw: object) -> inf.InferRequest:
    return inf.InferRequest(
        skill=SKILL,
        messages=[tel.ChatMessage(role=tel.ChatMessage.ROLE_USER, content=text)],
        policy_id=policy_id,
        request_id=rid(),
        **kw,
    )


@dataclass
class Tenant:
    tenant_id: str
    admin: str
    infer: str
    ingest: str
    policies: dict[str, str]


async def make_index(
    channel: grpc.aio.Channel, key: str, index_id: str, *docs: rpb.Document
) -> None:
    stub = retrieval_pb2_grpc.RetrievalServiceStub(channel)
    await stub.CreateIndex(
        rpb.CreateIndexRequest(index=rpb.Index(index_id=index_id), request_id=rid()),
        metadata=md(key),
    )
    await stub.UpsertDocuments(
        rpb.UpsertDocumentsRequest(index_id=index_id, documents=docs, request_id=rid()),
        metadata=md(key),
    )


async def create_policy(channel: grpc.aio.Channel, admin: str, **fields: object) -> str:
    made = await registry_pb2_grpc.RegistryServiceStub(channel).CreatePolicy(
        reg.CreatePolicyRequest(
            policy=reg.Policy(
                skill_id=SKILL, base_model="tiny-llama",
                prompt_template=reg.PromptTemplate(system_prompt="answer briefly"),
                generation_defaults=reg.GenerationConfig(max_tokens=12, temperature=0.0),
                **fields,
            ),
            request_id=rid(),
        ),
        metadata=md(admin),
    )  # fmt: skip
    return made.policy.policy_id


def retrieval(index_id: str, top_k: int = 2, **kw: object) -> reg.RetrievalConfig:
    return reg.RetrievalConfig(
        enabled=True, collection=index_id, top_k=top_k, mode=rpb.SEARCH_MODE_HYBRID, **kw
    )


CACHE = reg.CacheConfig(
    enabled=True, similarity_threshold=0.8, ttl=duration_pb2.Duration(seconds=600)
)


async def tenant(channel: grpc.aio.Channel, operator_key: str, name: str) -> Tenant:
    tenant_id, admin = await new_tenant(channel, operator_key, name)
    registry = registry_pb2_grpc.RegistryServiceStub(channel)
    await registry.CreateSkill(
        reg.CreateSkillRequest(skill=reg.Skill(skill_id=SKILL), request_id=rid()),
        metadata=md(admin),
    )
    await make_index(channel, admin, "kb-cache", VOCABULARY, REFUNDS)
    # v1 first in every tenant: two tenants' cached policies share the id `kb_answers@v1`.
    cached = await create_policy(channel, admin, retrieval=retrieval("kb-cache"), cache=CACHE)
    await registry.PromotePolicy(
        reg.PromotePolicyRequest(skill_id=SKILL, policy_id=cached, reason="t", request_id=rid()),
        metadata=md(admin),
    )
    return Tenant(
        tenant_id, admin,
        await scoped_key(channel, admin, options_pb2.SCOPE_INFER),
        await scoped_key(channel, admin, options_pb2.SCOPE_INGEST),
        {"cached": cached},
    )  # fmt: skip


@pytest.fixture(scope="module")
async def one(stack: RunningStack, channel: grpc.aio.Channel) -> Tenant:
    t = await tenant(channel, stack.admin_key, "grounded")
    await make_index(channel, t.admin, "kb", VOCABULARY, REFUNDS)
    await make_index(channel, t.admin, "offtopic", REFUNDS)
    await make_index(channel, t.admin, "kb-inv", VOCABULARY, REFUNDS)
    await make_index(channel, t.admin, "doomed", VOCABULARY)
    t.policies |= {
        "grounded": await create_policy(channel, t.admin, retrieval=retrieval("kb")),
        "offtopic": await create_policy(channel, t.admin, retrieval=retrieval("offtopic")),
        "cite_or_refuse": await create_policy(
            channel, t.admin, retrieval=retrieval("offtopic"),
            guardrails=reg.GuardrailConfig(require_citations=True, refusal_message="No source."),
        ),
        "invalidated": await create_policy(
            channel, t.admin, retrieval=retrieval("kb-inv", top_k=3), cache=CACHE
        ),
        "doomed": await create_policy(channel, t.admin, retrieval=retrieval("doomed")),
    }  # fmt: skip
    return t


def infer(channel: grpc.aio.Channel) -> inference_pb2_grpc.InferenceServiceStub:
    return inference_pb2_grpc.InferenceServiceStub(channel)


async def test_grounded_answers_cite_real_chunks_and_log_their_context(
    channel: grpc.aio.Channel, one: Tenant
) -> None:
    answer = await infer(channel).Infer(
        ask("the capital of france", one.policies["grounded"]), metadata=md(one.infer)
    )
    assert answer.text.strip()
    retrieved = {c.chunk_id: c for c in answer.retrieved_chunks}
    assert {c.document_id for c in answer.retrieved_chunks} == {"vocabulary", "refunds"}
    assert answer.timings.retrieval.ToNanoseconds() > 0
    assert answer.groundedness.grounded and answer.groundedness.score > 0.5, answer
    assert "ungrounded" not in answer.guardrail_flags
    assert answer.citations, answer
    documents = retrieval_pb2_grpc.RetrievalServiceStub(channel)
    for citation in answer.citations:
        # The cited chunk is one the answer was given, and really is in its document.
        assert citation.chunk_id in retrieved and citation.document_id == "vocabulary"
        assert (citation.title, citation.source_uri) == (VOCABULARY.title, VOCABULARY.source_uri)
        doc = await documents.GetDocument(
            rpb.GetDocumentRequest(index_id="kb", document_id=citation.document_id),
            metadata=md(one.ingest),
        )
        [chunk] = [c for c in doc.chunks if c.chunk_id == citation.chunk_id]
        assert citation.quote and citation.quote in chunk.text
        assert chunk.text == doc.document.text[chunk.start_offset : chunk.end_offset]
        span = answer.text[citation.start_index : citation.end_index]
        assert span.strip() and span == span.strip()
    # The logged interaction carries the context, the citations and the groundedness.
    got = await telemetry_pb2_grpc.TelemetryServiceStub(channel).GetInteraction(
        tel.GetInteractionRequest(interaction_id=answer.interaction_id), metadata=md(one.ingest)
    )
    assert [c.chunk_id for c in got.interaction.retrieved_chunks] == list(retrieved)
    assert [c.text for c in got.interaction.retrieved_chunks] == [
        c.text for c in answer.retrieved_chunks
    ]
    assert list(got.outputs[0].citations) == list(answer.citations)
    assert got.outputs[0].groundedness == answer.groundedness
    assert got.interaction.timings.retrieval == answer.timings.retrieval

    # The stream ends with the same grounding.
    messages = [
        m
        async for m in infer(channel).InferStream(
            inf.InferStreamRequest(
                skill=SKILL, policy_id=one.policies["grounded"], request_id=rid(),
                messages=[tel.ChatMessage(role=tel.ChatMessage.ROLE_USER,
                                          content="the capital of france")],
            ),
            metadata=md(one.infer),
        )
    ]  # fmt: skip
    last = messages[-1]
    assert "".join(m.text_delta for m in messages) == answer.text  # greedy: same answer
    assert list(last.citations) == list(answer.citations)
    assert [c.chunk_id for c in last.retrieved_chunks] == list(retrieved)
    assert last.groundedness == answer.groundedness


async def test_an_answer_its_context_does_not_support_is_flagged(
    channel: grpc.aio.Channel, one: Tenant
) -> None:
    answer = await infer(channel).Infer(
        ask("the capital of france", one.policies["offtopic"]), metadata=md(one.infer)
    )
    assert [c.document_id for c in answer.retrieved_chunks] == ["refunds"]
    assert not answer.groundedness.grounded and answer.groundedness.score < 0.5
    assert answer.groundedness.unsupported_sentences
    assert "ungrounded" in answer.guardrail_flags and not answer.citations
    # With citations required, the uncited answer is refused.
    refused = await infer(channel).Infer(
        ask("the capital of france", one.policies["cite_or_refuse"]), metadata=md(one.infer)
    )
    assert refused.text == "No source." and refused.finish_reason == tel.FINISH_REASON_GUARDRAIL
    assert {"ungrounded", "missing_citations"} <= set(refused.guardrail_flags)


async def test_exact_and_semantic_hits_misses_and_bypass(
    channel: grpc.aio.Channel, one: Tenant
) -> None:
    policy = one.policies["cached"]
    gw = infer(channel)
    first = await gw.Infer(ask(QUESTION, policy), metadata=md(one.infer))
    assert first.cache.kind == inf.CacheHit.KIND_UNSPECIFIED and first.usage.completion_tokens
    assert first.groundedness.grounded  # only grounded answers are cached

    exact_request = ask(f"  {QUESTION.upper()} ", policy)
    exact = await gw.Infer(exact_request, metadata=md(one.infer))
    assert exact.cache == inf.CacheHit(
        kind=EXACT, similarity=1.0, source_interaction_id=first.interaction_id
    )
    assert (exact.text, list(exact.citations)) == (first.text, list(first.citations))
    assert exact.interaction_id != first.interaction_id and exact.usage.completion_tokens == 0
    # A hit is an interaction of its own, that feedback can name; a retry replays it.
    t = telemetry_pb2_grpc.TelemetryServiceStub(channel)
    got = await t.GetInteraction(
        tel.GetInteractionRequest(interaction_id=exact.interaction_id), metadata=md(one.ingest)
    )
    assert got.outputs[0].text == first.text and got.interaction.retrieved_chunks
    await t.SubmitFeedback(
        tel.SubmitFeedbackRequest(
            interaction_id=exact.interaction_id,
            feedback=tel.Feedback(explicit=tel.ExplicitFeedback(thumb=1)),
            request_id=rid(),
        ),
        metadata=md(one.ingest),
    )
    again = await gw.Infer(exact_request, metadata=md(one.infer))
    assert (again.interaction_id, again.cache) == (exact.interaction_id, exact.cache)

    semantic = await gw.Infer(ask(PARAPHRASE, policy), metadata=md(one.infer))
    assert semantic.cache.kind == SEMANTIC and 0.8 <= semantic.cache.similarity < 1.0
    assert semantic.cache.source_interaction_id == first.interaction_id
    assert semantic.text == first.text

    below = await gw.Infer(ask(UNRELATED, policy), metadata=md(one.infer))
    assert below.cache.kind == inf.CacheHit.KIND_UNSPECIFIED and below.usage.completion_tokens

    bypass = await gw.Infer(ask(QUESTION, policy, bypass_cache=True), metadata=md(one.infer))
    assert bypass.cache.kind == inf.CacheHit.KIND_UNSPECIFIED and bypass.usage.completion_tokens

    stream = [
        m
        async for m in gw.InferStream(
            inf.InferStreamRequest(
                skill=SKILL, policy_id=policy, request_id=rid(),
                messages=[tel.ChatMessage(role=tel.ChatMessage.ROLE_USER, content=QUESTION)],
            ),
            metadata=md(one.infer),
        )
    ]  # fmt: skip
    assert stream[-1].cache.kind == EXACT and "".join(m.text_delta for m in stream) == first.text


async def test_changing_the_index_invalidates_its_answers(
    channel: grpc.aio.Channel, one: Tenant
) -> None:
    policy, gw = one.policies["invalidated"], infer(channel)
    first = await gw.Infer(ask(QUESTION, policy), metadata=md(one.infer))
    hit = await gw.Infer(ask(QUESTION, policy), metadata=md(one.infer))
    assert hit.cache.source_interaction_id == first.interaction_id
    await retrieval_pb2_grpc.RetrievalServiceStub(channel).UpsertDocuments(
        rpb.UpsertDocumentsRequest(
            index_id="kb-inv",
            documents=[rpb.Document(document_id="returns", text="Returns need a receipt.")],
            request_id=rid(),
        ),
        metadata=md(one.ingest),
    )
    after = await gw.Infer(ask(QUESTION, policy), metadata=md(one.infer))
    assert after.cache.kind == inf.CacheHit.KIND_UNSPECIFIED and after.usage.completion_tokens
    assert "returns" in {c.document_id for c in after.retrieved_chunks}  # the new content
    assert after.groundedness.grounded  # (so it is cached)
    # Cached again, under the new content.
    again = await gw.Infer(ask(QUESTION, policy), metadata=md(one.infer))
    assert again.cache.source_interaction_id == after.interaction_id


async def test_tenants_never_share_answers(
    stack: RunningStack, channel: grpc.aio.Channel, one: Tenant
) -> None:
    two = await tenant(channel, stack.admin_key, "grounded-2")
    # Same policy id, same index id and content version, same question: only the
    # tenant differs.
    assert two.policies["cached"] == one.policies["cached"]
    versions = []
    for t in (one, two):
        index = await retrieval_pb2_grpc.RetrievalServiceStub(channel).GetIndex(
            rpb.GetIndexRequest(index_id="kb-cache"), metadata=md(t.ingest)
        )
        versions.append(index.index.content_version)
    assert versions[0] == versions[1]
    question = "is this a tiny model for tests?"
    gw = infer(channel)
    first = await gw.Infer(ask(question, one.policies["cached"]), metadata=md(one.infer))
    hit = await gw.Infer(ask(question, one.policies["cached"]), metadata=md(one.infer))
    assert hit.cache.source_interaction_id == first.interaction_id
    other = await gw.Infer(ask(question, two.policies["cached"]), metadata=md(two.infer))
    assert other.cache.kind == inf.CacheHit.KIND_UNSPECIFIED and other.usage.completion_tokens


async def test_bad_retrieval_fields_and_a_missing_index(
    stack: RunningStack, channel: grpc.aio.Channel, one: Tenant
) -> None:
    registry = registry_pb2_grpc.RegistryServiceStub(channel)
    for config, field in (
        (retrieval("no-such-index"), "policy.retrieval.collection"),
        (retrieval("kb", min_groundedness=2.0), "policy.retrieval.min_groundedness"),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await registry.CreatePolicy(
                reg.CreatePolicyRequest(
                    policy=reg.Policy(skill_id=SKILL, base_model="m", retrieval=config),
                    request_id=rid(),
                ),
                metadata=md(one.admin),
            )
        bad = rich_error(err.value)
        assert bad.code == grpc.StatusCode.INVALID_ARGUMENT
        assert [f for f, _ in bad.field_violations] == [field]
    # The index disappears behind the policy's back (RetrievalService refuses to delete
    # an index a live policy uses; an operator's SQL does not ask).
    engine = create_engine(stack.database_url, pool_size=1)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                text("DELETE FROM retrieval_indexes WHERE tenant_id = :t AND index_id = 'doomed'"),
                {"t": one.tenant_id},
            )
    finally:
        await engine.dispose()
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await infer(channel).Infer(ask("hello", one.policies["doomed"]), metadata=md(one.infer))
    missing = rich_error(err.value)
    assert missing.code == grpc.StatusCode.FAILED_PRECONDITION
    assert (
        missing.reason == "RETRIEVAL_INDEX_NOT_FOUND" and "retrieval.collection" in missing.message
    )
    assert "doomed" in missing.message
