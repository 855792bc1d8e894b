"""Support agents with different hidden tastes in replies to customer tickets."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from simulation.family.editing import (
    as_prose,
    body_text,
    calm,
    drop_clauses,
    ends_with_lines,
    expand_contractions,
    first_line,
    fit,
    has_contraction,
    is_degenerate,
    lines_of,
    quotes,
    sentences,
    word_count,
)
from simulation.family.reviewer import Check, Persona
from simulation.family.tasks import Skill, SupportTicket

_APOLOGY = re.compile(r"\bsorry\b|\bapolog(?:y|ies|i[sz]e\w*)\b", re.IGNORECASE)


def _content(draft: str, skip: re.Pattern[str] | None = None) -> list[str]:
    """The draft's sentences; none at all when it is looping text."""
    body = body_text(draft, skip)
    return [] if is_degenerate(body) else sentences(body)


def _prose(
    parts: list[str], budget: int, has: Callable[[str], bool], lead_in: str, fallback: str
) -> str:
    """``parts`` cut to ``budget`` words and made to say what the persona insists on
    (``has``): when the draft (or the cut) lost it, the person leads with ``lead_in``.
    When almost nothing is left, they write ``fallback`` themselves."""
    body = " ".join(fit(as_prose(parts), budget))
    if not has(body):
        body = " ".join(fit(sentences(f"{lead_in} {body}"), budget))
    if word_count(body) < 8:
        body = " ".join(fit(sentences(fallback), budget))
    return body


@dataclass(frozen=True)
class AcmeAgent(Persona[SupportTicket]):
    """Greets by first name (``Hello <first name>,``), quotes the ticket reference
    exactly, never apologizes, at most 60 words, signs ``— Acme Support Team``."""

    name: ClassVar[str] = "acme_agent"
    skill: ClassVar[Skill] = "support"
    max_words: ClassVar[int] = 60
    sign_off: ClassVar[str] = "— Acme Support Team"

    def _checks(self) -> dict[str, Check[SupportTicket]]:
        return {
            "greets_by_name": lambda c, t: first_line(t) == f"Hello {c.first_name},",
            "quotes_reference": lambda c, t: quotes(t, c.reference),
            "no_apologies": lambda c, t: not _APOLOGY.search(t),
            "concise": lambda c, t: 0 < word_count(t) <= self.max_words,
            "sign_off": lambda c, t: ends_with_lines(t, self.sign_off),
        }

    def _rewrite(self, case: SupportTicket, draft: str) -> str:
        greeting = f"Hello {case.first_name},"
        budget = self.max_words - word_count(greeting) - word_count(self.sign_off)
        body = _prose(
            drop_clauses(_content(draft), _APOLOGY),
            budget,
            has=lambda body: quotes(body, case.reference),
            lead_in=f"About ticket {case.reference}:",
            fallback=f"Thanks for reaching out about ticket {case.reference}. We are checking "
            f"your {case.product} and will update you within one business day.",
        )
        return f"{greeting}\n\n{body}\n\n{self.sign_off}"


@dataclass(frozen=True)
class BriskLead(Persona[SupportTicket]):
    """A team lead who answers in a few bullets under a ``Ticket <reference>`` line, with
    no exclamation marks, at most 45 words, no greeting and no sign-off."""

    name: ClassVar[str] = "brisk_lead"
    skill: ClassVar[Skill] = "support"
    max_words: ClassVar[int] = 45
    max_bullets: ClassVar[int] = 4
    _OPENING: ClassVar[re.Pattern[str]] = re.compile(r"^ticket\s+TCK-\d+\W*$", re.IGNORECASE)

    def _bullets(self, text: str) -> bool:
        items = lines_of(text)[1:]
        return 1 <= len(items) <= self.max_bullets and all(
            item.startswith("- ") and word_count(item) > 0 for item in items
        )

    def _checks(self) -> dict[str, Check[SupportTicket]]:
        return {
            "opens_with_reference": lambda c, t: first_line(t) == f"Ticket {c.reference}",
            "bullets": lambda c, t: self._bullets(t),
            "no_exclamations": lambda c, t: "!" not in t,
            "concise": lambda c, t: 0 < word_count(t) <= self.max_words,
        }

    def _rewrite(self, case: SupportTicket, draft: str) -> str:
        opening = f"Ticket {case.reference}"
        budget = self.max_words - word_count(opening)
        parts = [calm(s) for s in _content(draft, self._OPENING)]
        items = fit([p for p in parts if word_count(p)], budget, self.max_bullets)
        if word_count(" ".join(items)) < 4:  # nothing usable: the lead writes it
            items = [f"We are checking your {case.product} now.", "Update within one day."]
        return "\n".join([opening, *(f"- {item}" for item in items)])


@dataclass(frozen=True)
class FormalClerk(Persona[SupportTicket]):
    """Formal: ``Dear <full name>,``, names the product, no contractions, at most 90
    words, signs ``Kind regards,`` / ``Acme Customer Care``."""

    name: ClassVar[str] = "formal_clerk"
    skill: ClassVar[Skill] = "support"
    max_words: ClassVar[int] = 90
    sign_off: ClassVar[str] = "Kind regards,\nAcme Customer Care"

    def _checks(self) -> dict[str, Check[SupportTicket]]:
        return {
            "formal_greeting": lambda c, t: first_line(t) == f"Dear {c.full_name},",
            "names_product": lambda c, t: c.product.lower() in t.lower(),
            "no_contractions": lambda c, t: not has_contraction(t),
            "concise": lambda c, t: 0 < word_count(t) <= self.max_words,
            "sign_off": lambda c, t: ends_with_lines(t, self.sign_off),
        }

    def _rewrite(self, case: SupportTicket, draft: str) -> str:
        greeting = f"Dear {case.full_name},"
        budget = self.max_words - word_count(greeting) - word_count(self.sign_off)
        body = _prose(
            [expand_contractions(s) for s in _content(draft)],
            budget,
            has=lambda body: case.product.lower() in body.lower(),
            lead_in=f"Regarding your {case.product}:",
            fallback=f"Thank you for contacting us about your {case.product}. We are reviewing "
            f"ticket {case.reference} and will write to you again within two business days.",
        )
        return f"{greeting}\n\n{body}\n\n{self.sign_off}"
