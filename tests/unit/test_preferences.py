"""The preference builder: pair sources, provenance, dedup, decontamination, the split by
thread, the minimum-pairs check, content addressing, Parquet and the exporters."""

from __future__ import annotations

import itertools
import json
import random
from pathlib import Path
from typing import Any

import pytest

from rlaas.telemetry.v1 import telemetry_pb2 as tel
from services.errors import FailedPrecondition, InvalidArgument
from services.objects.store import LocalObjectStore
from services.rewards.engines import RewardConfig
from services.telemetry.core import InteractionView
from services.training.preferences import (
    CORRECTION,
    EDIT,
    NOT_ENOUGH_PAIRS,
    REWARD_RANKED,
    BuildOptions,
    PreferencePair,
    anthropic_prompt,
    build_dataset,
    build_pairs,
    content_sha256,
    decontaminate,
    dedup_pairs,
    export_anthropic_jsonl,
    export_dpo_jsonl,
    export_openai_preference_jsonl,
    pair_row,
    read_parquet,
    row_pair,
    split_pairs,
    to_parquet,
    write_dataset,
)

pytestmark = pytest.mark.unit

UP, DOWN = tel.ExplicitFeedback.THUMB_UP, tel.ExplicitFeedback.THUMB_DOWN
_ids = itertools.count(1)
_clock = itertools.count(1_700_000_000)
CONFIG = RewardConfig(skill="support_email")
LOOSE = BuildOptions(min_pairs=0, eval_fraction=0.0)


def interaction(
    prompt: str,
    outputs: list[str],
    *,
    thread: str = "",
    opt_out: bool = False,
    source: int = tel.INTERACTION_SOURCE_CLIENT,
    system: str = "",
) -> InteractionView:
    iid = f"i{next(_ids)}"
    messages = [tel.ChatMessage(role=tel.ChatMessage.ROLE_SYSTEM, content=system)] if system else []
    it = tel.Interaction(
        interaction_id=iid,
        skill="support_email",
        thread_id=thread,
        training_opt_out=opt_out,
        source=source,
        input=tel.InteractionInput(text=prompt, messages=messages),
    )
    outs = [
        tel.Output(output_id=f"{iid}-o{k}", interaction_id=iid, text=t, candidate_index=k)
        for k, t in enumerate(outputs)
    ]
    return InteractionView(it, outs)


def feedback(view: InteractionView, output: int | None = None, **kw: Any) -> InteractionView:
    explicit = {k: kw.pop(k) for k in ("thumb", "rating", "preferred_text") if k in kw}
    message = tel.Feedback(
        output_id="" if output is None else view.outputs[output].output_id,
        explicit=tel.ExplicitFeedback(**explicit),
        implicit=tel.ImplicitFeedback(**kw),
    )
    message.create_time.seconds = next(_clock)
    view.feedback.append(message)
    return view


def edited(prompt: str, output: str, edit: str, thread: str = "", **kw: Any) -> InteractionView:
    return feedback(interaction(prompt, [output], thread=thread, **kw), edited_text=edit, sent=True)


def many_edits(n: int, *, offset: int = 0) -> list[InteractionView]:
    """n distinct prompts, each edited, in n // 2 threads of two interactions."""
    views = []
    for k in range(offset, offset + n):
        rng = random.Random(k)
        views.append(
            edited(
                " ".join(rng.sample(WORDS, 8)) + f" (order NW-{1000 + k})?",
                "Your order is on its way.",
                "Hi, " + " ".join(rng.sample(WORDS, 10)) + ". Best regards",
                thread=f"t{k // 2}",
            )
        )
    return views


_WORD_TEXT = (
    "parcel refund blender jacket invoice courier warranty discount address tracking cancel "
    "exchange broken missing late charge twice colour size voucher gift wrap saturday express "
    "insurance subscription pause review receipt bulk office shelf instructions callback price "
    "promise hold neighbour battery speaker vase coffee"
)
WORDS = _WORD_TEXT.split()


# ---- pair sources -------------------------------------------------------------------------


