"""The groundedness check and citations on hand-written cases (real all-MiniLM-L6-v2),
the default context block of the prompt, and the policy's retrieval/cache fields at
CreatePolicy."""

from __future__ import annotations

import pytest
from google.protobuf import duration_pb2

from rlaas.registry.v1 import registry_pb2 as pb
from rlaas.retrieval.v1 import retrieval_pb2 as rpb
from rlaas.telemetry.v1 import telemetry_pb2 as tel
from services.errors import InvalidArgument
from services.inference import grounding
from services.inference.prompting import build_messages
from services.registry.validation import validate_policy

pytestmark = pytest.mark.unit

REFUNDS = tel.RetrievedChunk(
    chunk_id="refunds#0",
    document_id="refunds",
    source_uri="kb://refunds",
    text=(
        "Refunds are available for 30 days after purchase. Items must be unused and in "
        "their original packaging. Shipping costs are not refunded."
    ),
)
REFUNDS.metadata.update({"title": "Refund policy"})
SHIPPING = tel.RetrievedChunk(
    chunk_id="shipping#0",
    document_id="shipping",
    text="Orders ship within two business days. Express delivery costs 12 euros.",
)
CONTEXT = [REFUNDS, SHIPPING]


@pytest.fixture(scope="module")
def embedder() -> grounding.LazyEmbedder:
    return grounding.LazyEmbedder()


async def check(embedder: grounding.LazyEmbedder, text: str) -> grounding.Grounding:
    return await grounding.check(embedder, text, CONTEXT, min_groundedness=0.0)


async def test_a_paraphrase_of_the_context_is_grounded_and_cites_its_source(
    embedder: grounding.LazyEmbedder,
) -> None:
    text = "You can get a refund within 30 days of purchase, as long as the item is unused."
    got = await check(embedder, text)
    assert got.groundedness.grounded and got.groundedness.score > 0.6, got.groundedness
    assert got.flags == [] and got.groundedness.method == grounding.METHOD
    [citation] = got.citations
    assert (citation.chunk_id, citation.document_id) == ("refunds#0", "refunds")
    assert (citation.title, citation.source_uri) == ("Refund policy", "kb://refunds")
    assert text[citation.start_index : citation.end_index] == text  # the whole sentence
    assert citation.quote in REFUNDS.text and "30 days" in citation.quote


async def test_unsupported_answers_are_flagged(embedder: grounding.LazyEmbedder) -> None:
    # Off-topic claims: nothing in the context says any of this.
    off = await check(embedder, "The capital of France is Paris. Our CEO was born in 1970.")
    assert not off.groundedness.grounded and off.groundedness.score < 0.2
    assert off.flags == [grounding.UNGROUNDED] and off.citations == []
    assert set(off.groundedness.unsupported_sentences) == {
        "The capital of France is Paris.",
        "Our CEO was born in 1970.",
    }
    # A changed number: on topic, almost the same words, and still unsupported.
    wrong = await check(embedder, "Refunds are available for 90 days after purchase.")
    assert not wrong.groundedness.grounded and wrong.flags == [grounding.UNGROUNDED]


async def test_a_half_invented_answer_names_the_invented_sentence(
    embedder: grounding.LazyEmbedder,
) -> None:
    text = "Orders ship within two business days. The moon is made of cheese."
    got = await check(embedder, text)
    assert list(got.groundedness.unsupported_sentences) == ["The moon is made of cheese."]
    assert 0.3 < got.groundedness.score < 0.5 and not got.groundedness.grounded
    # The supported sentence still cites its source, with its own span.
    [citation] = got.citations
    assert citation.chunk_id == "shipping#0"
    assert (
        text[citation.start_index : citation.end_index] == "Orders ship within two business days."
    )
    # A lower bar passes it.
    lenient = await grounding.check(embedder, text, CONTEXT, min_groundedness=0.3)
    assert lenient.groundedness.grounded and lenient.flags == []


