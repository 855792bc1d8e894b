"""Preference datasets from real telemetry: events written through the real server (the
embedded stack), read back from Postgres tenant-scoped, built into a content-addressed
Parquet version in the stack's object store."""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import grpc
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from rlaas.options.v1 import options_pb2
from rlaas.telemetry.v1 import telemetry_pb2 as pb
from rlaas.telemetry.v1 import telemetry_pb2_grpc
from services.db.engine import create_engine
from services.errors import FailedPrecondition
from services.objects.store import LocalObjectStore
from services.rewards.engines import reward_config_for
from services.training.evaluation import load_golden_set
from services.training.preferences import (
    EDIT,
    NOT_ENOUGH_PAIRS,
    REWARD_RANKED,
    BuildOptions,
    build_dataset_from_db,
    content_sha256,
    load_interactions,
    read_parquet,
)
from tests.conftest import RunningStack
from tests.helpers import md, new_tenant, scoped_key

pytestmark = pytest.mark.integration

SKILL = "support_email"
_WORD_TEXT = (
    "parcel refund blender jacket invoice courier warranty discount address tracking cancel "
    "exchange broken missing late charge twice colour size voucher gift wrap saturday express "
    "insurance subscription pause review receipt bulk office shelf"
)
WORDS = _WORD_TEXT.split()


def rid() -> str:
    return str(uuid.uuid4())


async def ingest_key(stack: RunningStack, channel: grpc.aio.Channel, name: str) -> tuple[str, str]:
    tenant_id, admin = await new_tenant(channel, stack.admin_key, name)
    return tenant_id, await scoped_key(channel, admin, options_pb2.SCOPE_INGEST)


async def create(
    channel: grpc.aio.Channel,
    key: str,
    text: str,
    answers: list[str],
    *,
    thread: str,
    skill: str = SKILL,
    opt_out: bool = False,
) -> tuple[str, list[str]]:
    s = telemetry_pb2_grpc.TelemetryServiceStub(channel)
    created = await s.CreateInteraction(
        pb.CreateInteractionRequest(
            interaction=pb.Interaction(
                skill=skill,
                thread_id=thread,
                training_opt_out=opt_out,
                input=pb.InteractionInput(text=text),
            ),
            output=pb.Output(text=answers[0]),
            request_id=rid(),
        ),
        metadata=md(key),
    )
    iid = created.interaction.interaction_id
    output_ids = [created.output.output_id]
    for k, answer in enumerate(answers[1:], start=1):
        more = await s.RecordOutput(
            pb.RecordOutputRequest(
                interaction_id=iid,
                output=pb.Output(text=answer, candidate_index=k),
                request_id=rid(),
            ),
            metadata=md(key),
        )
        output_ids.append(more.output.output_id)
    return iid, output_ids


async def submit(
    channel: grpc.aio.Channel, key: str, iid: str, output_id: str = "", **kw: object
) -> None:
    explicit = {k: kw.pop(k) for k in ("thumb", "rating") if k in kw}
    await telemetry_pb2_grpc.TelemetryServiceStub(channel).SubmitFeedback(
        pb.SubmitFeedbackRequest(
            interaction_id=iid,
            feedback=pb.Feedback(
                output_id=output_id,
                explicit=pb.ExplicitFeedback(**explicit),
                implicit=pb.ImplicitFeedback(**kw),
            ),
            request_id=rid(),
        ),
        metadata=md(key),
    )


async def insert_shadow(stack: RunningStack, tenant_id: str, text: str) -> str:
    """A shadow run as the gateway stores it (clients cannot set ``source``)."""
    iid = f"shadow-{uuid.uuid4().hex[:12]}"
    interaction = pb.Interaction(
        interaction_id=iid, tenant_id=tenant_id, skill=SKILL, thread_id="shadow-thread",
        input=pb.InteractionInput(text=text), source=pb.INTERACTION_SOURCE_SHADOW,
    )  # fmt: skip
    output = pb.Output(output_id=f"{iid}-o", interaction_id=iid, text="Shadow answer.")
    conn = await asyncpg.connect(stack.database_url)
    try:
        now = datetime.now(UTC)
        for event_type, event_id, payload, source in (
            (pb.EVENT_TYPE_INTERACTION, iid, interaction, pb.INTERACTION_SOURCE_SHADOW),
            (pb.EVENT_TYPE_OUTPUT, output.output_id, output, None),
        ):
            await conn.execute(
                "INSERT INTO telemetry_events (tenant_id, event_type, event_id, interaction_id, "
                "request_id, fingerprint, payload, event_time, skill, thread_id, source) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                tenant_id, event_type, event_id, iid, f"gw-{event_id}", b"x",
                payload.SerializeToString(), now,
                SKILL if source else None, "shadow-thread" if source else None, source,
            )  # fmt: skip
    finally:
        await conn.close()
    return iid


@pytest.fixture(scope="module")
async def engine(stack: RunningStack) -> AsyncIterator[AsyncEngine]:
    e = create_engine(stack.database_url, pool_size=2)
    yield e
    await e.dispose()