def test_edit_pair_with_provenance() -> None:
    v = edited("Where is my order NW-1?", "It ships soon.", "Hi Maria, order NW-1 ships today.")
    feedback(v, thumb=DOWN)
    pairs, _ = build_pairs([v], CONFIG, LOOSE)
    [pair] = pairs
    assert pair.source == EDIT
    assert (pair.prompt, pair.chosen, pair.rejected) == (
        "Where is my order NW-1?",
        "Hi Maria, order NW-1 ships today.",
        "It ships soon.",
    )
    assert pair.interaction_ids == (v.interaction.interaction_id,)
    assert pair.rejected_output_id == v.outputs[0].output_id
    assert pair.reward_config_version == CONFIG.version
    assert pair.margin == pytest.approx(1 - pair.signals["edit_similarity"])
    assert pair.signals["rejected.thumb"] == 0.0 and pair.signals["rejected.sent"] == 1.0
    assert pair.rejected_reward is not None


def test_correction_and_trivial_edits() -> None:
    v = interaction("Refund please", ["No."])
    feedback(v, preferred_text="Hi, your refund is on its way.")
    whitespace_only = edited("Hello", "Thanks  for writing.", "Thanks for writing.\n")
    pairs, _ = build_pairs([v, whitespace_only], CONFIG, LOOSE)
    assert [(p.source, p.chosen) for p in pairs] == [(CORRECTION, "Hi, your refund is on its way.")]


def test_reward_ranked_pairs_within_and_across_interactions() -> None:
    both = interaction("Cancel my order", ["Cancelled, Tom.", "Why?"], thread="a")
    feedback(both, 0, thumb=UP)
    feedback(both, 1, thumb=DOWN)
    # The same prompt in two other threads, rated 4/5 and 2/5.
    x = feedback(interaction("Track my parcel", ["It is in Leeds."], thread="b"), rating=4)
    y = feedback(interaction("track my  parcel", ["Dunno."], thread="c"), rating=2)
    pairs, _ = build_pairs([both, x, y], CONFIG, BuildOptions(min_pairs=0, min_reward_margin=0.3))
    ranked = {p.chosen: p for p in pairs if p.source == REWARD_RANKED}
    assert set(ranked) == {"Cancelled, Tom.", "It is in Leeds."}
    assert ranked["Cancelled, Tom."].rejected == "Why?"
    assert ranked["Cancelled, Tom."].margin == 1.0
    across = ranked["It is in Leeds."]
    assert across.rejected == "Dunno." and across.margin == pytest.approx(0.5)
    assert set(across.thread_ids) == {"b", "c"}
    assert (across.chosen_reward, across.rejected_reward) == (0.75, 0.25)
    assert across.signals == {"chosen.rating": 0.75, "rejected.rating": 0.25}
    # Below the margin: no pair.
    pairs, _ = build_pairs([x, y], CONFIG, BuildOptions(min_pairs=0, min_reward_margin=0.6))
    assert pairs == []


def test_opt_out_shadow_and_policy_filters() -> None:
    kept = edited("Prompt A", "Answer", "Better answer here")
    opted = edited("Prompt B", "Answer", "Better answer here", opt_out=True)
    shadow = edited("Prompt C", "Answer", "Better answer", source=tel.INTERACTION_SOURCE_SHADOW)
    pairs, report = build_pairs([kept, opted, shadow], CONFIG, LOOSE)
    assert [p.prompt for p in pairs] == ["Prompt A"]
    assert report.skipped_interaction_count == 2
    kept.outputs[0].policy_id = "support_email@v1"
    only_v2 = BuildOptions(min_pairs=0, policy_ids=("support_email@v2",))
    assert build_pairs([kept], CONFIG, only_v2)[0] == []
    assert (
        build_pairs([kept], CONFIG, BuildOptions(min_pairs=0, pair_sources=(CORRECTION,)))[0] == []
    )


# ---- dedup and decontamination -------------------------------------------------------------


