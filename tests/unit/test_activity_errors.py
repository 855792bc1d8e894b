"""An activity's permanent failure carries the server's code and reason through Temporal
(services.activity_errors), and a failed training run or evaluation reports them as
the server's own errors do: the code, the reason in ErrorInfo, the field violations in
BadRequest. Failure types raised before this encoding still read as they meant."""

from __future__ import annotations

import pytest
from google.rpc import code_pb2, error_details_pb2, status_pb2
from temporalio.api.failure.v1 import Failure
from temporalio.client import WorkflowFailureError
from temporalio.converter import DataConverter
from temporalio.exceptions import ActivityError, ApplicationError, RetryState

from services.activity_errors import failure_type, permanent, read_back
from services.errors import (
    ERROR_DOMAIN,
    DomainError,
    ErrorCode,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
)
from services.training.workflow_resources import failure_status

pytestmark = pytest.mark.unit


async def _through_temporal(error: ApplicationError) -> ApplicationError:
    """As the server gets it back: encoded into a Temporal Failure (details as JSON)
    and decoded again."""
    failure = Failure()
    await DataConverter.default.encode_failure(error, failure)
    decoded = await DataConverter.default.decode_failure(failure)
    assert isinstance(decoded, ApplicationError)
    return decoded


def _failed_workflow(cause: ApplicationError) -> WorkflowFailureError:
    """A workflow failed by its activity, as the client raises it."""
    activity = ActivityError(
        "activity error", scheduled_event_id=5, started_event_id=6, identity="w",
        activity_type="evaluate_candidate", activity_id="1",
        retry_state=RetryState.NON_RETRYABLE_FAILURE,
    )  # fmt: skip
    activity.__cause__ = cause
    return WorkflowFailureError(cause=activity)


def _error_info(status: status_pb2.Status) -> error_details_pb2.ErrorInfo:
    infos = [d for d in status.details if d.Is(error_details_pb2.ErrorInfo.DESCRIPTOR)]
    assert len(infos) == 1, status
    info = error_details_pb2.ErrorInfo()
    infos[0].Unpack(info)
    return info


def test_the_failure_type_is_the_code_and_the_reason() -> None:
    error = permanent(NotFound("policy", "s@v9"), "judge policy: gone", reason="JUDGE_NOT_FOUND")
    assert (
        error.type
        == "NOT_FOUND:JUDGE_NOT_FOUND"
        == failure_type(ErrorCode.NOT_FOUND, "JUDGE_NOT_FOUND")
    )
    assert error.non_retryable and error.message == "judge policy: gone"
    # Without overrides: the error's own message and reason.
    plain = permanent(FailedPrecondition("no pairs", reason="INVALID_DATASET"))
    assert (plain.type, plain.message) == ("FAILED_PRECONDITION:INVALID_DATASET", "no pairs")


async def test_a_domain_error_survives_the_round_trip_through_temporal() -> None:
    sent = permanent(NotFound("policy", "s@v9"), "judge policy: gone", reason="JUDGE_NOT_FOUND")
    back = read_back(await _through_temporal(sent))
    assert back is not None
    assert (back.code, back.reason, back.message) == (
        ErrorCode.NOT_FOUND, "JUDGE_NOT_FOUND", "judge policy: gone",
    )  # fmt: skip
    assert back.metadata == {"resource_type": "policy", "name": "s@v9"}

    bad = InvalidArgument.field(
        "checkpoint_every", "must be >= 0", reason="INVALID_TRAINING_CONFIG"
    )
    back = read_back(await _through_temporal(permanent(bad)))
    assert isinstance(back, InvalidArgument)
    assert (back.code, back.reason, back.message) == (
        ErrorCode.INVALID_ARGUMENT, "INVALID_TRAINING_CONFIG", bad.message,
    )  # fmt: skip
    assert [(v.field, v.description) for v in back.violations] == [
        ("checkpoint_every", "must be >= 0")
    ]


@pytest.mark.parametrize("code", list(ErrorCode))
def test_every_code_reads_back_as_itself(code: ErrorCode) -> None:
    error = DomainError("boom", reason="SOME_REASON")
    error.code = code
    back = read_back(permanent(error))
    assert back is not None and (back.code, back.reason) == (code, "SOME_REASON")


