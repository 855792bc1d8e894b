"""The gate's guards against what a preference loss exploits (degenerate repetition),
its estimate on the iteration's own pairs, and the edit-direction scorer."""

from __future__ import annotations

import pytest

from services.training.evaluation import (
    HELD_OUT_PREFERENCE_SCORER,
    Generate,
    GoldenExample,
    PromotionRubric,
    edit_direction,
    evaluate_candidate,
    repeats_itself,
    with_held_out_estimate,
)

pytestmark = pytest.mark.unit

LOOP = "thank you for your order thank you for your order " * 4
FLUENT = (
    "Hi Ana, your parcel left our depot this morning and should reach you on Friday. "
    "The tracking link in your account shows each step. Best regards, Acme Support"
)


def test_repetition_is_a_loop_of_phrases_not_a_repeated_word() -> None:
    assert repeats_itself(LOOP)
    assert not repeats_itself(FLUENT)
    assert not repeats_itself("yes yes yes")  # too short to judge
    assert not repeats_itself("the order, the parcel, the refund and the invoice " * 1)


def _answers(text: str) -> Generate:
    async def generate(messages: list[dict[str, str]]) -> str:
        return text

    return generate


GOLDEN = [GoldenExample(f"g{i}", f"where is parcel {i}", FLUENT) for i in range(8)]


async def test_a_candidate_stuck_in_loops_fails_even_when_it_wins_elsewhere() -> None:
    # Scored by similarity to references that are themselves loops, the looping
    # candidate "wins" every prompt; the repetition guard still rejects it.
    refs = [GoldenExample(g.example_id, g.prompt, LOOP) for g in GOLDEN]
    report = await evaluate_candidate(
        _answers(LOOP), _answers(FLUENT), refs,
        rubric=PromotionRubric(require_ci_above_half=False, max_p_value=1.0), n_resamples=99,
    )  # fmt: skip
    assert report.win_rate == 1.0 and not report.passed
    assert any("repeat themselves" in r for r in report.failure_reasons)
    repetitive = {m.name: (m.candidate_value, m.baseline_value) for m in report.metrics}[
        "repetitive_answers"
    ]
    assert repetitive == (1.0, 0.0)


async def test_the_held_out_estimate_is_reported_beside_the_deciding_win_rate() -> None:
    rubric = PromotionRubric(require_ci_above_half=False, max_p_value=1.0)
    won = await evaluate_candidate(_answers(FLUENT), _answers("no"), GOLDEN, rubric=rubric,
                                   n_resamples=99)  # fmt: skip
    worse = await evaluate_candidate(_answers("no"), _answers(FLUENT), GOLDEN, rubric=rubric,
                                     n_resamples=99)  # fmt: skip
    both = with_held_out_estimate(won, worse)
    assert both.passed and both.win_rate == won.win_rate  # it does not decide
    assert [w.scorer for w in both.win_rates] == ["reference_similarity", "iteration_held_out"]
    assert both.win_rates[-1].win_rate == worse.win_rate


def test_edit_direction_does_not_favour_the_draft_the_user_corrected() -> None:
    draft = "Sorry for the delay. Your refund is on its way."
    sent = "Hello Ana, your refund for TCK-40012 is on its way. — Acme Support Team"
    assert edit_direction(draft, draft, sent) == pytest.approx(0.0)
    assert edit_direction(sent, draft, sent) == pytest.approx(2.0)
    # An answer that learned the greeting and the sign-off but words the rest its own
    # way beats the draft, although it is further from the sent text than the draft is.
    learned = "Hello Ana, the refund has been issued today. — Acme Support Team"
    assert edit_direction(learned, draft, sent) > edit_direction(draft, draft, sent)
    # Keeping the apology the user removed costs.
    assert edit_direction("Sorry. " + learned, draft, sent) < edit_direction(learned, draft, sent)
    # An unchanged draft was perfect: only keeping it scores full marks.
    assert edit_direction(draft, draft, draft) == pytest.approx(1.0)
    assert edit_direction(learned, draft, draft) < 1.0


UNRELATED = (
    "Our spring catalogue is out now with new garden furniture, outdoor lighting and a "
    "range of planters; visit any store this weekend for the opening offers."
)


