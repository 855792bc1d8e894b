"""What training runs and evaluations share as resources whose source of truth is a
Temporal workflow (the model is services.training.rollouts):

- the workflow id carries the tenant (`<kind>/<tenant>/<id>`), so a caller only ever
  reaches its own tenant's resources, and the id derives from the request_id alone, so
  a retried create finds what it started and a reused request_id is caught;
- the memo holds the request's digest and what the resource looked like when created
  (a proto, packed), so reads need no database;
- the state of a running resource comes from its workflow's pending activity (queued
  until a worker picks it up; a heartbeat carries progress), of a finished one from its
  result, its failure or its close status.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from google.protobuf.message import Message
from google.rpc import code_pb2, status_pb2
from temporalio.api.enums.v1 import EventType, PendingActivityState
from temporalio.client import (
    Client,
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
)
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    ChildWorkflowError,
    TimeoutError,
)
from temporalio.service import RPCError, RPCStatusCode

from services.activity_errors import read_back
from services.errors import RequestIdReused
from services.paging import PageRequest, next_page_token
from services.server.status import to_rpc_status

M = TypeVar("M", bound=Message)
T = TypeVar("T")

_WRAPPERS = (WorkflowFailureError, ActivityError, ChildWorkflowError)


# Every id this server gives a workflow resource is short printable ASCII ("tr-" and 16
# hex digits, a skill id and a hash); see can_exist.
_RESOURCE_ID = re.compile(r"[!-~]{1,200}")


def can_exist(resource_id: str) -> bool:
    """False for an id no resource can have, answered NOT_FOUND without asking Temporal:
    its NOT_FOUND echoes the workflow id in grpc-message, and an id of a few KB of
    non-ASCII text overflows the header limit, which the client sees as an HTTP/2
    protocol error (INTERNAL) after ~9 s of retries."""
    return _RESOURCE_ID.fullmatch(resource_id) is not None


def resource_id(prefix: str, request_id: str) -> str:
    """From the request_id alone (not the body), so that reusing a request_id for a
    different resource is found, whatever the body says."""
    return f"{prefix}-{hashlib.sha256(request_id.encode()).hexdigest()[:16]}"


def digest(message: Message) -> str:
    return hashlib.sha256(message.SerializeToString(deterministic=True)).hexdigest()


def pack(message: Message) -> str:
    """A proto as a memo value (memos are JSON)."""
    return base64.b64encode(message.SerializeToString(deterministic=True)).decode()


def unpack(cls: type[M], value: object) -> M:
    """A packed proto from a memo; an empty one if the memo lacks it."""
    out = cls()
    if isinstance(value, str) and value:
        out.ParseFromString(base64.b64decode(value))
    return out


def set_time(out: Message, name: str, value: datetime | None) -> None:
    if value is not None:
        getattr(out, name).FromDatetime(value)


# ---- what a workflow says ----------------------------------------------------------


@dataclass(frozen=True)
class Pending:
    """The activity a running workflow waits for."""

    started: bool
    """A worker is running it (else it waits in the queue, e.g. before a retry)."""
    started_time: datetime | None
    heartbeat: Any
    """The latest heartbeat's first detail, decoded; None before any."""
    heartbeat_time: datetime | None


async def pending_activity(
    client: Client, described: WorkflowExecutionDescription, name: str
) -> Pending | None:
    for info in described.raw_description.pending_activities:
        if info.activity_type.name != name:
            continue
        heartbeat = None
        if info.heartbeat_details.payloads:
            heartbeat = client.data_converter.payload_converter.from_payloads(
                list(info.heartbeat_details.payloads)
            )[0]
        started = info.state in (
            PendingActivityState.PENDING_ACTIVITY_STATE_STARTED,
            PendingActivityState.PENDING_ACTIVITY_STATE_CANCEL_REQUESTED,
        )
        return Pending(
            started,
            info.last_started_time.ToDatetime(tzinfo=UTC) if started else None,
            heartbeat,
            info.last_heartbeat_time.ToDatetime(tzinfo=UTC)
            if info.HasField("last_heartbeat_time")
            else None,
        )
    return None


async def first_started(handle: WorkflowHandle[Any, Any], name: str) -> datetime | None:
    """When a worker first started the named activity, from the workflow's history (a
    finished activity is no longer pending)."""
    scheduled: set[int] = set()
    async for event in handle.fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            if event.activity_task_scheduled_event_attributes.activity_type.name == name:
                scheduled.add(event.event_id)
            continue
        started = event.activity_task_started_event_attributes
        if (
            event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
            and started.scheduled_event_id in scheduled
        ):
            return event.event_time.ToDatetime(tzinfo=UTC)
    return None


