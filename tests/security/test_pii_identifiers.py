"""Issue 12, item 10: personal data at rest outside the scrubbed text. `user_id`,
`thread_id`, label keys, Struct keys and `messages[].name` were stored as sent.

Now label keys, Struct keys and author names are scrubbed like any free text, and the
identifiers that join events (user_id, thread_id) are stored as keyed pseudonyms when
they carry personal data, so that joins and list filters by the id the tenant knows
keep working."""

from __future__ import annotations

import uuid

import asyncpg
import grpc
import pytest

from rlaas.telemetry.v1 import telemetry_pb2 as pb
from tests.conftest import RunningStack
from tests.helpers import md
from tests.integration.test_telemetry import interaction, make_tenant, rid, stub

pytestmark = pytest.mark.integration

# Unique per run: the scan below reads every table, other tests' rows included.
RUN = uuid.uuid4().hex[:8]
EMAIL = f"jane.doe.{RUN}@example.com"
PHONE = "+1 (415) 555-0132"  # its scrubbing is checked on the read (other tests use it)


async def _all_rows_contain(stack: RunningStack, needle: str) -> list[str]:
    """Every table and column (text as text, bytea as bytes) where ``needle`` is."""
    conn = await asyncpg.connect(stack.database_url)
    found = []
    try:
        tables = [
            r["tablename"]
            for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        ]
        for table in tables:
            for row in await conn.fetch(f"SELECT * FROM {table}"):
                for column, value in row.items():
                    hay = value if isinstance(value, bytes) else str(value).encode()
                    if needle.encode() in hay:
                        found.append(f"{table}.{column}")
    finally:
        await conn.close()
    return found


async def test_identifiers_keys_and_names_hold_no_personal_data_at_rest(
    stack: RunningStack, channel: grpc.aio.Channel
) -> None:
    t = await make_tenant(stack, channel, "pii-identifiers")
    s, key = stub(channel), md(t.ingest)
    r = interaction(user_id=EMAIL, thread_id=f"{EMAIL}:1")
    r.interaction.input.messages.add(
        role=pb.ChatMessage.ROLE_USER, content="hello", name=f"{EMAIL}"
    )
    r.interaction.labels[f"owner {EMAIL}"] = "vip"
    r.interaction.labels["lang"] = "en"
    r.interaction.metadata.update({f"call {PHONE}": 1, "plain": "x"})
    created = (await s.CreateInteraction(r, metadata=key)).interaction
    iid = created.interaction_id
    await s.SubmitFeedback(
        pb.SubmitFeedbackRequest(
            interaction_id=iid,
            feedback=pb.Feedback(explicit=pb.ExplicitFeedback(thumb=1), user_id=EMAIL),
            request_id=rid(),
        ),
        metadata=key,
    )
    got = await s.GetInteraction(pb.GetInteractionRequest(interaction_id=iid), metadata=key)
    it = got.interaction
    assert it.user_id.startswith("pii_") and it.thread_id.startswith("pii_")
    assert it.user_id != it.thread_id
    assert got.feedback[0].user_id == it.user_id  # the same person, the same pseudonym
    assert it.input.messages[0].name == "[EMAIL]"
    assert dict(it.labels) == {"owner [EMAIL]": "vip", "lang": "en"}
    assert set(it.metadata.keys()) == {"call [PHONE]", "plain"}

    # Found by the id the tenant knows, as before.
    listed = await s.ListInteractions(pb.ListInteractionsRequest(user_id=EMAIL), metadata=key)
    assert [x.interaction_id for x in listed.interactions] == [iid]
    listed = await s.ListInteractions(
        pb.ListInteractionsRequest(thread_id=f"{EMAIL}:1"), metadata=key
    )
    assert [x.interaction_id for x in listed.interactions] == [iid]

    # Nothing of it anywhere in the database.
    for needle in (EMAIL, f"jane.doe.{RUN}"):
        assert not await _all_rows_contain(stack, needle), needle


async def test_plain_identifiers_are_kept_and_pseudonyms_are_per_tenant(
    stack: RunningStack, channel: grpc.aio.Channel
) -> None:
    a = await make_tenant(stack, channel, "pii-ids-a")
    b = await make_tenant(stack, channel, "pii-ids-b")
    seen = []
    for t in (a, b):
        for user in ("customer-42", EMAIL):
            made = await stub(channel).CreateInteraction(
                interaction(user_id=user), metadata=md(t.ingest)
            )
            seen.append(made.interaction.user_id)
    plain_a, pseudo_a, plain_b, pseudo_b = seen
    assert plain_a == plain_b == "customer-42"
    # The same address in two tenants: two unrelated pseudonyms (no cross-tenant join).
    assert pseudo_a.startswith("pii_") and pseudo_b.startswith("pii_") and pseudo_a != pseudo_b