def test_exact_and_near_duplicates() -> None:
    a = edited("Where is order 7?", "Soon.", "Hi Ana, order 7 arrives Monday. Best regards")
    b = edited("Where is order 7?", "Soon.", "Hi Ana, order 7 arrives Monday. Best regards")
    c = edited("Where is order 7?", "Soon.", "Hi Ana, order 7 arrives Monday! Best regards")
    d = edited("Can I return shoes?", "No.", "Yes, returns are free within 30 days.")
    pairs, _ = build_pairs([a, b, c, d], CONFIG, LOOSE)
    assert len(pairs) == 4
    kept, exact, near = dedup_pairs(pairs, near_duplicate_threshold=95)
    assert (len(kept), exact, near) == (2, 1, 1)
    kept, exact, near = dedup_pairs(pairs, near_duplicate_threshold=100)
    assert (len(kept), exact, near) == (3, 1, 0)


def test_decontamination_against_eval_prompts() -> None:
    pairs, _ = build_pairs(
        [
            edited("Where is my order NW-10231? The blender is late.", "Soon", "Hi, tomorrow."),
            edited("I want to return the jacket, it's too small.", "Ok", "Hi, label sent."),
            edited("Do you sell gift cards?", "No", "Yes, from 10 to 200 euros."),
        ],
        CONFIG,
        LOOSE,
    )
    eval_prompts = [
        "Where is my order NW-10231? The blender is late!",  # near-identical
        "From: Sofia\n\nI want to return the jacket, it's too small. How do I do that?",
    ]
    kept, dropped = decontaminate(pairs, eval_prompts, threshold=90)
    # The blender prompt is near-identical; the jacket prompt is quoted whole inside an
    # eval prompt (their ratio alone is below 90).
    assert dropped == 2
    assert [p.prompt for p in kept] == ["Do you sell gift cards?"]
    assert decontaminate(pairs, eval_prompts, threshold=90, min_substring_chars=1000)[1] == 1
    kept, dropped = decontaminate(pairs, ["I want to return the jacket, it's too small."])
    assert dropped == 1 and all("jacket" not in p.prompt for p in kept)
    # A long eval prompt quoted verbatim inside a training prompt is contamination too.
    quoted = edited("Please answer: Do you sell gift cards? Thanks a lot, Bob", "No", "Yes.")
    pairs2, _ = build_pairs([quoted], CONFIG, LOOSE)
    assert decontaminate(pairs2, ["please answer: do you sell gift cards?"])[1] == 1


# ---- split --------------------------------------------------------------------------------


def test_split_keeps_threads_and_prompts_whole() -> None:
    views = many_edits(60)
    # One prompt repeated in two different threads: they must land together.
    views.append(
        edited(views[3].interaction.input.text, "Other answer.", "A rewrite.", thread="lonely")
    )
    pairs, _ = build_pairs(views, CONFIG, LOOSE)
    split = split_pairs(pairs, eval_fraction=0.3, seed=7)
    by_thread: dict[str, set[str]] = {}
    by_prompt: dict[str, set[str]] = {}
    for p in split:
        by_thread.setdefault(p.thread_id, set()).add(p.split)
        by_prompt.setdefault(p.prompt.casefold(), set()).add(p.split)
    assert all(len(s) == 1 for s in by_thread.values())
    assert all(len(s) == 1 for s in by_prompt.values())
    lonely = next(p for p in split if p.thread_id == "lonely")
    assert lonely.split == next(p for p in split if p.thread_id == "t1").split
    n_eval = sum(p.split == "eval" for p in split)
    assert 0 < n_eval < len(split)
    # Deterministic, seed-dependent, and stable as data grows.
    assert split == split_pairs(pairs, eval_fraction=0.3, seed=7)
    assert [p.split for p in split] != [p.split for p in split_pairs(pairs, eval_fraction=0.3)]
    more, _ = build_pairs(many_edits(40, offset=100), CONFIG, LOOSE)
    grown = {p.pair_id: p.split for p in split_pairs([*pairs, *more], eval_fraction=0.3, seed=7)}
    assert all(grown[p.pair_id] == p.split for p in split)


def test_small_datasets_still_get_an_eval_split() -> None:
    pairs, _ = build_pairs(many_edits(4), CONFIG, LOOSE)
    for seed in range(20):
        split = split_pairs(pairs, eval_fraction=0.01, seed=seed)
        assert {p.split for p in split} == {"train", "eval"}
    assert {p.split for p in split_pairs(pairs, eval_fraction=0.0)} == {"train"}


