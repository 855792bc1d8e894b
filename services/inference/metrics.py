"""Tokens, latency and cost per tenant / skill / policy (Prometheus)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

REQUESTS = Counter(
    "rlaas_inference_requests", "Infer calls by outcome.", ["tenant", "skill", "policy", "outcome"]
)
TOKENS = Counter(
    "rlaas_inference_tokens", "Tokens processed.", ["tenant", "skill", "policy", "kind"]
)
COST = Counter("rlaas_inference_cost_usd", "Cost of inference.", ["tenant", "skill", "policy"])
LATENCY = Histogram(
    "rlaas_inference_latency_seconds",
    "End-to-end Infer latency.",
    ["tenant", "skill", "policy"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)


CACHE_LOOKUPS = Counter(
    "rlaas_answer_cache_lookups",
    "Answer-cache lookups by result (exact, semantic, miss); hit rate = hits / all.",
    ["tenant", "skill", "policy", "result"],
)
RETRIEVAL_LATENCY = Histogram(
    "rlaas_inference_retrieval_seconds",
    "Retrieval time of grounded Infer calls.",
    ["tenant", "skill", "policy"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
UNGROUNDED = Counter(
    "rlaas_inference_ungrounded", "Answers flagged ungrounded.", ["tenant", "skill", "policy"]
)


def record(
    tenant: str, skill: str, policy: str, *, outcome: str, prompt: int, completion: int,
    cost: float, latency_s: float,
) -> None:  # fmt: skip
    REQUESTS.labels(tenant, skill, policy, outcome).inc()
    TOKENS.labels(tenant, skill, policy, "prompt").inc(prompt)
    TOKENS.labels(tenant, skill, policy, "completion").inc(completion)
    COST.labels(tenant, skill, policy).inc(cost)
    LATENCY.labels(tenant, skill, policy).observe(latency_s)
