"""Grounded answers: retrieve a policy's context, then check the answer against it.

Retrieval: the policy's ``retrieval`` config names an index of the caller's tenant; the
gateway searches it with the last user message and puts the hits in the prompt.

The check, per answer sentence s and context chunk c:

    support(s, c) = (0.5 * max(cos(e(s), e(c)), 0) + 0.5 * lexical(s, c)) * numbers(s, c)

- ``cos`` of the all-MiniLM-L6-v2 embeddings catches paraphrase;
- ``lexical`` is the share of s's content words (stop words dropped, a crude plural
  fold) that occur in c, which an embedding alone over-credits for topical but
  unsupported sentences;
- ``numbers`` is the share of s's numeric tokens found in c: a changed number ("90 days"
  against a source that says 30) is the classic hallucination that both other signals
  miss, so it multiplies.

A sentence's support is its best chunk's; the answer's score is the mean over sentences
with content words, and at or below the policy's ``min_groundedness`` (default 0.5) the
answer is flagged ``ungrounded``. It is a screen, not entailment: a sentence that
negates its source ("are refunded" vs "are not refunded") still scores high.

Citations: markers ``[n]`` the model wrote name the n-th source; without any, each
sentence cites its best chunk when that chunk supports it above the threshold. Spans are
code-point offsets in the answer; the quote is the source sentence that shares most
words with the cited span (a substring of the chunk, so it can be checked).
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from rlaas.registry.v1 import registry_pb2 as reg
from rlaas.retrieval.v1 import retrieval_pb2 as rpb
from rlaas.telemetry.v1 import telemetry_pb2 as tel
from services.errors import FailedPrecondition, NotFound

METHOD = "embedding-lexical-support-v1"
DEFAULT_MIN_GROUNDEDNESS = 0.5
MAX_UNSUPPORTED = 5  # Groundedness.unsupported_sentences holds at most this many
MAX_CITATIONS = 32
UNGROUNDED = "ungrounded"
MISSING_CITATIONS = "missing_citations"

# Sentences: runs up to terminal punctuation or a line break (answers use both).
_SENTENCE = re.compile(r"[^.!?\n]+(?:[.!?]+|$)|[^.!?\n]+", re.MULTILINE)
_WORD = re.compile(r"\w+", re.UNICODE)
_MARKER = re.compile(r"\[(\d{1,3})\]")
# Function words carry no claim: a sentence is not "supported" by sharing them.
_STOP = frozenset(
    """a an and are as at be been but by can could did do does for from had has have he her
    his how i if in into is it its me my no not of on or our she so than that the their them
    then there these they this those to too us was we were what when where which who why
    will with would you your yours also just about any all some very may might must should
    here please hello hi hey thanks thank welcome sorry glad dear regards
    """.split()  # noqa: SIM905 - a word list reads better as text
)


class Retriever(Protocol):
    """What the gateway needs of ``services.retrieval.core.RetrievalCore``."""

    async def search(
        self,
        tenant_id: str,
        index_id: str,
        query: str,
        *,
        top_k: int,
        mode: int,
        filter: rpb.SearchFilter | None,
        rerank: bool,
        min_score: float,
    ) -> rpb.SearchResponse: ...

    async def content_version(self, tenant_id: str, index_id: str) -> int: ...


class Embeds(Protocol):
    async def aembed(self, texts: Sequence[str]) -> np.ndarray: ...


# ---- retrieval -----------------------------------------------------------------------


@dataclass
class Retrieved:
    chunks: list[tel.RetrievedChunk]
    content_version: int
    seconds: float


def index_missing(policy: reg.Policy) -> FailedPrecondition:
    index_id = policy.retrieval.collection
    return FailedPrecondition(
        f"policy {policy.policy_id} retrieves from index {index_id!r} "
        f"(retrieval.collection), which does not exist in this tenant",
        reason="RETRIEVAL_INDEX_NOT_FOUND",
        metadata={"field": "retrieval.collection", "index_id": index_id},
    )


def to_retrieved_chunk(hit: rpb.SearchHit) -> tel.RetrievedChunk:
    c = hit.chunk
    out = tel.RetrievedChunk(
        chunk_id=c.chunk_id,
        document_id=c.document_id,
        source_uri=c.source_uri,
        text=c.text,
        score=hit.score,
        rank=hit.rank,
    )
    if c.HasField("metadata"):
        out.metadata.CopyFrom(c.metadata)
    # RetrievedChunk has no title field; citations read it back from here.
    if c.title:
        out.metadata.update({"title": c.title})
    return out


async def retrieve(
    retriever: Retriever, tenant_id: str, policy: reg.Policy, query: str
) -> Retrieved:
    """The policy's context for ``query`` from its index in the caller's tenant.
    Raises FAILED_PRECONDITION naming ``retrieval.collection`` when the index is gone
    (the policy was valid when created; the index was deleted since)."""
    cfg = policy.retrieval
    started = time.perf_counter()
    try:
        found = await retriever.search(
            tenant_id,
            cfg.collection,
            query,
            top_k=cfg.top_k,
            mode=cfg.mode or rpb.SEARCH_MODE_HYBRID,
            filter=cfg.filter if cfg.HasField("filter") else None,
            rerank=cfg.rerank,
            min_score=cfg.min_score,
        )
    except NotFound as err:
        raise index_missing(policy) from err
    return Retrieved(
        [to_retrieved_chunk(h) for h in found.hits],
        found.content_version,
        time.perf_counter() - started,
    )


# ---- the check -----------------------------------------------------------------------


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    text: str


def sentences(text: str) -> list[Span]:
    """Sentence spans of ``text`` (code-point offsets, surrounding blanks trimmed)."""
    out = []
    for m in _SENTENCE.finditer(text):
        raw = m.group(0)
        stripped = raw.strip()
        if not stripped:
            continue
        start = m.start() + (len(raw) - len(raw.lstrip()))
        out.append(Span(start, start + len(stripped), stripped))
    return out


def _fold(word: str) -> str:
    # A crude plural fold ("refunds" ~ "refund") without a stemmer dependency.
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word


def content_words(text: str) -> set[str]:
    words = (w.lower() for w in _WORD.findall(_MARKER.sub(" ", text)))
    return {_fold(w) for w in words if w not in _STOP}


def _numbers(words: set[str]) -> set[str]:
    return {w for w in words if any(ch.isdigit() for ch in w)}


def lexical_support(sentence_words: set[str], chunk_words: set[str]) -> float:
    """Share of the sentence's content words found in the chunk."""
    if not sentence_words:
        return 0.0
    return len(sentence_words & chunk_words) / len(sentence_words)


