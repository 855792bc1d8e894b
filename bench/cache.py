"""Answer-cache benchmark (issue 7): a cache hit against a model call, same run, through
the gateway.

One server in this process (inference, registry, retrieval, telemetry) over a fresh
pgserver and a milvus-lite server, the real base model (SmolLM2-135M-Instruct, the
local backend), and a grounded policy with the answer cache on, whose index holds the
shipped support knowledge base (services/retrieval/data/support_kb). For each labelled
query, interleaved so that machine noise hits the series alike:

- model call: Infer with ``bypass_cache`` (retrieval, generation, groundedness check,
  logging) — what every request costs without the cache;
- exact hit: the same question again, three times (as is, upper case with blanks, lower
  case);
- semantic hit: the question behind a short preamble ("Quick question: ..."), a hit when
  its embedding is within the policy's threshold (0.9) of the stored one.

Every call is a real gRPC call from a client in this process and is logged as an
interaction. Only answers the groundedness check passes are cached, so the questions
whose first answer was flagged never hit (``grounded_first_answers`` says how many
passed). Reported: p50/p99 of each series, the model-call / hit ratios, the hit rate
from the gateway's Prometheus counters. Results: bench/results/cache.json.
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
import numpy as np
from prometheus_client import REGISTRY

from bench.milvus import milvus_lite_server
from infra import migrate
from rlaas.inference.v1 import inference_pb2 as inf
from rlaas.inference.v1 import inference_pb2_grpc
from rlaas.registry.v1 import registry_pb2 as reg
from rlaas.registry.v1 import registry_pb2_grpc
from rlaas.retrieval.v1 import retrieval_pb2 as rpb
from rlaas.retrieval.v1 import retrieval_pb2_grpc
from rlaas.telemetry.v1 import telemetry_pb2 as tel
from services.app import Runtime, start_server
from services.config import LogFormat, Settings
from services.inference.backend_factory import LazyBackend
from services.logs import configure_logging
from services.retrieval.support_kb import load_labelled_queries, load_support_kb
from services.tenancy.bootstrap import bootstrap_operator

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "cache.json"
QUERIES = int(os.environ.get("BENCH_CACHE_QUERIES", "20"))
MAX_TOKENS = int(os.environ.get("BENCH_CACHE_MAX_TOKENS", "48"))
THRESHOLD = 0.9
SKILL = "support"


def pct(values: list[float]) -> dict[str, float]:
    arr = np.asarray(values) * 1000
    return {
        "n": len(values),
        "p50_ms": round(float(np.percentile(arr, 50)), 2),
        "p99_ms": round(float(np.percentile(arr, 99)), 2),
    }


def rid() -> str:
    return str(uuid.uuid4())


def lookups() -> dict[str, float]:
    out: dict[str, float] = {}
    for metric in REGISTRY.collect():
        if metric.name == "rlaas_answer_cache_lookups":
            for sample in metric.samples:
                if sample.name.endswith("_total") and sample.labels["skill"] == SKILL:
                    result = sample.labels["result"]
                    out[result] = out.get(result, 0) + sample.value
    return out


async def serve_and_run(tmp: str, milvus_uri: str, milvus_port: int) -> dict[str, object]:
    import pgserver

    pg = pgserver.get_server(Path(tmp) / "pg", cleanup_mode="stop")
    try:
        url = pg.get_uri()
        await migrate.upgrade_async(url)
        operator = await bootstrap_operator(Settings(), url)
        assert operator is not None
        key = (("authorization", f"Bearer {operator.secret}"),)
        settings = Settings(
            services=["inference", "registry", "retrieval", "telemetry"],
            state_dir=Path(tmp) / "state", milvus_port=milvus_port, log_level="WARNING",
            # The hit counts below are read per skill from the Prometheus labels.
            metrics_tenant_labels=True,
        )  # fmt: skip
        runtime = Runtime.create(settings, url)
        # The real base model, from the dequantized cache `make up` keeps in .rlaas (built
        # there on first use: about 20 s, once).
        runtime.backend = LazyBackend(settings.model_copy(update={"state_dir": ROOT / ".rlaas"}))
        server = await start_server(runtime, port=0)
        try:
            return await run(f"127.0.0.1:{server.port}", key)
        finally:
            await server.stop(1)
            await runtime.close()
    finally:
        pg.cleanup()


def main() -> None:
    configure_logging(Settings(log_format=LogFormat.JSON, log_level="WARNING"))
    with (
        tempfile.TemporaryDirectory(prefix="rlaas-bench-cache-") as tmp,
        milvus_lite_server(f"{tmp}/milvus") as (uri, port),
    ):
        result = asyncio.run(serve_and_run(tmp, uri, port))
    result["when"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


async def run(target: str, key: tuple[tuple[str, str], ...]) -> dict[str, object]:
    async with grpc.aio.insecure_channel(target) as channel:
        registry = registry_pb2_grpc.RegistryServiceStub(channel)
        retrieval = retrieval_pb2_grpc.RetrievalServiceStub(channel)
        gateway = inference_pb2_grpc.InferenceServiceStub(channel)
        await registry.CreateSkill(
            reg.CreateSkillRequest(skill=reg.Skill(skill_id=SKILL), request_id=rid()),
            metadata=key,
        )
        await retrieval.CreateIndex(
            rpb.CreateIndexRequest(index=rpb.Index(index_id="help"), request_id=rid()),
            metadata=key,
        )
        docs = [
            rpb.Document(document_id=d.document_id, text=d.text, title=d.title,
                         source_uri=d.source_uri)
            for d in load_support_kb()
        ]  # fmt: skip
        await retrieval.UpsertDocuments(
            rpb.UpsertDocumentsRequest(index_id="help", documents=docs, request_id=rid()),
            metadata=key,
        )
        policy = reg.Policy(
            skill_id=SKILL, base_model="SmolLM2-135M-Instruct",
            prompt_template=reg.PromptTemplate(system_prompt="You answer customers briefly."),
            generation_defaults=reg.GenerationConfig(max_tokens=MAX_TOKENS, temperature=0.0),
            retrieval=reg.RetrievalConfig(enabled=True, collection="help", top_k=3),
            cache=reg.CacheConfig(enabled=True, similarity_threshold=THRESHOLD),
        )  # fmt: skip
        made = await registry.CreatePolicy(
            reg.CreatePolicyRequest(policy=policy, request_id=rid()), metadata=key
        )
        policy_id = made.policy.policy_id
        await registry.PromotePolicy(
            reg.PromotePolicyRequest(
                skill_id=SKILL, policy_id=policy_id, reason="bench", request_id=rid()
            ),
            metadata=key,
        )

        async def ask(text: str, **kw: bool) -> tuple[float, inf.InferResponse]:
            request = inf.InferRequest(
                skill=SKILL, request_id=rid(),
                messages=[tel.ChatMessage(role=tel.ChatMessage.ROLE_USER, content=text)], **kw,
            )  # fmt: skip
            started = time.perf_counter()
            answer = await gateway.Infer(request, metadata=key)
            return time.perf_counter() - started, answer

        queries = [q.query for q in load_labelled_queries()][:QUERIES]
        await ask("warm up: what is your returns policy?")  # loads the models
        model, exact, semantic = [], [], []
        similarities, grounded = [], 0
        for query in queries:
            seconds, first = await ask(query, bypass_cache=False)  # a miss: stores it
            model.append(seconds)
            grounded += first.groundedness.grounded
            seconds, answer = await ask(query, bypass_cache=True)
            model.append(seconds)
            for variant in (query, f"  {query.upper()}  ", query.lower()):
                seconds, answer = await ask(variant)
                if answer.cache.kind == inf.CacheHit.KIND_EXACT:
                    exact.append(seconds)
            seconds, answer = await ask(f"Quick question: {query}")
            if answer.cache.kind == inf.CacheHit.KIND_SEMANTIC:
                semantic.append(seconds)
                similarities.append(answer.cache.similarity)
        counts = lookups()
        hits = counts.get("exact", 0) + counts.get("semantic", 0)
        total = hits + counts.get("miss", 0)
        m, e = pct(model), pct(exact)
        s = pct(semantic) if semantic else {}
        return {
            "what": "Infer through the gateway: model call (retrieval + SmolLM2-135M "
            f"generation, {MAX_TOKENS} max tokens, groundedness, logging) vs answer-cache hits",
            "machine": f"{platform.machine()}, {os.cpu_count()} cores",
            "queries": len(queries),
            "grounded_first_answers": grounded,
            "model_call": m,
            "exact_hit": e,
            "semantic_hit": s,
            "semantic_threshold": THRESHOLD,
            "semantic_similarity_mean": round(float(np.mean(similarities)), 4)
            if similarities
            else None,
            "speedup_p50_exact": round(m["p50_ms"] / e["p50_ms"], 1),
            "speedup_p99_exact": round(m["p99_ms"] / e["p99_ms"], 1),
            "speedup_p50_semantic": round(m["p50_ms"] / s["p50_ms"], 1) if s else None,
            "speedup_p99_semantic": round(m["p99_ms"] / s["p99_ms"], 1) if s else None,
            "cache_lookups": counts,
            "hit_rate": round(hits / total, 4) if total else None,
        }


if __name__ == "__main__":
    main()