def failure_status(err: BaseException) -> status_pb2.Status:
    """A failed workflow's error as the contract reports it: the activity's own error,
    unwrapped from Temporal's (not its own causes: those are details behind it). One
    the activity failed with for good (services.activity_errors) keeps its code,
    reason and details, as the server's own errors have them; any other is INTERNAL
    (a timeout DEADLINE_EXCEEDED)."""
    cause = err
    while isinstance(cause, _WRAPPERS) and cause.__cause__ is not None:
        cause = cause.__cause__
    code = code_pb2.INTERNAL
    if isinstance(cause, ApplicationError):
        error = read_back(cause)
        if error is not None:
            return to_rpc_status(error)
    elif isinstance(cause, TimeoutError):
        code = code_pb2.DEADLINE_EXCEEDED
    message = cause.message if isinstance(cause, ApplicationError | TimeoutError) else str(cause)
    return status_pb2.Status(code=code, message=message or type(cause).__name__)


def ended_status(status: WorkflowExecutionStatus | None) -> status_pb2.Status:
    """Why a workflow that neither completed nor failed is over."""
    name = status.name.lower().replace("_", " ") if status else "ended"
    timed_out = status == WorkflowExecutionStatus.TIMED_OUT
    code = code_pb2.DEADLINE_EXCEEDED if timed_out else code_pb2.ABORTED
    return status_pb2.Status(code=code, message=f"the workflow {name}")


# ---- the resources of one kind -----------------------------------------------------


class WorkflowResources:
    """The resources of one kind: `workflow_type` workflows with ids `id_of(tenant,
    resource_id)`. ``what`` names the kind in errors (e.g. "training run")."""

    def __init__(
        self,
        client_factory: Callable[[], Awaitable[Client]],
        workflow_type: str,
        id_of: Callable[[str, str], str],
        what: str,
    ) -> None:
        self._client_factory = client_factory
        self._client: Client | None = None
        self.workflow_type = workflow_type
        self.id_of = id_of
        self.what = what

    async def temporal(self) -> Client:
        if self._client is None:
            self._client = await self._client_factory()
        return self._client

    async def describe(self, tenant_id: str, rid: str) -> WorkflowExecutionDescription | None:
        if not can_exist(rid):
            return None
        client = await self.temporal()
        try:
            return await client.get_workflow_handle(self.id_of(tenant_id, rid)).describe()
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                return None
            raise

    async def replayed(
        self, tenant_id: str, rid: str, request_digest: str, request_id: str
    ) -> bool:
        """True if this request_id already created a resource with this body;
        ALREADY_EXISTS (REQUEST_ID_REUSED) if it created a different one."""
        described = await self.describe(tenant_id, rid)
        if described is None:
            return False
        if (await described.memo()).get("request_sha256") != request_digest:
            raise RequestIdReused(self.what)
        return True

    def tenant_query(self, tenant_id: str) -> str:
        prefix = self.id_of(tenant_id, "").replace("\\", "\\\\").replace("'", "\\'")
        return f"WorkflowType = '{self.workflow_type}' AND WorkflowId STARTS_WITH '{prefix}'"

    async def page(
        self,
        tenant_id: str,
        page: PageRequest,
        keep: Callable[[Mapping[str, Any]], bool],
        read: Callable[[str], Awaitable[T]],
        wanted: Callable[[T], bool],
    ) -> tuple[list[T], str]:
        """Newest first: the ids whose memo ``keep`` accepts, each ``read`` and kept if
        ``wanted`` (a filter on the state, which only a read knows). The page token is
        the (create time, id) of the last one. (Temporal's visibility store trails a
        just-started workflow by moments.)"""
        client = await self.temporal()
        prefix = self.id_of(tenant_id, "")
        found: list[tuple[str, str]] = []
        async for execution in client.list_workflows(self.tenant_query(tenant_id)):
            if keep(await execution.memo()):
                found.append((execution.start_time.isoformat(), execution.id.removeprefix(prefix)))
        found.sort(reverse=True)
        if page.after:
            after = tuple(str(x) for x in page.after)
            found = [key for key in found if key < after]
        out: list[tuple[tuple[str, str], T]] = []
        for key in found:
            item = await read(key[1])
            if wanted(item):
                out.append((key, item))
                if len(out) > page.size:
                    break
        token = next_page_token(out, page.size, lambda item: list(item[0]))
        return [item for _, item in out[: page.size]], token