def number_factor(sentence_words: set[str], chunk_words: set[str]) -> float:
    """Share of the sentence's numbers found in the chunk (1 when it has none)."""
    numbers = _numbers(sentence_words)
    if not numbers:
        return 1.0
    return len(numbers & chunk_words) / len(numbers)


def support_matrix(
    answer_sentences: Sequence[str],
    chunk_texts: Sequence[str],
    sentence_vectors: np.ndarray,
    chunk_vectors: np.ndarray,
    *,
    question: str = "",
) -> np.ndarray:
    """support[i, j] of sentence i by chunk j (see the module docstring), in [0, 1].
    Numbers the user's ``question`` states count as known (echoing "4pm" back invents
    nothing)."""
    known = _numbers(content_words(question))
    cos = np.clip(sentence_vectors @ chunk_vectors.T, 0.0, 1.0)
    s_words = [content_words(s) for s in answer_sentences]
    c_words = [content_words(c) for c in chunk_texts]
    out = np.zeros((len(answer_sentences), len(chunk_texts)), dtype=np.float64)
    for i, sw in enumerate(s_words):
        for j, cw in enumerate(c_words):
            combined = 0.5 * float(cos[i, j]) + 0.5 * lexical_support(sw, cw)
            out[i, j] = combined * number_factor(sw, cw | known)
    return out


def _quote(chunk_text: str, span_text: str) -> str:
    """The chunk's sentence sharing most content words with the span (a substring of
    the chunk)."""
    words = content_words(span_text)
    best, best_overlap = "", -1
    for s in sentences(chunk_text):
        overlap = len(words & content_words(s.text))
        if overlap > best_overlap:
            best, best_overlap = s.text, overlap
    return best or chunk_text[:500]


