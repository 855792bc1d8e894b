"""HTTP request -> request message, response message -> JSON, as grpc-gateway does it.

Order (grpc-gateway's generated handlers): the body (``*`` = the whole message, a field
name = that field), then query parameters for every field the path and body do not bind
(repeated fields repeated, nested fields by dots, maps as ``labels[key]=value``, enums by
name or number, proto or lowerCamelCase names; unknown parameters are ignored), then the
path variables, which win. JSON is proto3 JSON through ``google.protobuf.json_format``:
requests accept both JSON and original field names and ignore unknown fields (grpc-gateway's
``DiscardUnknown``); responses use lowerCamelCase names and print fields without presence
(grpc-gateway's ``EmitUnpopulated``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from services.rest.errors import BadInput
from services.rest.routes import Route, field_chain, is_map, message_type

# Well-known types whose JSON form is a string or a scalar: settable from a path or query.
_STRING_WKT = {
    "google.protobuf.Timestamp",
    "google.protobuf.Duration",
    "google.protobuf.FieldMask",
}
_WRAPPERS = {
    f"google.protobuf.{n}Value"
    for n in ("Double", "Float", "Int64", "UInt64", "Int32", "UInt32", "Bool", "String", "Bytes")
}
# strconv.ParseBool, which grpc-gateway uses for bool parameters.
_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_FALSE = {"0", "f", "F", "FALSE", "false", "False"}
_MAP_KEY = re.compile(r"^(?P<name>[^\[\]]+)\[(?P<key>[^\[\]]*)\]$")
_FIELD_IN_ERROR = re.compile(r"Failed to parse (\S+) field")


def _error_field(err: Exception, prefix: str = "") -> str:
    names = _FIELD_IN_ERROR.findall(str(err))
    return ".".join(names) or prefix


def _scalar_from_text(field: FieldDescriptor, text: str, name: str) -> Any:
    if field.type == FieldDescriptor.TYPE_BOOL:
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise BadInput(name, f"{text!r} is not a bool (true or false)")
    if field.type == FieldDescriptor.TYPE_ENUM:
        # As grpc-gateway's query parser: a value name or a defined number, else an error.
        enum = field.enum_type
        assert enum is not None
        if text in enum.values_by_name:
            return text
        if text.lstrip("-").isdigit() and int(text) in enum.values_by_number:
            return int(text)
        raise BadInput(name, f"{text!r} is not a value of {enum.full_name}")
    # Numbers, enums (name or number) and base64 bytes: json_format parses the string.
    return text


def _leaf_from_text(field: FieldDescriptor, text: str, name: str) -> Any:
    if field.type != FieldDescriptor.TYPE_MESSAGE:
        return _scalar_from_text(field, text, name)
    full = message_type(field).full_name
    if full in _WRAPPERS:
        return _scalar_from_text(message_type(field).fields_by_name["value"], text, name)
    if full in _STRING_WKT:
        return text
    raise BadInput(name, f"a {full} cannot be set from a URL; send it in the body")


def _parse_into(tree: dict[str, Any], message: Message, prefix: str = "") -> None:
    try:
        json_format.ParseDict(tree, message, ignore_unknown_fields=True)
    except json_format.ParseError as err:
        raise BadInput(_error_field(err, prefix), str(err)) from None
    except (ValueError, TypeError, AttributeError, RecursionError) as err:
        raise BadInput(prefix, f"cannot parse: {err}") from None


def _put(tree: dict[str, Any], chain: list[FieldDescriptor], value: Any, name: str) -> None:
    for field in chain[:-1]:
        if field.is_repeated:
            raise BadInput(name, f"{field.name} is repeated: its elements go in the body")
        node = tree.setdefault(field.name, {})
        if not isinstance(node, dict):
            raise BadInput(name, "conflicting parameters")
        tree = node
    leaf = chain[-1]
    if leaf.is_repeated:
        tree.setdefault(leaf.name, []).append(value)
    else:
        tree[leaf.name] = value


def apply_path(route: Route, params: Mapping[str, str], message: Message) -> None:
    tree: dict[str, Any] = {}
    for path, text in params.items():
        chain = field_chain(route.method.input_type, path)  # checked when the route was built
        _put(tree, chain, _leaf_from_text(chain[-1], text, path), path)
    _parse_into(tree, message)


def apply_query(route: Route, items: Iterable[tuple[str, str]], message: Message) -> None:
    tree: dict[str, Any] = {}
    request = route.method.input_type
    for name, text in items:
        key = None
        found = _MAP_KEY.match(name)
        path = found.group("name") if found else name
        if found:
            key = found.group("key")
        try:
            chain = field_chain(request, path, json_names=True)
        except KeyError:
            continue  # grpc-gateway ignores parameters that are not fields
        canonical = ".".join(f.name for f in chain)
        if canonical in route.path_fields or chain[0].name == route.body:
            continue  # bound by the path or the body (grpc-gateway's filter)
        leaf = chain[-1]
        if is_map(leaf):
            if key is None:
                raise BadInput(name, f"a map parameter is written {name}[key]=value")
            value_field = message_type(leaf).fields_by_name["value"]
            value = _leaf_from_text(value_field, text, name)
            node = tree
            for field in chain[:-1]:
                node = node.setdefault(field.name, {})
            node.setdefault(leaf.name, {})[key] = value
            continue
        if key is not None:
            raise BadInput(name, f"{path} is not a map")
        _put(tree, chain, _leaf_from_text(leaf, text, name), name)
    _parse_into(tree, message)


def _check_message(value: Any, message: Descriptor, path: str) -> None:
    if value is None:
        return
    if message.full_name.startswith("google.protobuf."):
        return  # well-known types have their own JSON forms; json_format checks them
    if not isinstance(value, dict):
        raise BadInput(path, f"must be a JSON object ({message.name}), not {_kind(value)}")
    check_shape(value, message, f"{path}.")


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    return "a string" if isinstance(value, str) else "a scalar"


def check_shape(obj: dict[str, Any], message: Descriptor, prefix: str = "") -> None:
    """Objects where the message has messages, arrays where it has repeated fields.
    json_format, asked to ignore unknown fields, would read a string given for a message
    as an empty message; grpc-gateway (protojson) rejects it, and so does the bridge."""
    for key, value in obj.items():
        field = message.fields_by_name.get(key) or next(
            (f for f in message.fields if f.json_name == key), None
        )
        if field is None or value is None:
            continue  # unknown fields are ignored, null means unset
        path = f"{prefix}{key}"
        if is_map(field):
            if not isinstance(value, dict):
                raise BadInput(path, f"must be a JSON object (a map), not {_kind(value)}")
            value_field = message_type(field).fields_by_name["value"]
            if value_field.message_type is not None:
                for k, item in value.items():
                    _check_message(item, value_field.message_type, f"{path}[{k}]")
        elif field.is_repeated:
            if not isinstance(value, list):
                raise BadInput(path, f"must be a JSON array, not {_kind(value)}")
            if field.message_type is not None:
                for i, item in enumerate(value):
                    _check_message(item, field.message_type, f"{path}[{i}]")
        elif field.message_type is not None:
            _check_message(value, field.message_type, path)


def parse_json(raw: bytes, where: str = "") -> Any:
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as err:  # JSONDecodeError and bad UTF-8 alike
        raise BadInput(where, f"malformed JSON: {err}") from None


def apply_body(route: Route, raw: bytes, message: Message) -> None:
    if not raw.strip():
        return  # grpc-gateway treats an empty body as an empty message (io.EOF)
    body_json(route, parse_json(raw), message)


def body_json(route: Route, value: Any, message: Message) -> None:
    if route.body == "*":
        if not isinstance(value, dict):
            raise BadInput("", f"the body must be a JSON object ({route.method.input_type.name})")
        check_shape(value, route.method.input_type)
        _parse_into(value, message)
    elif route.body:
        tree = {route.body: value}
        check_shape(tree, route.method.input_type)
        _parse_into(tree, message, route.body)


def build_request(
    route: Route,
    message: Message,
    path_params: Mapping[str, str],
    query: Iterable[tuple[str, str]],
    body: bytes,
) -> Message:
    if route.body:
        apply_body(route, body, message)
    if route.query_allowed():
        apply_query(route, query, message)
    apply_path(route, path_params, message)
    return message


def message_json(message: Message) -> dict[str, Any]:
    return json_format.MessageToDict(message, always_print_fields_with_no_presence=True)


def response_json(route: Route, message: Message) -> Any:
    out = message_json(message)
    if route.response_body:
        field = message.DESCRIPTOR.fields_by_name[route.response_body]
        return out.get(field.json_name)
    return out


def dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