async def test_markers_the_model_writes_are_the_citations(
    embedder: grounding.LazyEmbedder,
) -> None:
    text = "Express delivery costs 12 euros [2]. Refunds need unused items [1]. See [7]."
    got = await check(embedder, text)
    assert [c.chunk_id for c in got.citations] == ["shipping#0", "refunds#0"]  # [7]: no source
    first, second = got.citations
    assert text[first.start_index : first.end_index] == "Express delivery costs 12 euros [2]."
    assert text[second.start_index : second.end_index] == "Refunds need unused items [1]."
    assert second.quote == "Items must be unused and in their original packaging."
    assert got.groundedness.grounded


async def test_edge_cases(embedder: grounding.LazyEmbedder) -> None:
    # No claim at all (pleasantries only): nothing to refute.
    polite = await check(embedder, "Hello! Thanks.")
    assert polite.groundedness.grounded and polite.groundedness.score == 1.0
    # Claims but no context at all: unsupported.
    bare = await grounding.check(embedder, "Refunds take 30 days.", [], min_groundedness=0)
    assert bare.flags == [grounding.UNGROUNDED] and bare.groundedness.score == 0.0


def test_sentence_spans_are_code_point_offsets() -> None:
    text = "  Größe: 42 cm.\nNext line!  Done"
    spans = grounding.sentences(text)
    assert [s.text for s in spans] == ["Größe: 42 cm.", "Next line!", "Done"]
    assert all(text[s.start : s.end] == s.text for s in spans)


def test_the_prompt_numbers_the_sources_unless_the_template_places_them() -> None:
    messages = [{"role": "user", "content": "How long do refunds take?"}]
    default = pb.Policy(prompt_template=pb.PromptTemplate(system_prompt="Be brief."))
    out = build_messages(default, messages, context=CONTEXT, user_id="", skill="s")
    system = out[0]["content"]
    assert system.startswith("Be brief.") and "cite" in system
    assert f"[1] (Refund policy) {REFUNDS.text}" in system and f"[2] {SHIPPING.text}" in system
    placed = pb.Policy(
        prompt_template=pb.PromptTemplate(
            system_prompt="Be brief.", user_template="{{ context }}\n\nQ: {{ input }}"
        )
    )
    out = build_messages(placed, messages, context=CONTEXT, user_id="", skill="s")
    assert out[0]["content"] == "Be brief."  # no second copy in the system prompt
    assert out[1]["content"].startswith("[1] (Refund policy) Refunds")


def test_retrieval_and_cache_fields_are_validated_by_name() -> None:
    policy = pb.Policy(
        skill_id="support_email",
        base_model="m",
        retrieval=pb.RetrievalConfig(
            enabled=True, collection="Bad Index!", top_k=4, mode=9, min_groundedness=1.5,
            filter=rpb.SearchFilter(access_tags=[""]),
        ),
        cache=pb.CacheConfig(
            enabled=True, similarity_threshold=-0.1, ttl=duration_pb2.Duration(seconds=-5)
        ),
    )  # fmt: skip
    with pytest.raises(InvalidArgument) as err:
        validate_policy(policy)
    assert {v.field for v in err.value.violations} == {
        "policy.retrieval.collection",
        "policy.retrieval.mode",
        "policy.retrieval.min_groundedness",
        "policy.retrieval.filter.access_tags[0]",
        "policy.cache.similarity_threshold",
        "policy.cache.ttl",
    }
    ok = pb.Policy(
        skill_id="support_email",
        base_model="m",
        retrieval=pb.RetrievalConfig(
            enabled=True, collection="support-kb_1", top_k=4, mode=rpb.SEARCH_MODE_DENSE,
            min_groundedness=0.6,
        ),
        cache=pb.CacheConfig(
            enabled=True, similarity_threshold=1.0, ttl=duration_pb2.Duration(seconds=60)
        ),
    )  # fmt: skip
    validate_policy(ok)


async def test_numbers_from_the_question_are_not_invented(
    embedder: grounding.LazyEmbedder,
) -> None:
    text = "If you order at 4pm, orders ship within two business days."
    alone = await grounding.check(embedder, text, [SHIPPING], min_groundedness=0)
    asked = await grounding.check(
        embedder, text, [SHIPPING], min_groundedness=0, question="I order at 4pm, when?"
    )
    assert alone.groundedness.score == 0.0 and asked.groundedness.grounded
