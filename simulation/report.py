"""What the main job measured, as numbers, a text summary and a PNG.

Held-out comparison: every held-out email is answered by the baseline and by the
candidate (pinned, opted out of training); the simulated user reviews both answers. Per
email the candidate wins when the user had to change less of its answer (higher edit
similarity), ties count half. The win-rate's interval and the sign test come from the
platform's evaluation statistics (a paired bootstrap), the same ones its gate uses.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from scipy.stats import bootstrap

from services.training.evaluation import outcome_from_scores, paired_stats
from simulation.simulated_user import Review, rating_of

RULES = ("greets_by_name", "quotes_order_number", "concise", "sign_off")


@dataclass(frozen=True)
class PolicyScore:
    policy_id: str
    edit_similarity: float
    send_rate: float
    mean_rating: float
    rules_met: dict[str, float]
    """Share of answers meeting each hidden rule."""


@dataclass(frozen=True)
class HeldOutComparison:
    examples: int
    baseline: PolicyScore
    candidate: PolicyScore
    wins: int
    losses: int
    ties: int
    win_rate: float
    win_rate_ci: tuple[float, float]
    confidence_level: float
    sign_test_p_value: float
    guarded: dict[str, tuple[float, float, float]] = field(default_factory=dict)
    """Per guarded metric (send rate, rating), candidate minus baseline on the same
    held-out prompts: (mean difference, CI low, CI high). Worse beyond noise: the whole
    interval below zero."""


def paired_difference(
    candidate: Sequence[float], baseline: Sequence[float], *, confidence_level: float = 0.95
) -> tuple[float, float, float]:
    """Mean of the paired differences with a percentile bootstrap interval (scipy)."""
    diffs = np.asarray(candidate, dtype=float) - np.asarray(baseline, dtype=float)
    mean = float(diffs.mean())
    if len(diffs) < 2 or np.all(diffs == diffs[0]):
        return mean, mean, mean
    ci = bootstrap(
        (diffs,), np.mean, confidence_level=confidence_level, n_resamples=2000,
        method="percentile", rng=np.random.default_rng(0),
    ).confidence_interval  # fmt: skip
    return mean, float(ci.low), float(ci.high)


def worse_beyond_noise(comparison: HeldOutComparison) -> list[str]:
    """The guarded metrics whose whole interval lies below zero."""
    return [name for name, (_, _, high) in comparison.guarded.items() if high < 0]


def score(policy_id: str, reviews: Sequence[Review]) -> PolicyScore:
    sims = np.asarray([r.similarity for r in reviews])
    return PolicyScore(
        policy_id=policy_id,
        edit_similarity=float(sims.mean()),
        send_rate=float(np.mean([r.sent for r in reviews])),
        # Every held-out answer is graded here (the live user only rates some), the
        # way the user rates.
        mean_rating=float(np.mean([rating_of(r) for r in reviews])),
        rules_met={rule: float(np.mean([rule in r.rules_met for r in reviews])) for rule in RULES},
    )


def compare_held_out(
    baseline_id: str,
    baseline: Sequence[Review],
    candidate_id: str,
    candidate: Sequence[Review],
    *,
    confidence_level: float = 0.95,
) -> HeldOutComparison:
    if len(baseline) != len(candidate) or not baseline:
        raise ValueError("need the same non-empty held-out set answered by both policies")
    outcomes = [
        outcome_from_scores(c.similarity, b.similarity)
        for c, b in zip(candidate, baseline, strict=True)
    ]
    stats = paired_stats(outcomes, confidence_level=confidence_level)
    return HeldOutComparison(
        examples=len(outcomes),
        baseline=score(baseline_id, baseline),
        candidate=score(candidate_id, candidate),
        wins=stats.wins,
        losses=stats.losses,
        ties=stats.ties,
        win_rate=stats.win_rate,
        win_rate_ci=(stats.win_rate_ci_lower, stats.win_rate_ci_upper),
        confidence_level=confidence_level,
        sign_test_p_value=stats.p_value,
        guarded={
            "send_rate": paired_difference(
                [float(r.sent) for r in candidate], [float(r.sent) for r in baseline],
                confidence_level=confidence_level,
            ),
            "rating": paired_difference(
                [float(rating_of(r)) for r in candidate], [float(rating_of(r)) for r in baseline],
                confidence_level=confidence_level,
            ),
        },
    )  # fmt: skip


@dataclass(frozen=True)
class LiveRequest:
    """One request of the live traffic, as the simulated user experienced it."""

    index: int
    phase: str
    policy_id: str
    similarity: float
    sent: bool
    rating: int | None


@dataclass
class JobReport:
    tenant_id: str
    skill_id: str
    held_out: HeldOutComparison | None = None
    gate: dict[str, object] = field(default_factory=dict)
    """The platform's own evaluation of the candidate (golden set, safety suite)."""
    rollout: dict[str, object] = field(default_factory=dict)
    bad_rollout: dict[str, object] = field(default_factory=dict)
    timings_s: dict[str, float] = field(default_factory=dict)
    live: list[LiveRequest] = field(default_factory=list)
    events: list[tuple[int, str]] = field(default_factory=list)
    """(request index, what happened) markers for the plot."""

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)


