"""Hostile requests built from the descriptors alone: every string field a request can
reach (through submessages, repeated fields, map keys and values, Struct keys and
values), every Struct field, and hypothesis strategies for whole messages. Nothing here
names an RPC or a field, so a new field is attacked the day it is added."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, cast

from google.protobuf import message_factory, struct_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from hypothesis import strategies as st

STRING = FieldDescriptor.TYPE_STRING
MESSAGE = FieldDescriptor.TYPE_MESSAGE
STRUCT = "google.protobuf.Struct"
MAX_DEPTH = 7
MAP_KEY = "k"


@dataclass(frozen=True)
class Step:
    field: FieldDescriptor
    # How the step is taken: "one" (singular message), "item" (a repeated message: one
    # element), "entry" (a map of messages: key "k"); the last step: "text" (a string),
    # "texts" (a repeated string: one element), "value" (a map's string value), "key" (a
    # string map key), "struct" (the Struct field itself).
    how: str


@dataclass(frozen=True)
class Slot:
    steps: tuple[Step, ...]

    @property
    def label(self) -> str:
        return ".".join(f"{s.field.name}({s.how})" for s in self.steps)


def _is_map(field: FieldDescriptor) -> bool:
    return field.message_type is not None and field.message_type.GetOptions().map_entry


def string_slots(descriptor: Descriptor) -> list[Slot]:
    """Every place a string can be put in a ``descriptor`` message (recursive types are
    entered once per path: a Struct inside a Value inside a Struct is not repeated)."""
    out: list[Slot] = []

    def visit(d: Descriptor, prefix: tuple[Step, ...], seen: frozenset[str]) -> None:
        if len(prefix) >= MAX_DEPTH:
            return
        for f in d.fields:
            if f.type == STRING:
                out.append(Slot((*prefix, Step(f, "texts" if f.is_repeated else "text"))))
            elif _is_map(f):
                entry = f.message_type
                assert entry is not None
                key, value = entry.fields_by_name["key"], entry.fields_by_name["value"]
                if key.type == STRING:
                    out.append(Slot((*prefix, Step(f, "key"))))
                if value.type == STRING and key.type == STRING:
                    out.append(Slot((*prefix, Step(f, "value"))))
                elif value.type == MESSAGE and key.type == STRING:
                    sub = value.message_type
                    assert sub is not None
                    if sub.full_name not in seen:
                        visit(sub, (*prefix, Step(f, "entry")), seen | {sub.full_name})
            elif f.type == MESSAGE:
                sub = f.message_type
                assert sub is not None
                if sub.full_name not in seen:
                    how = "item" if f.is_repeated else "one"
                    visit(sub, (*prefix, Step(f, how)), seen | {sub.full_name})

    visit(descriptor, (), frozenset({descriptor.full_name}))
    return out


def struct_slots(descriptor: Descriptor, type_name: str = STRUCT) -> list[Slot]:
    """Every singular field of type ``type_name`` (a Struct, a Timestamp...) a request can
    reach outside the google.protobuf types themselves."""
    out: list[Slot] = []

    def visit(d: Descriptor, prefix: tuple[Step, ...], seen: frozenset[str]) -> None:
        if len(prefix) >= MAX_DEPTH:
            return
        for f in d.fields:
            sub = f.message_type
            if sub is None or _is_map(f):
                continue
            if sub.full_name == type_name and not f.is_repeated:
                out.append(Slot((*prefix, Step(f, "struct"))))
            elif not sub.full_name.startswith("google.protobuf.") and sub.full_name not in seen:
                how = "item" if f.is_repeated else "one"
                visit(sub, (*prefix, Step(f, how)), seen | {sub.full_name})

    visit(descriptor, (), frozenset({descriptor.full_name}))
    return out


def place(message: Message, slot: Slot, value: Any) -> str:
    """Put ``value`` at ``slot`` of ``message``; the field path the server names for it
    (services.server.decoding's format: ``a.b[0].c``, map entries ``labels['key']``)."""
    target, path = message, ""
    for step in slot.steps[:-1]:
        name = step.field.name
        here = f"{path}.{name}" if path else name
        if step.how == "item":
            target, path = getattr(target, name).add(), f"{here}[0]"
        elif step.how == "entry":
            target, path = getattr(target, name)[MAP_KEY], f"{here}[{MAP_KEY!r}]"
        else:
            target, path = getattr(target, name), here
    last = slot.steps[-1]
    name = last.field.name
    here = f"{path}.{name}" if path else name
    if last.how == "text":
        setattr(target, name, value)
        return here
    if last.how == "texts":
        getattr(target, name).append(value)
        return f"{here}[0]"
    if last.how == "value":
        getattr(target, name)[MAP_KEY] = value
        return f"{here}[{MAP_KEY!r}]"
    if last.how == "key":
        entries = getattr(target, name)
        entry = last.field.message_type
        assert entry is not None
        if entry.fields_by_name["value"].type == MESSAGE:
            entries.get_or_create(value)
        else:
            entries[value] = _zero(entry.fields_by_name["value"])
        return f"{here}[{value!r}]"
    assert last.how == "struct"
    getattr(target, name).CopyFrom(value)
    return here


def _zero(field: FieldDescriptor) -> Any:
    if field.type == STRING:
        return "v"
    if field.type == FieldDescriptor.TYPE_BYTES:
        return b"v"
    if field.type == FieldDescriptor.TYPE_BOOL:
        return True
    if field.type in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        return 1.0
    return 1


def deep_struct(levels: int) -> struct_pb2.Struct:
    """A Struct nested ``levels`` deep (three wire levels each: entry, Value, Struct)."""
    top = struct_pb2.Struct()
    current = top
    for _ in range(levels):
        current = current.fields["a"].struct_value
    current.fields["a"].string_value = "bottom"
    return top


def with_invalid_utf8(message_class: type[Message], slot: Slot) -> bytes:
    """A serialized request whose string at ``slot`` is not UTF-8: a unique ASCII marker
    put there, then one byte of it swapped for 0xFF (same length, so every enclosing
    length prefix stays right)."""
    marker = f"Qz{uuid.uuid4().hex[:12]}"
    message = message_class()
    place(message, slot, marker)
    raw = message.SerializeToString()
    assert raw.count(marker.encode()) == 1, slot.label
    return raw.replace(marker.encode(), b"\xff" + marker.encode()[1:])


def message_class(descriptor: Descriptor) -> type[Message]:
    return message_factory.GetMessageClass(descriptor)


# ---- hypothesis: whole messages from their descriptors ----------------------------------

_INTS = {
    FieldDescriptor.TYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SINT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_INT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SINT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_FIXED32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1),
    FieldDescriptor.TYPE_FIXED64: (0, 2**64 - 1),
}