# ---- the whole build ------------------------------------------------------------------------


def test_build_dataset_report_and_min_pairs() -> None:
    views = many_edits(30)
    views.append(edited("x", "a", "b", opt_out=True))
    build = build_dataset(
        views, CONFIG, BuildOptions(min_pairs=10, eval_fraction=0.2, seed=1), skill="support_email"
    )
    r = build.report
    assert len(build.pairs) == 30 == r.train_pair_count + r.eval_pair_count
    assert r.interaction_count == 30 and r.skipped_interaction_count == 1
    assert r.pair_counts_by_source == {EDIT: 30}
    assert r.mean_reward_margin == pytest.approx(sum(p.margin for p in build.pairs) / 30)
    assert [p.pair_id for p in build.pairs] == sorted(p.pair_id for p in build.pairs)

    with pytest.raises(FailedPrecondition) as err:
        build_dataset(views, CONFIG, BuildOptions(min_pairs=31), skill="support_email")
    assert err.value.reason == NOT_ENOUGH_PAIRS
    assert err.value.metadata == {"skill": "support_email", "pairs": "30", "min_pairs": "31"}
    assert "30 preference pairs" in err.value.message

    capped = build_dataset(views, CONFIG, BuildOptions(min_pairs=0, max_pairs=5))
    assert len(capped.pairs) == 5 and capped.report.dropped_over_max == 25
    top = sorted((p.margin for p in build.pairs), reverse=True)[:5]
    assert sorted(p.margin for p in capped.pairs) == sorted(top)


def test_bad_build_options_name_the_field() -> None:
    with pytest.raises(InvalidArgument) as err:
        BuildOptions(eval_fraction=0.7)
    assert err.value.violations[0].field == "preference_dataset.build_config.eval_fraction"
    with pytest.raises(InvalidArgument):
        BuildOptions(pair_sources=())


# ---- content addressing and Parquet ----------------------------------------------------------


def test_same_rows_same_sha_different_rows_different_sha() -> None:
    build = build_dataset(many_edits(20), CONFIG, BuildOptions(min_pairs=0, seed=3))
    rows = build.rows
    shuffled = rows[:]
    random.Random(0).shuffle(shuffled)
    assert content_sha256(rows) == content_sha256(shuffled) == build.content_sha256
    again = build_dataset(many_edits(20), CONFIG, BuildOptions(min_pairs=0, seed=3))
    # New interaction ids in the provenance: different content, different hash.
    assert again.content_sha256 != build.content_sha256
    changed = [dict(r) for r in rows]
    changed[0]["chosen"] += "!"
    assert content_sha256(changed) != content_sha256(rows)
    resplit = [dict(r) for r in rows]
    resplit[0]["split"] = "eval" if resplit[0]["split"] == "train" else "train"
    assert content_sha256(resplit) != content_sha256(rows)
    other_config = build_dataset(
        [], RewardConfig(thumb_weight=2), BuildOptions(min_pairs=0)
    ).reward_config_version
    assert other_config != build.reward_config_version


def test_parquet_round_trip(tmp_path: Path) -> None:
    build = build_dataset(many_edits(12), CONFIG, BuildOptions(min_pairs=0))
    data = to_parquet(build.rows)
    back = read_parquet(data)
    assert back == sorted(build.rows, key=lambda r: r["pair_id"])
    assert content_sha256(back) == build.content_sha256
    assert [row_pair(r) for r in back] == list(build.pairs)
    assert to_parquet(list(reversed(build.rows))) == data  # canonical order


