"""Request decoding as the interceptor does it: bad bytes are bad input, never UNKNOWN.

grpc.aio calls a method's ``request_deserializer`` itself. For a unary request it does so
before any handler runs, and anything it raises becomes ``UNKNOWN: Unexpected <class
'google.protobuf.message.DecodeError'>``; for a client stream it raises out of the
servicer's ``async for``. protobuf (upb) refuses, without saying where: invalid UTF-8 in a
``string`` field, messages nested more than 100 deep (its recursion limit: a
``google.protobuf.Struct`` costs three levels per nesting) and malformed wire data.

``decode`` therefore never raises for bad bytes: it returns the message or the
``InvalidArgument`` that explains it, naming the field found by walking the wire format
(done only on failure, so it costs nothing on good requests). On requests that parse it
refuses, in one place for every RPC, what would otherwise fail deep in a servicer as
INTERNAL: NUL (U+0000) in any string field (PostgreSQL ``text`` and ``jsonb`` cannot hold
it) and a Timestamp or Duration outside its defined range (protobuf's ToDatetime raises).

Cost per message, measured on the 2-core dev machine for a ~1 KB ingest event: ~0.4 us
for the NUL pre-check (a 0x00 byte search) plus ~4 us for the time walk; ~20 us more when
the bytes do hold a 0x00 (round doubles such as 0.5, explicit zeros), for the wire walk.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any, cast

from google.protobuf import descriptor_pool
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from services.errors import FieldViolation, InvalidArgument

# upb's default decode depth limit (kUpb_WireFormat_DefaultDepthLimit): a message may
# hold submessages nested this deep, one more fails to parse.
DEPTH_LIMIT = 100
NUL = "\x00"
NUL_MESSAGE = "must not contain NUL (U+0000) characters"

_STRING = FieldDescriptor.TYPE_STRING
_MESSAGE = FieldDescriptor.TYPE_MESSAGE
_GROUP = FieldDescriptor.TYPE_GROUP


@dataclass(frozen=True, slots=True)
class Refused:
    """A message that parsed but holds what no RPC accepts (a NUL, a time out of range),
    for a stream whose servicer answers each message on its own: the message (for the
    ids its answer echoes) and the error that answer carries."""

    message: Message
    error: InvalidArgument


def decode(deserializer: Any, raw: bytes, full_method: str, *, per_message: bool = False) -> Any:
    """The request message, or the InvalidArgument that says why these bytes are not one.
    ``per_message``: a message that parsed but is refused comes back as a ``Refused``."""
    try:
        message = deserializer(raw)
    except Exception:  # DecodeError (upb), or RecursionError from the pure-Python parser
        return undecodable(raw, full_method)
    if isinstance(message, Message):
        error = _refusal(raw, message)
        if error is not None:
            return Refused(message, error) if per_message else error
    return message


def refusal(message: Message) -> InvalidArgument | None:
    """What ``decode`` refuses in a message that parsed (a NUL, a time out of range), or
    None: for a part of a ``Refused`` message, to find which part holds it."""
    return _refusal(message.SerializeToString(), message)


def _refusal(raw: bytes, message: Message) -> InvalidArgument | None:
    descriptor = cast(Descriptor, message.DESCRIPTOR)
    path = nul_field(raw, descriptor)
    if path is not None:
        return InvalidArgument.field(path, NUL_MESSAGE, reason="NUL_CHARACTER")
    if _time_plan(descriptor):  # cached: most requests hold no time at all
        found = bad_time(message)
        if found is not None:
            return InvalidArgument.field(found[0], found[1], reason="INVALID_TIME")
    return None


# ---- NUL in string fields: a walk of the wire format ---------------------------------------


# How the NUL walk treats a field that can hold text.
_TEXT, _TEXTS, _MAP, _MESSAGES, _ONE_MESSAGE = range(5)


@cache
def _plan(descriptor: Descriptor) -> dict[int, int]:
    """For the fields that can hold a string somewhere below them, how to look: the walk
    skips numbers, enums, bytes and string-free submessages (timestamps) at once."""
    types, pending = {descriptor.full_name: descriptor}, [descriptor]
    while pending:  # every message type reachable from this one
        for f in pending.pop().fields:
            sub = f.message_type
            if sub is not None and sub.full_name not in types:
                types[sub.full_name] = sub
                pending.append(sub)
    # A fixed point, as types may be recursive (Struct <-> Value): a message field holds
    # text if its type has a field that does.
    holders: dict[str, set[int]] = {name: set() for name in types}
    changed = True
    while changed:
        changed = False
        for name, d in types.items():
            for f in d.fields:
                if f.number not in holders[name] and (
                    f.type == _STRING
                    or (f.message_type is not None and holders[f.message_type.full_name])
                ):
                    holders[name].add(f.number)
                    changed = True
    plan: dict[int, int] = {}
    for number in holders[descriptor.full_name]:
        f = descriptor.fields_by_number[number]
        if f.type == _STRING:
            plan[number] = _TEXTS if f.is_repeated else _TEXT
        elif f.message_type is not None and f.message_type.GetOptions().map_entry:
            plan[number] = _MAP
        else:
            plan[number] = _MESSAGES if f.is_repeated else _ONE_MESSAGE
    return plan


def nul_field(raw: bytes, descriptor: Descriptor) -> str | None:
    """The path of the first string field (map keys included) whose value holds a NUL in
    ``raw``, a serialized ``descriptor`` message that parsed, else None.

    It walks the wire format rather than the parsed message: a NUL in a string is a 0x00
    byte inside that field's bytes, so the walk skips every length-delimited field whose
    bytes hold no 0x00 (one memchr) without decoding it, and descends only into those that
    do. Zero bytes elsewhere (doubles such as 0.5, explicit zeros) cost a scan of their
    message's tags, not a conversion of every string to a Python object."""
    if raw.find(b"\x00") == -1:
        return None
    return _nul_walk(raw, 0, len(raw), descriptor, "")


