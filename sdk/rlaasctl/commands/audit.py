"""`audit verify/list/erase`: the tenant's hash-chained audit log."""

from __future__ import annotations

import argparse
from typing import Any

from rlaas.registry.v1 import registry_pb2 as reg
from rlaasctl.client import Ctl, Shown, request_id
from rlaasctl.output import table, timestamp
from rlaasctl.parsing import command, group, paging


def _verify(c: Ctl, a: argparse.Namespace) -> Shown:
    req = reg.VerifyAuditLogRequest(from_sequence=a.from_sequence, to_sequence=a.to_sequence)
    return (
        c.call(c.registry.VerifyAuditLog, req),
        lambda r: (
            f"audit log intact: {r.checked_count} entries, head {r.head_hash[:16]}"
            if r.valid
            else f"audit log BROKEN at sequence {r.first_invalid_sequence}: {r.detail}"
        ),
    )


def _erase(c: Ctl, a: argparse.Namespace) -> Shown:
    req = reg.EraseAuditEventsRequest(audit_event_ids=a.audit_event_id, request_id=request_id(a))
    return c.call(c.registry.EraseAuditEvents, req), lambda r: table(
        ["seq", "audit event", "erased"],
        [[e.sequence, e.audit_event_id, timestamp(e.erase_time)] for e in r.audit_events],
    )


def _list(c: Ctl, a: argparse.Namespace) -> Shown:
    req = reg.ListAuditEventsRequest(
        page_size=a.page_size, page_token=a.page_token, resource_type=a.resource_type,
        resource_id=a.resource_id, action=a.action_name, actor_api_key_id=a.actor,
    )  # fmt: skip
    return c.call(c.registry.ListAuditEvents, req), lambda r: table(
        ["seq", "time", "actor", "action", "resource", "reason"],
        [[e.sequence, timestamp(e.event_time), e.actor_display_name or e.actor_api_key_id,
          e.action.rsplit("/", 1)[-1], f"{e.resource_type} {e.resource_id}", e.reason]
         for e in r.audit_events], r.next_page_token,
    )  # fmt: skip


def register(sub: Any) -> None:
    audit = group(sub, "audit", "the tenant's hash-chained audit log")
    x = command(audit, "verify", "recompute the hash chain and report breaks", _verify)
    x.add_argument("--from-sequence", type=int, default=0, help="first entry (0: the start)")
    x.add_argument("--to-sequence", type=int, default=0, help="last entry (0: the end)")
    x = command(audit, "list", "audit events, newest first", _list)
    x.add_argument("--resource-type", default="", help="e.g. Deployment, Policy, ApiKey")
    x.add_argument("--resource-id", default="", help="e.g. a skill id or skill@vN")
    # dest: `action` is the group's subcommand.
    x.add_argument("--action", dest="action_name", default="",
                   help="e.g. rlaas.registry.v1.RegistryService/PromotePolicy")  # fmt: skip
    x.add_argument("--actor", default="", help="only events by this API key id")
    paging(x)
    x = command(audit, "erase", "erase entries' free text (the chain still verifies)", _erase)
    x.add_argument("audit_event_id", nargs="+", help="ae-... ids (from `audit list`)")