def _citation(chunk: tel.RetrievedChunk, span: Span) -> tel.Citation:
    title = chunk.metadata.fields["title"].string_value if "title" in chunk.metadata.fields else ""
    return tel.Citation(
        chunk_id=chunk.chunk_id,
        document_id=chunk.document_id,
        source_uri=chunk.source_uri,
        title=title,
        quote=_quote(chunk.text, span.text),
        start_index=span.start,
        end_index=span.end,
    )


@dataclass
class Grounding:
    groundedness: tel.Groundedness
    citations: list[tel.Citation] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)


def explicit_citations(text: str, chunks: Sequence[tel.RetrievedChunk]) -> list[tel.Citation]:
    """``[n]`` markers naming one of the n numbered sources; the span is the sentence
    holding the marker."""
    out: list[tel.Citation] = []
    seen: set[tuple[int, int]] = set()
    for span in sentences(text):
        for m in _MARKER.finditer(span.text):
            n = int(m.group(1))
            if 1 <= n <= len(chunks) and (span.start, n) not in seen:
                seen.add((span.start, n))
                out.append(_citation(chunks[n - 1], span))
    return out[:MAX_CITATIONS]


def assess(
    text: str,
    chunks: Sequence[tel.RetrievedChunk],
    sentence_vectors: np.ndarray,
    chunk_vectors: np.ndarray,
    *,
    min_groundedness: float,
    spans: Sequence[Span] | None = None,
    question: str = "",
) -> Grounding:
    """Groundedness and citations of ``text`` given its context (vectors precomputed,
    one row per scorable sentence / chunk): pure, so it is unit-tested directly."""
    threshold = min_groundedness or DEFAULT_MIN_GROUNDEDNESS
    spans = list(spans if spans is not None else scorable(text))
    if not spans:
        # Nothing claimed (an empty or all-function-word answer): nothing to refute.
        g = tel.Groundedness(score=1.0, grounded=True, method=METHOD)
        return Grounding(g)
    if not chunks:
        g = tel.Groundedness(
            score=0.0, grounded=False, method=METHOD,
            unsupported_sentences=[s.text for s in spans[:MAX_UNSUPPORTED]],
        )  # fmt: skip
        return Grounding(g, flags=[UNGROUNDED])
    support = support_matrix(
        [s.text for s in spans], [c.text for c in chunks], sentence_vectors, chunk_vectors,
        question=question,
    )  # fmt: skip
    best = support.max(axis=1)
    score = float(best.mean())
    weakest = [int(i) for i in np.argsort(best, kind="stable") if best[i] <= threshold]
    g = tel.Groundedness(
        score=round(score, 4),
        grounded=score > threshold,
        unsupported_sentences=[spans[i].text for i in weakest[:MAX_UNSUPPORTED]],
        method=METHOD,
    )
    citations = explicit_citations(text, chunks)
    if not citations:
        for i, span in enumerate(spans):
            j = int(support[i].argmax())
            if support[i, j] > threshold:
                citations.append(_citation(chunks[j], span))
    return Grounding(g, citations[:MAX_CITATIONS], [] if g.grounded else [UNGROUNDED])


def scorable(text: str) -> list[Span]:
    """The sentences that make a claim (at least one content word)."""
    return [s for s in sentences(text) if content_words(s.text)]


async def check(
    embedder: Embeds,
    text: str,
    chunks: Sequence[tel.RetrievedChunk],
    *,
    min_groundedness: float,
    question: str = "",
) -> Grounding:
    """``assess`` with the embeddings computed (one batch, off the event loop)."""
    spans = scorable(text)
    texts = [_MARKER.sub(" ", s.text) for s in spans] + [c.text for c in chunks]
    vectors = await embedder.aembed(texts) if spans and chunks else np.zeros((0, 1), np.float32)
    n = len(spans)
    return assess(
        text, chunks, vectors[:n], vectors[n:], min_groundedness=min_groundedness, spans=spans,
        question=question,
    )  # fmt: skip


class LazyEmbedder:
    """The process-wide all-MiniLM-L6-v2, loaded in a worker thread on first use (the
    server starts without paying for it when no policy retrieves or caches)."""

    def __init__(self) -> None:
        self._embedder: Embeds | None = None

    async def aembed(self, texts: Sequence[str]) -> np.ndarray:
        if self._embedder is None:
            import asyncio

            from services.retrieval.embedding import default_embedder

            self._embedder = await asyncio.to_thread(default_embedder)
        return await self._embedder.aembed(texts)
