"""Retrieval metrics on a tiny set computed by hand (the arithmetic is in the comments),
the validation of labelled queries, and the shipped Northwind Goods labelled set."""

from __future__ import annotations

import math

import pytest

from services.errors import InvalidArgument
from services.retrieval.evaluation import (
    RetrievalMetrics,
    document_ranking,
    evaluate_retrieval,
    metrics_of,
    ndcg_at_k,
    recall_at_k,
    reciprocal_rank,
    required_depth,
)
from services.retrieval.support_kb import load_labelled_queries, load_support_kb

pytestmark = pytest.mark.unit

# Four queries. Rankings are document ids of chunk hits, best first (d1 twice: two chunks).
Q1 = ("where is my parcel", ["d3", "d1", "d1", "d5", "d2"], ["d1", "d2"])
Q2 = ("refund time", ["d4"], ["d4"])
Q3: tuple[str, list[str], list[str]] = ("no hits at all", [], ["d6"])
Q4 = ("late hit", [f"x{i}" for i in range(10)] + ["d7", "x10"], ["d7"])
QUERIES = [(q, rel) for q, _, rel in (Q1, Q2, Q3, Q4)]
RANKINGS = {q: ranking for q, ranking, _ in (Q1, Q2, Q3, Q4)}


def test_repeats_count_once_at_their_best_rank() -> None:
    assert document_ranking(["d3", "d1", "d1", "d5", "d2", "d3"]) == ["d3", "d1", "d5", "d2"]
    assert required_depth(10) == 100 and required_depth(100) == 100


def test_per_query_measures_by_hand() -> None:
    q1, rel1 = Q1[1], Q1[2]
    # Documents in order: d3 (1), d1 (2), d5 (3), d2 (4); relevant: d1, d2.
    assert recall_at_k(q1, rel1, 3) == 0.5  # top 3 = d3, d1, d5: 1 of 2 relevant
    assert recall_at_k(q1, rel1, 4) == 1.0  # d2 is 4th (the repeat of d1 does not push it to 5th)
    assert reciprocal_rank(q1, rel1) == 0.5  # first relevant (d1) at rank 2
    # DCG = 1/log2(2+1) + 1/log2(4+1) = 0.630930 + 0.430677 = 1.061606
    # IDCG (d1, d2 at ranks 1, 2) = 1/log2(2) + 1/log2(3) = 1 + 0.630930 = 1.630930
    assert ndcg_at_k(q1, rel1) == pytest.approx(1.061606 / 1.630930, abs=1e-6)  # 0.650920
    # Cut at 2: DCG = 0.630930 (d2 at 4 is past the cut); IDCG@2 = 1.630930.
    assert ndcg_at_k(q1, rel1, 2) == pytest.approx(0.630930 / 1.630930, abs=1e-6)

    late = Q4[1]  # d7 is the 11th document
    assert recall_at_k(late, ["d7"], 10) == 0.0
    assert reciprocal_rank(late, ["d7"]) == pytest.approx(1 / 11)
    assert ndcg_at_k(late, ["d7"]) == 0.0  # outside the top 10
    deep = [f"x{i}" for i in range(100)] + ["d7"]  # 101st: past MRR's depth of 100
    assert reciprocal_rank(deep, ["d7"]) == 0.0
    assert reciprocal_rank(deep[1:], ["d7"]) == pytest.approx(1 / 100)
    assert recall_at_k([], ["d7"], 10) == reciprocal_rank([], ["d7"]) == 0.0
    with pytest.raises(ValueError, match="relevant"):
        recall_at_k(["d1"], [], 10)


def test_means_by_hand() -> None:
    metrics = metrics_of([RANKINGS[q] for q, _ in QUERIES], QUERIES, k=3)
    # recall@3: q1 0.5, q2 1 (d4 first), q3 0 (nothing returned), q4 0 -> 1.5 / 4
    # MRR: q1 1/2, q2 1/1, q3 0, q4 1/11 -> (0.5 + 1 + 0 + 0.090909) / 4 = 0.397727
    # nDCG@10: q1 0.650920, q2 1, q3 0, q4 0 -> 1.650920 / 4 = 0.412730
    assert metrics.query_count == 4 and metrics.k == 3
    assert metrics.recall_at_k == pytest.approx(0.375)
    assert metrics.mrr == pytest.approx((0.5 + 1 + 1 / 11) / 4)
    assert metrics.mrr == pytest.approx(0.397727, abs=1e-6)
    assert metrics.ndcg_at_10 == pytest.approx(0.412730, abs=1e-6)
    # The formula itself, so a library that changed its discount would be caught.
    by_formula = (1 / math.log2(3) + 1 / math.log2(5)) / (1 + 1 / math.log2(3))
    assert metrics.ndcg_at_10 == pytest.approx((by_formula + 1) / 4)


async def test_evaluate_retrieval_runs_every_search() -> None:
    asked: list[str] = []

    async def search(query: str) -> list[str]:
        asked.append(query)
        return list(RANKINGS[query])

    metrics = await evaluate_retrieval(search, QUERIES, k=3, concurrency=2)
    assert sorted(asked) == sorted(q for q, _ in QUERIES)
    assert metrics == metrics_of([RANKINGS[q] for q, _ in QUERIES], QUERIES, k=3)
    assert isinstance(metrics, RetrievalMetrics)
    # Default k = 10: q1 and q2 find everything, q3 nothing, q4's d7 is 11th.
    assert (await evaluate_retrieval(search, QUERIES)).recall_at_k == pytest.approx(0.5)


async def test_bad_labelled_queries_name_their_fields() -> None:
    async def search(query: str) -> list[str]:
        raise AssertionError("must not search")

    with pytest.raises(InvalidArgument) as err:
        await evaluate_retrieval(search, [])
    assert [v.field for v in err.value.violations] == ["queries"]
    with pytest.raises(InvalidArgument) as err:
        await evaluate_retrieval(search, [("ok", ["d1"]), (" ", ["d1"]), ("q", [])], k=0)
    assert [v.field for v in err.value.violations] == [
        "k",
        "queries[1].query",
        "queries[2].relevant_document_ids",
    ]
    with pytest.raises(InvalidArgument):
        await evaluate_retrieval(search, [("q", ["d1"])], k=101)


def test_the_shipped_labelled_set_is_consistent() -> None:
    docs = load_support_kb()
    queries = load_labelled_queries()
    ids = [d.document_id for d in docs]
    assert len(ids) == len(set(ids)) >= 30
    assert len(queries) >= 60
    known = set(ids)
    for q in queries:
        assert q.relevant_document_ids and set(q.relevant_document_ids) <= known, q
    assert sum(len(q.relevant_document_ids) == 2 for q in queries) >= 5
    categories = {d.metadata["category"] for d in docs}
    assert {"shipping", "returns", "refunds", "warranty", "payments", "accounts"} <= categories
    # Queries are phrased unlike their documents: no query is a verbatim sentence of them.
    text = {d.document_id: d.text.casefold() for d in docs}
    for q in queries:
        assert all(q.query.casefold().rstrip("?") not in text[r] for r in q.relevant_document_ids)