def test_the_trainer_reads_the_train_split_as_served_conversations() -> None:
    """The trainer must never see eval-split pairs, and must get the conversation as
    the backend served it (system + user messages), not the flattened prompt text."""
    from services.training.artifacts import read_preference_parquet
    from services.training.trainer import edit_similarity, preference_rows

    build = build_dataset(many_edits(40), CONFIG, BuildOptions(min_pairs=0, eval_fraction=0.25))
    train = [r for r in build.rows if r["split"] == "train"]
    assert 0 < len(train) < len(build.rows)
    rows = read_preference_parquet(to_parquet(build.rows))
    assert sorted(r["chosen"] for r in rows) == sorted(r["chosen"] for r in train)
    by_chosen = {r["chosen"]: r for r in train}
    for row in rows:
        served = json.loads(by_chosen[row["chosen"]]["prompt_messages"])
        assert row["prompt"] == [{"role": role, "content": text} for role, text in served]
    assert {"prompt", "chosen", "rejected", "source"} == set(rows[0])
    preference_rows(rows, chat=True)  # the trainer accepts them as they are
    # The pair's source reaches the trainer: its warm-start rule reads the edit pairs.
    assert {r["source"] for r in rows} == {"PAIR_SOURCE_EDIT"}
    assert edit_similarity(rows) is not None
    evals = read_preference_parquet(to_parquet(build.rows), split="eval")
    assert len(evals) == len(build.rows) - len(train)


async def test_write_dataset_is_content_addressed(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path / "objects")
    build = build_dataset(many_edits(12), CONFIG, BuildOptions(min_pairs=0))
    version = await write_dataset(store, "tenant-1", "support_email", build)
    assert version.key == f"datasets/tenant-1/support_email/{build.content_sha256}.parquet"
    assert version.uri.startswith("file://") and version.pair_count == 12
    assert read_parquet(await store.get(version.key)) == read_parquet(to_parquet(build.rows))
    again = await write_dataset(store, "tenant-1", "support_email", build)
    assert again.key == version.key
    assert await store.list("datasets/") == [version.key]


# ---- exports ------------------------------------------------------------------------------


def _lines(data: bytes) -> list[dict[str, object]]:
    return [json.loads(line) for line in data.decode().splitlines()]


def test_exports_parse_back() -> None:
    views = many_edits(6)
    views.append(
        edited("Where is order 9?", "Soon.", "Hi, Monday.", system="Be brief.", thread="sys")
    )
    build = build_dataset(views, CONFIG, BuildOptions(min_pairs=0, eval_fraction=0.3, seed=2))
    pairs = list(build.pairs)

    dpo = _lines(export_dpo_jsonl(pairs))
    assert dpo == [{"prompt": p.prompt, "chosen": p.chosen, "rejected": p.rejected} for p in pairs]
    train_only = _lines(export_dpo_jsonl(pairs, split="train"))
    assert len(train_only) == build.report.train_pair_count

    openai = _lines(export_openai_preference_jsonl(pairs))
    for line, p in zip(openai, pairs, strict=True):
        assert set(line) == {"input", "preferred_output", "non_preferred_output"}
        assert line["preferred_output"] == [{"role": "assistant", "content": p.chosen}]
        assert line["non_preferred_output"] == [{"role": "assistant", "content": p.rejected}]
        messages = line["input"]["messages"]  # type: ignore[index]
        assert messages[-1] == {"role": "user", "content": p.prompt_messages[-1][1]}
    with_system = next(x for x in openai if x["input"]["messages"][0]["role"] == "system")  # type: ignore[index]
    assert with_system["input"]["messages"][0]["content"] == "Be brief."  # type: ignore[index]

    anthropic = _lines(export_anthropic_jsonl(pairs))
    for line, p in zip(anthropic, pairs, strict=True):
        prompt = str(line["prompt"])
        assert prompt.startswith(("\n\nHuman: ", "Be brief.\n\nHuman: "))
        assert prompt.endswith("\n\nAssistant:")
        assert prompt + str(line["chosen"]) == f"{anthropic_prompt(p)} {p.chosen}"
        assert line["rejected"] == " " + p.rejected
    # Deterministic bytes.
    assert export_dpo_jsonl(reversed(pairs)) == export_dpo_jsonl(pairs)


def test_pair_row_keeps_the_proto_parquet_columns() -> None:
    pair = PreferencePair(
        prompt="p", chosen="c", rejected="r", source=EDIT, margin=0.5, thread_id="t",
        interaction_ids=("i1",), split="train",
    )  # fmt: skip
    row = pair_row(pair)
    for column in ("prompt", "chosen", "rejected", "margin", "split", "source", "interaction_id"):
        assert column in row
    assert row["interaction_id"] == "i1"