# Plausible strings reach past validation more often than random text does.
_TEXT = st.one_of(
    st.text(max_size=24),
    st.sampled_from(["", "support_email", "a", "x" * 65, "../../etc/passwd", "0", "-1"]),
    st.uuids().map(str),
    st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=8).map(lambda s: s * 600),
)
_JSON = st.recursive(
    st.none() | st.booleans() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


def _scalar(field: FieldDescriptor) -> st.SearchStrategy[Any]:
    t = field.type
    if t == STRING:
        return _TEXT
    if t == FieldDescriptor.TYPE_BYTES:
        return st.binary(max_size=24)
    if t == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if t == FieldDescriptor.TYPE_DOUBLE:
        return st.floats()
    if t == FieldDescriptor.TYPE_FLOAT:
        return st.floats(width=32)
    if t == FieldDescriptor.TYPE_ENUM:
        enum = field.enum_type
        assert enum is not None
        return st.one_of(st.sampled_from([v.number for v in enum.values]), st.integers(-3, 99))
    low, high = _INTS[t]
    return st.one_of(st.integers(-3, 1000), st.integers(low, high))


def messages(descriptor: Descriptor, depth: int = 0) -> st.SearchStrategy[Message]:
    """Messages of ``descriptor`` with any subset of fields set to anything of their type
    (NUL, huge strings, NaN, unknown enum values, Structs included), 4 levels deep."""
    cls = message_class(descriptor)
    if descriptor.full_name == STRUCT:
        return st.dictionaries(st.text(max_size=8), _JSON, max_size=3).map(_struct)
    parts: dict[str, st.SearchStrategy[Any]] = {}
    for f in descriptor.fields:
        sub = f.message_type
        if _is_map(f):
            assert sub is not None
            key, value = sub.fields_by_name["key"], sub.fields_by_name["value"]
            if value.type == MESSAGE:
                if depth >= 3:
                    continue
                assert value.message_type is not None
                values = messages(value.message_type, depth + 1)
            else:
                values = _scalar(value)
            parts[f.name] = st.dictionaries(_scalar(key), values, max_size=3)
        elif sub is not None:
            if depth >= 3 and sub.full_name != STRUCT:
                continue
            item = messages(sub, depth + 1)
            parts[f.name] = st.lists(item, max_size=2) if f.is_repeated else item
        else:
            parts[f.name] = st.lists(_scalar(f), max_size=3) if f.is_repeated else _scalar(f)
    chosen = {name: st.none() | strategy for name, strategy in parts.items()}
    return st.fixed_dictionaries(chosen).map(lambda values: _build(cls, values))


def _struct(value: dict[str, Any]) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    s.update(value)
    return s


def _build(cls: type[Message], values: dict[str, Any]) -> Message:
    message = cls()
    for name, value in values.items():
        if value is None:
            continue
        field = cast(FieldDescriptor, message.DESCRIPTOR.fields_by_name[name])
        if _is_map(field):
            target = getattr(message, name)
            for k, v in value.items():
                if isinstance(v, Message):
                    target[k].CopyFrom(v)
                else:
                    target[k] = v
        elif field.is_repeated:
            getattr(message, name).extend(value)
        elif field.message_type is not None:
            getattr(message, name).CopyFrom(value)
        else:
            setattr(message, name, value)
    return message
