"""Errors as grpc-gateway writes them: a ``google.rpc.Status`` JSON body
(``{"code", "message", "details": [Any JSON with "@type"]}``) under the HTTP status of
``runtime.HTTPStatusFromCode``. The details come from the server's
``grpc-status-details-bin`` trailer, so BadRequest field violations and ErrorInfo reach
HTTP clients unchanged."""

from __future__ import annotations

import base64
import logging
from typing import Any

import grpc
from google.protobuf import any_pb2, json_format
from google.rpc import code_pb2, error_details_pb2, status_pb2

from services.server.status import MAX_DESCRIPTION, MAX_FIELD, bounded

# runtime.HTTPStatusFromCode (grpc-gateway v2, runtime/errors.go).
HTTP_STATUS = {
    code_pb2.OK: 200,
    code_pb2.CANCELLED: 499,
    code_pb2.UNKNOWN: 500,
    code_pb2.INVALID_ARGUMENT: 400,
    code_pb2.DEADLINE_EXCEEDED: 504,
    code_pb2.NOT_FOUND: 404,
    code_pb2.ALREADY_EXISTS: 409,
    code_pb2.PERMISSION_DENIED: 403,
    code_pb2.UNAUTHENTICATED: 401,
    code_pb2.RESOURCE_EXHAUSTED: 429,
    code_pb2.FAILED_PRECONDITION: 400,
    code_pb2.ABORTED: 409,
    code_pb2.OUT_OF_RANGE: 400,
    code_pb2.UNIMPLEMENTED: 501,
    code_pb2.INTERNAL: 500,
    code_pb2.UNAVAILABLE: 503,
    code_pb2.DATA_LOSS: 500,
}
STATUS_DETAILS_KEY = "grpc-status-details-bin"
log = logging.getLogger(__name__)


def http_status(code: int) -> int:
    return HTTP_STATUS.get(code, 500)


class BadInput(Exception):
    """A request the bridge itself rejects before calling the server (400)."""

    def __init__(self, field: str, description: str) -> None:
        # Both may quote the request (a path segment, a query key): echo them bounded
        # and escaped, as the server does (services.server.status).
        field, description = bounded(field, MAX_FIELD), bounded(description, MAX_DESCRIPTION)
        super().__init__(f"{field}: {description}" if field else description)
        self.field = field
        self.description = description

    def status(self) -> status_pb2.Status:
        bad = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(
                    field=self.field, description=self.description
                )
            ]
        )
        packed = any_pb2.Any()
        packed.Pack(bad)
        return status_pb2.Status(
            code=code_pb2.INVALID_ARGUMENT, message=str(self), details=[packed]
        )


def routing_status(code: int, message: str) -> status_pb2.Status:
    """grpc-gateway's routing errors: ``{"code": 5, "message": "Not Found"}`` etc."""
    return status_pb2.Status(code=code, message=message)


def status_from_rpc_error(err: grpc.aio.AioRpcError) -> status_pb2.Status:
    """The rich status the server sent (details trailer), else its code and message."""
    code = err.code().value[0]
    for key, value in err.trailing_metadata() or ():
        if key == STATUS_DETAILS_KEY and isinstance(value, bytes):
            try:
                status = status_pb2.Status.FromString(value)
            except Exception:  # a malformed trailer: fall back to code + message
                break
            if status.code == code:
                return status
    return status_pb2.Status(code=code, message=err.details() or "")


def status_json(status: status_pb2.Status) -> dict[str, Any]:
    body: dict[str, Any] = {"code": status.code, "message": status.message, "details": []}
    for detail in status.details:
        try:
            body["details"].append(json_format.MessageToDict(detail))
        except (TypeError, KeyError):
            # A detail type this process does not know: keep it as opaque Any.
            log.warning("unknown status detail type %s", detail.type_url)
            value = base64.b64encode(detail.value).decode()
            body["details"].append({"@type": detail.type_url, "value": value})
    return body
