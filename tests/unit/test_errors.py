"""DomainError -> google.rpc.Status, the one error path."""

from __future__ import annotations

import pytest
from google.rpc import code_pb2, error_details_pb2

from services.errors import ErrorCode, InvalidArgument, NotFound, PermissionDenied
from services.server.status import to_rpc_status

pytestmark = pytest.mark.unit


def test_error_codes_are_google_rpc_codes() -> None:
    for code in ErrorCode:
        assert code_pb2.Code.Value(code.name) == code.value


def test_invalid_argument_carries_field_violations_and_reason() -> None:
    status = to_rpc_status(InvalidArgument.field("api_key.scopes[0]", "bad", reason="X"))
    assert status.code == code_pb2.INVALID_ARGUMENT
    bad, info = error_details_pb2.BadRequest(), error_details_pb2.ErrorInfo()
    assert status.details[0].Unpack(bad) and status.details[1].Unpack(info)
    assert [(v.field, v.description) for v in bad.field_violations] == [
        ("api_key.scopes[0]", "bad")
    ]
    assert (info.reason, info.domain) == ("X", "rlaas.dev")


def test_other_errors_carry_error_info() -> None:
    status = to_rpc_status(NotFound("api key", "abc"))
    info = error_details_pb2.ErrorInfo()
    assert status.code == code_pb2.NOT_FOUND
    assert len(status.details) == 1 and status.details[0].Unpack(info)
    assert info.reason == "NOT_FOUND" and info.metadata["name"] == "abc"
    assert to_rpc_status(PermissionDenied("no", reason="MISSING_SCOPE")).code == 7


def test_invalid_argument_requires_a_field() -> None:
    with pytest.raises(ValueError):
        InvalidArgument([])


def test_rest_bridge_400s_echo_input_bounded_and_escaped() -> None:
    """The bridge's own 400s quote request parts (query keys, enum texts): bounded and
    escaped like the server's errors, whatever the caller sent."""
    from services.rest.errors import BadInput

    status = BadInput("q" * 10_000 + "\r\nX-Injected: 1", "x\x00" * 5_000).status()
    assert status.ByteSize() < 1024
    assert "\r" not in status.message and "\x00" not in status.message
    assert "truncated" in status.message
