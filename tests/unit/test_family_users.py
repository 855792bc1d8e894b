"""The family of simulated users (simulation/family): their inputs, their hidden rules and
the way they review drafts. No stack needed."""

from __future__ import annotations

import ast
import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from simulation import simulated_user
from simulation.family import (
    FAMILY,
    SKILLS,
    Case,
    Persona,
    SupportTicket,
    TriageMessage,
    held_out_cases,
    held_out_users,
    persona_named,
    training_cases,
    triage_correct,
    tuning_users,
)
from simulation.family.tasks import TRIAGE_TEMPLATES, support_tickets, triage_messages

FAMILY_DIR = Path(__file__).parents[2] / "simulation" / "family"

GENERIC = {
    # What a small instruction model writes: apologies, exclamation marks, contractions,
    # no greeting by name, a template signature.
    "support": (
        "I'm so sorry to hear that you're having trouble with your device! We apologize for "
        "any inconvenience this may have caused. Our team will look into your issue right "
        "away and get back to you as soon as possible. In the meantime, please don't "
        "hesitate to reach out if you have any other questions or concerns. Thank you for "
        "choosing Acme!\n\nBest regards,\n[Your Name]"
    ),
    # Alarm words, two categories (at most one right), a priority in words.
    "triage": (
        "URGENT!!! This looks like a bug in the billing system. The customer says something "
        "is wrong and they can't work. I'd recommend escalating this immediately to the "
        "engineering team. Priority: High."
    ),
}
DEGENERATE = ("word " * 200, "Thank you for your email. " * 30, "Category: billing " * 20)
OTHER_DRAFTS = (
    "",
    "  \n ",
    "OK.",
    "Dear [Customer Name],\n\nThank you for contacting us regarding [issue]. We will "
    "resolve it.\n\nSincerely,\n[Your Name]",
    "**Subject:** Re: your message\n\n1. Restart the device!\n2. Reset the app.\n"
    "3. Write to us again if it still fails.",
    # Long but not looping: a person cuts it to their budget.
    "Thank you for getting in touch with us about this problem. We understand how "
    "frustrating it can be when a new device does not behave as expected, especially right "
    "after unpacking it. First, please unplug the unit, wait thirty seconds and plug it back "
    "in. Second, hold the reset button for ten seconds until the light blinks blue. Third, "
    "open the companion app and check whether a firmware update is waiting. If none of these "
    "steps helps, reply with a photo of the label on the bottom so our hardware team can "
    "decide between a repair and a replacement. We will also confirm the warranty status and "
    "any shipping costs before anything is sent. Most cases like this are solved within two "
    "days.",
)


def _perfect(persona: Persona[Any], case: Any) -> str:
    """A draft written by hand to meet every rule, worded unlike the persona's own
    rewrites."""
    if isinstance(case, SupportTicket):
        support: dict[str, Callable[[SupportTicket], str]] = {
            "acme_agent": lambda c: (
                f"Hello {c.first_name},\n\nThanks for writing in about {c.reference}. A "
                f"replacement {c.product} ships tomorrow and tracking follows by email.\n\n"
                "— Acme Support Team"
            ),
            "brisk_lead": lambda c: (
                f"Ticket {c.reference}\n- Replacement {c.product} ships tomorrow.\n"
                "- Tracking link follows by email."
            ),
            "formal_clerk": lambda c: (
                f"Dear {c.full_name},\n\nThank you for your message about the {c.product}. "
                f"We have opened ticket {c.reference} and a specialist will contact you "
                "within two business days.\n\nKind regards,\nAcme Customer Care"
            ),
        }
        return support[persona.name](case)
    triage: dict[str, Callable[[TriageMessage], str]] = {
        "field_triager": lambda c: (
            f"Category: {c.category}\nPriority: {c.priority}\nNext step: Reply to the "
            "customer today."
        ),
        "bullet_triager": lambda c: (
            f"[{c.reference}]\n\n- {c.category} message from {c.company}\n- Reply today."
        ),
        "calm_triager": lambda c: (
            f"{c.priority} {c.category}: Reported by {c.sender} at {c.company}.\nOwner: {c.team}"
        ),
    }
    return triage[persona.name](case)


def _drafts(persona: Persona[Any], case: Case) -> list[str]:
    # Every sibling's idea of a good answer is a realistic draft that meets some rules.
    siblings = [p.ideal(case, "") for p in FAMILY if p.skill == persona.skill]
    return [*OTHER_DRAFTS, GENERIC[persona.skill], *DEGENERATE, *siblings]


def _ids(persona: Persona[Any]) -> str:
    return persona.name


@pytest.mark.parametrize("persona", FAMILY, ids=_ids)
def test_the_ideal_edit_meets_every_rule_and_is_then_sent_unchanged(
    persona: Persona[Any],
) -> None:
    for case in held_out_cases(persona.skill, 40):
        for draft in _drafts(persona, case):
            edited = persona.ideal(case, draft)
            assert persona.rules_met(case, edited) == persona.rules, (draft, edited)
            # Sending exactly what the persona wants needs no edit at all.
            again = persona.review(case, edited)
            assert again.edited == edited and again.similarity == 1.0 and again.sent