@cache
def _layout(descriptor: Descriptor) -> tuple[dict[int, int], bool]:
    return _plan(descriptor), bool(descriptor.GetOptions().map_entry)


def _nul_walk(buf: bytes, pos: int, end: int, descriptor: Descriptor, path: str) -> str | None:
    plan, is_map = _layout(descriptor)
    if not plan:
        return None
    counts: dict[int, int] = {}
    find = buf.find
    # Nothing after the last 0x00 of this message can hold a NUL: stop there.
    last = buf.rfind(b"\x00", pos, end)
    # The bytes parsed, so they are well formed: varints are read inline (one or two
    # bytes is the common case), without the checks of _varint.
    while pos <= last:
        tag = buf[pos]
        pos += 1
        if tag & 0x80:
            tag &= 0x7F
            shift = 7
            while True:
                byte = buf[pos]
                pos += 1
                tag |= (byte & 0x7F) << shift
                if not byte & 0x80:
                    break
                shift += 7
        wire = tag & 7
        if wire == 2:
            length = buf[pos]
            pos += 1
            if length & 0x80:
                length &= 0x7F
                shift = 7
                while True:
                    byte = buf[pos]
                    pos += 1
                    length |= (byte & 0x7F) << shift
                    if not byte & 0x80:
                        break
                    shift += 7
            stop = pos + length
            kind = plan.get(tag >> 3)
            if kind is not None:
                index = 0
                if kind == _TEXTS or kind >= _MAP:  # repeated: count for the path
                    index = counts[tag] = counts.get(tag, -1) + 1
                if find(b"\x00", pos, stop) != -1:
                    found = _nul_in(buf, pos, stop, descriptor, tag >> 3, kind, index, path, is_map)
                    if found is not None:
                        return found
            pos = stop
        elif wire == 0:
            while buf[pos] & 0x80:
                pos += 1
            pos += 1
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        else:  # groups: no text field of this API is in one
            return None
    return None


def _nul_in(
    buf: bytes,
    pos: int,
    stop: int,
    descriptor: Descriptor,
    number: int,
    kind: int,
    index: int,
    path: str,
    is_map: bool,
) -> str | None:
    """Field ``number`` (bytes ``pos:stop``) holds a 0x00: where, if it is text."""
    field = descriptor.fields_by_number[number]
    # A map's key and value are named by their entry, e.g. labels['k'].
    here = path if is_map else f"{path}.{field.name}" if path else field.name
    if kind == _TEXT:
        return here
    if kind == _TEXTS:
        return f"{here}[{index}]"
    sub = field.message_type
    assert sub is not None
    if kind == _MAP:
        here = f"{here}[{_map_key(buf, pos, stop)!r}]"
    elif kind == _MESSAGES:
        here = f"{here}[{index}]"
    return _nul_walk(buf, pos, stop, sub, here)


def _map_key(buf: bytes, pos: int, end: int) -> str | int:
    """The key of a serialized map entry (field 1), as the path names the entry."""
    while pos < end:
        tag, pos = _varint(buf, pos, end, "")
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            value, pos = _varint(buf, pos, end, "")
            if number == 1:
                return value
        elif wire == 2:
            length, pos = _varint(buf, pos, end, "")
            if number == 1:
                return buf[pos : pos + length].decode("utf-8", "replace")
            pos += length
        else:
            pos += 8 if wire == 1 else 4
    return ""


