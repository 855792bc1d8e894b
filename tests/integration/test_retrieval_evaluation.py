"""EvaluateRetrieval on the shipped Northwind Goods labelled set, through the real server
(Postgres, milvus-lite, all-MiniLM-L6-v2): the RPC's metrics equal those that
``evaluate_retrieval`` computes over the same searches made with the Search RPC, per
mode; the numbers are in the range the benchmark measured; bad input is named."""

from __future__ import annotations

import uuid

import grpc
import pytest

from rlaas.retrieval.v1 import retrieval_pb2 as pb
from rlaas.retrieval.v1 import retrieval_pb2_grpc
from services.retrieval.evaluation import evaluate_retrieval
from services.retrieval.support_kb import load_labelled_queries, load_support_kb
from tests.conftest import RunningStack
from tests.helpers import md, new_tenant, rich_error

pytestmark = pytest.mark.integration

INDEX = "northwind-help"
MODES = {
    "dense": pb.SEARCH_MODE_DENSE,
    "sparse": pb.SEARCH_MODE_SPARSE,
    "hybrid": pb.SEARCH_MODE_HYBRID,
}
# Floors well under what bench/retrieval_eval.py measured (dense recall@10 0.99, MRR 0.81;
# sparse 0.85 / 0.62): a broken embedder, chunker or label mapping falls far below them.
FLOORS = {"dense": (0.9, 0.7), "sparse": (0.7, 0.5), "hybrid": (0.8, 0.6)}


def rid() -> str:
    return str(uuid.uuid4())


async def test_evaluate_retrieval_rpc_matches_the_searches(
    stack: RunningStack, channel: grpc.aio.Channel
) -> None:
    _, admin = await new_tenant(channel, stack.admin_key, "retrieval-eval")
    stub = retrieval_pb2_grpc.RetrievalServiceStub(channel)
    await stub.CreateIndex(
        pb.CreateIndexRequest(index=pb.Index(index_id=INDEX), request_id=rid()),
        metadata=md(admin),
    )
    docs = []
    for d in load_support_kb():
        doc = pb.Document(document_id=d.document_id, title=d.title, text=d.text)
        doc.source_uri = d.source_uri
        doc.metadata.update(d.metadata)
        docs.append(doc)
    await stub.UpsertDocuments(
        pb.UpsertDocumentsRequest(index_id=INDEX, documents=docs, request_id=rid()),
        metadata=md(admin),
    )
    labelled = [(q.query, list(q.relevant_document_ids)) for q in load_labelled_queries()]
    queries = [pb.LabelledQuery(query=q, relevant_document_ids=r) for q, r in labelled]

    for name, mode in MODES.items():
        answer = await stub.EvaluateRetrieval(
            pb.EvaluateRetrievalRequest(index_id=INDEX, queries=queries, k=10, mode=mode),
            metadata=md(admin),
        )
        assert answer.mode == mode

        async def search(query: str, mode: int = mode) -> list[str]:
            found = await stub.Search(
                pb.SearchRequest(index_id=INDEX, query=query, top_k=100, mode=mode),
                metadata=md(admin),
            )
            return [h.chunk.document_id for h in found.hits]

        expected = await evaluate_retrieval(search, labelled, k=10)
        got = answer.metrics
        assert (got.query_count, got.k) == (expected.query_count, 10) == (len(labelled), 10)
        assert got.recall_at_k == pytest.approx(expected.recall_at_k, abs=1e-9), name
        assert got.mrr == pytest.approx(expected.mrr, abs=1e-9), name
        assert got.ndcg_at_10 == pytest.approx(expected.ndcg_at_10, abs=1e-9), name
        recall_floor, mrr_floor = FLOORS[name]
        assert got.recall_at_k >= recall_floor and got.mrr >= mrr_floor, (name, got)

    # k reaches recall: recall@1 <= recall@10, and MRR / nDCG@10 do not depend on k.
    at_1 = await stub.EvaluateRetrieval(
        pb.EvaluateRetrievalRequest(index_id=INDEX, queries=queries, k=1, mode=MODES["dense"]),
        metadata=md(admin),
    )
    assert at_1.metrics.k == 1
    dense = await stub.EvaluateRetrieval(
        pb.EvaluateRetrievalRequest(index_id=INDEX, queries=queries, mode=MODES["dense"]),
        metadata=md(admin),
    )
    assert dense.metrics.k == 10  # the default
    assert at_1.metrics.recall_at_k < dense.metrics.recall_at_k
    assert at_1.metrics.mrr == pytest.approx(dense.metrics.mrr)

    # Bad input is named; an unknown index is NOT_FOUND.
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.EvaluateRetrieval(
            pb.EvaluateRetrievalRequest(
                index_id=INDEX, queries=[pb.LabelledQuery(query="where is my parcel")]
            ),
            metadata=md(admin),
        )
    info = rich_error(err.value)
    assert info.code == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in info.field_violations] == ["queries[0].relevant_document_ids"]
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.EvaluateRetrieval(
            pb.EvaluateRetrievalRequest(index_id="no-such-index", queries=queries[:1]),
            metadata=md(admin),
        )
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
