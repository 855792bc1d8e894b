"""Who is calling: derived from the API key on every RPC, never from a request body."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from enum import StrEnum

from services.errors import PermissionDenied


class Scope(StrEnum):
    INGEST = "ingest"
    INFER = "infer"
    TRAIN = "train"
    ADMIN = "admin"
    DEPLOY = "deploy"
    """Change what is served (traffic, promotion, rollback, rollouts, learning loops)."""


@dataclass(frozen=True, slots=True)
class Principal:
    tenant_id: str
    api_key_id: str
    scopes: frozenset[Scope]
    operator: bool = False

    def allows(self, scope: Scope) -> bool:
        # admin is the tenant owner's key: it may do anything within its tenant.
        return Scope.ADMIN in self.scopes or scope in self.scopes

    def require(self, scope: Scope) -> None:
        if not self.allows(scope):
            raise PermissionDenied(
                f"API key {self.api_key_id} lacks the {scope.value!r} scope",
                reason="MISSING_SCOPE",
                metadata={"required_scope": scope.value},
            )

    def require_any(self, *scopes: Scope) -> None:
        """Reads that a command's answer includes: a deploy key moving a rollout sees
        the rollout it moved, though listing rollouts is the train scope's."""
        if not any(self.allows(s) for s in scopes):
            self.require(scopes[0])

    def require_operator(self) -> None:
        if not self.operator:
            raise PermissionDenied("only the operator tenant may do this", reason="OPERATOR_ONLY")


current_principal: ContextVar[Principal | None] = ContextVar("current_principal", default=None)
