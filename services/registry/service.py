"""Skills, policies, deployments and the audit log: the domain core behind
RegistryService (and the reads the inference gateway's router needs). No gRPC here.

Every mutation is one transaction that (1) locks the row it changes, (2) claims its
``request_id``, (3) checks and writes, (4) appends an audit entry and, for
deployments, (5) sends ``pg_notify('rlaas_deployments', '<tenant>/<skill>/<revision>')``,
which Postgres delivers only if the transaction commits.

Layout, one job per module: ``base`` (the shared state, the gateway's reads, scope
checks and audit entries), ``skills``, ``policies``, ``deployments`` (traffic,
promotion, rollback) and ``audit_log`` (list, erase, verify). ``RegistryCore``
combines the four jobs; the names other modules import are re-exported here.
"""

from __future__ import annotations

from services.registry.audit_log import MAX_ERASE_IDS, AuditFilter, AuditLog
from services.registry.base import RPC, Caller
from services.registry.deployments import DEPLOYMENTS_CHANNEL, Deployments
from services.registry.policies import Policies, PolicyDiff
from services.registry.skills import Skills

__all__ = [
    "DEPLOYMENTS_CHANNEL",
    "MAX_ERASE_IDS",
    "RPC",
    "AuditFilter",
    "Caller",
    "PolicyDiff",
    "RegistryCore",
]


class RegistryCore(Skills, Policies, Deployments, AuditLog):
    """Every registry job over one set of sessions and one object store: what
    RegistryService, the training services, the rollouts and the workers call. Each job
    depends on ``RegistryBase`` only, never on another job's methods, so the order of
    the bases does not matter."""
