"""TelemetryService against the real server and Postgres."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
import grpc
import pytest

from rlaas.options.v1 import options_pb2
from rlaas.telemetry.v1 import telemetry_pb2 as pb
from rlaas.telemetry.v1 import telemetry_pb2_grpc
from tests.conftest import RunningStack
from tests.helpers import md, new_tenant, rich_error, scoped_key

pytestmark = pytest.mark.integration


@dataclass
class Tenant:
    tenant_id: str
    admin: str
    ingest: str


async def make_tenant(stack: RunningStack, channel: grpc.aio.Channel, name: str) -> Tenant:
    tenant_id, admin = await new_tenant(channel, stack.admin_key, name)
    return Tenant(tenant_id, admin, await scoped_key(channel, admin, options_pb2.SCOPE_INGEST))


@pytest.fixture(scope="module")
async def tenant(stack: RunningStack, channel: grpc.aio.Channel) -> Tenant:
    return await make_tenant(stack, channel, "telemetry")


def stub(channel: grpc.aio.Channel) -> telemetry_pb2_grpc.TelemetryServiceStub:
    return telemetry_pb2_grpc.TelemetryServiceStub(channel)


def rid() -> str:
    return str(uuid.uuid4())


def interaction(skill: str = "support_email", text: str = "Where is my order?", **kw: object):
    return pb.CreateInteractionRequest(
        interaction=pb.Interaction(skill=skill, input=pb.InteractionInput(text=text), **kw),
        request_id=rid(),
    )


def feedback(interaction_id: str, **explicit: object) -> pb.SubmitFeedbackRequest:
    return pb.SubmitFeedbackRequest(
        interaction_id=interaction_id,
        feedback=pb.Feedback(explicit=pb.ExplicitFeedback(**explicit)),
        request_id=rid(),
    )


async def db_rows(stack: RunningStack, tenant_id: str, where: str = "true") -> list[asyncpg.Record]:
    conn = await asyncpg.connect(stack.database_url)
    try:
        return await conn.fetch(
            f"SELECT * FROM telemetry_events WHERE tenant_id = $1 AND {where}", tenant_id
        )
    finally:
        await conn.close()


async def ingest(
    channel: grpc.aio.Channel, key: str, events: Iterable[pb.IngestEventsRequest]
) -> list[pb.IngestEventsResponse]:
    async def gen() -> AsyncIterator[pb.IngestEventsRequest]:
        for e in events:
            yield e

    call = stub(channel).IngestEvents(gen(), metadata=md(key))
    return [r async for r in call]


def as_stream(*requests: object) -> list[pb.IngestEventsRequest]:
    field = {
        pb.CreateInteractionRequest: "create_interaction",
        pb.RecordOutputRequest: "record_output",
        pb.SubmitFeedbackRequest: "submit_feedback",
        pb.RecordTaskResultRequest: "record_task_result",
    }
    return [
        pb.IngestEventsRequest(sequence=i, **{field[type(r)]: r}) for i, r in enumerate(requests)
    ]


async def test_unary_round_trip(
    stack: RunningStack, channel: grpc.aio.Channel, tenant: Tenant
) -> None:
    s, key = stub(channel), md(tenant.ingest)
    request = interaction(user_id="u-1", thread_id="th-1", policy_id="support_email@v1")
    request.output.text = "It ships tomorrow."
    created = await s.CreateInteraction(request, metadata=key)
    iid = created.interaction.interaction_id
    assert created.interaction.tenant_id == tenant.tenant_id
    assert created.output.interaction_id == iid and created.output.text == "It ships tomorrow."
    assert created.interaction.HasField("create_time")
    out = await s.RecordOutput(
        pb.RecordOutputRequest(
            interaction_id=iid, output=pb.Output(text="Second candidate"), request_id=rid()
        ),
        metadata=key,
    )
    fb = await s.SubmitFeedback(
        feedback(iid, thumb=pb.ExplicitFeedback.THUMB_UP, rating=5), metadata=key
    )
    implicit = pb.SubmitFeedbackRequest(
        interaction_id=iid,
        feedback=pb.Feedback(
            output_id=out.output.output_id,
            implicit=pb.ImplicitFeedback(edited_text="Edited", sent=True, time_to_send_ms=4200),
        ),
        request_id=rid(),
    )
    await s.SubmitFeedback(implicit, metadata=key)
    tr = await s.RecordTaskResult(
        pb.RecordTaskResultRequest(
            interaction_id=iid,
            task_result=pb.TaskResult(resolved=True, f1=0.5, labels={"team": "billing"}),
            request_id=rid(),
        ),
        metadata=key,
    )
    got = await s.GetInteraction(pb.GetInteractionRequest(interaction_id=iid), metadata=key)
    assert got.interaction.skill == "support_email" and got.interaction.user_id == "u-1"
    assert [o.text for o in got.outputs] == ["It ships tomorrow.", "Second candidate"]
    assert {f.feedback_id for f in got.feedback} == {
        fb.feedback.feedback_id,
        got.feedback[1].feedback_id,
    }
    assert got.feedback[1].implicit.sent and got.feedback[1].implicit.time_to_send_ms == 4200
    assert got.task_results[0].task_result_id == tr.task_result.task_result_id
    assert (got.interaction.output_count, got.interaction.feedback_count) == (2, 2)
    assert got.interaction.task_result_count == 1
    assert len(await db_rows(stack, tenant.tenant_id, f"interaction_id = '{iid}'")) == 6


async def test_replay_and_conflicts(
    stack: RunningStack, channel: grpc.aio.Channel, tenant: Tenant
) -> None:
    s, key = stub(channel), md(tenant.ingest)
    request = interaction(text="replay me")
    first = await s.CreateInteraction(request, metadata=key)
    again = await s.CreateInteraction(request, metadata=key)
    assert again == first  # the original result, create_time included
    iid = first.interaction.interaction_id
    assert len(await db_rows(stack, tenant.tenant_id, f"interaction_id = '{iid}'")) == 1

    changed = pb.CreateInteractionRequest()
    changed.CopyFrom(request)
    changed.interaction.input.text = "something else"
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await s.CreateInteraction(changed, metadata=key)
    err = rich_error(info.value)
    assert (err.code, err.reason) == (grpc.StatusCode.ALREADY_EXISTS, "REQUEST_ID_REUSED")

    taken = interaction(interaction_id=iid)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await s.CreateInteraction(taken, metadata=key)
    err = rich_error(info.value)
    assert (err.code, err.reason) == (grpc.StatusCode.ALREADY_EXISTS, "EVENT_ID_TAKEN")
    assert len(await db_rows(stack, tenant.tenant_id, f"interaction_id = '{iid}'")) == 1


async def test_concurrent_duplicate_storm_stores_each_event_once(
    stack: RunningStack, tenant: Tenant
) -> None:
    events = []
    for i in range(150):
        r = interaction(text=f"storm {i}")
        r.interaction.interaction_id = f"storm-{uuid.uuid4().hex[:12]}"
        events.append(r)
    events += [feedback(e.interaction.interaction_id, rating=4) for e in events[:50]]
    stream = as_stream(*events)

    async def client() -> list[pb.IngestEventsResponse]:
        async with grpc.aio.insecure_channel(stack.grpc_target) as ch:
            return await ingest(ch, tenant.ingest, stream)

    results = await asyncio.gather(*(client() for _ in range(8)))
    accepted_per_event: dict[str, int] = {}
    for per_client in results:
        assert [r.sequence for r in per_client] == list(range(len(stream)))
        for r in per_client:
            assert r.outcome in (
                pb.IngestEventsResponse.OUTCOME_ACCEPTED,
                pb.IngestEventsResponse.OUTCOME_DUPLICATE,
            ), r
            if r.outcome == pb.IngestEventsResponse.OUTCOME_ACCEPTED:
                accepted_per_event[r.request_id] = accepted_per_event.get(r.request_id, 0) + 1
    assert len(accepted_per_event) == len(stream)
    assert set(accepted_per_event.values()) == {1}
    keys = [e.request_id for e in events]
    rows = await db_rows(stack, tenant.tenant_id, f"request_id = ANY(ARRAY{keys!r})")
    assert len(rows) == len(events)


async def test_stream_mixes_kinds_and_a_bad_event_sinks_only_itself(
    stack: RunningStack, channel: grpc.aio.Channel, tenant: Tenant
) -> None:
    it = interaction(text="stream parent")
    it.interaction.interaction_id = f"mix-{uuid.uuid4().hex[:8]}"
    iid = it.interaction.interaction_id
    bad = feedback(iid, rating=9)
    results = await ingest(
        channel,
        tenant.ingest,
        as_stream(
            it,
            pb.RecordOutputRequest(
                interaction_id=iid, output=pb.Output(text="hi"), request_id=rid()
            ),
            bad,
            feedback(iid, thumb=pb.ExplicitFeedback.THUMB_DOWN),
        ),
    )
    outcomes = [pb.IngestEventsResponse.Outcome.Name(r.outcome) for r in results]
    assert outcomes == [
        "OUTCOME_ACCEPTED",
        "OUTCOME_ACCEPTED",
        "OUTCOME_REJECTED",
        "OUTCOME_ACCEPTED",
    ]
    assert results[2].error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert "feedback.explicit.rating" in results[2].error.message
    assert results[0].interaction_id == iid and results[0].event_id == iid
    assert len(await db_rows(stack, tenant.tenant_id, f"interaction_id = '{iid}'")) == 3
    assert not await db_rows(stack, tenant.tenant_id, f"request_id = '{bad.request_id}'")


async def test_feedback_before_its_interaction_is_kept_and_joined(
    stack: RunningStack, channel: grpc.aio.Channel, tenant: Tenant
) -> None:
    s, key = stub(channel), md(tenant.ingest)
    iid = f"late-{uuid.uuid4().hex[:8]}"
    early = await s.SubmitFeedback(feedback(iid, rating=2, comment="too long"), metadata=key)
    await s.RecordTaskResult(
        pb.RecordTaskResultRequest(
            interaction_id=iid, task_result=pb.TaskResult(correct=False), request_id=rid()
        ),
        metadata=key,
    )
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await s.GetInteraction(pb.GetInteractionRequest(interaction_id=iid), metadata=key)
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    await s.CreateInteraction(interaction(interaction_id=iid), metadata=key)
    got = await s.GetInteraction(pb.GetInteractionRequest(interaction_id=iid), metadata=key)
    assert [f.feedback_id for f in got.feedback] == [early.feedback.feedback_id]
    assert got.interaction.feedback_count == 1 and got.interaction.task_result_count == 1


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda r: setattr(r, "request_id", ""), "request_id"),
        (lambda r: setattr(r, "request_id", "abc#output"), "request_id"),
        (lambda r: setattr(r.interaction, "skill", ""), "interaction.skill"),
        (lambda r: setattr(r.interaction, "skill", "Bad Skill!"), "interaction.skill"),
        (lambda r: r.interaction.input.ClearField("text"), "interaction.input"),
        (
            lambda r: r.interaction.input.messages.add(role=99, content="x"),
            "interaction.input.messages[0].role",
        ),
        (lambda r: setattr(r.interaction, "cost_usd", -1.0), "interaction.cost_usd"),
        (lambda r: setattr(r.interaction.input, "text", "x" * 70_000), "interaction.input.text"),
        (
            lambda r: r.interaction.event_time.FromDatetime(datetime.now(UTC) + timedelta(hours=2)),
            "interaction.event_time",
        ),
        (
            lambda r: r.interaction.event_time.FromDatetime(datetime.now(UTC) - timedelta(days=90)),
            "interaction.event_time",
        ),
        (
            lambda r: setattr(r.interaction, "interaction_id", "bad id with spaces"),
            "interaction.interaction_id",
        ),
    ],
)
async def test_invalid_interactions_name_the_field_and_write_nothing(
    stack: RunningStack, channel: grpc.aio.Channel, tenant: Tenant, mutate, field: str
) -> None:
    request = interaction(text="valid until mutated")
    mutate(request)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub(channel).CreateInteraction(request, metadata=md(tenant.ingest))
    err = rich_error(info.value)
    assert err.code == grpc.StatusCode.INVALID_ARGUMENT
    assert field in [f for f, _ in err.field_violations], err.field_violations
    if request.request_id:
        assert not await db_rows(stack, tenant.tenant_id, f"request_id = '{request.request_id}'")


async def test_invalid_feedback_and_task_results(channel: grpc.aio.Channel, tenant: Tenant) -> None:
    s, key = stub(channel), md(tenant.ingest)
    cases = [
        (s.SubmitFeedback(feedback("x", rating=0), metadata=key), "feedback.explicit.rating"),
        (
            s.SubmitFeedback(
                pb.SubmitFeedbackRequest(
                    interaction_id="x", feedback=pb.Feedback(), request_id=rid()
                ),
                metadata=key,
            ),
            "feedback",
        ),
        (s.SubmitFeedback(feedback("", rating=3), metadata=key), "interaction_id"),
        (
            s.SubmitFeedback(feedback("x", thumb=7), metadata=key),
            "feedback.explicit.thumb",
        ),
        (
            s.RecordTaskResult(
                pb.RecordTaskResultRequest(
                    interaction_id="x", task_result=pb.TaskResult(f1=1.5), request_id=rid()
                ),
                metadata=key,
            ),
            "task_result.f1",
        ),
    ]
    for call, field in cases:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await call
        err = rich_error(info.value)
        assert err.code == grpc.StatusCode.INVALID_ARGUMENT and field in [
            f for f, _ in err.field_violations
        ]


async def test_tenants_cannot_see_or_touch_each_other(
    stack: RunningStack, channel: grpc.aio.Channel, tenant: Tenant
) -> None:
    other = await make_tenant(stack, channel, "other")
    s = stub(channel)
    mine = await s.CreateInteraction(interaction(text="private to A"), metadata=md(tenant.ingest))
    iid = mine.interaction.interaction_id
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await s.GetInteraction(
            pb.GetInteractionRequest(interaction_id=iid), metadata=md(other.ingest)
        )
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    listed = await s.ListInteractions(
        pb.ListInteractionsRequest(page_size=1000), metadata=md(other.ingest)
    )
    assert iid not in {i.interaction_id for i in listed.interactions}
    # B's feedback naming A's interaction stays B's: A's interaction is untouched.
    await s.SubmitFeedback(feedback(iid, rating=1), metadata=md(other.ingest))
    got = await s.GetInteraction(
        pb.GetInteractionRequest(interaction_id=iid), metadata=md(tenant.ingest)
    )
    assert got.interaction.feedback_count == 0
    # The same request_id is independent per tenant.
    shared = interaction(text="same key, two tenants")
    a = await s.CreateInteraction(shared, metadata=md(tenant.ingest))
    b = await s.CreateInteraction(shared, metadata=md(other.ingest))
    assert a.interaction.tenant_id != b.interaction.tenant_id
    # Exports are per tenant too.
    now = datetime.now(UTC)
    export = pb.ExportEventsRequest(request_id=rid())
    export.start_time.FromDatetime(now - timedelta(hours=1))
    export.end_time.FromDatetime(now + timedelta(minutes=1))
    files = (await s.ExportEvents(export, metadata=md(other.ingest))).files
    assert files and all(f"tenant={other.tenant_id}/" in f.uri for f in files)


async def test_list_interactions_filters_and_pages(
    stack: RunningStack, channel: grpc.aio.Channel
) -> None:
    t = await make_tenant(stack, channel, "lister")
    s, key = stub(channel), md(t.ingest)
    ids = []
    for i in range(7):
        r = interaction(skill="triage" if i % 2 else "support_email", user_id=f"u{i % 3}")
        r.interaction.labels["lang"] = "de" if i < 3 else "en"
        ids.append((await s.CreateInteraction(r, metadata=key)).interaction.interaction_id)
    await s.SubmitFeedback(feedback(ids[0], rating=5), metadata=key)

    async def listed(**kw: object) -> list[str]:
        seen, token = [], ""
        while True:
            page = await s.ListInteractions(
                pb.ListInteractionsRequest(page_size=2, page_token=token, **kw),
                metadata=key,
            )
            seen += [i.interaction_id for i in page.interactions]
            if not (token := page.next_page_token):
                return seen

    assert await listed() == ids[::-1]  # newest first, all pages
    assert await listed(skill="triage") == [ids[5], ids[3], ids[1]]
    assert await listed(user_id="u0") == [ids[6], ids[3], ids[0]]
    assert await listed(has_feedback=True) == [ids[0]]
    assert len(await listed(has_feedback=False)) == 6
    assert await listed(labels={"lang": "de"}) == [ids[2], ids[1], ids[0]]
    future = datetime.now(UTC) + timedelta(minutes=5)
    after = pb.ListInteractionsRequest()
    after.start_time.FromDatetime(future)
    assert not (await s.ListInteractions(after, metadata=key)).interactions
    page = await s.ListInteractions(pb.ListInteractionsRequest(page_size=2), metadata=key)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await s.ListInteractions(
            pb.ListInteractionsRequest(
                page_size=2, page_token=page.next_page_token, skill="triage"
            ),
            metadata=key,
        )
    assert rich_error(info.value).field_violations[0][0] == "page_token"


PLANTED = {
    "email": "jane.doe+vip@example.org",
    "card": "4111 1111 1111 1111",
    "phone": "+1 (415) 555-0132",
    "secret": "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
    "iban": "DE89 3704 0044 0532 0130 00",
    "ssn": "123-45-6789",
    "ip": "203.0.113.42",
}


async def test_no_planted_pii_reaches_any_table(
    stack: RunningStack, channel: grpc.aio.Channel
) -> None:
    t = await make_tenant(stack, channel, "pii")
    s, key = stub(channel), md(t.ingest)
    v = PLANTED
    r = interaction(text=f"Hi, I am {v['email']}, call {v['phone']}.")
    r.interaction.retrieved_chunks.add(text=f"Customer card on file: {v['card']}")
    r.interaction.metadata.update({"note": f"ssn {v['ssn']}", "ip": v["ip"]})
    r.output.text = f"Refund goes to IBAN {v['iban']}."
    created = await s.CreateInteraction(r, metadata=key)
    iid = created.interaction.interaction_id
    await s.SubmitFeedback(
        pb.SubmitFeedbackRequest(
            interaction_id=iid,
            feedback=pb.Feedback(
                explicit=pb.ExplicitFeedback(comment=f"my key is {v['secret']}"),
                implicit=pb.ImplicitFeedback(edited_text=f"Write to {v['email']} please"),
            ),
            request_id=rid(),
        ),
        metadata=key,
    )
    got = await s.GetInteraction(pb.GetInteractionRequest(interaction_id=iid), metadata=key)
    assert "[EMAIL]" in got.interaction.input.text and "[PHONE]" in got.interaction.input.text
    assert "[CARD]" in got.interaction.retrieved_chunks[0].text
    assert "[IBAN]" in got.outputs[0].text
    assert "[SECRET]" in got.feedback[0].explicit.comment
    assert "[EMAIL]" in got.feedback[0].implicit.edited_text
    assert got.interaction.metadata["ip"] == "[IP]"
    counts = {r["event_type"]: r["pii_counts"] for r in await db_rows(stack, t.tenant_id)}
    assert '"email": 1' in counts[1] and '"iban": 1' in counts[2]

    conn = await asyncpg.connect(stack.database_url)
    try:
        tables = [r["tablename"] for r in await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        )]  # fmt: skip
        for table in tables:
            # Every column of every row: text as text, bytea (protobuf payloads) as bytes.
            for row in await conn.fetch(f"SELECT * FROM {table}"):
                for column, value in row.items():
                    for name, planted in v.items():
                        if isinstance(value, bytes):
                            found = planted.encode() in value
                        else:
                            found = planted in str(value)
                        assert not found, f"{name} found in {table}.{column}"
    finally:
        await conn.close()


async def test_tenant_can_turn_scrubbing_off_or_choose_entities(
    stack: RunningStack, channel: grpc.aio.Channel
) -> None:
    t = await make_tenant(stack, channel, "pii-settings")
    s = stub(channel)
    update = pb.UpdateTelemetrySettingsRequest(
        settings=pb.TelemetrySettings(
            pii_scrubbing_enabled=True, pii_entities=[pb.PII_ENTITY_EMAIL]
        ),
        request_id=rid(),
    )
    with pytest.raises(grpc.aio.AioRpcError) as info:  # settings need the admin scope
        await s.UpdateTelemetrySettings(update, metadata=md(t.ingest))
    assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED
    got = await s.UpdateTelemetrySettings(update, metadata=md(t.admin))
    assert list(got.settings.pii_entities) == [pb.PII_ENTITY_EMAIL]
    text = f"{PLANTED['email']} / {PLANTED['phone']}"
    created = await s.CreateInteraction(interaction(text=text), metadata=md(t.ingest))
    assert created.interaction.input.text == f"[EMAIL] / {PLANTED['phone']}"

    off = pb.UpdateTelemetrySettingsRequest(
        settings=pb.TelemetrySettings(pii_scrubbing_enabled=False), request_id=rid()
    )
    await s.UpdateTelemetrySettings(off, metadata=md(t.admin))
    created = await s.CreateInteraction(interaction(text=text), metadata=md(t.ingest))
    assert created.interaction.input.text == text
    bad = pb.UpdateTelemetrySettingsRequest(
        settings=pb.TelemetrySettings(pii_entities=[42]),
        request_id=rid(),
    )
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await s.UpdateTelemetrySettings(bad, metadata=md(t.admin))
    assert rich_error(info.value).field_violations[0][0] == "settings.pii_entities[0]"


async def test_counters_per_tenant_and_kind(stack: RunningStack, channel: grpc.aio.Channel) -> None:
    import urllib.request

    t = await make_tenant(stack, channel, "counted")
    s, key = stub(channel), md(t.ingest)
    r = interaction()
    await s.CreateInteraction(r, metadata=key)
    await s.CreateInteraction(r, metadata=key)
    with pytest.raises(grpc.aio.AioRpcError):
        await s.SubmitFeedback(feedback("x", rating=10), metadata=key)
    got = await s.GetTelemetrySettings(pb.GetTelemetrySettingsRequest(), metadata=key)
    counters = {pb.EventType.Name(c.event_type): c for c in got.counters}
    assert counters["EVENT_TYPE_INTERACTION"].accepted == 1
    assert counters["EVENT_TYPE_INTERACTION"].duplicate == 1
    assert counters["EVENT_TYPE_FEEDBACK"].rejected == 1
    # Prometheus counts them too, without naming the tenant (tests/security/test_exposure).
    url = f"http://127.0.0.1:{stack.settings.metrics_port}/metrics"
    body = await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=10).read().decode())
    assert 'rlaas_telemetry_events_total{kind="interaction",outcome="duplicate",tenant=""}' in body
    assert t.tenant_id not in body


async def test_repeats_inside_one_batch(
    stack: RunningStack, channel: grpc.aio.Channel, tenant: Tenant
) -> None:
    first = interaction(text="twice in one batch")
    reused = pb.CreateInteractionRequest()
    reused.CopyFrom(first)
    reused.interaction.input.text = "same key, other payload"
    batch = pb.IngestEventBatchesRequest(events=as_stream(first, first, reused))

    async def one() -> AsyncIterator[pb.IngestEventBatchesRequest]:
        yield batch

    [response] = [
        r async for r in stub(channel).IngestEventBatches(one(), metadata=md(tenant.ingest))
    ]
    outcomes = [pb.IngestEventsResponse.Outcome.Name(r.outcome) for r in response.results]
    assert outcomes == ["OUTCOME_ACCEPTED", "OUTCOME_DUPLICATE", "OUTCOME_REJECTED"]
    assert response.results[1].interaction_id == response.results[0].interaction_id
    assert response.results[2].error.code == grpc.StatusCode.ALREADY_EXISTS.value[0]
    assert len(await db_rows(stack, tenant.tenant_id, f"request_id = '{first.request_id}'")) == 1


async def test_interaction_with_a_taken_output_id_stores_nothing(
    stack: RunningStack, channel: grpc.aio.Channel, tenant: Tenant
) -> None:
    s, key = stub(channel), md(tenant.ingest)
    owner = interaction(text="owns the output id")
    owner.output.output_id = f"out-{uuid.uuid4().hex[:8]}"
    owner.output.text = "first"
    await s.CreateInteraction(owner, metadata=key)
    clash = interaction(text="wants the same output id")
    clash.output.CopyFrom(owner.output)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await s.CreateInteraction(clash, metadata=key)
    err = rich_error(info.value)
    assert (err.code, err.reason) == (grpc.StatusCode.ALREADY_EXISTS, "EVENT_ID_TAKEN")
    # All or nothing: the interaction did not stay behind without its output.
    assert not await db_rows(stack, tenant.tenant_id, f"request_id LIKE '{clash.request_id}%'")


async def test_batch_bound_is_enforced(channel: grpc.aio.Channel, tenant: Tenant) -> None:
    too_many = pb.IngestEventBatchesRequest(events=as_stream(*[interaction() for _ in range(1001)]))

    async def one() -> AsyncIterator[pb.IngestEventBatchesRequest]:
        yield too_many

    with pytest.raises(grpc.aio.AioRpcError) as info:
        async for _ in stub(channel).IngestEventBatches(one(), metadata=md(tenant.ingest)):
            pass
    err = rich_error(info.value)
    assert err.code == grpc.StatusCode.INVALID_ARGUMENT and err.field_violations[0][0] == "events"
