"""The rollout's online test: candidate vs baseline, checked as often as we like.

A mixture sequential probability ratio test (mSPRT; Johari, Pekelis & Walsh, "Always
valid inference", 2017) on the difference of mean rewards, with a normal mixing
distribution N(0, tau^2): the likelihood ratio

    L = sqrt(V / (V + tau^2)) * exp(tau^2 * d^2 / (2 * V * (V + tau^2)))

(d the observed difference, V its variance) can be monitored after every request, and
stopping when L >= 1/alpha keeps the false-alarm rate at alpha however often we look.
Hand-written: scipy and statsmodels have fixed-horizon tests, not always-valid ones.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Decision:
    decision: str  # "continue" | "accept" | "reject"
    reason: str
    likelihood_ratio: float
    difference: float
    candidate_n: int
    baseline_n: int


def msprt(
    candidate: np.ndarray,
    baseline: np.ndarray,
    *,
    alpha: float = 0.05,
    tau: float = 0.1,
    min_samples: int = 20,
    max_samples: int = 2000,
    tolerance: float = 0.0,
) -> Decision:
    """Rewards in [0, 1]. ``reject``: the candidate is worse, with always-valid
    significance alpha; ``accept``: it is better with that significance, or
    ``max_samples`` arrived without evidence that it is worse than ``tolerance``."""
    nc, nb = len(candidate), len(baseline)
    if nc < min_samples or nb < min_samples:
        return Decision("continue", f"{nc} candidate / {nb} baseline samples", 1.0, 0.0, nc, nb)
    d = float(candidate.mean() - baseline.mean()) + tolerance
    # Variance of the difference of means; a floor keeps a run of identical rewards
    # from looking infinitely certain.
    v = max(candidate.var(ddof=1) / nc + baseline.var(ddof=1) / nb, 1e-6)
    t2 = tau * tau
    log_l = 0.5 * math.log(v / (v + t2)) + t2 * d * d / (2 * v * (v + t2))
    ratio = math.exp(min(log_l, 700.0))
    if ratio >= 1 / alpha:
        verdict = "accept" if d > 0 else "reject"
        return Decision(verdict, f"mSPRT L={ratio:.3g} >= {1 / alpha:g}, diff {d:+.3f}",
                        ratio, d, nc, nb)  # fmt: skip
    if nc >= max_samples:
        return Decision("accept", f"no regression detected in {nc} samples", ratio, d, nc, nb)
    return Decision("continue", f"L={ratio:.3g}, diff {d:+.3f}", ratio, d, nc, nb)