async def test_held_out_likelihoods_decide_and_the_golden_answers_guard() -> None:
    # The candidate moved every held-out pair toward what its user chose ...
    learned = [1.0] * 12
    kept = await evaluate_candidate(
        _answers(FLUENT), _answers(FLUENT), GOLDEN, preference=learned, n_resamples=99
    )
    assert kept.passed, kept.failure_reasons
    assert kept.scoring == HELD_OUT_PREFERENCE_SCORER and kept.example_count == 12
    assert [w.scorer for w in kept.win_rates] == [
        HELD_OUT_PREFERENCE_SCORER,
        "reference_similarity",
    ]
    assert kept.samples and kept.samples[0].candidate_text == FLUENT
    # ... but on the golden set it now answers beside the point: rejected.
    drifted = await evaluate_candidate(
        _answers(UNRELATED), _answers(FLUENT), GOLDEN, preference=learned, n_resamples=99
    )
    assert not drifted.passed
    assert drifted.win_rate == 1.0  # the likelihoods alone would have passed it
    assert any("worse than the baseline on the golden set" in r for r in drifted.failure_reasons)


async def test_a_candidate_that_did_not_move_is_rejected() -> None:
    unmoved = [0.5] * 12  # a copy of the baseline ties every pair
    report = await evaluate_candidate(
        _answers(FLUENT), _answers(FLUENT), GOLDEN, preference=unmoved, n_resamples=99
    )
    assert not report.passed and report.win_rate == 0.5
    assert any("CI lower bound" in r for r in report.failure_reasons)


async def test_a_length_collapse_is_rejected_however_the_pairs_moved() -> None:
    # What the SFT warm start did on the main job: replies cut to a greeting and a
    # sign-off (45 -> 11 words) while every held-out pair moved toward the user.
    collapsed = "Hi Ana, about your parcel. Best regards, Acme Support"
    report = await evaluate_candidate(
        _answers(collapsed), _answers(FLUENT), GOLDEN, preference=[1.0] * 12, n_resamples=99
    )
    assert not report.passed
    assert any("references' length" in r for r in report.failure_reasons)
    lengths = {m.name: (m.candidate_value, m.baseline_value) for m in report.metrics}
    assert lengths["length_vs_reference"][0] < 0.5 and lengths["length_vs_reference"][1] == 1.0
    # A baseline that was already that short does not make a short candidate fail.
    both_short = await evaluate_candidate(
        _answers(collapsed), _answers(collapsed), GOLDEN, preference=[1.0] * 12, n_resamples=99
    )
    assert not any("references' length" in r for r in both_short.failure_reasons)


DRAFT = "Sorry for the delay. Your refund is on its way."
SENT = "Hello Ana, your refund for TCK-40012 is on its way. — Acme Support Team"
PAIRS = [
    GoldenExample(f"p{i}", f"refund {i}", SENT, rejected=DRAFT) for i in range(12)
]  # a dataset's held-out pairs: the draft the user corrected and what they sent


async def test_on_a_datasets_pairs_the_generated_answers_are_reported_not_decisive() -> None:
    """edit_direction on the held-out pairs ran against the users on the family bench
    (evaluate_candidate says how): it is reported beside the likelihoods that decide,
    and neither rejects nor passes a candidate."""
    moved = [1.0] * 12
    reworded = "Sorry for the delay, we issued your money back today."
    report = await evaluate_candidate(
        _answers(reworded), _answers(DRAFT), PAIRS, preference=moved, n_resamples=99
    )
    generated = {w.scorer: w for w in report.win_rates}["edit_direction"]
    assert generated.win_rate_ci_upper < 0.5  # below the draft on every pair
    assert report.passed and report.scoring == HELD_OUT_PREFERENCE_SCORER
    unmoved = await evaluate_candidate(
        _answers(SENT), _answers(DRAFT), PAIRS, preference=[0.5] * 12, n_resamples=99
    )
    assert {w.scorer: w for w in unmoved.win_rates}["edit_direction"].win_rate == 1.0
    assert not unmoved.passed  # the likelihoods decide


async def test_the_held_out_pairs_margin_is_reported_beside_the_outcomes() -> None:
    moved = await evaluate_candidate(
        _answers(SENT), _answers(DRAFT), PAIRS, preference=[1.0] * 12,
        preference_margin=0.8, n_resamples=99,
    )  # fmt: skip
    metrics = {m.name: (m.candidate_value, m.baseline_value) for m in moved.metrics}
    assert metrics["held_out_preference_margin"] == (0.8, 0.0)
    golden = await evaluate_candidate(_answers(FLUENT), _answers(FLUENT), GOLDEN, n_resamples=99)
    assert "held_out_preference_margin" not in {m.name for m in golden.metrics}
