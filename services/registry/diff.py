"""What changed between two policies: field-level changes and a unified diff of the
rendered prompt. Pure functions over ``Policy`` messages."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

from google.protobuf import json_format
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from rlaas.registry.v1 import registry_pb2 as pb
from services.registry.validation import OUTPUT_ONLY_POLICY_FIELDS, policy_content

_INT64 = {
    FieldDescriptor.TYPE_INT64,
    FieldDescriptor.TYPE_UINT64,
    FieldDescriptor.TYPE_SINT64,
    FieldDescriptor.TYPE_FIXED64,
    FieldDescriptor.TYPE_SFIXED64,
}


@dataclass(frozen=True, slots=True)
class FieldChange:
    field_path: str
    before: Any  # JSON value; None when absent
    after: Any


def _scalar(field: Any, value: Any) -> Any:
    if field.type == FieldDescriptor.TYPE_ENUM:
        enum_value = field.enum_type.values_by_number.get(value)
        return enum_value.name if enum_value else value
    if field.type in _INT64:
        return str(value)  # proto3 JSON mapping: int64 as a string
    if field.type == FieldDescriptor.TYPE_BYTES:
        return value.hex()
    return value


def _is_map(field: Any) -> bool:
    return field.message_type is not None and field.message_type.GetOptions().map_entry


def flatten(message: Message, prefix: str = "") -> dict[str, Any]:
    """Leaf paths of a message and their JSON values. Submessages recurse; repeated
    fields and maps are leaves; unset fields (and proto3 defaults of fields without
    presence) are absent."""
    out: dict[str, Any] = {}
    field: Any
    for field in message.DESCRIPTOR.fields:
        path = f"{prefix}{field.name}"
        value = getattr(message, field.name)
        if _is_map(field):
            if value:
                out[path] = {
                    k: json_format.MessageToDict(v) if isinstance(v, Message) else v
                    for k, v in sorted(value.items())
                }
        elif field.is_repeated:
            if value:
                out[path] = [
                    json_format.MessageToDict(v, preserving_proto_field_name=True)
                    if isinstance(v, Message)
                    else _scalar(field, v)
                    for v in value
                ]
        elif field.message_type is not None:
            if message.HasField(field.name):
                out.update(flatten(value, f"{path}."))
        elif field.has_presence:
            if message.HasField(field.name):
                out[path] = _scalar(field, value)
        elif value != field.default_value:
            out[path] = _scalar(field, value)
    return out


def field_changes(base: pb.Policy, target: pb.Policy) -> list[FieldChange]:
    """Every differing caller-set field, by path; output-only fields are not compared."""
    a = flatten(policy_content(base))
    b = flatten(policy_content(target))
    for name in OUTPUT_ONLY_POLICY_FIELDS:
        a.pop(name, None)
        b.pop(name, None)
    return [
        FieldChange(path, a.get(path), b.get(path))
        for path in sorted(a.keys() | b.keys())
        if a.get(path) != b.get(path)
    ]


def rendered_prompt(policy: pb.Policy) -> list[str]:
    """The prompt of a policy as text lines: system prompt, template, examples."""
    prompt = policy.prompt_template
    lines = [f"# template_version: {prompt.template_version}\n", "## system_prompt\n"]
    lines += _lines(prompt.system_prompt)
    lines += ["## user_template\n", *_lines(prompt.user_template)]
    for i, example in enumerate(prompt.examples, start=1):
        lines += [f"## example {i} input\n", *_lines(example.input)]
        lines += [f"## example {i} output\n", *_lines(example.output)]
    return lines


def _lines(text: str) -> list[str]:
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    return lines


def prompt_diff(base: pb.Policy, target: pb.Policy) -> str:
    return "".join(
        difflib.unified_diff(
            rendered_prompt(base),
            rendered_prompt(target),
            fromfile=base.policy_id,
            tofile=target.policy_id,
        )
    )
