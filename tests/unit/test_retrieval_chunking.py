"""Chunking: exact offsets, bounded sizes, whole-word overlap, sentence boundaries, and
parents that contain their children."""

from __future__ import annotations

import random

import pytest

from services.retrieval.chunking import ChunkingConfig, Span, chunk_text, split_spans
from services.retrieval.vectors import lit

pytestmark = pytest.mark.unit

WORDS = [
    "alpha",
    "beta",
    "gamma",
    "delta",
    "epsilon",
    "zeta",
    "eta",
    "theta",
    "iota",
    "kappa",
    "lambda",
    "mu",
]


def corpus(seed: int = 1, sentences: int = 120) -> str:
    rng = random.Random(seed)
    out = []
    for _ in range(sentences):
        words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 18)))
        out.append(words.capitalize() + rng.choice([". ", "! ", "? ", ".\n\n", ". "]))
    return "".join(out)


@pytest.mark.parametrize(
    "config",
    [ChunkingConfig(), ChunkingConfig(64, 0), ChunkingConfig(100, 50, 400), ChunkingConfig(64, 32)],
)
def test_chunks_cover_the_text_with_exact_offsets_and_bounded_overlap(
    config: ChunkingConfig,
) -> None:
    text = corpus()
    cut = chunk_text(text, config)
    assert cut.chunks
    covered: set[int] = set()
    for span in cut.chunks:
        piece = text[span.start : span.end]
        assert 0 < len(piece) <= config.chunk_size
        assert piece == piece.strip()  # never starts or ends in whitespace
        covered.update(range(span.start, span.end))
    # Every non-space character is in some chunk.
    assert all(i in covered for i, ch in enumerate(text) if not ch.isspace())
    for a, b in zip(cut.chunks, cut.chunks[1:], strict=False):
        assert b.start > a.start
        overlap = max(0, a.end - b.start)
        assert overlap <= config.chunk_overlap
        # Overlap starts at a word boundary (whole words are shared).
        assert b.start == 0 or text[b.start - 1].isspace() or overlap == 0


def test_overlap_is_close_to_the_requested_size() -> None:
    text = corpus(sentences=400)
    cut = chunk_text(text, ChunkingConfig(200, 60))
    overlaps = [max(0, a.end - b.start) for a, b in zip(cut.chunks, cut.chunks[1:], strict=False)]
    # Words are at most ~8 characters: the whole-word overlap loses less than a word.
    assert sum(overlaps) / len(overlaps) > 45


def test_chunks_end_at_sentence_ends_where_one_is_near() -> None:
    text = corpus(seed=3)
    cut = chunk_text(text, ChunkingConfig(300, 0))
    ends = [text[s.end - 1] for s in cut.chunks[:-1]]
    assert sum(ch in ".!?" for ch in ends) >= 0.9 * len(ends)


def test_a_word_is_never_cut_when_whitespace_is_near() -> None:
    text = " ".join(["word"] * 400)
    for span in split_spans(text, 64, 16):
        assert text[span.start : span.end].split(" ") == ["word"] * len(
            text[span.start : span.end].split(" ")
        )


def test_text_without_whitespace_is_cut_hard_and_still_overlaps() -> None:
    text = "x" * 300
    spans = split_spans(text, 100, 20)
    assert spans[0] == Span(0, 100) and spans[1] == Span(80, 180)
    assert spans[-1].end == 300


def test_parents_group_consecutive_chunks_and_contain_them() -> None:
    text = corpus(seed=5)
    config = ChunkingConfig(100, 20, 450)
    cut = chunk_text(text, config)
    assert 1 < len(cut.parents) < len(cut.chunks)
    assert len(cut.parent_of) == len(cut.chunks)
    assert cut.parent_of == sorted(cut.parent_of)  # consecutive chunks share a parent
    for chunk, p in zip(cut.chunks, cut.parent_of, strict=True):
        parent = cut.parents[p]
        assert parent.start <= chunk.start and chunk.end <= parent.end
        assert parent.end - parent.start <= config.parent_chunk_size


def test_no_parents_unless_configured_and_empty_text_has_no_chunks() -> None:
    assert chunk_text(corpus(), ChunkingConfig()).parents == []
    assert chunk_text("", ChunkingConfig()).chunks == []
    assert chunk_text("   \n ", ChunkingConfig()).chunks == []
    assert chunk_text("  hi  ", ChunkingConfig()).chunks == [Span(2, 4)]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"chunk_size": 10}, "chunk_size"),
        ({"chunk_size": 9000}, "chunk_size"),
        ({"chunk_size": 100, "chunk_overlap": 51}, "chunk_overlap"),
        ({"chunk_size": 100, "chunk_overlap": 10, "parent_chunk_size": 50}, "parent_chunk_size"),
    ],
)
def test_bad_configs_are_refused(kwargs: dict[str, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ChunkingConfig(**kwargs)


def test_milvus_literals_escape_only_what_milvus_knows() -> None:
    # Milvus' expression parser rejects \uXXXX escapes, so json.dumps is not enough.
    assert lit('a"b\\c\nd\x01') == '"a\\"b\\\\c\\nd\x01"'
    assert lit(["x", 1.5, True]) == '["x", 1.5, true]'
