"""``rlaasctl``: the operator's CLI over the public gRPC API.

Every command is one RPC of the five services (tenants, API keys, skills, policies,
deployments, promotions, rollbacks, traffic, the audit log, inference, telemetry,
preference datasets, training runs, evaluations, learning loops, rollouts, retrieval
indexes, documents and search); the CLI
builds the request, makes the call and prints the response. It holds no domain logic:
what the server refuses, the CLI reports.

Auth: ``--api-key`` or ``RLAAS_API_KEY``; server: ``--target`` or ``RLAAS_TARGET``.
``--output json`` (before or after the command) prints the API's own proto3 JSON
(``json_format``, the JSON names the REST bridge uses); ``--output text`` (the default)
prints tables and ``field: value`` lines.

Exit codes:
  0  ok
  1  any other error (INTERNAL, UNKNOWN, UNIMPLEMENTED, ...)
  2  bad usage, or the server said INVALID_ARGUMENT
  3  NOT_FOUND
  4  UNAUTHENTICATED or PERMISSION_DENIED (bad, revoked or under-scoped key)
  5  FAILED_PRECONDITION, ABORTED or ALREADY_EXISTS (state or revision conflict)
  6  UNAVAILABLE, DEADLINE_EXCEEDED or RESOURCE_EXHAUSTED (try again later)
On an error the gRPC code, its message and the google.rpc.Status details (ErrorInfo
reason, BadRequest field violations) go to stderr, as JSON with ``--output json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import grpc
from google.protobuf import json_format

from rlaasctl.client import Ctl
from rlaasctl.commands import register_all
from rlaasctl.errors import EXIT_CODES_HELP, EXIT_OK, error_report, error_text, exit_code
from rlaasctl.parsing import OUTPUT_HELP


def build_parser() -> argparse.ArgumentParser:
    """The global flags, then every command group's commands (rlaasctl.commands)."""
    p = argparse.ArgumentParser(
        prog="rlaasctl", description=__doc__.split("\n\nExit codes:")[0],
        epilog=EXIT_CODES_HELP, formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    p.add_argument("--target", default=os.environ.get("RLAAS_TARGET", "127.0.0.1:50051"),
                   help="gRPC address host:port (env RLAAS_TARGET)")  # fmt: skip
    p.add_argument("--api-key", default=os.environ.get("RLAAS_API_KEY", ""),
                   help="API key sent as the bearer token (env RLAAS_API_KEY)")  # fmt: skip
    p.add_argument("--output", choices=["text", "json"], default="text", help=OUTPUT_HELP)
    p.add_argument("--timeout", type=float, default=30.0, help="seconds per call")
    p.add_argument("--request-id", default="",
                   help="idempotency key of a mutation (default: a new UUID)")  # fmt: skip
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    register_all(sub)
    return p


def run(args: argparse.Namespace) -> int:
    """Make the command's one call and print its response."""
    ctl = Ctl(args)
    try:
        response, text = args.handler(ctl, args)
    finally:
        ctl.channel.close()
    if args.output == "json":
        print(json_format.MessageToJson(response, indent=2))
    else:
        print(text(response))
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.api_key:
        parser.error("set --api-key or RLAAS_API_KEY")  # exits with EXIT_USAGE
    try:
        return run(args)
    except grpc.RpcError as err:
        report = error_report(err)
        print(json.dumps(report) if args.output == "json" else error_text(report),
              file=sys.stderr)  # fmt: skip
        return exit_code(grpc.StatusCode[report["code"]])
