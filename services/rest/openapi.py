"""OpenAPI 3.1 for the REST bridge, written from the descriptors.

protoc-gen-openapiv2 (grpc-gateway's generator) is a Go binary that is not available
here, and it writes Swagger 2.0; this module does the same job from the compiled
descriptors, over the very ``routes`` the bridge serves, so the document cannot differ
from what is served. ``infra/codegen.py`` (``make gen``) writes it to
``gen/openapi/rlaas.openapi.json`` with the proto comments as descriptions (from the
descriptor set's source info); the bridge serves that file at ``GET /openapi.json``.

Schemas follow the proto3 JSON mapping: lowerCamelCase names, 64-bit integers as
strings, enums as their names, bytes as base64, the well-known types in their JSON forms,
maps as objects; the members of a oneof are ordinary properties (at most one may be set).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from google.api import field_behavior_pb2
from google.protobuf import descriptor_pb2
from google.protobuf.descriptor import (
    Descriptor,
    EnumDescriptor,
    FieldDescriptor,
    ServiceDescriptor,
)

from services.rest.routes import Route, is_map, message_type, routes_for

OPENAPI_FILE = Path(__file__).resolve().parents[2] / "gen" / "openapi" / "rlaas.openapi.json"
NDJSON = "application/x-ndjson"
STATUS = "google.rpc.Status"
_REF = "#/components/schemas/"

_T = FieldDescriptor
_SCALARS: dict[int, dict[str, Any]] = {
    _T.TYPE_DOUBLE: {"type": "number", "format": "double"},
    _T.TYPE_FLOAT: {"type": "number", "format": "float"},
    _T.TYPE_INT32: {"type": "integer", "format": "int32"},
    _T.TYPE_SINT32: {"type": "integer", "format": "int32"},
    _T.TYPE_SFIXED32: {"type": "integer", "format": "int32"},
    _T.TYPE_UINT32: {"type": "integer", "format": "int64", "minimum": 0, "maximum": 2**32 - 1},
    _T.TYPE_FIXED32: {"type": "integer", "format": "int64", "minimum": 0, "maximum": 2**32 - 1},
    # 64-bit integers are JSON strings (a JavaScript number cannot hold them).
    _T.TYPE_INT64: {"type": "string", "format": "int64", "pattern": "^-?[0-9]{1,19}$"},
    _T.TYPE_SINT64: {"type": "string", "format": "int64", "pattern": "^-?[0-9]{1,19}$"},
    _T.TYPE_SFIXED64: {"type": "string", "format": "int64", "pattern": "^-?[0-9]{1,19}$"},
    _T.TYPE_UINT64: {"type": "string", "format": "uint64", "pattern": "^[0-9]{1,20}$"},
    _T.TYPE_FIXED64: {"type": "string", "format": "uint64", "pattern": "^[0-9]{1,20}$"},
    _T.TYPE_BOOL: {"type": "boolean"},
    _T.TYPE_STRING: {"type": "string"},
    _T.TYPE_BYTES: {"type": "string", "format": "byte", "contentEncoding": "base64"},
}
# The well-known types' JSON forms (https://protobuf.dev/programming-guides/json/).
_WKT: dict[str, dict[str, Any]] = {
    "google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
    "google.protobuf.Duration": {
        "type": "string",
        "pattern": "^-?[0-9]{1,12}(\\.[0-9]{1,9})?s$",
        "description": "Seconds with an `s` suffix, e.g. `1.5s`.",
    },
    "google.protobuf.FieldMask": {
        "type": "string",
        "description": "Comma-separated lowerCamelCase field paths.",
    },
    "google.protobuf.Struct": {"type": "object", "additionalProperties": True},
    "google.protobuf.Value": {"description": "Any JSON value."},
    "google.protobuf.ListValue": {"type": "array", "items": {}},
    "google.protobuf.NullValue": {"type": "null"},
    "google.protobuf.Empty": {"type": "object"},
    "google.protobuf.Any": {
        "type": "object",
        "properties": {"@type": {"type": "string"}},
        "required": ["@type"],
        "additionalProperties": True,
        "description": "A message of the type named by `@type`, with its fields inline.",
    },
    "google.protobuf.DoubleValue": _SCALARS[_T.TYPE_DOUBLE],
    "google.protobuf.FloatValue": _SCALARS[_T.TYPE_FLOAT],
    "google.protobuf.Int64Value": _SCALARS[_T.TYPE_INT64],
    "google.protobuf.UInt64Value": _SCALARS[_T.TYPE_UINT64],
    "google.protobuf.Int32Value": _SCALARS[_T.TYPE_INT32],
    "google.protobuf.UInt32Value": _SCALARS[_T.TYPE_UINT32],
    "google.protobuf.BoolValue": _SCALARS[_T.TYPE_BOOL],
    "google.protobuf.StringValue": _SCALARS[_T.TYPE_STRING],
    "google.protobuf.BytesValue": _SCALARS[_T.TYPE_BYTES],
}
# Message types a query or path parameter may carry (their JSON form is a string).
_URL_WKT = {"google.protobuf.Timestamp", "google.protobuf.Duration", "google.protobuf.FieldMask"}
_WRAPPERS = {n for n in _WKT if n.endswith("Value") and n not in ("google.protobuf.Value",)} - {
    "google.protobuf.ListValue",
    "google.protobuf.NullValue",
}


def _walk_enum(
    names: dict[tuple[int, ...], str], enum: Any, path: tuple[int, ...], scope: str
) -> None:
    full = f"{scope}{enum.name}"
    names[path] = full
    for k, value in enumerate(enum.value):
        names[(*path, 2, k)] = f"{full}.{value.name}"


def _walk_message(
    names: dict[tuple[int, ...], str], msg: Any, path: tuple[int, ...], scope: str
) -> None:
    full = f"{scope}{msg.name}"
    names[path] = full
    for k, field in enumerate(msg.field):
        names[(*path, 2, k)] = f"{full}.{field.name}"
    for k, nested in enumerate(msg.nested_type):
        _walk_message(names, nested, (*path, 3, k), f"{full}.")
    for k, enum in enumerate(msg.enum_type):
        _walk_enum(names, enum, (*path, 4, k), f"{full}.")


def comments_from(files: Iterable[descriptor_pb2.FileDescriptorProto]) -> dict[str, str]:
    """Leading comments by full name (services, methods, messages, fields, enums, values),
    from a descriptor set built with ``--include_source_info``. Source locations are
    paths of field numbers in descriptor.proto (4: message_type, 2: field, ...)."""
    out: dict[str, str] = {}
    for file in files:
        names: dict[tuple[int, ...], str] = {}
        prefix = f"{file.package}." if file.package else ""
        for i, msg in enumerate(file.message_type):
            _walk_message(names, msg, (4, i), prefix)
        for i, enum in enumerate(file.enum_type):
            _walk_enum(names, enum, (5, i), prefix)
        for i, service in enumerate(file.service):
            names[(6, i)] = f"{prefix}{service.name}"
            for k, method in enumerate(service.method):
                names[(6, i, 2, k)] = f"{prefix}{service.name}.{method.name}"
        for location in file.source_code_info.location:
            name = names.get(tuple(location.path))
            text = location.leading_comments.strip()
            if name and text:
                out[name] = "\n".join(line.strip() for line in text.splitlines())
    return out


def _behaviors(field: FieldDescriptor) -> set[int]:
    options = field.GetOptions()
    return set(options.Extensions[field_behavior_pb2.field_behavior])


class _Builder:
    def __init__(self, comments: Mapping[str, str]) -> None:
        self.comments = comments
        self.schemas: dict[str, Any] = {}

    def _describe(self, schema: dict[str, Any], full_name: str) -> dict[str, Any]:
        text = self.comments.get(full_name)
        if text:
            schema = {**schema, "description": text}
        return schema

    def ref(self, full_name: str) -> dict[str, Any]:
        return {"$ref": _REF + full_name}

    def enum(self, enum: EnumDescriptor) -> dict[str, Any]:
        if enum.full_name not in self.schemas:
            schema = {"type": "string", "enum": [v.name for v in enum.values]}
            self.schemas[enum.full_name] = self._describe(schema, enum.full_name)
        return self.ref(enum.full_name)

    def message(self, message: Descriptor) -> dict[str, Any]:
        name = message.full_name
        if name in self.schemas:
            return self.ref(name)
        if name in _WKT:
            self.schemas[name] = _WKT[name]
            return self.ref(name)
        self.schemas[name] = {}  # placeholder: recursive messages refer to themselves
        self.schemas[name] = self._describe(self.object(message), name)
        return self.ref(name)

    def object(
        self,
        message: Descriptor,
        *,
        exclude: frozenset[str] = frozenset(),
        with_required: bool = False,
    ) -> dict[str, Any]:
        properties: dict[str, Any] = {}
        required: list[str] = []
        for field in message.fields:
            if field.name in exclude:
                continue
            properties[field.json_name] = self.field(field)
            if with_required and field_behavior_pb2.REQUIRED in _behaviors(field):
                required.append(field.json_name)
        schema: dict[str, Any] = {"type": "object", "properties": properties}
        if required:
            schema["required"] = required
        # A proto3 `optional` is a one-member (synthetic) oneof: nothing to document.
        members = [[f.json_name for f in o.fields if f.name not in exclude] for o in message.oneofs]
        oneofs = [m for m in members if len(m) > 1]
        if oneofs:
            # Documented, not enforced in the schema: a `not`-per-pair constraint makes
            # request generation (schemathesis, clients) slow for no gain; the server
            # rejects two members of one oneof with 400.
            schema["x-oneofs"] = oneofs
        return schema

    def value(self, field: FieldDescriptor) -> dict[str, Any]:
        if field.type == _T.TYPE_MESSAGE:
            return self.message(message_type(field))
        if field.type == _T.TYPE_ENUM:
            assert field.enum_type is not None
            return self.enum(field.enum_type)
        return dict(_SCALARS[field.type])

    def field(self, field: FieldDescriptor) -> dict[str, Any]:
        if is_map(field):
            value_field = message_type(field).fields_by_name["value"]
            schema: dict[str, Any] = {
                "type": "object",
                "additionalProperties": self.value(value_field),
            }
        elif field.is_repeated:
            schema = {"type": "array", "items": self.value(field)}
        else:
            schema = self.value(field)
        extra: dict[str, Any] = {}
        text = self.comments.get(field.full_name)
        if text:
            extra["description"] = text
        if field_behavior_pb2.OUTPUT_ONLY in _behaviors(field):
            extra["readOnly"] = True
        if extra:
            # OpenAPI 3.1: siblings of $ref are allowed (JSON Schema 2020-12).
            schema = {**schema, **extra}
        return schema

    def url_schema(self, field: FieldDescriptor) -> dict[str, Any] | None:
        """Schema of a path/query value, or None when a URL cannot carry the field."""
        if field.type == _T.TYPE_MESSAGE:
            name = message_type(field).full_name
            return dict(_WKT[name]) if name in _URL_WKT or name in _WRAPPERS else None
        return self.value(field)


def _query_parameters(
    builder: _Builder,
    route: Route,
    message: Descriptor,
    proto_prefix: str = "",
    json_prefix: str = "",
    depth: int = 0,
) -> list[dict[str, Any]]:
    """grpc-gateway's query parameters: every leaf not bound by path or body, nested
    messages by dotted lowerCamelCase names, maps as ``name[key]`` (deepObject)."""
    params: list[dict[str, Any]] = []
    for field in message.fields:
        if not proto_prefix and field.name == route.body:
            continue
        if f"{proto_prefix}{field.name}" in route.path_fields:
            continue
        name = f"{json_prefix}{field.json_name}"
        param: dict[str, Any] = {"name": name, "in": "query", "required": False}
        description = builder.comments.get(field.full_name)
        if description:
            param["description"] = description
        if is_map(field):
            value = builder.url_schema(message_type(field).fields_by_name["value"])
            if value is not None:
                schema = {"type": "object", "additionalProperties": value}
                params.append({**param, "style": "deepObject", "explode": True, "schema": schema})
            continue
        leaf = builder.url_schema(field)
        if leaf is not None:
            if field.is_repeated:
                param.update(style="form", explode=True, schema={"type": "array", "items": leaf})
            else:
                param["schema"] = leaf
            params.append(param)
        elif (
            field.type == _T.TYPE_MESSAGE
            and not field.is_repeated
            and message_type(field).full_name not in _WKT
            and depth < 3
        ):
            params.extend(
                _query_parameters(
                    builder,
                    route,
                    message_type(field),
                    f"{proto_prefix}{field.name}.",
                    f"{name}.",
                    depth + 1,
                )
            )
    return params


def _operation(builder: _Builder, route: Route) -> dict[str, Any]:
    method = route.method
    request, response = method.input_type, method.output_type
    op: dict[str, Any] = {
        "operationId": route.operation_id,
        "tags": [method.containing_service.name],
        "summary": f"{method.containing_service.name}.{method.name}",
    }
    text = builder.comments.get(f"{method.containing_service.full_name}.{method.name}")
    if text:
        op["description"] = text
    params = []
    for var in route.template.variables:
        chain = [request]
        field = None
        for part in var.field_path.split("."):
            field = chain[-1].fields_by_name[part]
            if field.message_type is not None:
                chain.append(field.message_type)
        assert field is not None
        schema = builder.url_schema(field) or {"type": "string"}
        if not var.single_segment:
            schema = {**schema, "description": f"Matches `{'/'.join(var.segments)}`."}
        param = {"name": var.field_path, "in": "path", "required": True, "schema": schema}
        description = builder.comments.get(field.full_name)
        if description:
            param["description"] = description
        params.append(param)
    if route.query_allowed():
        params.extend(_query_parameters(builder, route, request))
    if params:
        op["parameters"] = params

    if route.body == "*":
        body_schema = builder.object(request, exclude=route.path_fields, with_required=True)
        text = builder.comments.get(request.full_name)
        if text:
            body_schema["description"] = text
    elif route.body:
        body_schema = builder.field(request.fields_by_name[route.body])
    else:
        body_schema = None
    if body_schema is not None:
        if route.client_streaming:
            content = {NDJSON: {"schema": body_schema}}
            description = f"One {request.name} per line (newline-delimited JSON)."
        else:
            content = {"application/json": {"schema": body_schema}}
            description = request.name if route.body == "*" else route.body
        op["requestBody"] = {"required": True, "content": content, "description": description}

    if route.response_body:
        result = builder.field(response.fields_by_name[route.response_body])
    else:
        result = builder.message(response)
    if route.server_streaming:
        line = {
            "type": "object",
            "properties": {"result": result, "error": builder.ref(STATUS)},
            "description": "One line per message; a failure ends the stream with `error`.",
        }
        ok: dict[str, Any] = {
            "description": f"A stream of {response.name} (newline-delimited JSON).",
            "content": {NDJSON: {"schema": line}},
        }
    else:
        ok = {"description": response.name, "content": {"application/json": {"schema": result}}}
    status_content: dict[str, Any] = {"application/json": {"schema": builder.ref(STATUS)}}
    error: dict[str, Any] = {
        "description": "An error: a google.rpc.Status (HTTP status from its code).",
        "content": status_content,
    }
    if route.server_streaming:
        # As grpc-gateway: a request the bridge cannot decode is a plain Status; a stream
        # that fails before its first message is the status of its code and one
        # `{"error": ...}` line (the stream error chunk).
        error = {
            "description": "A Status, or a stream that failed before its first message.",
            "content": {**status_content, NDJSON: {"schema": line}},
        }
    op["responses"] = {"200": ok, "default": error}
    return op


def build(
    services: Sequence[ServiceDescriptor], comments: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The OpenAPI document of every route of ``services``."""
    builder = _Builder(comments or {})
    # Sorted: the same document whatever order the descriptors came in.
    services = sorted(services, key=lambda s: s.full_name)
    routes = routes_for(services)
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        item = paths.setdefault(route.template.openapi_path(), {})
        item[route.http_method.lower()] = _operation(builder, route)
    from google.rpc import status_pb2

    builder.message(status_pb2.Status.DESCRIPTOR)
    tags = [
        {"name": s.name, **({"description": c} if (c := builder.comments.get(s.full_name)) else {})}
        for s in services
    ]
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "RLaaS API",
            "version": "v1",
            "description": (
                "The RLaaS services over HTTP/JSON (the REST bridge of `rlaas serve`), as the "
                "`google.api.http` annotations of the protos say. Generated from the protos by "
                "`make gen`; do not edit. Errors are `google.rpc.Status` JSON under the HTTP "
                "status grpc-gateway maps their code to; server streams are newline-delimited "
                'JSON, one `{"result": ...}` per message and `{"error": ...}` on failure.'
            ),
        },
        "tags": tags,
        "security": [{"apiKey": []}, {"bearer": []}],
        "paths": paths,
        "components": {
            "schemas": dict(sorted(builder.schemas.items())),
            "securitySchemes": {
                "apiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"},
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "`authorization: Bearer rlaas_...`, the same API key.",
                },
            },
        },
    }


def render(document: Mapping[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
