"""A DomainError across Temporal: how an activity fails for good with one, and how the
server reads it back from the failed workflow, so that a failed training run or
evaluation reports the code and reason the server's own errors use (services.errors).

The encoding: ``permanent(error)`` is a non-retryable ``ApplicationError`` whose
``type`` is ``"<CODE>:<REASON>"`` (an ``ErrorCode`` name and the error's reason, e.g.
``"NOT_FOUND:JUDGE_NOT_FOUND"``), whose message is the error's, and whose one detail
holds the error's metadata and field violations. ``read_back(failure)`` makes that
DomainError again. Workers raise it (they may import services), the server reads it
(services.training.workflow_resources); no workflow looks inside a failure.

Before this encoding the activities named their failures in two other styles
(``"NotFound"``, ``"InvalidDataset"``; ``"JUDGE_NOT_FOUND"``): histories of workflows
that failed then still hold them, so ``read_back`` keeps reading those names.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from temporalio.exceptions import ApplicationError

from services.errors import DomainError, ErrorCode, FieldViolation, InvalidArgument

_LEGACY: dict[str, tuple[ErrorCode, str]] = {
    # workers.training_activities
    "NotFound": (ErrorCode.NOT_FOUND, "NOT_FOUND"),
    "InvalidArgument": (ErrorCode.INVALID_ARGUMENT, "INVALID_ARGUMENT"),
    "InvalidTrainingConfig": (ErrorCode.INVALID_ARGUMENT, "INVALID_TRAINING_CONFIG"),
    "InvalidTrainingInput": (ErrorCode.FAILED_PRECONDITION, "INVALID_TRAINING_INPUT"),
    "InvalidDataset": (ErrorCode.FAILED_PRECONDITION, "INVALID_DATASET"),
    "DatasetChanged": (ErrorCode.FAILED_PRECONDITION, "DATASET_CHANGED"),
    "AdapterChanged": (ErrorCode.FAILED_PRECONDITION, "ADAPTER_CHANGED"),
    # workers.learning_activities
    "NO_BASELINE": (ErrorCode.FAILED_PRECONDITION, "NO_BASELINE"),
    # workers.evaluation_activities
    "JUDGE_NOT_FOUND": (ErrorCode.NOT_FOUND, "JUDGE_NOT_FOUND"),
    "INVALID_JUDGE": (ErrorCode.INVALID_ARGUMENT, "INVALID_JUDGE"),
    "DATASET_UNREADABLE": (ErrorCode.FAILED_PRECONDITION, "DATASET_UNREADABLE"),
    "DATASET_CORRUPT": (ErrorCode.FAILED_PRECONDITION, "DATASET_CORRUPT"),
    "DATASET_EVAL_SPLIT_EMPTY": (ErrorCode.FAILED_PRECONDITION, "DATASET_EVAL_SPLIT_EMPTY"),
}
"""Failure types raised before the ``CODE:REASON`` encoding, as what they meant."""


class ActivityFailed(DomainError):
    """A DomainError read back from an activity's failure; its code is the failure's."""

    def __init__(
        self,
        code: ErrorCode,
        message: str,
        *,
        reason: str,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message, reason=reason, metadata=metadata)
        self.code = code


def failure_type(code: ErrorCode, reason: str) -> str:
    """The ``ApplicationError.type`` of a failure with this code and reason."""
    return f"{code.name}:{reason}"


def permanent(
    error: DomainError, message: str | None = None, *, reason: str | None = None
) -> ApplicationError:
    """``error`` as a non-retryable activity failure. ``message`` and ``reason``, when
    given, replace the error's own (to say what the activity was doing, say)."""
    detail: dict[str, Any] = {"metadata": dict(error.metadata)}
    if isinstance(error, InvalidArgument):
        detail["violations"] = [
            {"field": v.field, "description": v.description} for v in error.violations
        ]
    return ApplicationError(
        error.message if message is None else message,
        detail,
        type=failure_type(error.code, reason or error.reason),
        non_retryable=True,
    )


def _parse(kind: str) -> tuple[ErrorCode, str] | None:
    name, colon, reason = kind.partition(":")
    if colon and reason and name in ErrorCode.__members__:
        return ErrorCode[name], reason
    return _LEGACY.get(kind)


def read_back(failure: ApplicationError) -> DomainError | None:
    """The DomainError an activity failed with (``permanent``), or one of the older
    failure types; None for any other failure."""
    parsed = _parse(failure.type or "")
    if parsed is None:
        return None
    code, reason = parsed
    detail = failure.details[0] if failure.details else None
    detail = detail if isinstance(detail, Mapping) else {}
    raw_metadata = detail.get("metadata")
    metadata = (
        {str(k): str(v) for k, v in raw_metadata.items()}
        if isinstance(raw_metadata, Mapping)
        else {}
    )
    raw_violations = detail.get("violations")
    violations = [
        FieldViolation(str(v.get("field", "")), str(v.get("description", "")))
        for v in (raw_violations if isinstance(raw_violations, list) else [])
        if isinstance(v, Mapping)
    ]
    message = failure.message
    if code is ErrorCode.INVALID_ARGUMENT and violations:
        error: DomainError = InvalidArgument(violations, message=message, reason=reason)
        error.metadata.update(metadata)
        return error
    return ActivityFailed(code, message, reason=reason, metadata=metadata)
