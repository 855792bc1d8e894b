"""Triagers with different hidden tastes in notes on incoming messages. All of them know
the message's true category (a person reading the message does): a note that names
another category is corrected, whatever else the persona likes."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar

from simulation.family.editing import (
    body_text,
    calm,
    capitalized,
    drop_clauses,
    first_line,
    fit,
    is_degenerate,
    lines_of,
    sentences,
    word_count,
)
from simulation.family.reviewer import Check, Persona
from simulation.family.tasks import Skill, TriageMessage, categories_named, triage_correct

_PRIORITY = re.compile(r"(?<![\w-])P[1-4](?![\w-])", re.IGNORECASE)
_ALARM = re.compile(r"\b(?:urgent\w*|asap|immediate\w*|critical\w*|emergenc\w*)\b|!", re.I)
_STEP_FIELD = re.compile(
    r"^(?:next steps?|action|recommended action|suggested action)\s*[:\u2013-]\s*(.+)$", re.I
)
# A proposal starts with what to do (once "I'd recommend" or "Second," is cut off);
# stems, so "escalating this" counts too, while "Thank you for contacting us" does not.
_ACTION = re.compile(
    r"^(?:escalat|forward|rout|assign|refund|reset|page|ask|repl|check|investigat|notify|"
    r"revok|rotat|log|schedul|contact|send|unlock|updat|add|review|reproduc|verif|file|"
    r"open)\w*\b",
    re.IGNORECASE,
)
_ADVICE = re.compile(
    r"^(?:(?:first|second|third|then|next|finally),?\s+)?"
    r"(?:i(?:'d| would)? (?:recommend|suggest)(?: that)?\s+|we should\s+|please\s+)?",
    re.IGNORECASE,
)
_FIELD = re.compile(r"^(?:category|priority)\s*:", re.IGNORECASE)


def _priorities(text: str) -> set[str]:
    return {p.upper() for p in _PRIORITY.findall(text)}


def _content(draft: str, skip: re.Pattern[str] | None = None) -> list[str]:
    """The draft's sentences; none at all when it is looping text."""
    body = body_text(draft, skip)
    return [] if is_degenerate(body) else sentences(body)


def _right_only(case: TriageMessage, parts: list[str]) -> list[str]:
    """The sentences that name no category but the right one (the triager knows it)."""
    return [p for p in parts if categories_named(p) <= {case.category}]


def _bullets(text: str, max_items: int) -> bool:
    items = lines_of(text)[1:]
    return 1 <= len(items) <= max_items and all(
        item.startswith("- ") and word_count(item) > 0 for item in items
    )


@dataclass(frozen=True)
class FieldTriager(Persona[TriageMessage]):
    """Exactly three fields in a fixed order, ``Category: ...`` / ``Priority: ...`` /
    ``Next step: ...``, with the right category and priority, at most 30 words."""

    name: ClassVar[str] = "field_triager"
    skill: ClassVar[Skill] = "triage"
    max_words: ClassVar[int] = 30
    fields: ClassVar[tuple[str, ...]] = ("Category", "Priority", "Next step")

    def _in_order(self, text: str) -> bool:
        lines = lines_of(text)
        return len(lines) == len(self.fields) and all(
            re.match(rf"{field}: \S", line) for field, line in zip(self.fields, lines, strict=True)
        )

    def _checks(self) -> dict[str, Check[TriageMessage]]:
        return {
            "field_order": lambda c, t: self._in_order(t),
            "correct": triage_correct,
            "right_priority": lambda c, t: _priorities(t) == {c.priority},
            "concise": lambda c, t: 0 < word_count(t) <= self.max_words,
        }

    def _draft_step(self, draft: str) -> list[str]:
        """What the draft proposes to do: its next-step field, else its advice sentences."""
        body = body_text(draft)
        fields = [m.group(1) for line in lines_of(body) if (m := _STEP_FIELD.match(line))]
        proposals = [capitalized(_ADVICE.sub("", s, count=1)) for s in sentences(body)]
        return fields or [p for p in proposals if _ACTION.match(p)]

    def _rewrite(self, case: TriageMessage, draft: str) -> str:
        head = f"Category: {case.category}\nPriority: {case.priority}\nNext step:"
        budget = self.max_words - word_count(head)
        # A proposed step that names a category or a priority would contradict the
        # fields above it: the triager writes the step themselves then.
        usable = [
            s
            for s in self._draft_step(draft)
            if word_count(s) >= 2
            and not is_degenerate(s)
            and not categories_named(s)
            and not _priorities(s)
        ]
        step = " ".join(fit(usable[:1] or [case.next_step], budget))
        return f"{head} {step}"


