"""Retrieval benchmark (issue 7).

1. Search latency p50/p99 of the exact (FLAT, inner product) Milvus search the service
   uses, at 50k chunks x 384-d on milvus-lite, through ``VectorStore`` with its tenant
   and index filter (a second tenant's 5k rows share the collection, as in production).
   The vectors are random unit vectors inserted directly: latency does not depend on
   where they came from.
2. Recall@10 of that search against brute-force numpy on the same vectors (FLAT is
   exact, so it must be 1.0).
3. Upsert throughput: chunks/s through ``RetrievalCore.upsert_documents`` with real
   text (chunking, all-MiniLM-L6-v2 embedding on the CPU, Milvus, Postgres).
4. End-to-end ``RetrievalCore.search`` latency per mode on that real-text index.

Embedded Postgres (pgserver) and a milvus-lite server in a temporary directory.
Results: bench/results/retrieval.json.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import random
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
from sqlalchemy import text

from bench.milvus import milvus_lite_server
from infra import migrate
from rlaas.retrieval.v1 import retrieval_pb2 as pb
from services.db.engine import create_engine, create_session_factory
from services.retrieval.core import RetrievalCore
from services.retrieval.embedding import DIMENSION, default_embedder
from services.retrieval.vectors import ChunkVector, VectorStore

RESULTS = Path(__file__).resolve().parent / "results" / "retrieval.json"
CHUNKS = int(os.environ.get("BENCH_CHUNKS", "50000"))
OTHER_TENANT_CHUNKS = int(os.environ.get("BENCH_OTHER_CHUNKS", "5000"))
QUERIES = int(os.environ.get("BENCH_QUERIES", "200"))
DOCS = int(os.environ.get("BENCH_DOCS", "120"))
K = 10

TOPICS = {
    "billing": "invoice charge refund payment card subscription plan receipt tax",
    "shipping": "parcel courier delivery tracking warehouse express customs address",
    "account": "password login security email verification profile settings lock",
    "product": "battery screen charger warranty repair firmware bluetooth model",
}
GLUE = [
    "the",
    "a",
    "our",
    "your",
    "when",
    "if",
    "please",
    "we",
    "will",
    "can",
    "is",
    "are",
    "after",
    "before",
    "within",
    "each",
]


def unit_vectors(rng: np.random.Generator, n: int) -> np.ndarray:
    v = rng.standard_normal((n, DIMENSION)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def document(rng: random.Random, i: int) -> pb.Document:
    topic = rng.choice(list(TOPICS))
    words = TOPICS[topic].split()
    sentences: list[str] = []
    while sum(len(s) for s in sentences) < 3500:
        n = rng.randint(8, 18)
        sentence = " ".join(rng.choice(words if rng.random() < 0.4 else GLUE) for _ in range(n))
        sentences.append(sentence.capitalize() + ". ")
    d = pb.Document(document_id=f"doc-{i:05d}", text="".join(sentences), title=topic)
    d.metadata.update({"topic": topic})
    return d


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


async def run(tmp: Path, milvus_uri: str) -> dict[str, object]:
    import pgserver

    pg = pgserver.get_server(str(tmp / "pg"), cleanup_mode="stop")
    try:
        return await measure(pg.get_uri(), milvus_uri)
    finally:
        pg.cleanup()  # the server outlives the process otherwise


async def measure(url: str, milvus_uri: str) -> dict[str, object]:
    await migrate.upgrade_async(url)
    engine = create_engine(url, pool_size=4)
    sessions = create_session_factory(engine)
    async with sessions() as s, s.begin():
        await s.execute(
            text(
                "INSERT INTO tenants (tenant_id, display_name, state, operator) "
                "VALUES ('bench', 'bench', 'active', false), ('other', 'other', 'active', false)"
            )
        )
    vectors = VectorStore(milvus_uri, token=None, collection="bench_chunks", dimension=DIMENSION)
    core = RetrievalCore(sessions, vectors)
    out: dict[str, object] = {}

    # ---- 1 + 2: exact search at 50k x 384 --------------------------------------------
    rng = np.random.default_rng(7)
    corpus = unit_vectors(rng, CHUNKS)
    ids = [f"chk_{i:08d}" for i in range(CHUNKS)]
    rows = [ChunkVector(ids[i], f"d{i // 10}", "s", "", {}, corpus[i]) for i in range(CHUNKS)]
    other = unit_vectors(rng, OTHER_TENANT_CHUNKS)
    other_rows = [
        ChunkVector(f"oth_{i:08d}", "o", "s", "", {}, other[i]) for i in range(len(other))
    ]
    t0 = time.perf_counter()
    await vectors.upsert("bench", "synthetic", rows)
    insert_s = time.perf_counter() - t0
    await vectors.upsert("other", "synthetic", other_rows)
    # What the store does on its own two seconds after a burst of writes (see
    # services.retrieval.vectors); measured here so the latencies are of the steady state.
    t0 = time.perf_counter()
    await vectors.flush()
    flush_s = time.perf_counter() - t0
    queries = unit_vectors(rng, QUERIES)
    await vectors.search("bench", "synthetic", queries[0], K)  # warm-up (loads segments)
    latencies, recalls = [], []
    for q in queries:
        t = time.perf_counter()
        hits = await vectors.search("bench", "synthetic", q, K)
        latencies.append((time.perf_counter() - t) * 1000)
        truth = {ids[j] for j in np.argsort(-(corpus @ q))[:K]}
        recalls.append(len(truth & {c for c, _ in hits}) / K)
        assert all(c.startswith("chk_") for c, _ in hits), "another tenant's row came back"
    out["vector_search"] = {
        "chunks": CHUNKS,
        "other_tenant_chunks": OTHER_TENANT_CHUNKS,
        "dimension": DIMENSION,
        "index": "FLAT (exact), inner product on unit vectors",
        "queries": QUERIES,
        "k": K,
        "insert_s": round(insert_s, 2),
        "insert_vectors_per_s": round(CHUNKS / insert_s),
        "flush_s": round(flush_s, 2),
        "search_p50_ms": round(pct(latencies, 50), 2),
        "search_p99_ms": round(pct(latencies, 99), 2),
        "recall_at_10_vs_numpy": float(np.mean(recalls)),
    }
    print(json.dumps(out["vector_search"], indent=2), flush=True)
    await vectors.delete("bench", "synthetic")
    await vectors.delete("other", "synthetic")

    # ---- 3: upsert throughput with real text and embedding ---------------------------
    default_embedder()  # loaded once per process; not part of the throughput
    await core.create_index("bench", pb.Index(index_id="kb"), str(uuid.uuid4()))
    text_rng = random.Random(11)
    docs = [document(text_rng, i) for i in range(DOCS)]
    chunks = 0
    t0 = time.perf_counter()
    for start in range(0, len(docs), 20):
        reply = await core.upsert_documents(
            "bench", "kb", docs[start : start + 20], str(uuid.uuid4())
        )
        chunks += sum(r.chunk_count for r in reply.results)
    upsert_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    again = await core.upsert_documents("bench", "kb", docs[:20], str(uuid.uuid4()))
    unchanged_s = time.perf_counter() - t0
    assert all(r.outcome == pb.DocumentResult.OUTCOME_UNCHANGED for r in again.results)
    out["upsert"] = {
        "documents": DOCS,
        "chunks": chunks,
        "chunk_size": 800,
        "chunk_overlap": 100,
        "documents_per_call": 20,
        "seconds": round(upsert_s, 2),
        "chunks_per_s": round(chunks / upsert_s, 1),
        "unchanged_reupsert_of_20_docs_ms": round(unchanged_s * 1000, 1),
    }
    print(json.dumps(out["upsert"], indent=2), flush=True)

    # ---- 4: end-to-end search on the real-text index ---------------------------------
    questions = [
        "how do I get a refund on my card",
        "where is my parcel, the tracking has not changed",
        "I cannot log in, reset my password",
        "the battery does not charge after the firmware update",
    ]
    search: dict[str, object] = {}
    for name, mode, rerank in (
        ("dense", pb.SEARCH_MODE_DENSE, False),
        ("sparse", pb.SEARCH_MODE_SPARSE, False),
        ("hybrid", pb.SEARCH_MODE_HYBRID, False),
        ("hybrid_rerank_bm25", pb.SEARCH_MODE_HYBRID, True),
    ):
        await core.search("bench", "kb", questions[0], mode=mode, rerank=rerank)  # warm
        lat = []
        for i in range(40):
            t = time.perf_counter()
            await core.search("bench", "kb", questions[i % 4], mode=mode, rerank=rerank, top_k=5)
            lat.append((time.perf_counter() - t) * 1000)
        search[name] = {"p50_ms": round(pct(lat, 50), 2), "p99_ms": round(pct(lat, 99), 2)}
    out["core_search"] = {"chunks": chunks, "top_k": 5, "modes": search}
    print(json.dumps(out["core_search"], indent=2), flush=True)
    vectors.close()
    await engine.dispose()
    return out


def main() -> None:
    with (
        tempfile.TemporaryDirectory(prefix="rlaas-bench-retrieval-") as tmp,
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
