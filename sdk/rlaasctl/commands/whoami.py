"""`whoami`: the caller's tenant, key and scopes (GetCallerIdentity)."""

from __future__ import annotations

import argparse
from typing import Any

from rlaas.registry.v1 import registry_pb2 as reg
from rlaasctl.client import Ctl, Shown
from rlaasctl.output import fields
from rlaasctl.parsing import command


def _whoami(c: Ctl, a: argparse.Namespace) -> Shown:
    return c.call(c.registry.GetCallerIdentity, reg.GetCallerIdentityRequest()), fields


def register(sub: Any) -> None:
    command(sub, "whoami", "the caller's tenant, key and scopes", _whoami)
