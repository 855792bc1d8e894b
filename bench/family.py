"""Family benchmark: the main job's learning loop once per simulated user of the family
(``simulation.family``), each as a fresh tenant, on a real embedded stack (started here,
in a temp dir, on free ports, with the default model, as ``bench/loop.py`` does) and its
real workers, with the platform's defaults for dataset, training and evaluation gate.

Per persona (``simulation.family_job.run_persona``): the baseline (the base model under
the skill's system prompt) on held-out cases, feedback events from the persona, one
learning loop with a short rollout while the persona keeps using the application, the
candidate on the same held-out cases; win-rate with its CI, edit similarity, send rate,
rating and each hidden rule before and after. Held-out users are listed apart: a recipe
may only be tuned on the tuning users.

    python -m bench.family [--users a,b] [--split tuning|held_out|all]
        [--feedback-events 80] [--held-out 24] [--iterations 1] [--out PATH]

Results go to bench/results/family.json (``--out`` for a smoke run), rewritten after
every persona; a markdown table is printed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.stack import embedded_stack
from infra.operator_key import temporary_operator_key
from rlaas.training.v1 import training_pb2 as trn
from services.config import Settings
from services.training.evaluation import PREFERENCE_MARGIN_METRIC
from simulation.family import FAMILY, Persona, persona_named
from simulation.family_job import FamilyJobConfig, PersonaResult, run_persona
from simulation.job import app_channel

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "family.json"
SPLITS = ("tuning", "held_out", "all")


def select_personas(users: str | None, split: str) -> list[Persona[Any]]:
    """The personas named in ``users`` (comma-separated; all when empty) that are in
    ``split``, in the family's order."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    names = [n.strip() for n in (users or "").split(",") if n.strip()]
    wanted = {persona_named(n).name for n in names}  # KeyError for an unknown name
    chosen = [
        p
        for p in FAMILY
        if (not wanted or p.name in wanted) and (split == "all" or p.split == split)
    ]
    if not chosen:
        raise ValueError(f"no persona among {names or 'the family'} is in split {split!r}")
    return chosen


# ---- rendering -------------------------------------------------------------------------


def _ratio(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _before_after(before: float | None, after: float | None, digits: int = 2) -> str:
    return f"{_ratio(before, digits)} -> {_ratio(after, digits)}"


def _outcome(r: PersonaResult) -> str:
    if r.error:
        short = r.error if len(r.error) <= 60 else r.error[:57] + "..."
        return f"error ({short})".replace("|", "/")
    if r.undecided:
        return f"{r.outcome or 'stopped'} (rollout undecided)"
    return r.outcome or "n/a"


def _gate(r: PersonaResult) -> str:
    """Every scorer of the last gate, the deciding one first: win-rate [CI]; then the
    held-out pairs' mean likelihood margin when the gate reported it."""
    last = r.iterations[-1] if r.iterations else None
    if last is None or not last.gate_scorers:
        return _ratio(r.gate_win_rate)
    parts = [
        f"{name} {rate:.2f} [{lo:.2f}, {hi:.2f}]"
        for name, (rate, lo, hi) in last.gate_scorers.items()
    ]
    if (margin := last.gate_metrics.get(PREFERENCE_MARGIN_METRIC)) is not None:
        parts.append(f"margin {margin[0]:+.2f} nats")
    if last.training:
        t = last.training
        early = ", stopped early" if t.get("stopped_early") else ""
        parts.append(f"trained {t.get('steps')}/{t.get('total_steps')} steps{early}")
    return "; ".join(parts)


def _win_rate(r: PersonaResult) -> str:
    c = r.comparison
    if c is None:
        return "n/a" + (" (candidate not measured)" if r.candidate_skipped else "")
    lo, hi = c.win_rate_ci
    return f"{c.win_rate:.2f} [{lo:.2f}, {hi:.2f}] p={c.sign_test_p_value:.2g}"


def _rules(r: PersonaResult) -> str:
    if r.baseline is None:
        return "n/a"
    after = r.candidate.rules_met if r.candidate is not None else {}
    return "; ".join(
        f"{rule} {_before_after(before, after.get(rule))}"
        for rule, before in r.baseline.rules_met.items()
    )


def _metric(r: PersonaResult, name: str) -> str:
    """Baseline -> candidate of one held-out metric."""
    before = getattr(r.baseline, name) if r.baseline is not None else None
    after = getattr(r.candidate, name) if r.candidate is not None else None
    return _before_after(before, after)


def table_rows(results: Sequence[PersonaResult]) -> list[str]:
    head = (
        "| persona | split | skill | outcome | gate win-rates [95% CI] "
        "| held-out win-rate [95% CI] | edit sim | send rate | rating | rules met |"
    )
    rows = [head, "|" + "---|" * head.count(" | ") + "---|"]
    for r in results:
        rows.append(
            "| "
            + " | ".join([
                r.persona, r.split, r.skill, _outcome(r), _gate(r), _win_rate(r),
                _metric(r, "edit_similarity"), _metric(r, "send_rate"),
                _metric(r, "mean_rating"),
                _rules(r),
            ])
            + " |"
        )  # fmt: skip
    return rows


def markdown(results: Sequence[PersonaResult]) -> str:
    """One table per split (tuning users first, held-out users apart), before -> after
    being baseline -> candidate on the held-out cases."""
    out: list[str] = []
    for split, title in (("tuning", "Tuning users"), ("held_out", "Held-out users")):
        chosen = [r for r in results if r.split == split]
        if chosen:
            out += [f"### {title}", "", *table_rows(chosen), ""]
    return "\n".join(out)


def document(results: Sequence[PersonaResult], settings: dict[str, Any]) -> dict[str, Any]:
    return {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "settings": settings,
        "written": datetime.now(UTC).isoformat(timespec="seconds"),
        "personas": [r.to_dict() for r in results],
    }


def write(path: Path, results: Sequence[PersonaResult], settings: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document(results, settings), indent=2, sort_keys=True) + "\n")


