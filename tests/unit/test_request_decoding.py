"""Bad request bytes and hostile strings, below the server: the decoding guard of the
interceptor (invalid UTF-8, deep nesting, NUL), the bounds of every error Status, the
credential headers, and the scrubbing of logged tracebacks (issue 12, items 4, 5, 8, 11)."""

from __future__ import annotations

import base64
import logging
import sys
from typing import Any
from urllib.parse import quote

import pytest
from google.protobuf import struct_pb2
from google.rpc import error_details_pb2
from sqlalchemy.exc import DBAPIError

from rlaas.registry.v1 import registry_pb2
from rlaas.telemetry.v1 import telemetry_pb2 as pb
from services.errors import (
    DomainError,
    ErrorCode,
    FieldViolation,
    InvalidArgument,
    NotFound,
    Unauthenticated,
)
from services.logs import _ScrubbingFormatter, scrubbed_traceback
from services.server.decoding import DEPTH_LIMIT, decode, nul_field
from services.server.interceptors import api_key_from_metadata
from services.server.status import MAX_MESSAGE, MAX_STATUS_BYTES, bounded, to_rpc_status
from tests.security.descriptors import all_methods
from tests.security.requests import (
    deep_struct,
    message_class,
    place,
    string_slots,
    struct_slots,
    with_invalid_utf8,
)

pytestmark = pytest.mark.unit

BATCHES = "/rlaas.telemetry.v1.TelemetryService/IngestEventBatches"


def nested_list(levels: int) -> bytes:
    """A ListValue holding ``levels`` - 1 more ListValues: 2 * levels - 1 submessages."""
    top = struct_pb2.ListValue()
    current = top
    for _ in range(levels - 1):
        current = current.values.add().list_value
    current.values.add().string_value = "x"
    return top.SerializeToString()


def test_the_depth_limit_is_upbs() -> None:
    # 2 * 50 - 1 = 99 nested submessages parse; 101 do not. The walk must agree, or it
    # would blame the wrong thing (or nothing) for a message upb refuses.
    method = "/rlaas.telemetry.v1.TelemetryService/GetInteraction"  # any; only depth counts
    assert DEPTH_LIMIT == 100
    struct_pb2.ListValue.FromString(nested_list(50))
    with pytest.raises(Exception, match="Error parsing"):
        struct_pb2.ListValue.FromString(nested_list(51))
    ok = decode(struct_pb2.ListValue.FromString, nested_list(50), method)
    assert isinstance(ok, struct_pb2.ListValue)


def test_every_string_field_of_every_request_with_invalid_utf8_is_named() -> None:
    checked = 0
    for service, method in all_methods():
        cls = message_class(method.input_type)
        full = f"/{service.full_name}/{method.name}"
        for slot in string_slots(method.input_type):
            expected = place(cls(), slot, "Qz")  # the path the walk names for this slot
            error = decode(cls.FromString, with_invalid_utf8(cls, slot), full)
            assert isinstance(error, InvalidArgument), slot.label
            assert error.reason == "INVALID_UTF8", (full, slot.label, error.message)
            [violation] = error.violations
            if slot.steps[-1].how == "key":  # the key itself is unreadable: named by index
                expected = expected[: expected.rindex("[")] + "[0]"
            assert violation.field == expected, (full, slot.label)
            checked += 1
    assert checked > 500


def test_every_string_field_of_every_request_with_nul_is_named() -> None:
    checked = 0
    for service, method in all_methods():
        cls = message_class(method.input_type)
        full = f"/{service.full_name}/{method.name}"
        for slot in string_slots(method.input_type):
            message = cls()
            expected = place(message, slot, "a\x00b")
            error = decode(cls.FromString, message.SerializeToString(), full)
            assert isinstance(error, InvalidArgument), (full, slot.label)
            assert error.reason == "NUL_CHARACTER"
            assert [v.field for v in error.violations] == [expected], (full, slot.label)
            checked += 1
    assert checked > 500


