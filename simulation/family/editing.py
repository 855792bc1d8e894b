"""The edits a person makes to a draft, as small text operations the personas compose:
take the content out of its frame (greeting, closing, signature, placeholders), cut
sentences or clauses they dislike, fix tone, fit a word budget.

Deliberately plain text handling, no model and no shared code with the platform's
reward engines: the personas are the ground truth the platform must discover.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

_ALNUM = re.compile(r"[A-Za-z0-9]")
_GREETING = re.compile(
    r"^(?:dear|hi|hello|hey|greetings|good (?:morning|afternoon|evening))\b[^,!.:\n]{0,30}"
    r"[,!.:]?\s*",
    re.IGNORECASE,
)
# A closing starts the signature: everything from it on is frame, not content. Short lines
# only, so "Thanks for your patience while we fix it." stays content.
_CLOSING = re.compile(
    r"^(?:(?:best|kind|warm|warmest)(?: regards| wishes)?|regards|sincerely|cheers|thanks|"
    r"thank you|many thanks|yours(?: truly| sincerely)?|all the best)\b[\s,.!]*(?:again)?"
    r"[\s,.!]*$|^(?:—|\u2013|--)\s*\w|^\[?your name\]?$",
    re.IGNORECASE,
)
_SUBJECT = re.compile(r"^\W*subject\s*:", re.IGNORECASE)
_BULLET = re.compile(r"^(?:[-*•]|\d{1,2}[.)])\s+")
_PLACEHOLDER = re.compile(r"\[[^\]]{1,40}\]")
_LOOSE_PUNCTUATION = re.compile(r"\s+([.,;:!?])")
_MARKUP = re.compile(r"\*\*|^#+\s*")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_CLAUSE_END = re.compile(r"(?<=[,;])\s+")


def word_count(text: str) -> int:
    """Words as a person counts them: tokens with a letter or digit (a dash is none)."""
    return sum(1 for token in text.split() if _ALNUM.search(token))


def lines_of(text: str) -> list[str]:
    """The non-empty lines, stripped."""
    return [line.strip() for line in text.strip().splitlines() if line.strip()]


def first_line(text: str) -> str:
    lines = lines_of(text)
    return lines[0] if lines else ""


def ends_with_lines(text: str, block: str) -> bool:
    """The text's last non-empty lines are exactly ``block``'s (a sign-off)."""
    want = lines_of(block)
    return lines_of(text)[-len(want) :] == want


def quotes(text: str, reference: str) -> bool:
    """The reference is copied exactly, as a whole token (``TCK-4821`` is not
    ``TCK-48213``)."""
    return re.search(rf"(?<![\w-]){re.escape(reference)}(?!\w)", text) is not None


def is_degenerate(text: str) -> bool:
    """Looping text (the same few words over and over) is not a draft anyone edits."""
    tokens = [t.lower() for t in text.split() if _ALNUM.search(t)]
    return len(tokens) >= 12 and len(set(tokens)) / len(tokens) < 0.4


def body_text(draft: str, skip: re.Pattern[str] | None = None) -> str:
    """The draft's content: without a leading greeting, the closing and signature,
    subject lines, template placeholders, markup and bullet markers, and without the
    lines ``skip`` matches (a persona's own opening or owner line, rewritten anyway).
    Lines stay lines, so a bulleted draft keeps its items apart."""
    kept: list[str] = []
    for raw in lines_of(draft):
        line = _MARKUP.sub("", raw).strip()
        if not line or _SUBJECT.match(line) or (skip is not None and skip.match(line)):
            continue
        if not kept and (greeting := _GREETING.match(line)):
            line = line[greeting.end() :].strip()
            if not line:
                continue
        if _CLOSING.match(line):
            break
        line = " ".join(_PLACEHOLDER.sub("", _BULLET.sub("", line)).split())
        line = _LOOSE_PUNCTUATION.sub(r"\1", line)  # "regarding [issue]." -> "regarding."
        if line:
            kept.append(line)
    return "\n".join(kept)


def sentences(text: str) -> list[str]:
    """Sentences, never spanning a line break (a line without a full stop is one)."""
    return [s for line in lines_of(text) for s in _SENTENCE_END.split(line) if s.strip()]


def capitalized(text: str) -> str:
    return text[:1].upper() + text[1:]


def as_prose(parts: Sequence[str]) -> list[str]:
    """Items turned into sentences for running text: a line without a full stop (a
    bullet, a heading) gets one, so joined lines do not run into each other."""
    return [p if p[-1:] in ".?!:" else f"{p}." for p in parts if p.strip()]


def drop_clauses(parts: Sequence[str], unwanted: re.Pattern[str]) -> list[str]:
    """Cut the clauses that say what the person will not send ("Sorry for the wait, your
    refund is on its way." -> "Your refund is on its way."); a sentence with nothing
    left goes."""
    out = []
    for sentence in parts:
        if not unwanted.search(sentence):
            out.append(sentence)  # nothing to cut: left exactly as written
            continue
        clauses = [c for c in _CLAUSE_END.split(sentence) if not unwanted.search(c)]
        if not any(_ALNUM.search(c) for c in clauses):
            continue
        text = " ".join(clauses).rstrip(",; ")
        if text[-1] not in ".?!:":
            text += "."
        out.append(capitalized(text))
    return out


def calm(text: str) -> str:
    """Exclamation marks become full stops ("Great!!" -> "Great.", "Really?!" ->
    "Really?")."""
    text = re.sub(r"!+", ".", text)
    return re.sub(r"([.?])\.+", r"\1", text)


_CONTRACTION = re.compile(
    r"\b(?:can|won|shan|[a-z]+n)['\u2019]t\b|\b[a-z]+['\u2019](?:re|ll|ve|m|d)\b|"
    r"\b(?:it|that|there|what|here|he|she|who|where|let)['\u2019]s\b",
    re.IGNORECASE,
)
_IRREGULAR = {"can't": "cannot", "won't": "will not", "shan't": "shall not", "let's": "let us"}
_SUFFIX = {
    "n't": " not",
    "'re": " are",
    "'ll": " will",
    "'ve": " have",
    "'m": " am",
    "'d": " would",
}


def has_contraction(text: str) -> bool:
    return _CONTRACTION.search(text) is not None


def _expand(match: re.Match[str]) -> str:
    word = match.group(0).replace("\u2019", "'")
    lower = word.lower()
    if lower in _IRREGULAR:
        full = _IRREGULAR[lower]
    elif lower.endswith("'s"):
        full = lower[:-2] + " is"
    else:
        suffix = next(s for s in _SUFFIX if lower.endswith(s))
        full = lower[: -len(suffix)] + _SUFFIX[suffix]
    if word.startswith("I'"):
        return "I" + full[1:]
    return capitalized(full) if word[0].isupper() else full


def expand_contractions(text: str) -> str:
    """Formal writing spelled out: "we're" -> "we are", "Can't" -> "Cannot"."""
    return _CONTRACTION.sub(_expand, text)


def fit(parts: Sequence[str], budget: int, max_parts: int | None = None) -> list[str]:
    """Whole sentences (or items) from the start while they fit ``budget`` words; the
    first one is cut to the budget if it alone is longer (a person shortens, they do not
    send nothing)."""
    out: list[str] = []
    used = 0
    for part in parts:
        n = word_count(part)
        if used + n > budget or (max_parts is not None and len(out) == max_parts):
            if not out and budget > 0:
                out.append(_first_words(part, budget))
            break
        out.append(part)
        used += n
    return out


def _first_words(text: str, budget: int) -> str:
    kept: list[str] = []
    for token in text.split():
        if word_count(" ".join([*kept, token])) > budget:
            break
        kept.append(token)
    return " ".join(kept)


def stable_fraction(*parts: str) -> float:
    """A number in [0, 1) fixed by ``parts``: the personas' only "randomness"."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64
