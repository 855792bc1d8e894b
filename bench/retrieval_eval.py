"""Retrieval quality benchmark (issue 7): recall@10, MRR and nDCG@10 on the labelled
Northwind Goods help centre shipped in the repo (``services/retrieval/data/support_kb``),
per search mode, through the real RetrievalService.

A gRPC server (the retrieval service only) over embedded Postgres (pgserver) and a
milvus-lite server, all in a temporary directory: CreateIndex and UpsertDocuments with
the shipped documents (the server's default chunking), then one EvaluateRetrieval per
mode (dense, sparse, hybrid, and hybrid with the re-ranker). Quality does not depend on
the machine; the wall time of each evaluation is reported for scale.
Results: bench/results/retrieval_eval.json.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import tempfile
import time
import uuid
from pathlib import Path

import grpc

from bench.milvus import milvus_lite_server
from infra import migrate
from rlaas.retrieval.v1 import retrieval_pb2 as pb
from rlaas.retrieval.v1 import retrieval_pb2_grpc
from services.app import Runtime, start_server
from services.config import LogFormat, Settings
from services.logs import configure_logging
from services.retrieval.support_kb import load_labelled_queries, load_support_kb
from services.tenancy.bootstrap import bootstrap_operator

RESULTS = Path(__file__).resolve().parent / "results" / "retrieval_eval.json"
INDEX = "northwind-help"
K = 10
RUNS = [
    ("dense", pb.SEARCH_MODE_DENSE, False),
    ("sparse", pb.SEARCH_MODE_SPARSE, False),
    ("hybrid", pb.SEARCH_MODE_HYBRID, False),
    ("hybrid_rerank", pb.SEARCH_MODE_HYBRID, True),
]


def rid() -> str:
    return str(uuid.uuid4())


def documents() -> list[pb.Document]:
    out = []
    for d in load_support_kb():
        doc = pb.Document(
            document_id=d.document_id, title=d.title, source_uri=d.source_uri, text=d.text
        )
        doc.metadata.update(d.metadata)
        out.append(doc)
    return out


async def run(tmp: Path, milvus_uri: str) -> dict[str, object]:
    import pgserver

    configure_logging(Settings(log_format=LogFormat.JSON, log_level="WARNING"))
    pg = pgserver.get_server(str(tmp / "pg"), cleanup_mode="stop")
    url = pg.get_uri()
    await migrate.upgrade_async(url)
    operator = await bootstrap_operator(Settings(), url)
    assert operator is not None
    key = (("authorization", f"Bearer {operator.secret}"),)
    settings = Settings(
        services=["retrieval"], state_dir=tmp / "state", milvus_uri=milvus_uri,
        log_level="WARNING",
    )  # fmt: skip
    runtime = Runtime.create(settings, url)
    server = await start_server(runtime, port=0)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.port}")
    stub = retrieval_pb2_grpc.RetrievalServiceStub(channel)
    try:
        await stub.CreateIndex(
            pb.CreateIndexRequest(
                index=pb.Index(index_id=INDEX, description="Northwind Goods help centre"),
                request_id=rid(),
            ),
            metadata=key,
        )
        docs = documents()
        t0 = time.perf_counter()
        upserted = await stub.UpsertDocuments(
            pb.UpsertDocumentsRequest(index_id=INDEX, documents=docs, request_id=rid()),
            metadata=key,
        )
        upsert_s = time.perf_counter() - t0
        labelled = load_labelled_queries()
        queries = [
            pb.LabelledQuery(query=q.query, relevant_document_ids=q.relevant_document_ids)
            for q in labelled
        ]
        modes: dict[str, object] = {}
        for name, mode, rerank in RUNS:
            t0 = time.perf_counter()
            answer = await stub.EvaluateRetrieval(
                pb.EvaluateRetrievalRequest(
                    index_id=INDEX, queries=queries, k=K, mode=mode, rerank=rerank
                ),
                metadata=key,
            )
            m = answer.metrics
            modes[name] = {
                f"recall@{K}": round(m.recall_at_k, 4),
                "mrr": round(m.mrr, 4),
                "ndcg@10": round(m.ndcg_at_10, 4),
                "reranker": answer.reranker,
                "evaluate_s": round(time.perf_counter() - t0, 2),
            }
            print(name, modes[name], flush=True)
        index = upserted.index
        return {
            "benchmark": "retrieval quality on the shipped labelled set (EvaluateRetrieval)",
            "dataset": {
                "documents": len(docs),
                "chunks": index.chunk_count,
                "queries": len(queries),
                "queries_with_two_relevant": sum(
                    len(q.relevant_document_ids) > 1 for q in labelled
                ),
                "embedding_model": index.embedding_model,
                "chunking": "server default",
            },
            "k": K,
            "unit": "documents (a document's best-ranked chunk); MRR to rank 100",
            "upsert_s": round(upsert_s, 2),
            "modes": modes,
        }
    finally:
        await channel.close()
        await server.stop(0)
        await runtime.close()
        pg.cleanup()


def main() -> None:
    with (
        tempfile.TemporaryDirectory(prefix="rlaas-bench-retrieval-eval-") as tmp,
        milvus_lite_server(f"{tmp}/milvus") as (uri, _),
    ):
        results = asyncio.run(run(Path(tmp), uri))
    results["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version()}
    results["when"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