async def test_a_failed_evaluation_reports_the_code_and_reason_of_its_activity() -> None:
    missing_judge = permanent(
        NotFound("policy", "s@v9"), "judge policy: policy 's@v9' not found",
        reason="JUDGE_NOT_FOUND",
    )  # fmt: skip
    status = failure_status(_failed_workflow(await _through_temporal(missing_judge)))
    assert (status.code, status.message) == (
        code_pb2.NOT_FOUND, "judge policy: policy 's@v9' not found",
    )  # fmt: skip
    info = _error_info(status)
    assert (info.reason, info.domain) == ("JUDGE_NOT_FOUND", ERROR_DOMAIN)
    assert dict(info.metadata) == {"resource_type": "policy", "name": "s@v9"}

    unreadable = permanent(FailedPrecondition("file:///d: gone", reason="DATASET_UNREADABLE"))
    status = failure_status(_failed_workflow(await _through_temporal(unreadable)))
    assert (status.code, _error_info(status).reason) == (
        code_pb2.FAILED_PRECONDITION, "DATASET_UNREADABLE",
    )  # fmt: skip

    bad = InvalidArgument.field("judge", "votes must be 1-3", reason="INVALID_JUDGE")
    status = failure_status(_failed_workflow(await _through_temporal(permanent(bad))))
    assert (status.code, _error_info(status).reason) == (
        code_pb2.INVALID_ARGUMENT, "INVALID_JUDGE",
    )  # fmt: skip
    [packed] = [d for d in status.details if d.Is(error_details_pb2.BadRequest.DESCRIPTOR)]
    violations = error_details_pb2.BadRequest()
    packed.Unpack(violations)
    assert [v.field for v in violations.field_violations] == ["judge"]


@pytest.mark.parametrize(
    ("old_type", "code", "reason"),
    [
        # workers.training_activities, before the encoding
        ("NotFound", code_pb2.NOT_FOUND, "NOT_FOUND"),
        ("InvalidArgument", code_pb2.INVALID_ARGUMENT, "INVALID_ARGUMENT"),
        ("InvalidTrainingConfig", code_pb2.INVALID_ARGUMENT, "INVALID_TRAINING_CONFIG"),
        ("InvalidTrainingInput", code_pb2.FAILED_PRECONDITION, "INVALID_TRAINING_INPUT"),
        ("InvalidDataset", code_pb2.FAILED_PRECONDITION, "INVALID_DATASET"),
        ("DatasetChanged", code_pb2.FAILED_PRECONDITION, "DATASET_CHANGED"),
        ("AdapterChanged", code_pb2.FAILED_PRECONDITION, "ADAPTER_CHANGED"),
        ("NO_BASELINE", code_pb2.FAILED_PRECONDITION, "NO_BASELINE"),
        # workers.evaluation_activities, before the encoding (then read as INTERNAL)
        ("JUDGE_NOT_FOUND", code_pb2.NOT_FOUND, "JUDGE_NOT_FOUND"),
        ("INVALID_JUDGE", code_pb2.INVALID_ARGUMENT, "INVALID_JUDGE"),
        ("DATASET_UNREADABLE", code_pb2.FAILED_PRECONDITION, "DATASET_UNREADABLE"),
        ("DATASET_CORRUPT", code_pb2.FAILED_PRECONDITION, "DATASET_CORRUPT"),
        ("DATASET_EVAL_SPLIT_EMPTY", code_pb2.FAILED_PRECONDITION, "DATASET_EVAL_SPLIT_EMPTY"),
    ],
)
def test_failure_types_of_older_workers_still_read_back(
    old_type: str, code: int, reason: str
) -> None:
    old = ApplicationError("what went wrong", type=old_type, non_retryable=True)
    status = failure_status(_failed_workflow(old))
    assert (status.code, status.message, _error_info(status).reason) == (
        code, "what went wrong", reason,
    )  # fmt: skip


@pytest.mark.parametrize("kind", ["Odd", "", "NOT_A_CODE:X", "NOT_FOUND:", "ValueError"])
def test_any_other_failure_is_internal(kind: str) -> None:
    assert read_back(ApplicationError("boom", type=kind)) is None
    status = failure_status(_failed_workflow(ApplicationError("boom", type=kind)))
    assert (status.code, status.message) == (code_pb2.INTERNAL, "boom")
