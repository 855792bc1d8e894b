"""Who may call which RPC, read from the contract itself.

Each RPC declares ``(rlaas.options.v1.required_scope)`` (and maybe ``operator_only``) in
its proto; this module turns the compiled descriptors into a lookup table, so a new RPC
cannot ship without an access rule: a method with no scope is refused (fail closed).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from google.protobuf.descriptor import ServiceDescriptor

from rlaas.options.v1 import options_pb2
from services.tenancy.principal import Scope

# Methods reachable without an API key: infrastructure, not tenant data.
PUBLIC_SERVICES = frozenset(
    {
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
        "grpc.reflection.v1.ServerReflection",
    }
)

_SCOPES = {
    options_pb2.SCOPE_INGEST: Scope.INGEST,
    options_pb2.SCOPE_INFER: Scope.INFER,
    options_pb2.SCOPE_TRAIN: Scope.TRAIN,
    options_pb2.SCOPE_ADMIN: Scope.ADMIN,
    options_pb2.SCOPE_DEPLOY: Scope.DEPLOY,
}


@dataclass(frozen=True, slots=True)
class MethodRule:
    full_method: str  # "/package.Service/Method"
    scope: Scope | None  # None: any authenticated key
    operator_only: bool


class MissingAccessRule(Exception):
    pass


def rules_for(services: Iterable[ServiceDescriptor]) -> dict[str, MethodRule]:
    rules: dict[str, MethodRule] = {}
    for service in services:
        for method in service.methods:
            full = f"/{service.full_name}/{method.name}"
            opts = method.GetOptions()
            declared = opts.Extensions[options_pb2.required_scope]
            if declared == options_pb2.SCOPE_UNSPECIFIED:
                raise MissingAccessRule(f"{full} declares no (rlaas.options.v1.required_scope)")
            scope = None if declared == options_pb2.SCOPE_AUTHENTICATED else _SCOPES[declared]
            rules[full] = MethodRule(full, scope, opts.Extensions[options_pb2.operator_only])
    return rules


def is_public(full_method: str) -> bool:
    service = full_method.lstrip("/").split("/", 1)[0]
    return service in PUBLIC_SERVICES


def scope_to_proto(scope: Scope) -> int:
    return next(k for k, v in _SCOPES.items() if v == scope)


def scope_from_proto(value: int) -> Scope | None:
    return _SCOPES.get(value)
