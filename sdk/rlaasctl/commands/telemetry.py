"""`telemetry get/list/export/compact/settings`: logged interactions, Parquet exports,
ingest settings."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from rlaas.telemetry.v1 import telemetry_pb2 as tel
from rlaasctl.client import Ctl, Shown, request_id
from rlaasctl.output import enum_name, fields, table, timestamp
from rlaasctl.parsing import command, group, iso_time, paging

_EVENT_TYPES = {enum_name(n, "EVENT_TYPE_"): v for n, v in tel.EventType.items() if v}


def _interaction_row(x: tel.Interaction) -> list[object]:
    return [x.interaction_id, x.skill, x.policy_id or "-", x.user_id or "-",
            x.output_count, x.feedback_count, timestamp(x.create_time)]  # fmt: skip


def _files_text(files: Sequence[tel.ExportedFile]) -> str:
    return table(["uri", "type", "date", "rows", "bytes"],
                 [[f.uri, enum_name(tel.EventType.Name(f.event_type), "EVENT_TYPE_"),
                   f.partition_date, f.row_count, f.size_bytes] for f in files])  # fmt: skip


def _get(c: Ctl, a: argparse.Namespace) -> Shown:
    req = tel.GetInteractionRequest(interaction_id=a.interaction_id)
    return c.call(c.telemetry.GetInteraction, req), fields


def _list(c: Ctl, a: argparse.Namespace) -> Shown:
    req = tel.ListInteractionsRequest(
        page_size=a.page_size, page_token=a.page_token, skill=a.skill, user_id=a.user_id,
        thread_id=a.thread_id, policy_id=a.policy, has_feedback=a.has_feedback,
        include_shadow=a.include_shadow,
    )  # fmt: skip
    if a.start is not None:
        req.start_time.FromDatetime(a.start)
    if a.end is not None:
        req.end_time.FromDatetime(a.end)
    return c.call(c.telemetry.ListInteractions, req), lambda r: table(
        ["interaction", "skill", "policy", "user", "outputs", "feedback", "created"],
        [_interaction_row(x) for x in r.interactions], r.next_page_token,
    )  # fmt: skip


def _export(c: Ctl, a: argparse.Namespace) -> Shown:
    req = tel.ExportEventsRequest(event_types=[_EVENT_TYPES[t] for t in a.event_type],
                                  skill=a.skill, redact_pii=a.redact_pii,
                                  request_id=request_id(a))  # fmt: skip
    req.start_time.FromDatetime(a.start)
    req.end_time.FromDatetime(a.end)
    return (
        c.call(c.telemetry.ExportEvents, req),
        lambda r: (
            _files_text(r.files) + f"\ninteractions={r.interaction_count} outputs={r.output_count}"
            f" feedback={r.feedback_count} task_results={r.task_result_count}"
        ),
    )


def _compact(c: Ctl, a: argparse.Namespace) -> Shown:
    req = tel.CompactExportsRequest(event_types=[_EVENT_TYPES[t] for t in a.event_type],
                                    request_id=request_id(a))  # fmt: skip
    req.start_time.FromDatetime(a.start)
    req.end_time.FromDatetime(a.end)
    return (
        c.call(c.telemetry.CompactExports, req),
        lambda r: (
            _files_text(r.files) + f"\ninputs={r.input_file_count} partitions={r.partition_count}"
            f" rows={r.row_count}"
        ),
    )


def _settings(c: Ctl, a: argparse.Namespace) -> Shown:
    req = tel.GetTelemetrySettingsRequest()
    return c.call(c.telemetry.GetTelemetrySettings, req), fields


def register(sub: Any) -> None:
    t = group(sub, "telemetry", "logged interactions, exports, ingest settings")
    x = command(t, "get", "one interaction with its outputs, feedback and task results", _get)
    x.add_argument("interaction_id", help="the interaction id")
    x = command(t, "list", "interactions, newest first", _list)
    x.add_argument("--skill", default="", help="only this skill's")
    x.add_argument("--user-id", default="", help="only this user's")
    x.add_argument("--thread-id", default="", help="only this thread's")
    x.add_argument("--policy", default="", help="only those this policy served")
    x.add_argument("--has-feedback", action="store_true", help="only those with feedback")
    x.add_argument("--include-shadow", action="store_true", help="include shadow runs")
    x.add_argument("--start", type=iso_time, help="ISO time; from then")
    x.add_argument("--end", type=iso_time, help="ISO time; before then")
    paging(x)
    for name, help, handler in (
        ("export", "export events in a time range to Parquet", _export),
        ("compact", "compact exported partitions in a time range", _compact),
    ):
        x = command(t, name, help, handler)
        x.add_argument("--start", type=iso_time, required=True, help="ISO time; from then")
        x.add_argument("--end", type=iso_time, required=True, help="ISO time; before then")
        x.add_argument("--event-type", action="append", default=[], choices=list(_EVENT_TYPES),
                       help="repeatable (default: all)")  # fmt: skip
        if name == "export":
            x.add_argument("--skill", default="", help="only this skill's events")
            x.add_argument("--redact-pii", action="store_true", help="scrub PII once more")
    command(t, "settings", "PII scrubbing settings and ingest counters", _settings)
