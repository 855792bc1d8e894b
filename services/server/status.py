"""The one place a DomainError becomes a google.rpc.Status (with details).

Errors echo request input (ids, field paths, values), and the whole Status travels in
the ``grpc-status-details-bin`` trailer (base64) with its message again in
``grpc-message`` (percent-encoded). A client refuses trailers over its metadata limit
(8 KiB by default) and reports RESOURCE_EXHAUSTED instead of the real error, so every
text taken into a Status is bounded here, and control characters (log and terminal
injection) are escaped, once for all call sites.
"""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from services.errors import ERROR_DOMAIN, DomainError, InvalidArgument

# In UTF-8 bytes (after escaping). The message is sent twice (in grpc-message,
# percent-encoded, up to three bytes per byte), so it gets the tightest bound.
MAX_MESSAGE = 512
MAX_FIELD = 160
MAX_DESCRIPTION = 240
MAX_METADATA_VALUE = 160
MAX_ITEMS = 10  # field violations, metadata entries
# The serialized Status; base64 makes the trailer 4/3 of it. With the message (at most
# 1.5 KiB percent-encoded) the trailers stay well below the 8 KiB default limit.
MAX_STATUS_BYTES = 2048


def bounded(text: str, limit: int) -> str:
    """``text`` with control and invisible format characters escaped (``\\x00``, ``\\n``,
    ``\\u202e``), cut to at most ``limit`` UTF-8 bytes with a marker saying so."""
    # Cut first: no character is shorter than a byte, so nothing past ``limit`` survives,
    # and escaping a 4 MB string of control characters would cost seconds.
    head = text[:limit]
    if not head.isprintable():
        head = "".join(
            ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in head
        )
    data = head.encode("utf-8", "surrogatepass")
    if len(data) <= limit and len(text) <= limit:
        return head
    marker = f"...[{len(text)} characters, truncated]"
    return data[: max(limit - len(marker), 0)].decode("utf-8", "ignore") + marker


def to_rpc_status(error: DomainError) -> status_pb2.Status:
    status = _status(error, MAX_DESCRIPTION, MAX_METADATA_VALUE)
    if status.ByteSize() > MAX_STATUS_BYTES:
        # Many violations or metadata entries, each within bounds: keep the code, reason
        # and message, and shrink the rest until it fits.
        status = _status(error, 64, 32)
        if status.ByteSize() > MAX_STATUS_BYTES:
            status = _status(error, 0, 0)
    return status


def _status(error: DomainError, description: int, value: int) -> status_pb2.Status:
    details: list[any_pb2.Any] = []
    if isinstance(error, InvalidArgument):
        violations = error.violations[:MAX_ITEMS] if description else []
        bad_request = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(
                    field=bounded(v.field, MAX_FIELD),
                    description=bounded(v.description, description),
                )
                for v in violations
            ]
        )
        packed = any_pb2.Any()
        packed.Pack(bad_request)
        details.append(packed)
    info = any_pb2.Any()
    info.Pack(
        error_details_pb2.ErrorInfo(
            reason=bounded(error.reason, 64),
            domain=ERROR_DOMAIN,
            metadata={
                bounded(k, 64): bounded(v, value)
                for k, v in list(error.metadata.items())[:MAX_ITEMS]
            }
            if value
            else {},
        )
    )
    details.append(info)
    return status_pb2.Status(
        code=error.code.value, message=bounded(error.message, MAX_MESSAGE), details=details
    )


def internal_status(message: str = "internal error") -> status_pb2.Status:
    info = any_pb2.Any()
    info.Pack(error_details_pb2.ErrorInfo(reason="INTERNAL", domain=ERROR_DOMAIN))
    return status_pb2.Status(code=code_pb2.INTERNAL, message=message, details=[info])


def to_grpc_status(status: status_pb2.Status) -> grpc.Status:
    return rpc_status.to_status(status)
