"""The simulated user: a support agent with a hidden preference who reviews every draft
the platform writes, edits it into the reply they would actually send, sends or discards
it, and sometimes rates it.

The preference (never told to the model, only shown through edits):
- the reply opens with ``Hi <first name>,``;
- it quotes the customer's order number;
- it stays within ``max_words`` words;
- it ends with the fixed sign-off ``Best regards,`` / ``Northwind Support``.

Deliberately independent of the platform's reward engines (no shared code): it is the
ground truth the loop must discover, so it may not peek at how rewards are computed.
Deterministic: the same draft always gets the same review.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from rapidfuzz import fuzz

from simulation.workload import SupportEmail

SIGN_OFF = "Best regards,\nNorthwind Support"
_GREETING = re.compile(
    r"^\s*(dear|hi|hello|hey|greetings|good (morning|afternoon|evening))\b", re.IGNORECASE
)
_CLOSING = re.compile(
    r"^\s*(best|kind|warm|warmest)?\s*(regards|wishes)\b|^\s*(sincerely|cheers|thanks|"
    r"thank you|yours)\b.{0,20}$|^\s*\[?your name\]?|^\s*northwind support",
    re.IGNORECASE,
)
_PLACEHOLDER = re.compile(r"\[[^\]]{1,40}\]")
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


@dataclass(frozen=True)
class Review:
    edited: str
    """The reply the user sends (or would have sent)."""
    sent: bool
    rating: int | None
    """1-5 stars, only for some reviews."""
    similarity: float
    """How much of the draft survived, in [0, 1] (1: sent unchanged)."""
    rules_met: tuple[str, ...]
    seconds_to_send: float


@dataclass(frozen=True)
class HiddenPreference:
    max_words: int = 60
    sign_off: str = SIGN_OFF
    discard_below: float = 0.35
    """Drafts this far from what the user wants are thrown away and rewritten."""
    rate_fraction: float = 0.5
    """Share of reviews that also get a star rating."""


def _words(text: str) -> int:
    return len(text.split())


def rules_met(email: SupportEmail, draft: str, pref: HiddenPreference) -> tuple[str, ...]:
    lines = [line for line in draft.strip().splitlines() if line.strip()]
    met = []
    if lines and lines[0].strip() == f"Hi {email.first_name},":
        met.append("greets_by_name")
    if email.order_number in draft:
        met.append("quotes_order_number")
    if 0 < _words(draft) <= pref.max_words:
        met.append("concise")
    if draft.rstrip().endswith(pref.sign_off):
        met.append("sign_off")
    return tuple(met)


def _body(draft: str) -> str:
    """The draft without its greeting, closing and template placeholders."""
    lines = draft.strip().splitlines()
    while lines and (not lines[0].strip() or _GREETING.match(lines[0])):
        lines.pop(0)
    kept: list[str] = []
    for line in lines:
        if _CLOSING.match(line):
            break
        kept.append(line)
    text = _PLACEHOLDER.sub("", " ".join(kept))
    return " ".join(text.split())


def _trim(body: str, budget: int) -> str:
    """Whole sentences up to ``budget`` words (the first one cut if it alone is longer)."""
    out: list[str] = []
    used = 0
    for sentence in _SENTENCE.split(body):
        n = _words(sentence)
        if used + n > budget:
            if not out:
                out.append(" ".join(sentence.split()[:budget]))
            break
        out.append(sentence)
        used += n
    return " ".join(out)


def _degenerate(body: str) -> bool:
    """Looping text (the same few words over and over) is not a reply anyone edits."""
    words = body.lower().split()
    return len(words) >= 12 and len(set(words)) / len(words) < 0.4


def _stars(sent: bool, rules: int) -> int:
    """One star for a draft thrown away; a sent one earns two to five by how much of
    the user's taste it already had."""
    return 2 + round(3 * rules / 4) if sent else 1


def rating_of(review: Review) -> int:
    """The stars this review would carry if the user rated it."""
    return _stars(review.sent, len(review.rules_met))


def _stable_fraction(*parts: str) -> float:
    digest = hashlib.sha256("\x1f".join(parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


class SimulatedUser:
    def __init__(self, preference: HiddenPreference | None = None) -> None:
        self.preference = preference or HiddenPreference()

    def ideal_edit(self, email: SupportEmail, draft: str) -> str:
        """The draft rewritten to the hidden preference, keeping as much of it as fits."""
        pref = self.preference
        greeting = f"Hi {email.first_name},"
        body = _body(draft)
        if _degenerate(body):
            body = ""
        if email.order_number not in body:
            body = f"About your order {email.order_number}: {body}".strip()
        budget = pref.max_words - _words(greeting) - _words(pref.sign_off)
        body = _trim(body, budget)
        if _words(body) < 8:  # nothing usable: the user writes the reply themselves
            body = _trim(
                f"Thanks for contacting us about order {email.order_number}. We are looking "
                f"into your {email.product} and will update you within one business day.",
                budget,
            )
        return f"{greeting}\n\n{body}\n\n{pref.sign_off}"

    def review(self, email: SupportEmail, draft: str) -> Review:
        pref = self.preference
        edited = self.ideal_edit(email, draft)
        similarity = fuzz.ratio(draft.strip(), edited) / 100.0
        met = rules_met(email, draft, pref)
        sent = similarity >= pref.discard_below
        rating = None
        if _stable_fraction("rate", email.email_id, draft) < pref.rate_fraction:
            rating = _stars(sent, len(met))
        # Reading plus fixing: the more there is to change, the longer it takes.
        seconds = 10.0 + 60.0 * (1.0 - similarity)
        return Review(edited, sent, rating, similarity, met, seconds)