@pytest.mark.parametrize("persona", FAMILY, ids=_ids)
def test_the_fallback_rewrite_meets_every_rule_on_every_input(persona: Persona[Any]) -> None:
    # The empty draft forces the persona to write from the input alone: every template,
    # name and product must give a reply that meets its rules (both streams).
    cases = [*training_cases(persona.skill, 300), *held_out_cases(persona.skill, 300)]
    for case in cases:
        edited = persona.ideal(case, "")
        assert persona.rules_met(case, edited) == persona.rules, edited


@pytest.mark.parametrize("persona", FAMILY, ids=_ids)
def test_a_perfect_draft_is_sent_unchanged_with_full_marks(persona: Persona[Any]) -> None:
    rater = dataclasses.replace(persona, rate_fraction=1.0)
    for case in held_out_cases(persona.skill, 20):
        draft = _perfect(persona, case)
        assert persona.rules_met(case, draft) == persona.rules, draft
        review = rater.review(case, draft)
        assert review.edited == draft.strip()
        assert review.similarity == 1.0 and review.sent and review.rating == 5
        assert review.seconds_to_send == 10.0


@pytest.mark.parametrize("persona", FAMILY, ids=_ids)
def test_a_bad_draft_is_discarded_or_heavily_edited(persona: Persona[Any]) -> None:
    rater = dataclasses.replace(persona, rate_fraction=1.0)
    for case in held_out_cases(persona.skill, 10):
        perfect = rater.review(case, _perfect(persona, case))
        for draft in (*DEGENERATE, "", "OK."):
            review = rater.review(case, draft)
            # Looping or empty text is thrown away and rewritten: little of it survives.
            assert not review.sent and review.rating == 1 and review.similarity < 0.35
            assert review.seconds_to_send > perfect.seconds_to_send
        generic = rater.review(case, GENERIC[persona.skill])
        assert generic.rules_met != persona.rules
        assert not generic.sent or generic.similarity < 0.9, generic
        assert generic.rating is not None and generic.rating < 5


def test_only_some_reviews_are_rated() -> None:
    for persona in FAMILY:
        cases = training_cases(persona.skill, 400)
        rated = sum(persona.review(c, "Hello there.").rating is not None for c in cases)
        assert 150 < rated < 250, persona.name


def test_reviews_are_deterministic() -> None:
    for persona in FAMILY:
        fresh = type(persona)(split=persona.split)
        for case in held_out_cases(persona.skill, 5):
            for draft in (GENERIC[persona.skill], _perfect(persona, case), DEGENERATE[0]):
                assert persona.review(case, draft) == persona.review(case, draft)
                assert fresh.review(case, draft) == persona.review(case, draft)


def test_edits_are_minimal_a_person_fixes_only_what_they_dislike() -> None:
    ticket = held_out_cases("support", 1)[0]
    assert isinstance(ticket, SupportTicket)
    acme, brisk, formal = (persona_named(n) for n in ("acme_agent", "brisk_lead", "formal_clerk"))

    perfect = _perfect(acme, ticket)
    unsigned = perfect.replace("\n\n— Acme Support Team", "")
    assert acme.rules_met(ticket, unsigned) == tuple(r for r in acme.rules if r != "sign_off")
    assert acme.ideal(ticket, unsigned) == perfect  # only the sign-off is added
    sorry = perfect.replace("A replacement", "Sorry for the wait, a replacement")
    assert acme.ideal(ticket, sorry) == perfect  # only the apology clause goes

    loud = _perfect(brisk, ticket).replace("tomorrow.", "tomorrow!")
    assert brisk.ideal(ticket, loud) == _perfect(brisk, ticket)

    contracted = _perfect(formal, ticket).replace("We have opened", "We've opened")
    assert formal.ideal(ticket, contracted) == _perfect(formal, ticket)

    message = next(m for m in held_out_cases("triage", 50) if isinstance(m, TriageMessage))
    field, calm = persona_named("field_triager"), persona_named("calm_triager")
    wrong = "bug" if message.category != "bug" else "billing"
    misfiled = _perfect(field, message).replace(
        f"Category: {message.category}", f"Category: {wrong}"
    )
    assert field.rules_met(message, misfiled) == ("field_order", "right_priority", "concise")
    assert field.ideal(message, misfiled) == _perfect(field, message)  # its next step kept

    alarmed = (
        f"{message.priority} {message.category}: URGENT, reported by {message.sender} at "
        f"{message.company}!\nOwner: someone"
    )
    assert calm.ideal(message, alarmed) == _perfect(calm, message)