def summary_lines(report: JobReport) -> list[str]:
    out = [f"tenant {report.tenant_id}, skill {report.skill_id}"]
    h = report.held_out
    if h is not None:
        b, c = h.baseline, h.candidate
        out += [
            f"held-out emails: {h.examples} (never trained on)",
            f"{'':24}{b.policy_id:>22}{c.policy_id:>22}",
            f"{'edit similarity':24}{b.edit_similarity:>22.3f}{c.edit_similarity:>22.3f}",
            f"{'send rate':24}{b.send_rate:>22.2f}{c.send_rate:>22.2f}",
            f"{'rating (1-5)':24}{b.mean_rating:>22.2f}{c.mean_rating:>22.2f}",
        ]
        out += [
            f"{'  ' + rule:24}{b.rules_met[rule]:>22.2f}{c.rules_met[rule]:>22.2f}"
            for rule in RULES
        ]
        out += [
            f"{name + ' change':24}{delta:>+22.2f}   ({h.confidence_level:.0%} CI "
            f"{low:+.2f} to {high:+.2f}{'; WORSE beyond noise' if high < 0 else ''})"
            for name, (delta, low, high) in h.guarded.items()
        ]
        lo, hi = h.win_rate_ci
        out.append(
            f"win-rate of {c.policy_id} vs {b.policy_id}: {h.win_rate:.2f} "
            f"({h.confidence_level:.0%} CI {lo:.2f}-{hi:.2f}; {h.wins} wins, {h.losses} losses, "
            f"{h.ties} ties; sign test p={h.sign_test_p_value:.2g})"
        )
    if report.gate:
        out.append(f"platform gate: {report.gate}")
    if report.rollout:
        out.append(f"rollout: {report.rollout}")
    if report.bad_rollout:
        out.append(f"bad candidate: {report.bad_rollout}")
    if report.timings_s:
        out.append("timings: " + ", ".join(f"{k} {v:.0f} s" for k, v in report.timings_s.items()))
    return out


def plot(report: JobReport, path: Path) -> Path:
    """Reward before/after: the live traffic's per-request reward (share of the answer
    the user kept) by serving policy, with the loop's events; and the held-out
    distributions of both policies."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    fig, (live_ax, held_ax) = plt.subplots(
        1, 2, figsize=(13, 4.8), gridspec_kw={"width_ratios": [2.2, 1]}
    )
    policies = sorted({r.policy_id for r in report.live})
    for policy in policies:
        rows = [r for r in report.live if r.policy_id == policy]
        live_ax.scatter(
            [r.index for r in rows], [r.similarity for r in rows], s=9, alpha=0.55, label=policy
        )
    if report.live:
        sims = np.asarray([r.similarity for r in report.live])
        window = min(16, len(sims))
        rolling = np.convolve(sims, np.ones(window) / window, mode="valid")
        live_ax.plot(
            np.arange(window - 1, len(sims)),
            rolling,
            color="black",
            lw=1.5,
            label=f"rolling mean ({window})",
        )
    for index, label in report.events:
        live_ax.axvline(index, color="grey", ls="--", lw=0.8)
        live_ax.annotate(label, (index, 1.0), rotation=90, va="top", ha="right", fontsize=7)
    live_ax.set(
        xlabel="request",
        ylabel="reward: edit similarity",
        ylim=(0, 1.05),
        title="Live traffic: what the user kept of each answer",
    )
    live_ax.legend(fontsize=7, loc="lower right")
    h = report.held_out
    if h is not None:
        metrics = ("edit similarity", "send rate", "rating / 5")
        values = {
            score.policy_id: (score.edit_similarity, score.send_rate, score.mean_rating / 5)
            for score in (h.baseline, h.candidate)
        }
        x = np.arange(len(metrics))
        for offset, (policy, ys) in zip((-0.2, 0.2), values.items(), strict=True):
            held_ax.bar(x + offset, ys, width=0.4, label=policy)
        held_ax.set_xticks(x, metrics)
        held_ax.set(
            ylim=(0, 1.05), title=f"Held-out ({h.examples} emails), win-rate {h.win_rate:.2f}"
        )
        held_ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
