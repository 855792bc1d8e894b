"""Text output shared by the commands: tables, `field: value` lines, enum names, times.

(`--output json` needs nothing here: rlaasctl.main prints the response's proto3 JSON.)"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import Message


def enum_name(name: str, prefix: str = "STATE_") -> str:
    """`STATE_RUNNING` → `running`."""
    return name.removeprefix(prefix).lower()


def table(headers: Sequence[str], rows: Sequence[Sequence[object]], next_token: str = "") -> str:
    cells = [[str(h).upper() for h in headers]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
             for row in cells]  # fmt: skip
    if not rows:
        lines.append("(none)")
    if next_token:
        lines.append(f"(more: --page-token {next_token})")
    return "\n".join(lines)


def _flatten(value: Any, prefix: str = "") -> list[tuple[str, str]]:
    if isinstance(value, dict):
        out: list[tuple[str, str]] = []
        for key, item in value.items():
            out += _flatten(item, f"{prefix}.{key}" if prefix else key)
        return out
    if isinstance(value, list):
        if all(not isinstance(v, dict | list) for v in value):
            return [(prefix, ", ".join(str(v) for v in value))]
        return [pair for i, v in enumerate(value) for pair in _flatten(v, f"{prefix}[{i}]")]
    return [(prefix, str(value))]


def fields(message: Message) -> str:
    """Any message as aligned `field: value` lines (proto3 JSON names, dotted paths)."""
    pairs = _flatten(json_format.MessageToDict(message))
    width = max((len(k) for k, _ in pairs), default=0)
    return "\n".join(f"{k + ':':<{width + 1}} {v}" for k, v in pairs) or "(empty)"


def lines(texts: Sequence[str], next_token: str = "") -> str:
    out = "\n".join(texts) or "(none)"
    return out + (f"\n(more: --page-token {next_token})" if next_token else "")


def timestamp(ts: Any) -> str:
    return ts.ToDatetime().strftime("%Y-%m-%d %H:%M:%S") if ts.seconds or ts.nanos else "-"
