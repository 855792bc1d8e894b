"""Errors raised by the SDK, decoded from `google.rpc.Status` (code, message, ErrorInfo
reason, BadRequest field violations)."""

from __future__ import annotations

from dataclasses import dataclass, field

import grpc
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

_CODES_BY_VALUE: dict[int, grpc.StatusCode] = {c.value[0]: c for c in grpc.StatusCode}


@dataclass(frozen=True)
class FieldViolation:
    """One offending request field, from `google.rpc.BadRequest`."""

    field: str
    description: str


@dataclass
class ErrorDetails:
    """What the server said beyond the code: `ErrorInfo` and `BadRequest` details."""

    reason: str | None = None
    domain: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    field_violations: list[FieldViolation] = field(default_factory=list)


class RlaasError(Exception):
    """A failed RLaaS call. `code` is the gRPC status code (None for client-side errors)."""

    def __init__(
        self,
        message: str,
        *,
        code: grpc.StatusCode | None = None,
        details: ErrorDetails | None = None,
    ) -> None:
        self.message = message
        self.code = code
        self.details = details or ErrorDetails()
        super().__init__(self._render())

    @property
    def reason(self) -> str | None:
        """The machine-readable `ErrorInfo.reason`, e.g. `MISSING_SCOPE`."""
        return self.details.reason

    @property
    def field_violations(self) -> list[FieldViolation]:
        """Every offending field named by a `BadRequest` detail."""
        return self.details.field_violations

    def _render(self) -> str:
        parts = [self.code.name if self.code else "CLIENT", self.message]
        if self.details.reason:
            parts.append(f"reason={self.details.reason}")
        parts.extend(f"{v.field}: {v.description}" for v in self.details.field_violations)
        return " | ".join(p for p in parts if p)


class ClientClosedError(RlaasError):
    """The client was closed; it accepts no more events or calls."""


class InvalidArgumentError(RlaasError):
    """INVALID_ARGUMENT: see `field_violations`."""


class NotFoundError(RlaasError):
    """NOT_FOUND."""


class AlreadyExistsError(RlaasError):
    """ALREADY_EXISTS: e.g. a `request_id` reused with a different payload."""


class FailedPreconditionError(RlaasError):
    """FAILED_PRECONDITION."""


class UnauthenticatedError(RlaasError):
    """UNAUTHENTICATED: the API key is missing, unknown, expired or revoked."""


class PermissionDeniedError(RlaasError):
    """PERMISSION_DENIED: the API key lacks the RPC's scope."""


class ResourceExhaustedError(RlaasError):
    """RESOURCE_EXHAUSTED (rate limit), after the retries ran out where retried."""


class UnavailableError(RlaasError):
    """UNAVAILABLE or DEADLINE_EXCEEDED after every retry failed."""


class UnimplementedError(RlaasError):
    """UNIMPLEMENTED: the server does not offer this RPC."""


_BY_CODE: dict[grpc.StatusCode, type[RlaasError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgumentError,
    grpc.StatusCode.OUT_OF_RANGE: InvalidArgumentError,
    grpc.StatusCode.NOT_FOUND: NotFoundError,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExistsError,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPreconditionError,
    grpc.StatusCode.UNAUTHENTICATED: UnauthenticatedError,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDeniedError,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhaustedError,
    grpc.StatusCode.UNAVAILABLE: UnavailableError,
    grpc.StatusCode.DEADLINE_EXCEEDED: UnavailableError,
    grpc.StatusCode.UNIMPLEMENTED: UnimplementedError,
}


def decode_details(status: status_pb2.Status | None) -> ErrorDetails:
    """ErrorInfo and BadRequest details of a `google.rpc.Status` (others are ignored)."""
    out = ErrorDetails()
    if status is None:
        return out
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            out.reason, out.domain, out.metadata = info.reason, info.domain, dict(info.metadata)
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            out.field_violations.extend(
                FieldViolation(v.field, v.description) for v in bad.field_violations
            )
    return out


def error_for(
    code: grpc.StatusCode, message: str, details: ErrorDetails | None = None
) -> RlaasError:
    """The most specific `RlaasError` subclass for a status code."""
    return _BY_CODE.get(code, RlaasError)(message, code=code, details=details)


def error_from_rpc(err: grpc.RpcError) -> RlaasError:
    """Turn a failed gRPC call into an `RlaasError`, decoding its rich status."""
    code = err.code() if hasattr(err, "code") else grpc.StatusCode.UNKNOWN
    message = (err.details() if hasattr(err, "details") else None) or str(code.name)
    try:
        status = rpc_status.from_call(err) if hasattr(err, "trailing_metadata") else None
    except ValueError:  # a status detail that disagrees with the call's code or message
        status = None
    return error_for(code, message, decode_details(status))


def error_from_status(status: status_pb2.Status) -> RlaasError:
    """Turn a `google.rpc.Status` (e.g. an ingest result's `error`) into an `RlaasError`."""
    code = _CODES_BY_VALUE.get(status.code, grpc.StatusCode.UNKNOWN)
    return error_for(code, status.message or code.name, decode_details(status))