async def run_all(
    settings: Settings,
    personas: Sequence[Persona[Any]],
    cfg: FamilyJobConfig,
    out: Path,
    bench_settings: dict[str, Any],
) -> list[PersonaResult]:
    results: list[PersonaResult] = []
    async with app_channel(settings.grpc_target) as channel:
        for persona in personas:
            key, cleanup = await temporary_operator_key(
                settings, minutes=30, purpose=f"family bench: {persona.name}"
            )
            try:
                result = await run_persona(channel, key, persona, cfg)
            finally:
                await cleanup()
            results.append(result)
            write(out, results, bench_settings)
            print(f"[{persona.name}] done in {result.timings_s.get('total_s')} s; wrote {out}")
    return results


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.family", description=__doc__.split("\n")[0])
    p.add_argument("--users", help="comma-separated persona names (default: the split's all)")
    p.add_argument("--split", choices=SPLITS, default="all")
    p.add_argument("--feedback-events", type=int, default=FamilyJobConfig.feedback_events)
    p.add_argument("--held-out", type=int, default=FamilyJobConfig.held_out)
    p.add_argument("--iterations", type=int, default=FamilyJobConfig.iterations)
    p.add_argument("--max-tokens", type=int, default=FamilyJobConfig.max_tokens)
    p.add_argument("--concurrency", type=int, default=FamilyJobConfig.concurrency)
    p.add_argument("--seed", type=int, default=FamilyJobConfig.seed)
    p.add_argument(
        "--max-rollout-requests", type=int, default=FamilyJobConfig.max_rollout_requests,
        help="live requests a rollout may take before the bench stops the loop (a sweep "
        "that measures the held-out cases alone can keep this small)",
    )  # fmt: skip
    p.add_argument("--out", type=Path, default=RESULTS, help=f"default {RESULTS}")
    p.add_argument(
        "--set", action="append", default=[], metavar="NAME=VALUE",
        help="a sweep: override a TrainingHyperparameters default (repeatable)",
    )  # fmt: skip
    p.add_argument("--lora-rank", type=int, default=0, help="a sweep: LoRA rank")
    p.add_argument("--lora-modules", default="", help="a sweep: comma-separated target modules")
    p.add_argument(
        "--running-stack",
        action="store_true",
        help="use the stack `rlaas up` started (RLAAS_* settings) instead of a fresh one",
    )
    return p.parse_args(argv)


def _overrides(pairs: Sequence[str]) -> dict[str, float]:
    out: dict[str, float] = {}
    for pair in pairs:
        name, _, value = pair.partition("=")
        if name not in trn.TrainingHyperparameters.DESCRIPTOR.fields_by_name or not value:
            raise SystemExit(f"--set {pair}: not NAME=VALUE of a TrainingHyperparameters field")
        field = trn.TrainingHyperparameters.DESCRIPTOR.fields_by_name[name]
        out[name] = float(value) if field.cpp_type == field.CPPTYPE_DOUBLE else int(value)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    personas = select_personas(args.users, args.split)
    cfg = FamilyJobConfig(
        held_out=args.held_out,
        feedback_events=args.feedback_events,
        iterations=args.iterations,
        max_tokens=args.max_tokens,
        concurrency=args.concurrency,
        seed=args.seed,
        max_rollout_requests=args.max_rollout_requests,
        hyperparameters=_overrides(args.set),
        lora_rank=args.lora_rank,
        lora_modules=tuple(m for m in args.lora_modules.split(",") if m),
    )
    bench_settings = {
        "personas": [p.name for p in personas],
        "split": args.split,
        "stack": "running" if args.running_stack else "embedded",
        "overrides": {"hyperparameters": cfg.hyperparameters, "lora_rank": cfg.lora_rank,
                      "lora_modules": list(cfg.lora_modules)},
    }  # fmt: skip
    print(f"family bench: {', '.join(bench_settings['personas'])}; {cfg}")
    t0 = time.perf_counter()
    if args.running_stack:
        results = asyncio.run(run_all(Settings(), personas, cfg, args.out, bench_settings))
    else:
        with embedded_stack("rlaas-bench-family-") as settings:
            results = asyncio.run(run_all(settings, personas, cfg, args.out, bench_settings))
    print()
    print(markdown(results))
    print(f"{len(results)} personas in {time.perf_counter() - t0:.0f} s; results: {args.out}")
    return 1 if any(r.error for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