# ---- Timestamps and Durations outside their defined range ----------------------------------

# google.protobuf.Timestamp: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999999Z;
# Duration: +-10,000 years, nanos of the seconds' sign. upb parses any integers, and the
# first ToDatetime() on one outside the range raised ValueError deep in a servicer
# (INTERNAL in a dozen RPCs, found by the fuzzing suite).
_TIMESTAMP = "google.protobuf.Timestamp"
_DURATION = "google.protobuf.Duration"
_MIN_SECONDS, _MAX_SECONDS = -62135596800, 253402300799
_MAX_DURATION_SECONDS = 315576000000
_TIME_ONE, _TIME_MANY, _TIME_MAP = range(3)


@cache
def _time_plan(descriptor: Descriptor) -> tuple[tuple[str, int], ...]:
    """The fields (name, how) through which a Timestamp or Duration can be reached."""
    types, pending = {descriptor.full_name: descriptor}, [descriptor]
    while pending:
        for f in pending.pop().fields:
            sub = f.message_type
            if sub is not None and sub.full_name not in types:
                types[sub.full_name] = sub
                pending.append(sub)
    reach = {name for name in types if name in (_TIMESTAMP, _DURATION)}
    changed = True
    while changed:  # a fixed point, as types may be recursive
        changed = False
        for name, d in types.items():
            if name not in reach and any(
                f.message_type is not None and f.message_type.full_name in reach for f in d.fields
            ):
                reach.add(name)
                changed = True
    if descriptor.full_name in (_TIMESTAMP, _DURATION):
        return ()  # a leaf: checked by _time_walk
    plan = []
    for f in descriptor.fields:
        sub = f.message_type
        if sub is None:
            continue
        if sub.GetOptions().map_entry:
            value = sub.fields_by_name["value"].message_type
            if value is not None and value.full_name in reach:
                plan.append((f.name, _TIME_MAP))
        elif sub.full_name in reach:
            plan.append((f.name, _TIME_MANY if f.is_repeated else _TIME_ONE))
    return tuple(plan)


class _BadTime(Exception):
    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description
        self.parts: list[str] = []  # the path, innermost first


_TIME_PLANS: dict[Any, tuple[tuple[str, int], ...]] = {}


def bad_time(message: Message) -> tuple[str, str] | None:
    """The path of the first Timestamp or Duration out of its range, and why."""
    try:
        _time_walk(message)
    except _BadTime as bad:
        return ".".join(reversed(bad.parts)).replace(".[", "["), bad.description
    return None


def _time_walk(message: Any) -> None:
    # On every request with a time in it (each ingest event): plain attribute access, the
    # path is built only on the way out of a failure.
    descriptor = message.DESCRIPTOR
    plan = _TIME_PLANS.get(descriptor)
    if plan is None:
        plan = _TIME_PLANS[descriptor] = _time_plan(descriptor)
    if not plan:
        name = descriptor.full_name
        if name == _TIMESTAMP:
            seconds, nanos = message.seconds, message.nanos
            if not _MIN_SECONDS <= seconds <= _MAX_SECONDS or not 0 <= nanos <= 999_999_999:
                raise _BadTime("is not a valid timestamp (years 1 to 9999, nanos 0 to 999999999)")
        elif name == _DURATION:
            seconds, nanos = message.seconds, message.nanos
            if (
                abs(seconds) > _MAX_DURATION_SECONDS
                or abs(nanos) > 999_999_999
                or (seconds > 0 > nanos or seconds < 0 < nanos)
            ):
                raise _BadTime("is not a valid duration (at most 10,000 years, nanos of its sign)")
        return
    for field, how in plan:
        if how == _TIME_ONE:
            if message.HasField(field):
                try:
                    _time_walk(getattr(message, field))
                except _BadTime as bad:
                    bad.parts.append(field)
                    raise
            continue
        items = getattr(message, field)
        if not items:
            continue
        pairs = enumerate(items) if how == _TIME_MANY else items.items()
        for index, item in pairs:
            try:
                _time_walk(item)
            except _BadTime as bad:
                bad.parts.append(f"{field}[{index!r}]" if how == _TIME_MAP else f"{field}[{index}]")
                raise


# ---- bytes that do not parse: a walk of the wire format ------------------------------------


class _Bad(Exception):
    def __init__(self, path: str, description: str, reason: str) -> None:
        super().__init__(description)
        self.path = path
        self.description = description
        self.reason = reason


