"""Tokens, latency and cost per tenant / skill / policy (Prometheus). Those three labels
are empty unless ``RLAAS_METRICS_TENANT_LABELS`` is on (see services.telemetry.metrics):
the endpoint has no authentication, and must not list who the tenants are or what
they run."""

from __future__ import annotations

from typing import Generic, TypeVar

from prometheus_client import Counter, Histogram

from services.telemetry.metrics import label

M = TypeVar("M", Counter, Histogram)


class _TenantLabelled(Generic[M]):
    """A metric whose first three labels (tenant, skill, policy) pass through
    ``label``, so no caller can expose them by accident."""

    def __init__(self, metric: M) -> None:
        self.metric: M = metric

    def labels(self, tenant: str, skill: str, policy: str, *rest: str) -> M:
        return self.metric.labels(label(tenant), label(skill), label(policy), *rest)


REQUESTS = _TenantLabelled(
    Counter(
        "rlaas_inference_requests",
        "Infer calls by outcome.",
        ["tenant", "skill", "policy", "outcome"],
    )
)
TOKENS = _TenantLabelled(
    Counter("rlaas_inference_tokens", "Tokens processed.", ["tenant", "skill", "policy", "kind"])
)
COST = _TenantLabelled(
    Counter("rlaas_inference_cost_usd", "Cost of inference.", ["tenant", "skill", "policy"])
)
LATENCY = _TenantLabelled(
    Histogram(
        "rlaas_inference_latency_seconds",
        "End-to-end Infer latency.",
        ["tenant", "skill", "policy"],
        buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
    )
)


CACHE_LOOKUPS = _TenantLabelled(
    Counter(
        "rlaas_answer_cache_lookups",
        "Answer-cache lookups by result (exact, semantic, miss); hit rate = hits / all.",
        ["tenant", "skill", "policy", "result"],
    )
)
RETRIEVAL_LATENCY = _TenantLabelled(
    Histogram(
        "rlaas_inference_retrieval_seconds",
        "Retrieval time of grounded Infer calls.",
        ["tenant", "skill", "policy"],
        buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
    )
)
UNGROUNDED = _TenantLabelled(
    Counter(
        "rlaas_inference_ungrounded", "Answers flagged ungrounded.", ["tenant", "skill", "policy"]
    )
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