async def test_build_a_dataset_from_postgres(
    stack: RunningStack, channel: grpc.aio.Channel, engine: AsyncEngine
) -> None:
    start = datetime.now(UTC) - timedelta(seconds=5)
    tenant, key = await ingest_key(stack, channel, "prefs-a")
    other_tenant, other_key = await ingest_key(stack, channel, "prefs-b")
    rng = random.Random(42)

    edited: set[str] = set()
    for k in range(14):
        words = rng.sample(WORDS, 7)
        iid, [out] = await create(
            channel, key, f"{' '.join(words)} for order NW-{2000 + k}?",
            ["Thanks for your message."], thread=f"thread-{k // 2}",
        )  # fmt: skip
        await submit(
            channel, key, iid, out,
            edited_text=f"Hi, order NW-{2000 + k}: {' '.join(rng.sample(WORDS, 9))}. Best regards",
            sent=True, time_to_send_ms=20_000,
        )  # fmt: skip
        edited.add(iid)
    # Two candidates for one prompt, rated differently: a reward-ranked pair.
    ranked, (good, bad) = await create(
        channel, key, "Can I pause my coffee subscription for two months?",
        ["Hi, done: paused for two months.", "No."], thread="thread-ranked",
    )  # fmt: skip
    await submit(channel, key, ranked, good, thumb=pb.ExplicitFeedback.THUMB_UP, sent=True)
    await submit(channel, key, ranked, bad, thumb=pb.ExplicitFeedback.THUMB_DOWN, sent=False)
    # Left out: an opt-out, another skill, a shadow run, another tenant, and a prompt
    # from the eval set (decontamination).
    opted, [o1] = await create(channel, key, "Opted out prompt", ["x"], thread="t", opt_out=True)
    await submit(channel, key, opted, o1, edited_text="An opted-out edit that is long.")
    triage, [o2] = await create(channel, key, "Triage me", ["x"], thread="t", skill="triage")
    await submit(channel, key, triage, o2, edited_text="A triage edit that is long enough.")
    shadow = await insert_shadow(stack, tenant, "A shadow prompt")
    await submit(channel, key, shadow, f"{shadow}-o", edited_text="An edit of a shadow answer.")
    foreign, [o3] = await create(channel, other_key, "Other tenant prompt", ["x"], thread="t")
    await submit(channel, other_key, foreign, o3, edited_text="Another tenant's long edit.")
    golden = load_golden_set()
    leaked, [o4] = await create(channel, key, golden[0].prompt, ["Soon."], thread="thread-gold")
    await submit(channel, key, leaked, o4, edited_text=golden[0].reference)

    views = await load_interactions(engine, tenant, SKILL, start_time=start)
    ids = {v.interaction.interaction_id for v in views}
    assert ids == edited | {ranked, leaked}
    by_id = {v.interaction.interaction_id: v for v in views}
    assert len(by_id[ranked].outputs) == 2 and len(by_id[ranked].feedback) == 2
    assert all(len(by_id[i].feedback) == 1 for i in edited)
    assert await load_interactions(engine, tenant, SKILL, end_time=start) == []

    store = LocalObjectStore(stack.settings.objects_dir)
    config = reward_config_for(SKILL)
    options = BuildOptions(min_pairs=10, eval_fraction=0.2, seed=5)
    version = await build_dataset_from_db(
        engine, store, tenant, SKILL, config, options,
        start_time=start, eval_prompts=[g.prompt for g in golden],
    )  # fmt: skip
    assert version.key == f"datasets/{tenant}/{SKILL}/{version.content_sha256}.parquet"
    assert await store.exists(version.key)
    rows = read_parquet(await store.get(version.key))
    assert content_sha256(rows) == version.content_sha256
    assert version.pair_count == len(rows) == 15
    assert version.report.pair_counts_by_source == {EDIT: 14, REWARD_RANKED: 1}
    assert version.report.dropped_contaminated == 1
    assert {i for r in rows for i in r["interaction_ids"]} == edited | {ranked}
    ranked_row = next(r for r in rows if r["source"] == REWARD_RANKED)
    assert (ranked_row["chosen"], ranked_row["rejected"]) == (
        "Hi, done: paused for two months.",
        "No.",
    )
    assert ranked_row["chosen_output_id"] == good and ranked_row["margin"] == 1.0
    assert all(r["reward_config_version"] == config.version for r in rows)
    splits: dict[str, set[str]] = {}
    for r in rows:
        splits.setdefault(r["thread_id"], set()).add(r["split"])
    assert all(len(s) == 1 for s in splits.values())
    assert {r["split"] for r in rows} == {"train", "eval"}

    # Same telemetry, same dataset: the same content address.
    again = await build_dataset_from_db(
        engine, store, tenant, SKILL, config, options,
        start_time=start, eval_prompts=[g.prompt for g in golden],
    )  # fmt: skip
    assert again.content_sha256 == version.content_sha256
    # The other tenant has one pair only: below the threshold, a clear error.
    with pytest.raises(FailedPrecondition) as err:
        await build_dataset_from_db(engine, store, other_tenant, SKILL, config, options)
    assert err.value.reason == NOT_ENOUGH_PAIRS and err.value.metadata["pairs"] == "1"
