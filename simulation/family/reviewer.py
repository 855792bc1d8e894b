"""What every persona does with a draft, whatever its taste: keep it as it is when it
already meets every hidden rule, otherwise rewrite it into what it would send; send it or
throw it away; sometimes rate it; take longer the more there is to fix.

A persona only says which rules it holds (``_checks``) and how it rewrites a draft it
does not like (``_rewrite``). Deterministic: the same draft always gets the same review.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, Generic, Literal, TypeVar

from rapidfuzz import fuzz

from simulation.family.editing import is_degenerate, stable_fraction
from simulation.family.tasks import Case, Skill
from simulation.simulated_user import Review

C = TypeVar("C", bound=Case)
Check = Callable[[C, str], bool]
Split = Literal["tuning", "held_out"]


@dataclass(frozen=True)
class Persona(ABC, Generic[C]):
    split: Split
    """``tuning``: a recipe may be tuned on this user. ``held_out``: only ever used to
    judge a recipe (see ``simulation.family.personas``)."""
    discard_below: float = 0.35
    """Drafts this far from what the persona wants are thrown away and rewritten."""
    rate_fraction: float = 0.5
    """Share of reviews that also get a star rating."""

    name: ClassVar[str]
    skill: ClassVar[Skill]
    max_words: ClassVar[int]

    @abstractmethod
    def _checks(self) -> dict[str, Check[C]]:
        """The hidden rules, by name, in the order a report lists them."""

    @abstractmethod
    def _rewrite(self, case: C, draft: str) -> str:
        """The draft turned into what the persona would send; must meet every rule."""

    @property
    def rules(self) -> tuple[str, ...]:
        return tuple(self._checks())

    def rules_met(self, case: C, text: str) -> tuple[str, ...]:
        text = text.strip()
        return tuple(name for name, met in self._checks().items() if met(case, text))

    def ideal(self, case: C, draft: str) -> str:
        """What the persona would send. A draft that already meets every rule is sent as
        written: people do not fix what they like."""
        text = draft.strip()
        if self.rules_met(case, text) == self.rules and not is_degenerate(text):
            return text
        return self._rewrite(case, text)

    def review(self, case: C, draft: str) -> Review:
        edited = self.ideal(case, draft)
        similarity = fuzz.ratio(draft.strip(), edited) / 100.0
        met = self.rules_met(case, draft)
        sent = similarity >= self.discard_below and not is_degenerate(draft)
        rating = None
        if stable_fraction(self.name, "rate", case.case_id, draft) < self.rate_fraction:
            rating = self._stars(sent, len(met))
        # Reading plus fixing: the more there is to change, the longer it takes.
        seconds = 10.0 + 60.0 * (1.0 - similarity)
        return Review(edited, sent, rating, similarity, met, seconds)

    def rating_of(self, review: Review) -> int:
        """The stars this review would carry if the persona rated it (a report grades
        every held-out answer this way; the live persona only rates some)."""
        return self._stars(review.sent, len(review.rules_met))

    def _stars(self, sent: bool, met: int) -> int:
        """One star for a draft thrown away; a sent one earns two to five by how much of
        the persona's taste it already had."""
        return 2 + round(3 * met / len(self.rules)) if sent else 1