@dataclass(frozen=True)
class BulletTriager(Persona[TriageMessage]):
    """``[<message id>]`` copied on the first line, then one to four bullets, the right
    category named, no exclamation marks, at most 35 words."""

    name: ClassVar[str] = "bullet_triager"
    skill: ClassVar[Skill] = "triage"
    max_words: ClassVar[int] = 35
    max_bullets: ClassVar[int] = 4
    _OPENING: ClassVar[re.Pattern[str]] = re.compile(r"^\[?MSG-\d+\]?\W*$", re.IGNORECASE)

    def _checks(self) -> dict[str, Check[TriageMessage]]:
        return {
            "opens_with_reference": lambda c, t: first_line(t) == f"[{c.reference}]",
            "bullets": lambda c, t: _bullets(t, self.max_bullets),
            "correct": triage_correct,
            "no_exclamations": lambda c, t: "!" not in t,
            "concise": lambda c, t: 0 < word_count(t) <= self.max_words,
        }

    def _rewrite(self, case: TriageMessage, draft: str) -> str:
        opening = f"[{case.reference}]"
        budget = self.max_words - word_count(opening)
        parts = [calm(s) for s in _right_only(case, _content(draft, self._OPENING))]
        items = fit([p for p in parts if word_count(p)], budget, self.max_bullets)
        if not triage_correct(case, " ".join(items)):
            items = fit([f"Category: {case.category}", *items], budget, self.max_bullets)
        if len(items) < 2:  # only the category: the triager adds what to do
            items = fit([*items, case.summary, case.next_step], budget, self.max_bullets)
        return "\n".join([opening, *(f"- {item}" for item in items)])


@dataclass(frozen=True)
class CalmTriager(Persona[TriageMessage]):
    """One line that starts with the right priority and names the category
    (``P2 billing: ...``), no alarm words or exclamation marks, at most 25 words, and an
    ``Owner: <team>`` line last."""

    name: ClassVar[str] = "calm_triager"
    skill: ClassVar[Skill] = "triage"
    max_words: ClassVar[int] = 25
    _OWNER: ClassVar[re.Pattern[str]] = re.compile(r"^owner\s*:", re.IGNORECASE)
    _HEAD: ClassVar[re.Pattern[str]] = re.compile(r"^P[1-4]\b\s*(?:[\w-]+\s*)?[:\u2013—-]\s*", re.I)

    def _checks(self) -> dict[str, Check[TriageMessage]]:
        return {
            "priority_first": lambda c, t: t.startswith(f"{c.priority} "),
            "correct": triage_correct,
            "no_alarm_words": lambda c, t: not _ALARM.search(t),
            "concise": lambda c, t: 0 < word_count(t) <= self.max_words,
            "owner_line": lambda c, t: lines_of(t)[-1:] == [f"Owner: {c.team}"],
        }

    def _rewrite(self, case: TriageMessage, draft: str) -> str:
        head, owner = f"{case.priority} {case.category}:", f"Owner: {case.team}"
        budget = self.max_words - word_count(head) - word_count(owner)
        # The head says category and priority: the draft's own head or fields go.
        parts = [p for p in _content(draft, self._OWNER) if not _FIELD.match(p)]
        if parts:
            parts[0] = self._HEAD.sub("", parts[0])
        parts = [_STEP_FIELD.sub(r"\1", p) for p in parts]
        parts = drop_clauses([calm(p) for p in _right_only(case, parts) if word_count(p)], _ALARM)
        summary = " ".join(fit(parts, budget, max_parts=2))
        if word_count(summary) < 4:
            summary = " ".join(fit([case.summary], budget))
        return f"{head} {summary}\n{owner}"
