"""Routes read from the compiled descriptors: the ``google.api.http`` option of each
method (and its ``additional_bindings``), never a hand-kept list. The bridge and the
OpenAPI generator both build from here, so the served paths and the documented ones
cannot drift apart."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from google.api import annotations_pb2, http_pb2
from google.protobuf.descriptor import (
    Descriptor,
    FieldDescriptor,
    MethodDescriptor,
    ServiceDescriptor,
)

from services.rest.template import PathTemplate, TemplateError, parse

HTTP_METHODS = ("GET", "PUT", "POST", "DELETE", "PATCH")


class RouteError(ValueError):
    """An annotation the bridge cannot serve (a contract bug: fails at startup and in CI)."""


@dataclass(frozen=True)
class Route:
    method: MethodDescriptor
    http_method: str
    template: PathTemplate
    body: str  # "" (none: the rest comes from the query), "*" or a top-level field name
    response_body: str  # "" (the whole response) or a top-level field name
    binding: int  # 0: the rule itself; 1..: its additional_bindings, in order

    @property
    def rpc_path(self) -> str:
        return f"/{self.method.containing_service.full_name}/{self.method.name}"

    @property
    def client_streaming(self) -> bool:
        return bool(self.method.client_streaming)

    @property
    def server_streaming(self) -> bool:
        return bool(self.method.server_streaming)

    @property
    def operation_id(self) -> str:
        base = f"{self.method.containing_service.name}_{self.method.name}"
        return base if self.binding == 0 else f"{base}{self.binding + 1}"

    @property
    def path_fields(self) -> frozenset[str]:
        return frozenset(v.field_path for v in self.template.variables)

    def query_allowed(self) -> bool:
        # grpc-gateway: with body "*" every field comes from the body or the path.
        return self.body != "*"


def message_type(field: FieldDescriptor) -> Descriptor:
    found = field.message_type
    if found is None:
        raise TypeError(f"{field.full_name} is not a message field")
    return found


def is_map(field: FieldDescriptor) -> bool:
    return field.message_type is not None and bool(field.message_type.GetOptions().map_entry)


def field_chain(
    message: Descriptor, path: str, *, json_names: bool = False
) -> list[FieldDescriptor]:
    """The fields a dotted path walks through; ``json_names`` also accepts lowerCamelCase
    names (query parameters, as grpc-gateway does). Raises KeyError when one is unknown."""
    chain: list[FieldDescriptor] = []
    current: Descriptor | None = message
    for name in path.split("."):
        if current is None:
            raise KeyError(path)
        found = current.fields_by_name.get(name)
        if found is None and json_names:
            found = next((f for f in current.fields if f.json_name == name), None)
        if found is None:
            raise KeyError(path)
        chain.append(found)
        current = found.message_type
    return chain


def _pattern(rule: http_pb2.HttpRule) -> tuple[str, str]:
    kind = rule.WhichOneof("pattern")
    if kind is None:
        raise RouteError("no pattern")
    if kind == "custom":
        return rule.custom.kind.upper(), rule.custom.path
    return kind.upper(), str(getattr(rule, kind))


def _route(method: MethodDescriptor, rule: http_pb2.HttpRule, binding: int) -> Route:
    where = f"{method.full_name} (binding {binding})"
    verb, path = _pattern(rule)
    if verb not in HTTP_METHODS:
        raise RouteError(f"{where}: unsupported HTTP method {verb}")
    try:
        template = parse(path)
    except TemplateError as err:
        raise RouteError(f"{where}: {err}") from err
    request = method.input_type
    for var in template.variables:
        try:
            chain = field_chain(request, var.field_path)
        except KeyError:
            raise RouteError(f"{where}: no field {var.field_path!r} for {path}") from None
        leaf = chain[-1]
        if leaf.is_repeated or leaf.type == FieldDescriptor.TYPE_MESSAGE:
            raise RouteError(f"{where}: path field {var.field_path!r} must be a singular scalar")
    if rule.body not in ("", "*") and rule.body not in request.fields_by_name:
        raise RouteError(f"{where}: no body field {rule.body!r}")
    if rule.body and verb == "GET":
        raise RouteError(f"{where}: a GET takes no body")
    if rule.response_body and rule.response_body not in method.output_type.fields_by_name:
        raise RouteError(f"{where}: no response_body field {rule.response_body!r}")
    if method.client_streaming and rule.body != "*":
        raise RouteError(f"{where}: a client-streaming RPC needs body '*'")
    return Route(method, verb, template, rule.body, rule.response_body, binding)


def method_routes(method: MethodDescriptor) -> list[Route]:
    options = method.GetOptions()
    if not options.HasExtension(annotations_pb2.http):
        # grpc-gateway's generate_unbound_methods: POST /pkg.Service/Method, body "*".
        default = http_pb2.HttpRule(
            post=f"/{method.containing_service.full_name}/{method.name}", body="*"
        )
        return [_route(method, default, 0)]
    rule = options.Extensions[annotations_pb2.http]
    routes = [_route(method, rule, 0)]
    for i, extra in enumerate(rule.additional_bindings, start=1):
        if extra.additional_bindings:
            raise RouteError(f"{method.full_name}: additional_bindings cannot nest")
        routes.append(_route(method, extra, i))
    return routes


def routes_for(services: Iterable[ServiceDescriptor]) -> list[Route]:
    routes = [r for s in services for m in s.methods for r in method_routes(m)]
    seen: dict[tuple[str, str], str] = {}
    for r in routes:
        key = (r.http_method, r.template.openapi_path())
        if key in seen:
            raise RouteError(f"{r.method.full_name} and {seen[key]} both bind {key[0]} {key[1]}")
        seen[key] = r.method.full_name
    return routes


@dataclass(frozen=True, slots=True)
class Matched:
    route: Route
    path_params: dict[str, str]


@dataclass(frozen=True, slots=True)
class NotMatched:
    allowed: tuple[str, ...]  # methods that serve this path: empty means 404, else 405


class Router:
    """grpc-gateway's ServeMux: match by HTTP method and template; a path that matches
    only under other methods is told which ones (405 with Allow)."""

    def __init__(self, routes: Sequence[Route]) -> None:
        self.routes = list(routes)
        self._by_method: dict[str, list[Route]] = {}
        for route in sorted(routes, key=lambda r: r.template.specificity, reverse=True):
            self._by_method.setdefault(route.http_method, []).append(route)

    def match(self, http_method: str, raw_path: str) -> Matched | NotMatched:
        for route in self._by_method.get(http_method, ()):
            params = route.template.match(raw_path)
            if params is not None:
                return Matched(route, params)
        allowed = tuple(
            sorted(
                m
                for m, routes in self._by_method.items()
                if m != http_method and any(r.template.match(raw_path) is not None for r in routes)
            )
        )
        return NotMatched(allowed)
