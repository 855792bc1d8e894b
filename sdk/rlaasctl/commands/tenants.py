"""`tenants create/get/list`: tenants (operator key only)."""

from __future__ import annotations

import argparse
from typing import Any

from rlaas.registry.v1 import registry_pb2 as reg
from rlaasctl.client import Ctl, Shown, request_id
from rlaasctl.output import enum_name, fields, table, timestamp
from rlaasctl.parsing import command, group, paging


def _tenant_row(t: reg.Tenant) -> list[object]:
    state = enum_name(reg.Tenant.State.Name(t.state))
    return [t.tenant_id, t.display_name, state, "yes" if t.operator else "",
            timestamp(t.create_time)]  # fmt: skip


def _create(c: Ctl, a: argparse.Namespace) -> Shown:
    req = reg.CreateTenantRequest(tenant=reg.Tenant(display_name=a.display_name),
                                  request_id=request_id(a))  # fmt: skip
    return (
        c.call(c.registry.CreateTenant, req),
        lambda r: (
            f"tenant {r.tenant.tenant_id} ({r.tenant.display_name})\n"
            f"admin key {r.admin_api_key.api_key_id}: {r.admin_api_key_secret or '(shown before)'}"
        ),
    )


def _get(c: Ctl, a: argparse.Namespace) -> Shown:
    return c.call(c.registry.GetTenant, reg.GetTenantRequest(tenant_id=a.tenant_id)), fields


def _list(c: Ctl, a: argparse.Namespace) -> Shown:
    req = reg.ListTenantsRequest(page_size=a.page_size, page_token=a.page_token)
    return c.call(c.registry.ListTenants, req), lambda r: table(
        ["tenant", "name", "state", "operator", "created"],
        [_tenant_row(t) for t in r.tenants], r.next_page_token,
    )  # fmt: skip


def register(sub: Any) -> None:
    tenants = group(sub, "tenants", "tenants (operator key only)")
    x = command(tenants, "create", "create a tenant and its first admin key", _create)
    x.add_argument("display_name", help="the tenant's name")
    x = command(tenants, "get", "one tenant", _get)
    x.add_argument("tenant_id", help="the tenant's id")
    paging(command(tenants, "list", "all tenants, oldest first", _list))
