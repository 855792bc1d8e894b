"""The preference builder's embedding checks, with the real all-MiniLM-L6-v2: paraphrased
duplicates that rapidfuzz keeps are removed, a reworded golden prompt is decontaminated,
and different tickets (of one type, from one template, or with no numbers) are kept."""

from __future__ import annotations

import re

import pytest

from services.errors import InvalidArgument
from services.retrieval.embedding import default_embedder
from services.training.evaluation import load_golden_set
from services.training.preferences import (
    BuildOptions,
    PreferencePair,
    build_dataset,
    build_pairs,
    decontaminate,
    dedup_pairs,
    embedding_decontaminate,
    embedding_dedup,
)
from simulation.workload import training_stream
from tests.unit.test_preferences import CONFIG, LOOSE, edited, many_edits

pytestmark = pytest.mark.unit

# One ticket written twice (a customer re-sending it in other words) and answered twice
# in other words: the same training example. Numbers (the order id, the 5 days) agree.
PARAPHRASES = [
    (
        "I was charged twice for order NW-5120, please refund one of the payments.",
        "Hi, I have refunded the duplicate payment for NW-5120; it shows within 5 days. "
        "Best regards",
    ),
    (
        "There are two payments for order NW-5120 on my card; please give me one back.",
        "Hello, the second charge on NW-5120 has been refunded and will appear within 5 days. "
        "Kind regards",
    ),
]
# Different tickets of one type without numbers: other products, other answers.
DISTINCT = [
    (
        "The blender I received is broken, the box was crushed.",
        "Sorry! A new blender ships today; no need to return the broken one.",
    ),
    (
        "The kettle I received is broken, the box was crushed.",
        "Sorry! A new kettle ships today; no need to return the broken one.",
    ),
    ("Can I return the rain jacket? It is too small.", "Yes: start a return within 30 days."),
    ("Can I return the backpack? It is the wrong colour.", "Yes: start a return within 30 days."),
]


def pairs_of(items: list[tuple[str, str]]) -> list[PreferencePair]:
    views = [edited(prompt, "Thanks for your message.", chosen) for prompt, chosen in items]
    pairs, _ = build_pairs(views, CONFIG, LOOSE)
    assert len(pairs) == len(items)
    return pairs


def test_paraphrased_duplicates_are_removed_where_rapidfuzz_keeps_them() -> None:
    pairs = pairs_of(PARAPHRASES + DISTINCT)
    lexical, exact, near = dedup_pairs(pairs)
    assert (len(lexical), exact, near) == (6, 0, 0)  # rapidfuzz ratio of these: 53-71
    kept, dropped = embedding_dedup(lexical, default_embedder())
    assert dropped == 1 and len(kept) == 5
    assert sum("NW-5120" in p.prompt for p in kept) == 1
    assert {p.prompt for p in kept} >= {prompt for prompt, _ in DISTINCT}
    assert embedding_dedup(lexical, default_embedder(), threshold=1.0) == (
        sorted(lexical, key=lambda p: (-p.margin, p.pair_id)),
        0,
    )


def test_template_tickets_of_different_customers_are_kept() -> None:
    # The demo's workload: one template per issue, so two customers' emails about the
    # same product score ~0.98 by embedding; their order numbers tell them apart.
    emails = training_stream(60)
    items = [(e.text, f"Hi {e.first_name}, about order {e.order_number}: on it.") for e in emails]
    pairs = pairs_of(items)
    kept, dropped = embedding_dedup(pairs, default_embedder())
    assert dropped == 0 and len(kept) == 60
    # The same emails with their numbers taken out are near duplicates: the guard matters.
    bare = pairs_of(
        [(re.sub(r"\d", "", text), re.sub(r"\d", "", chosen)) for text, chosen in items]
    )
    assert embedding_dedup(bare, default_embedder())[1] > 0


def test_a_reworded_golden_prompt_is_decontaminated() -> None:
    golden = [g.prompt for g in load_golden_set()]
    assert golden[0].startswith("From: Maria Lopez\nSubject: Order NW-10231")
    reworded = (
        "From: Maria Lopez\nSubject: Order NW-10231\n\nMy blender was ordered nine days ago "
        "and the tracking hasn't updated since Monday. Where is it?\n\nMaria"
    )
    pairs = pairs_of([(reworded, "Hi Maria, it arrives tomorrow."), *DISTINCT])
    lexical, dropped = decontaminate(pairs, golden)
    assert dropped == 0  # rapidfuzz ratio below 90, no verbatim quote
    kept, dropped = embedding_decontaminate(lexical, golden, default_embedder())
    assert dropped == 1 and all("NW-10231" not in p.prompt for p in kept)
    # Other customers' emails about the same issues (the demo's training stream) are not
    # eval prompts: none of 120 is dropped.
    stream = pairs_of([(e.text, f"Hi {e.first_name}, on it.") for e in training_stream(120)])
    assert embedding_decontaminate(stream, golden, default_embedder())[1] == 0


def test_build_reports_each_reason() -> None:
    golden = [g.prompt for g in load_golden_set()]
    assert golden[11].startswith("From: Ethan Nguyen\nSubject: Order NW-12118")
    reworded = (
        "From: Ethan Nguyen\nSubject: Order NW-12118\n\nAfter just two weeks the coffee "
        "grinder has stopped working. Does the warranty cover it?\n\nEthan"
    )
    views = many_edits(12) + [
        edited(prompt, "Thanks for your message.", chosen) for prompt, chosen in PARAPHRASES
    ]
    views.append(edited(reworded, "Soon.", "Hi Ethan, yes: send it to us for repair."))
    views.append(edited(golden[1], "Soon.", "Hi James, a new mug set is on its way."))
    build = build_dataset(views, CONFIG, BuildOptions(min_pairs=0), eval_prompts=golden)
    report = build.report
    assert report.dropped_near_duplicates == 0 and report.dropped_embedding_duplicates == 1
    assert report.dropped_contaminated == 1  # golden[1] verbatim
    assert report.dropped_embedding_contaminated == 1  # the reworded golden[11]
    assert len(build.pairs) == 12 + 1
    off = BuildOptions(
        min_pairs=0, embedding_duplicate_threshold=1, embedding_decontamination_threshold=1
    )
    assert len(build_dataset(views, CONFIG, off, eval_prompts=golden).pairs) == 12 + 2 + 1


def test_thresholds_are_checked() -> None:
    with pytest.raises(InvalidArgument) as err:
        BuildOptions(embedding_duplicate_threshold=0)
    assert err.value.violations[0].field.endswith("embedding_duplicate_threshold")
    with pytest.raises(InvalidArgument):
        BuildOptions(embedding_decontamination_threshold=1.5)
