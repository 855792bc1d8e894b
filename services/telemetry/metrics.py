"""Ingest counters, exposed to Prometheus (``/metrics`` of ``rlaas serve``) and through
GetTelemetrySettings for the caller's own tenant."""

from __future__ import annotations

from prometheus_client import Counter

from services.telemetry.events import EVENT_NAMES

INGESTED = Counter(
    "rlaas_telemetry_events",
    "Telemetry events by tenant, kind and outcome (accepted, duplicate, rejected).",
    ["tenant", "kind", "outcome"],
)


def record(tenant_id: str, event_type: int, outcome: str, n: int = 1) -> None:
    kind = EVENT_NAMES.get(event_type, "unknown")
    INGESTED.labels(tenant=tenant_id, kind=kind, outcome=outcome).inc(n)


def tenant_counts(tenant_id: str) -> dict[tuple[str, str], float]:
    """(kind, outcome) -> count for one tenant, read back from the registry."""
    counts: dict[tuple[str, str], float] = {}
    for metric in INGESTED.collect():
        for sample in metric.samples:
            if sample.name.endswith("_total") and sample.labels.get("tenant") == tenant_id:
                counts[(sample.labels["kind"], sample.labels["outcome"])] = sample.value
    return counts
