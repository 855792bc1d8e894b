"""The command groups of ``rlaasctl``: one module each, owning its flags and handlers.

Each module has ``register(sub)``, which adds its top-level command (or commands: the
deployment verbs ``status``, ``promote``, ``rollback``, ``canary`` and ``traffic`` live with
``deployments``) to the top-level subparsers. Every leaf command it adds is one RPC, built
with :func:`rlaasctl.parsing.command`, and names its handler. ``GROUPS`` is the registry:
group name → module, in the order ``rlaasctl --help`` lists them.
"""

from __future__ import annotations

from typing import Any, Protocol

from rlaasctl.commands import (
    audit,
    datasets,
    deployments,
    docs,
    evals,
    feedback,
    indexes,
    infer,
    keys,
    loops,
    policies,
    rollouts,
    runs,
    search,
    skills,
    telemetry,
    tenants,
    whoami,
)


class CommandGroup(Protocol):
    def register(self, sub: Any) -> None: ...


GROUPS: dict[str, CommandGroup] = {
    # identity
    "whoami": whoami,
    "tenants": tenants,
    "keys": keys,
    # registry
    "skills": skills,
    "policies": policies,
    "deployments": deployments,
    "audit": audit,
    # inference and telemetry
    "infer": infer,
    "feedback": feedback,
    "telemetry": telemetry,
    # training
    "loops": loops,
    "rollouts": rollouts,
    "datasets": datasets,
    "runs": runs,
    "evals": evals,
    # retrieval
    "indexes": indexes,
    "docs": docs,
    "search": search,
}


def register_all(sub: Any) -> None:
    """Add every group's commands to the top-level subparsers, in registry order."""
    for group in GROUPS.values():
        group.register(sub)
