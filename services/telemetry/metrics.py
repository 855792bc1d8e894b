"""Ingest counters, exposed to Prometheus (``/metrics`` of ``rlaas serve``) and through
GetTelemetrySettings for the caller's own tenant.

The metrics endpoint has no authentication, so by default no label names a tenant or
what it runs (tenant, skill and policy labels are empty; ``RLAAS_METRICS_TENANT_LABELS``
turns them on where the endpoint is private). Each tenant's own counters are kept apart,
in process, for GetTelemetrySettings."""

from __future__ import annotations

from collections import Counter as Tally
from collections import defaultdict

from prometheus_client import Counter

from services.telemetry.events import EVENT_NAMES

INGESTED = Counter(
    "rlaas_telemetry_events",
    "Telemetry events by tenant (empty unless RLAAS_METRICS_TENANT_LABELS), kind and "
    "outcome (accepted, duplicate, rejected).",
    ["tenant", "kind", "outcome"],
)

_tenant_labels = False
# tenant -> (kind, outcome) -> count: what GetTelemetrySettings reports to the tenant.
_per_tenant: defaultdict[str, Tally[tuple[str, str]]] = defaultdict(Tally)


def configure(*, tenant_labels: bool) -> None:
    """Whether Prometheus labels carry tenant, skill and policy ids (set at server start)."""
    global _tenant_labels
    _tenant_labels = tenant_labels


def label(value: str) -> str:
    """A tenant-identifying label value (tenant, skill or policy id) as exposed: itself
    when the operator opted in, else empty (Prometheus treats it as no label)."""
    return value if _tenant_labels else ""


def record(tenant_id: str, event_type: int, outcome: str, n: int = 1) -> None:
    kind = EVENT_NAMES.get(event_type, "unknown")
    INGESTED.labels(tenant=label(tenant_id), kind=kind, outcome=outcome).inc(n)
    _per_tenant[tenant_id][(kind, outcome)] += n


def tenant_counts(tenant_id: str) -> dict[tuple[str, str], float]:
    """(kind, outcome) -> count for one tenant, since this process started."""
    return {key: float(n) for key, n in _per_tenant.get(tenant_id, Tally()).items()}