def test_nul_in_bytes_and_zero_bytes_elsewhere_are_fine() -> None:
    event = pb.IngestEventsRequest(sequence=0)
    interaction = event.create_interaction.interaction
    interaction.skill = "support_email"
    interaction.cost_usd = 0.5  # 0x3FE0000000000000: six zero bytes
    interaction.metadata.update({"n": 1.0, "flag": False, "list": [0.0, "t"]})
    raw = event.SerializeToString()
    assert b"\x00" in raw
    assert nul_field(raw, pb.IngestEventsRequest.DESCRIPTOR) is None
    interaction.metadata.update({"later": "x\x00"})  # after the zero bytes: still found
    assert nul_field(event.SerializeToString(), pb.IngestEventsRequest.DESCRIPTOR) == (
        "create_interaction.interaction.metadata.fields['later'].string_value"
    )


def test_a_struct_nested_too_deep_is_message_too_deep() -> None:
    for service, method in all_methods():
        cls = message_class(method.input_type)
        for slot in struct_slots(method.input_type):
            message = cls()
            path = place(message, slot, deep_struct(60))
            error = decode(
                cls.FromString, message.SerializeToString(), f"/{service.full_name}/{method.name}"
            )
            assert isinstance(error, InvalidArgument) and error.reason == "MESSAGE_TOO_DEEP"
            assert error.violations[0].field.startswith(path + ".fields['a']"), slot.label
            # What the client gets is bounded, whatever the depth.
            assert to_rpc_status(error).ByteSize() <= MAX_STATUS_BYTES


@pytest.mark.parametrize(
    ("type_name", "bad", "good"),
    [
        ("google.protobuf.Timestamp", [(0, -1), (0, 10**9), (-62135596801, 0), (2**40, 0)],
         [(0, 0), (-62135596800, 0), (253402300799, 999_999_999)]),
        ("google.protobuf.Duration", [(1, -1), (-1, 1), (315576000001, 0), (0, 10**9)],
         [(0, 0), (-5, -1), (315576000000, 999_999_999)]),
    ],
)  # fmt: skip
def test_times_out_of_their_range_are_invalid_arguments_naming_the_field(
    type_name: str, bad: list[tuple[int, int]], good: list[tuple[int, int]]
) -> None:
    checked = 0
    for service, method in all_methods():
        cls = message_class(method.input_type)
        full = f"/{service.full_name}/{method.name}"
        for slot in struct_slots(method.input_type, type_name):
            for (seconds, nanos), ok in [(v, False) for v in bad] + [(v, True) for v in good]:
                time_type = slot.steps[-1].field.message_type
                assert time_type is not None
                value: Any = message_class(time_type)()
                value.seconds, value.nanos = seconds, nanos
                message = cls()
                path = place(message, slot, value)
                result = decode(cls.FromString, message.SerializeToString(), full)
                if ok:
                    assert not isinstance(result, InvalidArgument), (full, path, seconds, nanos)
                    continue
                assert isinstance(result, InvalidArgument), (full, path, seconds, nanos)
                assert result.reason == "INVALID_TIME"
                assert [v.field for v in result.violations] == [path]
            checked += 1
    assert checked >= 5


def test_garbage_is_a_malformed_request_not_an_exception() -> None:
    for raw in (b"\xff\xff\xff", b"\x0a\x05ab", b"\x08" + b"\xff" * 11, b"\x07", b"\x0b"):
        error = decode(pb.IngestEventBatchesRequest.FromString, raw, BATCHES)
        assert isinstance(error, InvalidArgument) and error.reason == "MALFORMED_REQUEST", raw


# ---- bounded, sanitised errors --------------------------------------------------------------


def trailer_bytes(error: DomainError) -> int:
    """What the error costs in trailers: grpc-status-details-bin (base64) + grpc-message
    (percent-encoded, as gRPC does it)."""
    status = to_rpc_status(error)
    return len(base64.b64encode(status.SerializeToString())) + len(quote(status.message))


@pytest.mark.parametrize("char", ["x", "é", "\U0001f600", "\x00", "\n"])
def test_huge_input_echoed_in_an_error_stays_within_the_trailer_limit(char: str) -> None:
    huge = char * 20_000
    errors = [
        NotFound("skill", huge),
        InvalidArgument.field(huge, huge),
        InvalidArgument([FieldViolation(f"{huge}{i}", huge) for i in range(50)]),
    ]
    for error in errors:
        status = to_rpc_status(error)
        assert status.ByteSize() <= MAX_STATUS_BYTES
        assert len(status.message.encode()) <= MAX_MESSAGE
        assert trailer_bytes(error) < 6 * 1024  # gRPC's default limit is 8 KiB
        assert status.code == error.code.value
        info = error_details_pb2.ErrorInfo()
        assert status.details[-1].Unpack(info) and info.reason == error.reason


