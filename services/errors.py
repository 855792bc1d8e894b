"""Domain errors: the one way the core reports a failure.

The core knows nothing of gRPC. Each error carries a canonical code (the
``google.rpc.Code`` names), a machine-readable ``reason`` (UPPER_SNAKE, becomes
``ErrorInfo.reason``) and, for bad input, the offending fields (``BadRequest``).
``services.server.status`` is the single place that turns them into a
``google.rpc.Status``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum


class ErrorCode(Enum):
    # Values are google.rpc.Code numbers.
    DEADLINE_EXCEEDED = 4
    INVALID_ARGUMENT = 3
    NOT_FOUND = 5
    ALREADY_EXISTS = 6
    PERMISSION_DENIED = 7
    RESOURCE_EXHAUSTED = 8
    FAILED_PRECONDITION = 9
    ABORTED = 10
    UNIMPLEMENTED = 12
    INTERNAL = 13
    UNAVAILABLE = 14
    UNAUTHENTICATED = 16


ERROR_DOMAIN = "rlaas.dev"


@dataclass(frozen=True, slots=True)
class FieldViolation:
    field: str
    """Path of the field in the request, e.g. ``api_key.scopes``."""
    description: str


class DomainError(Exception):
    code: ErrorCode = ErrorCode.INTERNAL
    default_reason: str = "INTERNAL"

    def __init__(
        self,
        message: str,
        *,
        reason: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason or self.default_reason
        self.metadata = dict(metadata or {})


class InvalidArgument(DomainError):
    code = ErrorCode.INVALID_ARGUMENT
    default_reason = "INVALID_ARGUMENT"

    def __init__(
        self,
        violations: Sequence[FieldViolation],
        *,
        message: str | None = None,
        reason: str | None = None,
    ) -> None:
        if not violations:
            raise ValueError("InvalidArgument needs at least one field violation")
        self.violations = list(violations)
        summary = "; ".join(f"{v.field}: {v.description}" for v in self.violations)
        super().__init__(message or f"invalid argument: {summary}", reason=reason)

    @classmethod
    def field(cls, field: str, description: str, *, reason: str | None = None) -> InvalidArgument:
        return cls([FieldViolation(field, description)], reason=reason)


class NotFound(DomainError):
    code = ErrorCode.NOT_FOUND
    default_reason = "NOT_FOUND"

    def __init__(self, resource_type: str, name: str) -> None:
        super().__init__(
            f"{resource_type} {name!r} not found",
            metadata={"resource_type": resource_type, "name": name},
        )


class AlreadyExists(DomainError):
    code = ErrorCode.ALREADY_EXISTS
    default_reason = "ALREADY_EXISTS"


class RequestIdReused(AlreadyExists):
    """A ``request_id`` sent again with a different request: ALREADY_EXISTS
    (``REQUEST_ID_REUSED``) on every RPC, never a replay of the other request's result.

    Why this code: the error depends on what the server has seen, not on the request
    alone, so it is not INVALID_ARGUMENT (gRPC: "problematic regardless of the state of
    the system"); what exists is the id itself, bound to another request (HTTP 409, as
    idempotency-key conflicts usually are). It is what the contract documents on every
    mutation and what the SDKs map (AlreadyExistsError)."""

    def __init__(self, what: str) -> None:
        # The id itself is not echoed: the client has it, and errors echo no input.
        super().__init__(
            f"request_id was already used for a different {what}; use a new request_id",
            reason="REQUEST_ID_REUSED",
            metadata={"field": "request_id"},
        )


class FailedPrecondition(DomainError):
    code = ErrorCode.FAILED_PRECONDITION
    default_reason = "FAILED_PRECONDITION"


class PermissionDenied(DomainError):
    code = ErrorCode.PERMISSION_DENIED
    default_reason = "PERMISSION_DENIED"


class Unauthenticated(DomainError):
    code = ErrorCode.UNAUTHENTICATED
    default_reason = "UNAUTHENTICATED"


class Aborted(DomainError):
    code = ErrorCode.ABORTED
    default_reason = "ABORTED"


class ResourceExhausted(DomainError):
    code = ErrorCode.RESOURCE_EXHAUSTED
    default_reason = "RESOURCE_EXHAUSTED"


class Unavailable(DomainError):
    code = ErrorCode.UNAVAILABLE
    default_reason = "UNAVAILABLE"


class DeadlineExceeded(DomainError):
    """A dependency (a serving engine) did not answer within the call's deadline."""

    code = ErrorCode.DEADLINE_EXCEEDED
    default_reason = "DEADLINE_EXCEEDED"


class Unimplemented(DomainError):
    code = ErrorCode.UNIMPLEMENTED
    default_reason = "NOT_IMPLEMENTED"
