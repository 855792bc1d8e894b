"""`keys create/get/list/revoke`: API keys of the caller's tenant (admin scope)."""

from __future__ import annotations

import argparse
from typing import Any

from rlaas.options.v1 import options_pb2
from rlaas.registry.v1 import registry_pb2 as reg
from rlaasctl.client import Ctl, Shown, request_id
from rlaasctl.output import enum_name, fields, table, timestamp
from rlaasctl.parsing import command, group, iso_time, paging

_SCOPES = {
    enum_name(n, "SCOPE_"): v
    for n, v in options_pb2.Scope.items()
    if v and n != "SCOPE_AUTHENTICATED"
}
_HEADERS = ["key", "name", "scopes", "state", "expires"]


def _key_row(k: reg.ApiKey) -> list[object]:
    scopes = ",".join(enum_name(options_pb2.Scope.Name(s), "SCOPE_") for s in k.scopes)
    state = enum_name(reg.ApiKey.State.Name(k.state))
    return [k.api_key_id, k.display_name, scopes, state, timestamp(k.expire_time)]


def _create(c: Ctl, a: argparse.Namespace) -> Shown:
    key = reg.ApiKey(display_name=a.display_name, scopes=[_SCOPES[s] for s in a.scope])
    if a.expire_time is not None:
        key.expire_time.FromDatetime(a.expire_time)
    req = reg.CreateApiKeyRequest(api_key=key, request_id=request_id(a))
    return (
        c.call(c.registry.CreateApiKey, req),
        lambda r: (
            table(_HEADERS, [_key_row(r.api_key)])
            + f"\nsecret (shown once): {r.secret or '(shown before)'}"
        ),
    )


def _get(c: Ctl, a: argparse.Namespace) -> Shown:
    return c.call(c.registry.GetApiKey, reg.GetApiKeyRequest(api_key_id=a.api_key_id)), fields


def _list(c: Ctl, a: argparse.Namespace) -> Shown:
    req = reg.ListApiKeysRequest(page_size=a.page_size, page_token=a.page_token,
                                 show_revoked=a.show_revoked)  # fmt: skip
    return c.call(c.registry.ListApiKeys, req), lambda r: table(
        _HEADERS, [_key_row(k) for k in r.api_keys], r.next_page_token
    )


def _revoke(c: Ctl, a: argparse.Namespace) -> Shown:
    req = reg.RevokeApiKeyRequest(api_key_id=a.api_key_id, request_id=request_id(a))
    return c.call(c.registry.RevokeApiKey, req), lambda r: table(_HEADERS, [_key_row(r.api_key)])


def register(sub: Any) -> None:
    keys = group(sub, "keys", "API keys of the caller's tenant (admin scope)")
    x = command(keys, "create", "create a key; its secret is printed once", _create)
    x.add_argument("display_name", help="the key's name")
    x.add_argument("--scope", action="append", required=True, choices=list(_SCOPES),
                   help="what the key may do; repeatable")  # fmt: skip
    x.add_argument("--expire-time", type=iso_time, help="ISO time it stops working")
    x = command(keys, "get", "one key (never its secret)", _get)
    x.add_argument("api_key_id", help="the key's id (not its secret)")
    x = command(keys, "list", "the tenant's keys, oldest first", _list)
    x.add_argument("--show-revoked", action="store_true", help="include revoked keys")
    paging(x)
    x = command(keys, "revoke", "revoke a key; it is refused from then on", _revoke)
    x.add_argument("api_key_id", help="the key's id")
