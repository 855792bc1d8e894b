"""Exponential backoff with full jitter (AWS Architecture Blog, "Exponential Backoff And
Jitter"): the delay before retry `attempt` (0-based) is uniform in
[0, min(max_s, initial_s * 2**attempt)]."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import grpc

# Transient by definition; everything else (INVALID_ARGUMENT, NOT_FOUND, ...) is a caller
# or server bug that a retry cannot fix.
RETRYABLE_UNARY = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})
# IngestEvents also fails with RESOURCE_EXHAUSTED when the tenant's ingest rate limit is
# exceeded; the buffered events are kept and resent after a pause.
RETRYABLE_INGEST = RETRYABLE_UNARY | {grpc.StatusCode.RESOURCE_EXHAUSTED}

# 2**62 * any sane initial delay is far above any max; bounding the exponent keeps a
# long outage's attempt counter from overflowing float arithmetic.
_MAX_EXPONENT = 62


@dataclass
class Backoff:
    """Full-jitter exponential backoff. Pass a seeded `random.Random` for reproducibility."""

    initial_s: float = 0.1
    max_s: float = 10.0
    rng: random.Random = field(default_factory=random.Random)

    def __post_init__(self) -> None:
        if self.initial_s < 0 or self.max_s < 0:
            raise ValueError("backoff delays must be >= 0")
        if self.initial_s > self.max_s:
            raise ValueError("initial_backoff_s must be <= max_backoff_s")

    def ceiling(self, attempt: int) -> float:
        """The upper bound of the delay before retry `attempt` (0-based)."""
        if attempt < 0:
            raise ValueError("attempt must be >= 0")
        return min(self.max_s, self.initial_s * 2 ** min(attempt, _MAX_EXPONENT))

    def delay(self, attempt: int) -> float:
        """A random delay in [0, ceiling(attempt)]."""
        return self.rng.uniform(0, self.ceiling(attempt))