def test_control_characters_are_escaped() -> None:
    status = to_rpc_status(NotFound("skill", "a\x00b\r\nINFO fake line\u202e"))
    assert status.message == "skill 'a\\x00b\\r\\nINFO fake line\\u202e' not found"
    info = error_details_pb2.ErrorInfo()
    status.details[-1].Unpack(info)
    assert info.metadata["name"] == "a\\x00b\\r\\nINFO fake line\\u202e"
    assert bounded("plain text", 100) == "plain text"
    assert bounded("abcdef" * 100, 60).endswith("...[600 characters, truncated]")


# ---- credentials -----------------------------------------------------------------------------


def test_conflicting_credentials_are_refused() -> None:
    a, b = "rlaas_aaaa", "rlaas_bbbb"
    assert api_key_from_metadata([("authorization", f"Bearer {a}")]) == a
    assert api_key_from_metadata([("x-api-key", a)]) == a
    # The same key twice is one credential.
    assert api_key_from_metadata([("authorization", f"Bearer {a}"), ("x-api-key", a)]) == a
    assert api_key_from_metadata([("authorization", "Basic abc"), ("x-api-key", a)]) == a
    for metadata in (
        [("authorization", f"Bearer {a}"), ("x-api-key", b)],
        [("x-api-key", b), ("authorization", f"Bearer {a}")],
        [("x-api-key", a), ("x-api-key", b)],
        [("authorization", f"Bearer {a}"), ("authorization", f"bearer {b}")],
    ):
        with pytest.raises(Unauthenticated) as caught:
            api_key_from_metadata(metadata)
        assert caught.value.reason == "CONFLICTING_CREDENTIALS"
        assert caught.value.code is ErrorCode.UNAUTHENTICATED
        assert a not in caught.value.message and b not in caught.value.message


# ---- logs: no request data in a traceback ---------------------------------------------------

EMAIL, CARD = "jane.doe@example.com", "4111 1111 1111 1111"


def database_error() -> BaseException:
    """The error SQLAlchemy raises for a failed INSERT (as built by SQLAlchemy itself),
    with asyncpg's kind of message that quotes the value, chained as in real life."""
    params = {"text": f"mail {EMAIL} card {CARD}"}
    try:
        try:
            raise ValueError(f"invalid input for query argument $1: {params['text']!r}")
        except ValueError as driver_error:
            raise DBAPIError.instance(
                "INSERT INTO t (text) VALUES ($1)",
                params,
                driver_error,
                Exception,
                hide_parameters=True,
            ) from driver_error
    except DBAPIError as err:
        return err


def test_a_logged_database_error_carries_no_request_data() -> None:
    err = database_error()
    rendered = scrubbed_traceback((type(err), err, err.__traceback__))
    assert EMAIL not in rendered and CARD not in rendered, rendered
    assert "[EMAIL]" in rendered and "INSERT INTO t" in rendered
    assert "Traceback (most recent call last)" in rendered and "database_error" in rendered
    assert "parameters" not in rendered or "hidden" in rendered  # hide_parameters


def test_stdlib_tracebacks_are_scrubbed_too() -> None:
    err = database_error()
    record = logging.LogRecord(
        "x", logging.ERROR, __file__, 1, "failed", None, (type(err), err, err.__traceback__)
    )
    text = _ScrubbingFormatter("%(message)s").format(record)
    assert EMAIL not in text and CARD not in text and "failed" in text
    assert sys.exc_info() == (None, None, None)


def test_registry_messages_are_decoded_as_before() -> None:
    request = registry_pb2.GetSkillRequest(skill_id="support_email")
    method = "/rlaas.registry.v1.RegistryService/GetSkill"
    assert decode(registry_pb2.GetSkillRequest.FromString, request.SerializeToString(), method) == (
        request
    )
