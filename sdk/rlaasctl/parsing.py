"""Building blocks of the command modules' parsers: a leaf command, a command group,
paging flags, and the argument types the flags share."""

from __future__ import annotations

import argparse
import json
from datetime import datetime
from typing import Any

from rlaasctl.client import Handler

OUTPUT_HELP = "text (tables; the default) or json (the API's proto3 JSON)"


def command(sub: Any, name: str, help: str, handler: Handler) -> argparse.ArgumentParser:
    """A leaf command: one RPC. `--output` is accepted here too (after the command)."""
    x: argparse.ArgumentParser = sub.add_parser(name, help=help, description=help)
    # SUPPRESS: when not given here, the top-level --output (or its default) stands.
    x.add_argument("--output", choices=["text", "json"], default=argparse.SUPPRESS,
                   help=OUTPUT_HELP)  # fmt: skip
    x.set_defaults(handler=handler)
    return x


def group(sub: Any, name: str, help: str) -> Any:
    """A command group (`rlaasctl NAME ACTION ...`): returns its subparsers."""
    parser = sub.add_parser(name, help=help, description=help)
    return parser.add_subparsers(dest="action", required=True, metavar="ACTION")


def paging(x: argparse.ArgumentParser) -> None:
    x.add_argument("--page-size", type=int, default=1000,
                   help="results per page (default and server maximum 1000)")  # fmt: skip
    x.add_argument("--page-token", default="", help="next_page_token of a previous page")


# ---- argument types -------------------------------------------------------------------


def iso_time(value: str) -> datetime:
    """An ISO 8601 time; without a zone it is UTC (protobuf reads naive times so)."""
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not an ISO 8601 time") from None


def key_value(value: str) -> tuple[str, str]:
    key, sep, item = value.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"{value!r} is not KEY=VALUE")
    return key, item


def json_scalar(value: str) -> Any:
    """A metadata value: JSON numbers and booleans as such, anything else a string."""
    try:
        parsed = json.loads(value)
    except ValueError:
        return value
    return parsed if isinstance(parsed, bool | int | float) else value