def undecodable(raw: bytes, full_method: str) -> InvalidArgument:
    """Why ``raw`` is not a valid request of ``full_method`` ("/pkg.Service/Method")."""
    descriptor: Descriptor | None = None
    service, _, method = full_method.lstrip("/").partition("/")
    try:
        service_descriptor = descriptor_pool.Default().FindServiceByName(service)
        descriptor = service_descriptor.methods_by_name[method].input_type
    except KeyError:
        pass
    try:
        _walk(raw, 0, len(raw), descriptor, "", 0, None)
    except _Bad as bad:
        where = bad.path or "request"
        return InvalidArgument(
            [FieldViolation(bad.path, bad.description)],
            message=f"invalid argument: {where} {bad.description}",
            reason=bad.reason,
        )
    name = descriptor.full_name if descriptor is not None else "protobuf"
    description = f"is not a valid {name} message"
    return InvalidArgument(
        [FieldViolation("", description)],
        message=f"invalid argument: the request {description}",
        reason="MALFORMED_REQUEST",
    )


def _varint(buf: bytes, pos: int, end: int, path: str) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= end:
            raise _Bad(path, "has a truncated varint", "MALFORMED_REQUEST")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise _Bad(path, "has a varint longer than 10 bytes", "MALFORMED_REQUEST")


def _walk(
    buf: bytes,
    pos: int,
    end: int,
    descriptor: Descriptor | None,
    path: str,
    depth: int,
    group: int | None,
) -> int:
    """Check one message's fields from ``pos`` to ``end`` as upb would, raising _Bad at
    the first problem; returns where it stopped (``end``, or past the END_GROUP tag of
    ``group``). Fields it does not know, or whose wire type does not match, are unknown
    fields to upb too: skipped, not checked."""
    if depth > DEPTH_LIMIT:
        raise _Bad(
            path,
            f"is nested more than {DEPTH_LIMIT} messages deep (protobuf's recursion limit)",
            "MESSAGE_TOO_DEEP",
        )
    counts: dict[int, int] = {}
    is_map = descriptor is not None and descriptor.GetOptions().map_entry
    entry = path
    while pos < end:
        tag, pos = _varint(buf, pos, end, path)
        number, wire = tag >> 3, tag & 7
        field = descriptor.fields_by_number.get(number) if descriptor is not None else None
        sub = field.message_type if field is not None else None
        if is_map:
            here = entry  # a map's key and value are named by the entry, e.g. labels['k']
        elif field is None:
            here = f"{path}.{number}" if path else str(number)
        else:
            here = f"{path}.{field.name}" if path else field.name
            if field.is_repeated:  # map entries too: renamed by their key once it is read
                counts[number] = counts.get(number, 0) + 1
                here = f"{here}[{counts[number] - 1}]"
        if number == 0:
            raise _Bad(here, "has field number 0", "MALFORMED_REQUEST")
        if wire == 0:
            _, pos = _varint(buf, pos, end, here)
        elif wire in (1, 5):
            pos += 8 if wire == 1 else 4
        elif wire == 2:
            length, pos = _varint(buf, pos, end, here)
            stop = pos + length
            if stop > end:
                raise _Bad(here, "has a length past the end of its message", "MALFORMED_REQUEST")
            if field is not None and field.type == _STRING:
                try:
                    text = buf[pos:stop].decode("utf-8")
                except UnicodeDecodeError as err:
                    raise _Bad(
                        here, f"is not valid UTF-8 (at byte {err.start})", "INVALID_UTF8"
                    ) from None
                if is_map and number == 1 and path.endswith("]"):
                    # The entry path ends in its index, "[3]": name it by the key instead.
                    entry = f"{path[: path.rindex('[')]}[{text!r}]"
            elif sub is not None and field is not None and field.type == _MESSAGE:
                _walk(buf, pos, stop, sub, here, depth + 1, None)
            pos = stop
        elif wire == 3:
            group_type = sub if field is not None and field.type == _GROUP else None
            pos = _walk(buf, pos, end, group_type, here, depth + 1, number)
        elif wire == 4:
            if group != number:
                raise _Bad(here, "has an unmatched end of group", "MALFORMED_REQUEST")
            return pos
        else:
            raise _Bad(here, f"has invalid wire type {wire}", "MALFORMED_REQUEST")
    if pos > end:
        raise _Bad(path, "is truncated", "MALFORMED_REQUEST")
    if group is not None:
        raise _Bad(path, "has a group without its end", "MALFORMED_REQUEST")
    return pos
