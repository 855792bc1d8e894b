"""Cutting documents into chunks (the unit of search) and parent chunks (the unit of
context), by characters, at sentence or word boundaries where one is near.

Offsets are exact: ``text[span.start:span.end] == span's text``, so a citation's span
points at the very characters of the source document. Chunks never start or end in
whitespace; consecutive chunks share about ``overlap`` characters (whole words), so a
sentence cut at a chunk's end is still whole at the next chunk's start.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DEFAULT_CHUNK_SIZE = 800
DEFAULT_CHUNK_OVERLAP = 100
MIN_CHUNK_SIZE = 64
MAX_CHUNK_SIZE = 8192
MAX_PARENT_CHUNK_SIZE = 65_536

# A sentence ends after . ! ? (and closing quotes/brackets) followed by whitespace, or
# at a blank line. The match's end is where the next sentence may start.
_SENTENCE_END = re.compile(r"[.!?][\"')\]]*\s+|\n\s*\n")
_WHITESPACE = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class ChunkingConfig:
    chunk_size: int = DEFAULT_CHUNK_SIZE
    chunk_overlap: int = DEFAULT_CHUNK_OVERLAP
    parent_chunk_size: int = 0

    def __post_init__(self) -> None:
        if not MIN_CHUNK_SIZE <= self.chunk_size <= MAX_CHUNK_SIZE:
            raise ValueError(f"chunk_size must be in [{MIN_CHUNK_SIZE}, {MAX_CHUNK_SIZE}]")
        if not 0 <= self.chunk_overlap <= self.chunk_size // 2:
            raise ValueError("chunk_overlap must be in [0, chunk_size / 2]")
        if self.parent_chunk_size and not (
            self.chunk_size <= self.parent_chunk_size <= MAX_PARENT_CHUNK_SIZE
        ):
            raise ValueError(
                f"parent_chunk_size must be 0 or in [chunk_size, {MAX_PARENT_CHUNK_SIZE}]"
            )


@dataclass(frozen=True, slots=True)
class Span:
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class ChunkedText:
    chunks: list[Span]
    parents: list[Span]
    # parent_of[i]: index into ``parents`` of chunk i (empty when there are no parents).
    parent_of: list[int]


def _boundary(text: str, start: int, hard_end: int, size: int) -> int:
    """Where a chunk starting at ``start`` should end, at most ``hard_end``: the last
    sentence end in the chunk's second half, else its last whitespace, else hard."""
    floor = start + size // 2
    best = -1
    for m in _SENTENCE_END.finditer(text, floor, hard_end):
        best = m.end()
    if best > floor:
        return best
    for m in _WHITESPACE.finditer(text, floor, hard_end):
        best = m.start()
    if best > floor:
        return best
    return hard_end


def _strip(text: str, start: int, end: int) -> Span:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return Span(start, end)


def split_spans(text: str, size: int, overlap: int) -> list[Span]:
    """Spans of at most ``size`` characters covering every non-space character."""
    spans: list[Span] = []
    n = len(text)
    start = 0
    while True:
        while start < n and text[start].isspace():
            start += 1
        if start >= n:
            return spans
        hard_end = min(start + size, n)
        end = n if hard_end == n else _boundary(text, start, hard_end, size)
        span = _strip(text, start, end)
        spans.append(span)
        if end >= n:
            return spans
        if overlap <= 0:
            start = end
            continue
        # Step back by the overlap, then forward to the next word start so the overlap
        # is whole words (never more than asked).
        nxt = max(span.end - overlap, start + 1)
        if not text[nxt - 1].isspace():
            ws = _WHITESPACE.search(text, nxt, span.end)
            if ws:  # no whitespace at all (a long token): overlap by characters
                nxt = ws.end()
        start = nxt if nxt > start else end


def group_parents(chunks: list[Span], parent_size: int) -> tuple[list[Span], list[int]]:
    """Greedy groups of consecutive chunks whose span stays within ``parent_size``
    (a chunk larger than that is a group of its own): each chunk lies inside its
    parent, so a caller can widen a hit to its parent's text."""
    parents: list[Span] = []
    parent_of: list[int] = []
    for chunk in chunks:
        if parents and chunk.end - parents[-1].start <= parent_size:
            parents[-1] = Span(parents[-1].start, max(parents[-1].end, chunk.end))
        else:
            parents.append(chunk)
        parent_of.append(len(parents) - 1)
    return parents, parent_of


def chunk_text(text: str, config: ChunkingConfig) -> ChunkedText:
    chunks = split_spans(text, config.chunk_size, config.chunk_overlap)
    if not config.parent_chunk_size:
        return ChunkedText(chunks, [], [])
    parents, parent_of = group_parents(chunks, config.parent_chunk_size)
    return ChunkedText(chunks, parents, parent_of)
