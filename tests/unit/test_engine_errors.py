"""How an engine's error text becomes the platform's error again (the Triton client's
mapping): the code, the reason and every field survive the trip, "; " in a description
included; anything else from a server means it cannot answer."""

from __future__ import annotations

import pytest

from services.errors import (
    DeadlineExceeded,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    Unavailable,
)
from services.inference.backends.base import invalid_argument_from_message, wire_message
from services.inference.backends.triton import _map_error

pytestmark = pytest.mark.unit


def test_invalid_argument_round_trips_with_its_fields_and_reason() -> None:
    sent = InvalidArgument(
        [
            FieldViolation("messages", "prompt is 37 tokens; with max_new_tokens=9000 too long"),
            FieldViolation("sampling_parameters.top_k", "not supported"),
        ],
        reason="PROMPT_TOO_LONG",
    )
    back = invalid_argument_from_message(wire_message(sent))
    assert back.violations == sent.violations
    assert back.reason == "PROMPT_TOO_LONG"
    assert back.message == sent.message


def test_the_triton_models_errors_map_back_to_their_codes() -> None:
    invalid = InvalidArgument.field("sampling_parameters.top_k", "not supported")
    mapped = _map_error(None, f"INVALID_ARGUMENT: {wire_message(invalid)}", "t:1")
    assert isinstance(mapped, InvalidArgument)
    assert mapped.violations == invalid.violations
    failed = FailedPrecondition("no such adapter", reason="ADAPTER_UNAVAILABLE")
    mapped = _map_error(None, f"FAILED_PRECONDITION: {wire_message(failed)}", "t:1")
    assert isinstance(mapped, FailedPrecondition) and mapped.reason == "ADAPTER_UNAVAILABLE"
    assert isinstance(_map_error("StatusCode.DEADLINE_EXCEEDED", "", "t:1"), DeadlineExceeded)
    # A transport failure, or another model's free text (e.g. the vLLM backend's).
    assert isinstance(_map_error("StatusCode.UNAVAILABLE", "connect failed", "t:1"), Unavailable)
    assert isinstance(_map_error(None, "Error generating stream: boom", "t:1"), Unavailable)
    assert isinstance(_map_error(None, "INTERNAL: INTERNAL: RuntimeError", "t:1"), Unavailable)
