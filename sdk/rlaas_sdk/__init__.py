"""Python client SDK of RLaaS: `infer`, `log`, `feedback`, `task_result`, `train`,
`deploy`, with a bounded offline buffer for telemetry.

    from rlaas_sdk import Client

    with Client.from_env() as rl:
        answer = rl.infer("support_email", "Where is my refund?", user_id="u1")
        rl.feedback(answer.interaction_id, thumb=+1)
"""

from rlaas_sdk.backoff import RETRYABLE_INGEST, RETRYABLE_UNARY, Backoff
from rlaas_sdk.buffer import ClientStats, DropPolicy, PendingEvent
from rlaas_sdk.client import Client, InferResult
from rlaas_sdk.errors import (
    AlreadyExistsError,
    ClientClosedError,
    ErrorDetails,
    FailedPreconditionError,
    FieldViolation,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    ResourceExhaustedError,
    RlaasError,
    UnauthenticatedError,
    UnavailableError,
    UnimplementedError,
)

__all__ = [
    "RETRYABLE_INGEST",
    "RETRYABLE_UNARY",
    "AlreadyExistsError",
    "Backoff",
    "Client",
    "ClientClosedError",
    "ClientStats",
    "DropPolicy",
    "ErrorDetails",
    "FailedPreconditionError",
    "FieldViolation",
    "InferResult",
    "InvalidArgumentError",
    "NotFoundError",
    "PendingEvent",
    "PermissionDeniedError",
    "ResourceExhaustedError",
    "RlaasError",
    "UnauthenticatedError",
    "UnavailableError",
    "UnimplementedError",
]
