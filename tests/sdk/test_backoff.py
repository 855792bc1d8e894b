from __future__ import annotations

import random

import pytest

from rlaas_sdk import Backoff

pytestmark = pytest.mark.unit


def test_full_jitter_delays_stay_within_the_capped_exponential_bound() -> None:
    backoff = Backoff(0.1, 10.0, random.Random(1234))
    for attempt in range(20):
        ceiling = min(10.0, 0.1 * 2**attempt)
        assert backoff.ceiling(attempt) == pytest.approx(ceiling)
        delays = [backoff.delay(attempt) for _ in range(500)]
        assert all(0.0 <= d <= ceiling for d in delays)
        # Full jitter: spread over the whole range, not bunched near the cap.
        assert min(delays) < 0.05 * ceiling
        assert max(delays) > 0.95 * ceiling
        assert sum(delays) / len(delays) == pytest.approx(ceiling / 2, rel=0.1)


def test_ceilings_double_then_cap() -> None:
    backoff = Backoff(0.1, 10.0)
    assert [round(backoff.ceiling(a), 6) for a in range(9)] == [
        0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 10.0, 10.0
    ]  # fmt: skip
    assert backoff.ceiling(100_000) == 10.0  # a long outage does not overflow


def test_seeded_rng_is_reproducible() -> None:
    first = Backoff(0.1, 10.0, random.Random(7))
    second = Backoff(0.1, 10.0, random.Random(7))
    assert [first.delay(a) for a in range(10)] == [second.delay(a) for a in range(10)]


@pytest.mark.parametrize(("initial", "maximum"), [(-1.0, 1.0), (2.0, 1.0)])
def test_bad_bounds_are_rejected(initial: float, maximum: float) -> None:
    with pytest.raises(ValueError):
        Backoff(initial, maximum)
