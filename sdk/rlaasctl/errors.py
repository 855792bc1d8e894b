"""Exit codes and failed calls: the gRPC status code → exit code map (the one place they
are mapped), and a failed call's code, message and google.rpc.Status details as JSON or
as text for stderr."""

from __future__ import annotations

from typing import Any

import grpc
from google.protobuf import json_format
from google.rpc import error_details_pb2
from grpc_status import rpc_status

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_NOT_FOUND = 3
EXIT_AUTH = 4
EXIT_CONFLICT = 5
EXIT_UNAVAILABLE = 6

_EXIT_BY_CODE = {
    grpc.StatusCode.OK: EXIT_OK,
    grpc.StatusCode.INVALID_ARGUMENT: EXIT_USAGE,
    grpc.StatusCode.NOT_FOUND: EXIT_NOT_FOUND,
    grpc.StatusCode.UNAUTHENTICATED: EXIT_AUTH,
    grpc.StatusCode.PERMISSION_DENIED: EXIT_AUTH,
    grpc.StatusCode.FAILED_PRECONDITION: EXIT_CONFLICT,
    grpc.StatusCode.ABORTED: EXIT_CONFLICT,
    grpc.StatusCode.ALREADY_EXISTS: EXIT_CONFLICT,
    grpc.StatusCode.UNAVAILABLE: EXIT_UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED: EXIT_UNAVAILABLE,
    grpc.StatusCode.RESOURCE_EXHAUSTED: EXIT_UNAVAILABLE,
}

# The --help epilog; rlaasctl.main's docstring carries the same table.
EXIT_CODES_HELP = """\
exit codes:
  0  ok
  1  any other error (INTERNAL, UNKNOWN, UNIMPLEMENTED, ...)
  2  bad usage, or the server said INVALID_ARGUMENT
  3  NOT_FOUND
  4  UNAUTHENTICATED or PERMISSION_DENIED (bad, revoked or under-scoped key)
  5  FAILED_PRECONDITION, ABORTED or ALREADY_EXISTS (state or revision conflict)
  6  UNAVAILABLE, DEADLINE_EXCEEDED or RESOURCE_EXHAUSTED (try again later)
"""


def exit_code(code: grpc.StatusCode) -> int:
    """The process exit code for a gRPC status code: the one place they are mapped."""
    return _EXIT_BY_CODE.get(code, EXIT_ERROR)


def error_report(err: grpc.RpcError) -> dict[str, Any]:
    """The failed call as JSON: code name, message, and the google.rpc.Status details."""
    code = err.code() if isinstance(err, grpc.Call) else grpc.StatusCode.UNKNOWN
    message = err.details() if isinstance(err, grpc.Call) else str(err)
    report: dict[str, Any] = {"code": code.name, "message": message or ""}
    status = rpc_status.from_call(err) if isinstance(err, grpc.Call) else None
    if status is not None:
        report["details"] = [json_format.MessageToDict(d) for d in status.details]
    return report


def error_text(report: dict[str, Any]) -> str:
    """An `error_report` for a person: the code and message, then the ErrorInfo reason
    and each BadRequest field violation."""
    lines = [f"rlaasctl: {report['code']}: {report['message']}"]
    for detail in report.get("details", []):
        kind = detail.get("@type", "").rsplit("/", 1)[-1]
        if kind == error_details_pb2.ErrorInfo.DESCRIPTOR.full_name:
            lines.append(f"  reason: {detail.get('reason', '')}")
        elif kind == error_details_pb2.BadRequest.DESCRIPTOR.full_name:
            for v in detail.get("fieldViolations", []):
                lines.append(f"  field {v.get('field', '')}: {v.get('description', '')}")
    return "\n".join(lines)