def test_the_acme_agent_holds_the_preference_it_is_known_by() -> None:
    acme = persona_named("acme_agent")
    assert acme.skill == "support"
    assert acme.rules == (
        "greets_by_name",
        "quotes_reference",
        "no_apologies",
        "concise",
        "sign_off",
    )
    ticket = held_out_cases("support", 1)[0]
    assert isinstance(ticket, SupportTicket)
    good = _perfect(acme, ticket)

    def missing(draft: str) -> set[str]:
        return set(acme.rules) - set(acme.rules_met(ticket, draft))

    assert missing(good) == set()
    assert missing(good.replace("Hello ", "Hi ")) == {"greets_by_name"}
    # A reference one digit short is not the customer's reference.
    assert missing(good.replace(ticket.reference, ticket.reference[:-1])) == {"quotes_reference"}
    for word in ("sorry", "apologize", "apologies"):
        assert missing(good.replace("Thanks", f"We {word}. Thanks")) == {"no_apologies"}
    padded = good.replace("by email.", "by email. " + "More words here. " * 14)
    assert missing(padded) == {"concise"}
    assert missing(good.replace("— Acme Support Team", "Best, Acme")) == {"sign_off"}


def test_triage_is_correct_only_when_it_names_the_right_category_alone() -> None:
    message = next(m for m in held_out_cases("triage", 50) if isinstance(m, TriageMessage))
    other = next(c for c in ("billing", "outage", "bug") if c != message.category)
    assert triage_correct(message, f"Looks like {message.category.upper()}.")
    assert not triage_correct(message, f"Looks like {other}.")
    assert not triage_correct(message, f"Either {message.category} or {other}.")  # hedging
    assert not triage_correct(message, "No category at all.")
    # Every fallback a persona may write names only its own category.
    for t in TRIAGE_TEMPLATES:
        msg = dataclasses.replace(message, category=t.category)
        assert triage_correct(msg, f"{t.category}: {t.summary} {t.next_step}")


def test_inputs_are_deterministic_and_train_never_shares_an_input_with_held_out() -> None:
    for skill in SKILLS:
        assert training_cases(skill, 50) == training_cases(skill, 50)
        assert training_cases(skill, 50) != training_cases(skill, 50, seed=12)
        train, test = training_cases(skill, 3000), held_out_cases(skill, 1000)
        assert len({c.reference for c in train}) == len(train)  # one reference per input
        assert not {c.reference for c in train} & {c.reference for c in test}
        assert not {c.text for c in train} & {c.text for c in test}
        assert not {c.case_id for c in train} & {c.case_id for c in test}
    # Even the same seed gives disjoint streams: the reference ranges are disjoint.
    tickets = [support_tickets(2000, seed=5, stream=s) for s in ("train", "held_out")]
    messages = [triage_messages(2000, seed=5, stream=s) for s in ("train", "held_out")]
    for same_train, same_test in (tickets, messages):
        assert not {c.reference for c in same_train} & {c.reference for c in same_test}
    with pytest.raises(ValueError, match="at most"):
        training_cases("support", 40001)


def test_inputs_carry_what_the_preferences_refer_to() -> None:
    for ticket in held_out_cases("support", 30):
        assert isinstance(ticket, SupportTicket)
        assert ticket.reference.startswith("TCK-") and len(ticket.reference) == 9
        for part in (ticket.reference, ticket.full_name, ticket.first_name):
            assert part in ticket.text
    for message in held_out_cases("triage", 30):
        assert isinstance(message, TriageMessage)
        assert message.reference in message.text and message.priority in {"P1", "P2", "P3"}
        # The ground truth is hidden from the model: the text never states it.
        assert f"Category: {message.category}" not in message.text


def test_the_family_has_six_users_over_two_skills_with_unseen_ones_in_each() -> None:
    assert len(FAMILY) >= 6
    assert len({p.name for p in FAMILY}) == len(FAMILY)
    assert {p.skill for p in FAMILY} == set(SKILLS)
    held, tuning = held_out_users(), tuning_users()
    assert len(held) >= 2 and {p.skill for p in held} == set(SKILLS)
    assert not set(held) & set(tuning) and set(held) | set(tuning) == set(FAMILY)
    assert all(p.split == "tuning" for p in tuning)
    for persona in FAMILY:
        assert len(persona.rules) >= 4 and len(set(persona.rules)) == len(persona.rules)
        assert sum(p.skill == persona.skill for p in tuning) >= 1
    # The reviews are the main job's kind of review, so one report reads them all.
    review = FAMILY[0].review(held_out_cases("support", 1)[0], "")
    assert isinstance(review, simulated_user.Review)


def test_the_family_shares_no_code_with_the_platform() -> None:
    imported: set[str] = set()
    sources = sorted(FAMILY_DIR.glob("*.py"))
    assert len(sources) >= 5
    for source in sources:
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module)
            elif isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names)
    platform = ("services", "workflows", "workers", "infra", "rlaas")
    assert not {m for m in imported if m.split(".")[0] in platform}
    ours = {m for m in imported if m.startswith("simulation.")}
    assert {m for m in ours if not m.startswith("simulation.family.")} == {
        "simulation.simulated_user"
    }
