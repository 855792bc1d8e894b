"""Every RPC of the contract, enumerated from the descriptors, attacked with hostile input
(issue 12, items 4, 5, 8, 11 and the fuzzing pass): NUL in each string field, invalid
UTF-8 spliced into the wire bytes of each string field, a Struct nested 60 deep wherever a
request has a Struct, an 8 KB value in each string field, conflicting credentials, then a
hypothesis pass generating whole requests from the descriptors. No call may end INTERNAL
or UNKNOWN, lose its google.rpc.Status to a trailer overflow (RESOURCE_EXHAUSTED with no
details), or hang; client streams get the bad message between good ones, and at the end
the stored telemetry equals exactly what the server acknowledged."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import grpc
import pytest
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor
from google.protobuf.message import Message
from hypothesis import HealthCheck, Phase, given, settings

from rlaas.options.v1 import options_pb2
from rlaas.registry.v1 import registry_pb2
from rlaas.telemetry.v1 import telemetry_pb2 as pb
from services.server.interceptors import PER_MESSAGE_STREAMS
from tests.conftest import RunningStack
from tests.helpers import md, new_tenant, rich_error, status_details
from tests.security.descriptors import all_methods
from tests.security.requests import (
    deep_struct,
    message_class,
    messages,
    place,
    string_slots,
    struct_slots,
    with_invalid_utf8,
)

pytestmark = pytest.mark.integration

CALL_TIMEOUT = 20.0
CONCURRENCY = 8
HUGE = "i" * 8192
TELEMETRY = pb.DESCRIPTOR.services_by_name["TelemetryService"].full_name
INGEST_STREAMS = {
    pb.IngestEventsRequest.DESCRIPTOR.full_name,
    pb.IngestEventBatchesRequest.DESCRIPTOR.full_name,
}
# Per RPC; 69 RPCs x 100 examples take about a minute on 2 cores.
HYPOTHESIS_EXAMPLES = 100
# Codes that mean the server broke (or the error never reached the client whole).
BROKEN = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN, grpc.StatusCode.DEADLINE_EXCEEDED}


def identity(raw: bytes) -> bytes:
    return raw


def operator_only(method: MethodDescriptor) -> bool:
    return bool(method.GetOptions().Extensions[options_pb2.operator_only])


def rid() -> str:
    return str(uuid.uuid4())


# ---- the ledger: what the ingest tenant was told is stored ----------------------------------


@dataclass
class Ledger:
    interactions: set[str] = field(default_factory=set)
    outputs: set[str] = field(default_factory=set)
    feedback: set[str] = field(default_factory=set)
    task_results: set[str] = field(default_factory=set)
    # Outputs created with their interaction: the acknowledgement carries no output id.
    outputs_with: dict[str, int] = field(default_factory=dict)

    def stream_ack(self, request: pb.IngestEventsRequest, ack: pb.IngestEventsResponse) -> None:
        if ack.outcome not in (
            pb.IngestEventsResponse.OUTCOME_ACCEPTED,
            pb.IngestEventsResponse.OUTCOME_DUPLICATE,
        ):
            return
        kind = request.WhichOneof("event")
        if kind == "create_interaction":
            self.interactions.add(ack.interaction_id)
            if request.create_interaction.HasField("output"):
                self.outputs_with[ack.interaction_id] = 1
        elif kind == "record_output":
            self.outputs.add(ack.event_id)
        elif kind == "submit_feedback":
            self.feedback.add(ack.event_id)
        elif kind == "record_task_result":
            self.task_results.add(ack.event_id)

    def unary_ok(self, response: Message) -> None:
        if isinstance(response, pb.CreateInteractionResponse):
            self.interactions.add(response.interaction.interaction_id)
            if response.HasField("output"):
                self.outputs.add(response.output.output_id)
        elif isinstance(response, pb.RecordOutputResponse):
            self.outputs.add(response.output.output_id)
        elif isinstance(response, pb.SubmitFeedbackResponse):
            self.feedback.add(response.feedback.feedback_id)
        elif isinstance(response, pb.RecordTaskResultResponse):
            self.task_results.add(response.task_result.task_result_id)


@dataclass
class Target:
    """Who calls what: a fresh tenant's admin key, the operator's for operator-only RPCs,
    and for TelemetryService a second fresh tenant whose every acknowledged event is
    recorded in the ledger."""

    operator: str
    admin: str
    ingest_admin: str
    ingest_tenant: str
    anchor: str  # an interaction of the ingest tenant the good feedback events refer to
    ledger: Ledger

    def key(self, service: ServiceDescriptor, method: MethodDescriptor) -> str:
        if operator_only(method):
            return self.operator
        return self.ingest_admin if service.full_name == TELEMETRY else self.admin

    def good(self, method: MethodDescriptor) -> bytes:
        """A valid message of an ingest stream: an interaction or feedback on the anchor."""
        event = pb.IngestEventsRequest(sequence=1)
        if uuid.uuid4().int % 2:
            event.create_interaction.interaction.skill = "support_email"
            event.create_interaction.interaction.input.text = "Where is my parcel?"
            event.create_interaction.request_id = rid()
        else:
            event.submit_feedback.interaction_id = self.anchor
            event.submit_feedback.feedback.explicit.rating = 4
            event.submit_feedback.request_id = rid()
        if method.input_type.full_name == pb.IngestEventBatchesRequest.DESCRIPTOR.full_name:
            return pb.IngestEventBatchesRequest(events=[event]).SerializeToString()
        return event.SerializeToString()

    def around(self, method: MethodDescriptor, bad: bytes) -> list[bytes]:
        """The messages to send: a client stream of events gets the bad message between
        good ones; any other client stream (an upload has its own protocol of messages)
        and a unary request get it alone."""
        if method.input_type.full_name in INGEST_STREAMS:
            return [self.good(method), bad, self.good(method)]
        return [bad]


@pytest.fixture(scope="module")
async def target(stack: RunningStack, channel: grpc.aio.Channel) -> Target:
    _, admin = await new_tenant(channel, stack.admin_key, "fuzz")
    ingest_tenant, ingest_admin = await new_tenant(channel, stack.admin_key, "fuzz-ingest")
    ledger = Ledger()
    created = await channel.unary_unary(
        f"/{TELEMETRY}/CreateInteraction",
        request_serializer=pb.CreateInteractionRequest.SerializeToString,
        response_deserializer=pb.CreateInteractionResponse.FromString,
    )(
        pb.CreateInteractionRequest(
            interaction=pb.Interaction(
                skill="support_email", input=pb.InteractionInput(text="anchor")
            ),
            request_id=rid(),
        ),
        metadata=md(ingest_admin),
    )
    ledger.unary_ok(created)
    return Target(
        stack.admin_key,
        admin,
        ingest_admin,
        ingest_tenant,
        created.interaction.interaction_id,
        ledger,
    )


# ---- one call, whatever its shape -----------------------------------------------------------


@dataclass
class Outcome:
    code: grpc.StatusCode
    responses: list[Message]
    error: Any  # the failed call (grpc.aio.AioRpcError, or the sync API's grpc.RpcError)
    timed_out: bool = False


async def invoke(
    channel: grpc.aio.Channel,
    service: ServiceDescriptor,
    method: MethodDescriptor,
    payloads: list[bytes],
    key: str | list[tuple[str, str]],
) -> Outcome:
    path = f"/{service.full_name}/{method.name}"
    response_class = message_class(method.output_type)
    shape = (bool(method.client_streaming), bool(method.server_streaming))
    make = {
        (False, False): channel.unary_unary,
        (False, True): channel.unary_stream,
        (True, False): channel.stream_unary,
        (True, True): channel.stream_stream,
    }[shape]
    multicallable: Any = make(
        path, request_serializer=identity, response_deserializer=response_class.FromString
    )
    metadata = md(key) if isinstance(key, str) else tuple(key)

    responses: list[Message] = []
    answered = asyncio.Event()

    async def drain(call: Any) -> None:
        if shape[1]:
            async for response in call:
                responses.append(response)
                answered.set()
        else:
            responses.append(await call)

    async def run() -> None:
        if not shape[0]:
            await drain(multicallable(payloads[0], metadata=metadata, timeout=CALL_TIMEOUT))
            return
        call = multicallable(metadata=metadata, timeout=CALL_TIMEOUT)
        reader = asyncio.create_task(drain(call))
        for i, payload in enumerate(payloads):
            if reader.done():
                break
            try:
                await call.write(payload)
            except (grpc.aio.AioRpcError, asyncio.InvalidStateError):
                break
            # Lock-step on a stream with answers: wait for this message's answer or the
            # end of the call before the next write. A write racing the server's end of
            # the call makes the aio client report INTERNAL "Internal error from Core"
            # in place of the server's status (a client-side quirk of grpc).
            while shape[1] and len(payloads) > 1 and len(responses) <= i and not reader.done():
                answered.clear()
                waiter = asyncio.create_task(answered.wait())
                await asyncio.wait({reader, waiter}, timeout=5, return_when="FIRST_COMPLETED")
                waiter.cancel()
                if not answered.is_set() and not reader.done():
                    break  # no answer and no end: send the rest, let the stream decide
        if not reader.done():
            with contextlib.suppress(grpc.aio.AioRpcError, asyncio.InvalidStateError):
                await call.done_writing()
        await reader

    try:
        await asyncio.wait_for(run(), CALL_TIMEOUT + 5)
    except grpc.aio.AioRpcError as err:
        return Outcome(err.code(), responses, err)
    except TimeoutError:
        return Outcome(grpc.StatusCode.DEADLINE_EXCEEDED, responses, None, timed_out=True)
    return Outcome(grpc.StatusCode.OK, responses, None)


def problem(outcome: Outcome) -> str | None:
    """Why this outcome breaks the rules, or None."""
    if outcome.timed_out or outcome.code in BROKEN:
        detail = outcome.error.details() if outcome.error else "no answer"
        return f"{outcome.code.name}: {detail!r:.300}"
    try:
        reason = rich_error(outcome.error).reason if outcome.error is not None else ""
    except ValueError as err:  # the Status trailer disagrees with the code the client saw
        return f"{outcome.code.name} with another code's google.rpc.Status: {err}"
    if reason is None:
        # Every error of this server carries ErrorInfo; none means the Status was lost
        # on the way (trailers over the client's limit: RESOURCE_EXHAUSTED).
        return (
            f"{outcome.code.name} without its google.rpc.Status: {outcome.error.details()!r:.300}"
        )
    return None


def record_stream(target: Target, payloads: list[bytes], out: Outcome) -> None:
    """Acks of an IngestEvents stream answer its messages in order."""
    for raw, ack in zip(payloads, out.responses, strict=False):
        assert isinstance(ack, pb.IngestEventsResponse)
        target.ledger.stream_ack(pb.IngestEventsRequest.FromString(raw), ack)


def remember(
    target: Target, service: ServiceDescriptor, payloads: list[bytes], out: Outcome
) -> None:
    if service.full_name != TELEMETRY or not out.responses:
        return
    first = out.responses[0]
    if isinstance(first, pb.IngestEventsResponse):
        record_stream(target, payloads, out)
    elif isinstance(first, pb.IngestEventBatchesResponse):
        for raw, batch in zip(payloads, out.responses, strict=False):
            assert isinstance(batch, pb.IngestEventBatchesResponse)
            events = pb.IngestEventBatchesRequest.FromString(raw).events
            for request, ack in zip(events, batch.results, strict=True):
                target.ledger.stream_ack(request, ack)
    elif out.code == grpc.StatusCode.OK:
        target.ledger.unary_ok(first)


# ---- the attacks ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Attack:
    service: ServiceDescriptor
    method: MethodDescriptor
    label: str
    bad: bytes
    expect_reason: str | None  # INVALID_ARGUMENT with this reason, else only the rules
    expect_field: str | None = None


def attacks(kind: str) -> Iterator[Attack]:
    for service, method in all_methods():
        cls = message_class(method.input_type)
        name = f"{service.name}.{method.name}"
        if kind == "struct":
            for slot in struct_slots(method.input_type):
                message = cls()
                place(message, slot, deep_struct(60))
                yield Attack(
                    service,
                    method,
                    f"{name} {slot.label}",
                    message.SerializeToString(),
                    "MESSAGE_TOO_DEEP",
                )
            continue
        for slot in string_slots(method.input_type):
            label = f"{name} {slot.label}"
            if kind == "utf8":
                yield Attack(service, method, label, with_invalid_utf8(cls, slot), "INVALID_UTF8")
                continue
            message = cls()
            path = place(message, slot, "nul\x00here" if kind == "nul" else HUGE)
            if kind == "nul":
                yield Attack(
                    service, method, label, message.SerializeToString(), "NUL_CHARACTER", path
                )
            else:
                yield Attack(service, method, label, message.SerializeToString(), None)


async def launch(channel: grpc.aio.Channel, target: Target, attack: Attack) -> str | None:
    method = attack.method
    payloads = target.around(method, attack.bad)
    out = await invoke(
        channel, attack.service, method, payloads, target.key(attack.service, method)
    )
    remember(target, attack.service, payloads, out)
    if (why := problem(out)) is not None:
        return why
    if attack.expect_reason is None:
        return None
    if (
        f"/{attack.service.full_name}/{method.name}" in PER_MESSAGE_STREAMS
        and attack.expect_reason in PER_MESSAGE_REASONS
    ):
        return rejected_alone(out, attack)
    if out.error is None or out.code != grpc.StatusCode.INVALID_ARGUMENT:
        return f"expected INVALID_ARGUMENT, got {out.code.name}"
    error = rich_error(out.error)
    if error.reason != attack.expect_reason:
        return f"expected reason {attack.expect_reason}, got {error.reason}: {error.message:.200}"
    if attack.expect_field is not None and [f for f, _ in error.field_violations] != [
        attack.expect_field
    ]:
        return f"expected field {attack.expect_field!r}, got {error.field_violations!r:.300}"
    if len(payloads) > 1 and len(out.responses) != 1:
        # The good message before the bad one is acknowledged (and in the ledger); the
        # one after it never is, and the stream says why: nothing dropped in silence.
        return f"expected one acknowledgement before the error, got {len(out.responses)}"
    return None


# What a per-message stream answers event by event: the message parsed, so its sequence
# and ids can be echoed; bytes that do not parse (UTF-8, depth) still end the stream.
PER_MESSAGE_REASONS = {"NUL_CHARACTER", "INVALID_TIME"}


def rejected_alone(out: Outcome, attack: Attack) -> str | None:
    """The bad event of [good, bad, good] (a message each, or a batch each) is rejected on
    its own, its error naming the field within the event; the stream goes on."""
    if out.code != grpc.StatusCode.OK:
        return f"expected the stream to go on, got {out.code.name}"
    acks = [
        ack
        for r in out.responses
        for ack in (r.results if isinstance(r, pb.IngestEventBatchesResponse) else [r])
    ]
    outcomes = [a.outcome for a in acks if isinstance(a, pb.IngestEventsResponse)]
    accepted, rejected = (
        pb.IngestEventsResponse.OUTCOME_ACCEPTED,
        pb.IngestEventsResponse.OUTCOME_REJECTED,
    )
    if outcomes != [accepted, rejected, accepted]:
        return f"expected accepted, rejected, accepted; got {outcomes}"
    ack = acks[1]
    assert isinstance(ack, pb.IngestEventsResponse)
    reason, violations = status_details(ack.error)
    invalid = grpc.StatusCode.INVALID_ARGUMENT.value[0]
    if ack.error.code != invalid or reason != attack.expect_reason:
        return f"expected INVALID_ARGUMENT {attack.expect_reason}, got {ack.error!r:.300}"
    # In a batch the field is named within its event, as IngestEvents names it.
    field = (attack.expect_field or "").removeprefix("events[0].")
    if attack.expect_field is not None and [f for f, _ in violations] != [field]:
        return f"expected field {field!r}, got {violations!r:.300}"
    return None


@pytest.mark.parametrize("kind", ["nul", "utf8", "struct", "huge"])
async def test_hostile_values_in_every_field_of_every_rpc(
    channel: grpc.aio.Channel, target: Target, kind: str
) -> None:
    gate = asyncio.Semaphore(CONCURRENCY)
    failures: dict[str, str] = {}

    async def one(attack: Attack) -> None:
        async with gate:
            why = await launch(channel, target, attack)
        if why is not None:
            failures[attack.label] = why

    planned = list(attacks(kind))
    await asyncio.gather(*(one(a) for a in planned))
    methods = {(a.service.full_name, a.method.name) for a in planned}
    if kind != "struct":
        assert len(methods) >= 60  # every RPC with a string field (all but 3)
    assert not failures, f"{len(failures)} of {len(planned)}:\n" + "\n".join(
        f"{k}: {v}" for k, v in sorted(failures.items())[:60]
    )


async def test_a_stream_with_a_bad_message_ends_invalid_argument_after_the_good_ones(
    channel: grpc.aio.Channel, target: Target
) -> None:
    """Item 4: the events before the bad message are acknowledged and stored, the bad one
    ends the stream with INVALID_ARGUMENT naming it, nothing after it is taken in silence."""
    service = pb.DESCRIPTOR.services_by_name["TelemetryService"]
    method = service.methods_by_name["IngestEvents"]
    bad = pb.IngestEventsRequest(sequence=3)
    bad.create_interaction.interaction.skill = "support_email"
    bad.create_interaction.interaction.input.text = "Qzbroken"
    bad.create_interaction.request_id = rid()
    raw = bad.SerializeToString().replace(b"Qzbroken", b"Qz\xffroken")
    payloads = [target.good(method), target.good(method), raw, target.good(method)]
    out = await invoke(channel, service, method, payloads, target.ingest_admin)
    remember(target, service, payloads, out)
    assert out.code == grpc.StatusCode.INVALID_ARGUMENT, out
    assert out.error is not None
    error = rich_error(out.error)
    assert error.reason == "INVALID_UTF8"
    assert error.field_violations[0][0] == "create_interaction.interaction.input.text"
    assert "message 3 of the stream" in error.message
    acks = [r for r in out.responses if isinstance(r, pb.IngestEventsResponse)]
    assert [a.outcome for a in acks] == [pb.IngestEventsResponse.OUTCOME_ACCEPTED] * 2


async def test_conflicting_credentials_are_refused(
    stack: RunningStack, channel: grpc.aio.Channel, target: Target
) -> None:
    """Item 11: a bearer key of one tenant and an x-api-key of another (either order), or
    one header twice, is UNAUTHENTICATED; the same key in both headers is fine."""
    service = registry_pb2.DESCRIPTOR.services_by_name["RegistryService"]
    method = service.methods_by_name["GetCallerIdentity"]
    payloads = [registry_pb2.GetCallerIdentityRequest().SerializeToString()]
    a, b = target.admin, target.ingest_admin
    for metadata in (
        [("authorization", f"Bearer {a}"), ("x-api-key", b)],
        [("x-api-key", b), ("authorization", f"Bearer {a}")],
        [("x-api-key", a), ("x-api-key", b)],
    ):
        out = await invoke(channel, service, method, payloads, metadata)
        assert out.code == grpc.StatusCode.UNAUTHENTICATED and out.error is not None
        assert rich_error(out.error).reason == "CONFLICTING_CREDENTIALS"
    same = await invoke(
        channel, service, method, payloads, [("authorization", f"Bearer {a}"), ("x-api-key", a)]
    )
    assert same.code == grpc.StatusCode.OK
    async with (
        aiohttp.ClientSession(stack.rest_url) as http,
        http.get("/v1/caller", headers={"authorization": f"Bearer {a}", "x-api-key": b}) as reply,
    ):
        body = await reply.json()
        assert reply.status == 401, body


async def test_deep_structs_over_rest_are_400(stack: RunningStack, target: Target) -> None:
    def nested(levels: int) -> dict[str, Any]:
        value: dict[str, Any] = {"bottom": "x"}
        for _ in range(levels):
            value = {"a": value}
        return value

    async with aiohttp.ClientSession(stack.rest_url) as http:
        for levels in (30, 40, 60, 200):
            request = {
                "interaction": {
                    "skill": "support_email",
                    "input": {"text": "deep"},
                    "metadata": nested(levels),
                },
                "requestId": rid(),
            }
            headers = {"x-api-key": target.ingest_admin}
            async with http.post("/v1/interactions", json=request, headers=headers) as reply:
                body = await reply.json()
                assert reply.status in (200, 400), (levels, reply.status, body)
                if reply.status == 200:
                    target.ledger.interactions.add(body["interaction"]["interactionId"])
                if levels >= 40:
                    assert reply.status == 400, (levels, body)


async def test_nul_is_refused_before_the_database_and_never_logged(
    stack: RunningStack, channel: grpc.aio.Channel, target: Target
) -> None:
    """Item 5: free text with NUL (and an email and a card number) is INVALID_ARGUMENT
    naming the field, and none of it reaches serve.log."""
    email, card = f"nul.{uuid.uuid4().hex[:8]}@example.com", "4111 1111 1111 1111"
    service = registry_pb2.DESCRIPTOR.services_by_name["RegistryService"]
    method = service.methods_by_name["CreateSkill"]
    request = registry_pb2.CreateSkillRequest(request_id=rid())
    request.skill.skill_id = f"nul_{uuid.uuid4().hex[:8]}"
    request.skill.description = f"mail {email} card {card} \x00 end"
    out = await invoke(channel, service, method, [request.SerializeToString()], target.admin)
    await asyncio.sleep(0.5)  # the log line of the call is written after its status
    log = await asyncio.to_thread(
        Path(stack.settings.logs_dir / "serve.log").read_text, errors="replace"
    )
    assert email not in log and card not in log
    assert out.code == grpc.StatusCode.INVALID_ARGUMENT and out.error is not None
    assert rich_error(out.error).field_violations[0][0] == "skill.description"


# ---- hypothesis: whole requests generated from the descriptors ------------------------------


def test_generated_requests_to_every_rpc(stack: RunningStack, target: Target) -> None:
    """Requests of every RPC generated from its descriptor (any subset of fields, any
    values: NUL, huge text, NaN, unknown enums, Structs), a bounded number each; client
    streams get the generated message between good ones."""
    failures: dict[str, str] = {}
    rpcs = 0
    with grpc.insecure_channel(stack.grpc_target) as sync_channel:
        for service, method in all_methods():
            rpcs += 1
            try:
                generated_requests(sync_channel, target, service, method)
            except (AssertionError, Exception) as err:  # report all RPCs together
                failures[f"{service.name}.{method.name}"] = str(err)[:2500]
    assert rpcs >= 60  # all of them, read from the descriptors
    assert not failures, "\n\n".join(f"{k}:\n{v}" for k, v in failures.items())


def generated_requests(
    sync_channel: grpc.Channel, target: Target, service: ServiceDescriptor, method: MethodDescriptor
) -> None:
    key = target.key(service, method)
    output = message_class(method.output_type)
    streams = (bool(method.client_streaming), bool(method.server_streaming))
    make = {
        (False, False): sync_channel.unary_unary,
        (False, True): sync_channel.unary_stream,
        (True, False): sync_channel.stream_unary,
        (True, True): sync_channel.stream_stream,
    }[streams]
    call: Any = make(
        f"/{service.full_name}/{method.name}",
        request_serializer=identity,
        response_deserializer=output.FromString,
    )

    @given(message=messages(method.input_type))
    @settings(
        max_examples=HYPOTHESIS_EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
        # No shrinking: a failing RPC would be called hundreds of times more; the
        # example is reported as generated (derandomized, so reproducible).
        phases=[Phase.explicit, Phase.generate],
    )
    def run(message: Message) -> None:
        raw = message.SerializeToString()
        payloads = target.around(method, raw)
        responses: list[Message] = []
        try:
            result = call(
                iter(payloads) if streams[0] else raw, metadata=md(key), timeout=CALL_TIMEOUT
            )
            responses.extend(result if streams[1] else [result])
            out = Outcome(grpc.StatusCode.OK, responses, None)
        except grpc.RpcError as err:
            # A sync error is a grpc.Call too: rich_error reads it the same way.
            out = Outcome(err.code(), responses, err)
        remember(target, service, payloads, out)
        why = problem(out)
        assert why is None, f"{why}\nrequest: {message!s:.2000}"

    run()


# ---- nothing acknowledged is lost -----------------------------------------------------------


async def test_stored_telemetry_equals_what_was_acknowledged(
    stack: RunningStack, channel: grpc.aio.Channel, target: Target
) -> None:
    """Runs last: every event any test above (or this one) got acknowledged on the ingest
    tenant is stored exactly once, and nothing else is."""
    service = pb.DESCRIPTOR.services_by_name["TelemetryService"]
    # A pass of its own, so the check means something when run alone: each stream has
    # good events around a bad one (NUL, invalid UTF-8, deep Struct, huge text).
    for method_name in ("IngestEvents", "IngestEventBatches"):
        method = service.methods_by_name[method_name]
        cls = message_class(method.input_type)
        for i, slot in enumerate(string_slots(method.input_type)[:40]):
            if i % 3 == 1:
                bad = with_invalid_utf8(cls, slot)
            else:
                message = cls()
                place(message, slot, "x\x00" if i % 3 == 0 else HUGE)
                bad = message.SerializeToString()
            payloads = [target.good(method), target.good(method), bad, target.good(method)]
            out = await invoke(channel, service, method, payloads, target.ingest_admin)
            remember(target, service, payloads, out)
            assert problem(out) is None, (slot.label, out.code)

    list_interactions = channel.unary_unary(
        f"/{TELEMETRY}/ListInteractions",
        request_serializer=pb.ListInteractionsRequest.SerializeToString,
        response_deserializer=pb.ListInteractionsResponse.FromString,
    )
    get_interaction = channel.unary_unary(
        f"/{TELEMETRY}/GetInteraction",
        request_serializer=pb.GetInteractionRequest.SerializeToString,
        response_deserializer=pb.GetInteractionResponse.FromString,
    )
    stored: list[str] = []
    token = ""
    while True:
        page = await list_interactions(
            pb.ListInteractionsRequest(page_size=100, page_token=token, include_shadow=True),
            metadata=md(target.ingest_admin),
        )
        stored += [i.interaction_id for i in page.interactions]
        token = page.next_page_token
        if not token:
            break
    assert len(stored) == len(set(stored))  # each stored once
    ledger = target.ledger
    assert set(stored) == ledger.interactions

    gate = asyncio.Semaphore(CONCURRENCY)

    async def read(interaction_id: str) -> pb.GetInteractionResponse:
        async with gate:
            return await get_interaction(
                pb.GetInteractionRequest(interaction_id=interaction_id),
                metadata=md(target.ingest_admin),
            )

    views = await asyncio.gather(*(read(i) for i in stored))
    feedback = [f.feedback_id for v in views for f in v.feedback]
    task_results = [t.task_result_id for v in views for t in v.task_results]
    outputs = {v.interaction.interaction_id: [o.output_id for o in v.outputs] for v in views}
    # Reactions show on their interaction once it exists; one sent for an interaction
    # that never came is kept unjoined, so the table itself is the full account.
    assert len(feedback) == len(set(feedback)) and set(feedback) <= ledger.feedback
    assert set(task_results) <= ledger.task_results
    conn = await asyncpg.connect(stack.database_url)
    try:
        rows = await conn.fetch(
            "SELECT event_type, event_id FROM telemetry_events WHERE tenant_id = $1",
            target.ingest_tenant,
        )
    finally:
        await conn.close()
    at_rest: dict[int, list[str]] = {}
    for row in rows:
        at_rest.setdefault(row["event_type"], []).append(row["event_id"])
    for kind, acknowledged in (
        (pb.EVENT_TYPE_INTERACTION, ledger.interactions),
        (pb.EVENT_TYPE_FEEDBACK, ledger.feedback),
        (pb.EVENT_TYPE_TASK_RESULT, ledger.task_results),
    ):
        ids = at_rest.get(kind, [])
        assert len(ids) == len(set(ids)) and set(ids) == acknowledged, kind
    all_outputs = [o for ids in outputs.values() for o in ids]
    assert len(all_outputs) == len(set(all_outputs))
    assert ledger.outputs <= set(all_outputs)
    created_with = {
        i for i, ids in outputs.items() if set(ids) - ledger.outputs
    }  # outputs no RecordOutput acknowledged: only those created with their interaction
    assert created_with <= set(ledger.outputs_with)
    assert all(len(set(outputs[i]) - ledger.outputs) == 1 for i in created_with)
