"""Retrieval evaluation: recall@k, MRR and nDCG@10 over labelled queries.

Documents are the unit (the contract's ``RetrievalMetrics``): a search returns chunks,
several of which may come from one document, so a ranking is first reduced to
document ids in order with each document kept once, at its best rank
(:func:`document_ranking`). Relevance is binary: a document is relevant or not.

The measures themselves come from ``ir-measures`` over ``trec_eval`` (via
pytrec-eval), the reference implementation the IR community reports numbers with; we
only turn a ranked list into the score dictionary it expects (strictly decreasing
scores, so its tie-breaking by document id never applies). The measures used:

- recall@k (``R@k``): found relevant documents in the top k / all relevant documents;
- reciprocal rank (``RR@100``): 1 / rank of the first relevant document, 0 when none
  is in the top 100 (:data:`MRR_DEPTH`);
- nDCG@k (``nDCG@k``): DCG = sum over relevant documents at rank r <= k of
  1 / log2(r + 1), divided by the DCG of the ideal ranking (all relevant first).

Depth: a search must return at least :func:`required_depth` documents (100) for MRR
to be exact; a shorter list counts a relevant document below it as not found.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass

import ir_measures
from ir_measures import RR, R, nDCG

from services.errors import FieldViolation, InvalidArgument

MRR_DEPTH = 100
"""Reciprocal rank is counted to this rank (the contract: "0 if none in the top 100")."""
NDCG_K = 10
MAX_K = 100
MAX_QUERIES = 1000
DEFAULT_CONCURRENCY = 4
"""Searches in flight at once: enough to overlap Postgres and Milvus round-trips, few
enough not to starve the event loop's other RPCs of the embedder on 2 cores."""


@dataclass(frozen=True)
class RetrievalMetrics:
    """Means over the queries (the proto's ``RetrievalMetrics``)."""

    query_count: int
    k: int
    recall_at_k: float
    mrr: float
    ndcg_at_10: float


def required_depth(k: int = 10) -> int:
    """Documents a search must return for every measure to be exact."""
    return max(k, NDCG_K, MRR_DEPTH)


def document_ranking(document_ids: Iterable[str]) -> list[str]:
    """Ranked ids with repeats removed, each at its first (best) rank: chunks of one
    document count once."""
    return list(dict.fromkeys(d for d in document_ids if d))


def _run(ranking: Sequence[str]) -> dict[str, float]:
    # trec_eval ranks by score, not by list position: give it strictly decreasing scores.
    docs = document_ranking(ranking)
    return {doc: float(len(docs) - rank) for rank, doc in enumerate(docs)}


def _measure(
    measure: ir_measures.Measure, ranking: Sequence[str], relevant: Iterable[str]
) -> float:
    qrels = {"q": {doc: 1 for doc in relevant}}
    if not qrels["q"]:
        raise ValueError("a query needs at least one relevant document")
    values = {
        m.measure: m.value for m in ir_measures.iter_calc([measure], qrels, {"q": _run(ranking)})
    }
    # A query whose ranking is empty gets no row from trec_eval: it scored 0.
    return float(values.get(measure, 0.0))


def recall_at_k(ranking: Sequence[str], relevant: Iterable[str], k: int) -> float:
    """Share of the relevant documents found in the top ``k`` documents."""
    return _measure(R @ k, ranking, relevant)


def reciprocal_rank(
    ranking: Sequence[str], relevant: Iterable[str], depth: int = MRR_DEPTH
) -> float:
    """1 / rank of the first relevant document in the top ``depth``; 0 if none."""
    return _measure(RR @ depth, ranking, relevant)


def ndcg_at_k(ranking: Sequence[str], relevant: Iterable[str], k: int = NDCG_K) -> float:
    """nDCG@k with binary gains and the log2(rank + 1) discount."""
    return _measure(nDCG @ k, ranking, relevant)


def check_queries(queries: Sequence[tuple[str, Sequence[str]]], k: int) -> None:
    """INVALID_ARGUMENT naming every offending field (the request's paths)."""
    violations: list[FieldViolation] = []
    if not queries:
        violations.append(FieldViolation("queries", "at least one labelled query is required"))
    elif len(queries) > MAX_QUERIES:
        violations.append(FieldViolation("queries", f"at most {MAX_QUERIES} queries"))
    if not 1 <= k <= MAX_K:
        violations.append(FieldViolation("k", f"must be in [1, {MAX_K}]"))
    for i, (query, relevant) in enumerate(queries[:MAX_QUERIES]):
        if not query.strip():
            violations.append(FieldViolation(f"queries[{i}].query", "is required"))
        if not any(d for d in relevant):
            violations.append(
                FieldViolation(
                    f"queries[{i}].relevant_document_ids", "at least one document id is required"
                )
            )
    if violations:
        raise InvalidArgument(violations)


def metrics_of(
    rankings: Sequence[Sequence[str]], queries: Sequence[tuple[str, Sequence[str]]], k: int = 10
) -> RetrievalMetrics:
    """The mean measures of ``rankings[i]`` (ranked document ids) for ``queries[i]``."""
    check_queries(queries, k)
    if len(rankings) != len(queries):
        raise ValueError(f"{len(rankings)} rankings for {len(queries)} queries")
    qids = [f"q{i}" for i in range(len(queries))]
    qrels = {
        qid: {doc: 1 for doc in relevant if doc}
        for qid, (_, relevant) in zip(qids, queries, strict=True)
    }
    run = {qid: _run(ranking) for qid, ranking in zip(qids, rankings, strict=True)}
    measures = [R @ k, RR @ MRR_DEPTH, nDCG @ NDCG_K]
    # Summed per query ourselves rather than with calc_aggregate: a query with an empty
    # ranking gets no row from trec_eval, and must still count (as 0) in every mean.
    totals = dict.fromkeys(measures, 0.0)
    for row in ir_measures.iter_calc(measures, qrels, run):
        totals[row.measure] += float(row.value)
    n = len(queries)
    return RetrievalMetrics(
        query_count=n,
        k=k,
        recall_at_k=totals[R @ k] / n,
        mrr=totals[RR @ MRR_DEPTH] / n,
        ndcg_at_10=totals[nDCG @ NDCG_K] / n,
    )


async def evaluate_retrieval(
    search: Callable[[str], Awaitable[list[str]]],
    queries: Sequence[tuple[str, Sequence[str]]],
    k: int = 10,
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
) -> RetrievalMetrics:
    """Runs ``search(query)`` for every labelled query and measures the rankings.

    ``search`` returns the ids of the documents of its hits, best first (one per chunk
    is fine: repeats are folded to the best rank); it should return at least
    :func:`required_depth` (k) documents' worth of hits, i.e. search with the largest
    ``top_k`` the index allows (100), or MRR undercounts late first hits.

    Raises ``InvalidArgument`` (fields named as in ``EvaluateRetrievalRequest``) for
    no queries, a query without relevant documents, or ``k`` outside [1, 100]; the
    searches' own errors propagate."""
    check_queries(queries, k)
    gate = asyncio.Semaphore(max(1, concurrency))

    async def one(query: str) -> list[str]:
        async with gate:
            return await search(query)

    rankings = await asyncio.gather(*(one(q) for q, _ in queries))
    return metrics_of(rankings, queries, k)
