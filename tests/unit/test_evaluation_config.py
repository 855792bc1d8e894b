"""An evaluation's judge and dataset config: what CreateEvaluation and StartLearningLoop
accept (checked before any workflow starts, every bad field named), what reaches the
evaluate activity, and how a report with both scorers reads as the contract's result."""

from __future__ import annotations

import json
import math

import pytest

from rlaas.training.v1 import training_pb2 as pb
from services.errors import InvalidArgument
from services.training.evaluation import (
    EvaluationReport,
    JudgeSummary,
    WinRateEstimate,
)
from services.training.evaluations import _report_to_proto, _validated
from services.training.judge import DEFAULT_TEMPLATES, RubricCriterion
from services.training.loops import _config, judge_spec
from workflows.learning_types import EvaluateInput, JudgeSpec

pytestmark = pytest.mark.unit

JUDGE = "evaluation.config.judge"


def violations(judge: pb.JudgeConfig) -> dict[str, str]:
    with pytest.raises(InvalidArgument) as info:
        judge_spec(judge, JUDGE)
    return {v.field: v.description for v in info.value.violations}


def test_an_empty_judge_config_is_the_default_judge() -> None:
    assert judge_spec(pb.JudgeConfig(), JUDGE) == JudgeSpec("", "", [], 1, False)


def test_a_full_judge_config_maps_to_the_spec() -> None:
    judge = pb.JudgeConfig(
        judge_model="support_email@v3", judge_version="editor-2024", votes=3,
        swap_positions=True,
        rubric=[pb.RubricCriterion(name="tone", description="polite", weight=2),
                pb.RubricCriterion(name=" facts ")],
    )  # fmt: skip
    spec = judge_spec(judge, JUDGE)
    assert (spec.judge_model, spec.judge_version, spec.votes, spec.swap_positions) == (
        "support_email@v3", "editor-2024", 3, True,
    )  # fmt: skip
    assert spec.rubric == [
        {"name": "tone", "description": "polite", "weight": 2.0},
        {"name": "facts", "description": "", "weight": 1.0},  # 0 is the default weight
    ]
    # What the worker builds the judge's rubric from.
    assert RubricCriterion(**spec.rubric[0]) == RubricCriterion("tone", "polite", 2.0)


def test_bad_judge_fields_are_all_named() -> None:
    bad = pb.JudgeConfig(
        judge_model="gpt-4o", judge_version="x" * 129, votes=-1,
        rubric=[pb.RubricCriterion(name=""), pb.RubricCriterion(name="tone", weight=-1),
                pb.RubricCriterion(name="tone", weight=math.nan)],
    )  # fmt: skip
    found = violations(bad)
    assert set(found) == {
        f"{JUDGE}.judge_model", f"{JUDGE}.judge_version", f"{JUDGE}.votes",
        f"{JUDGE}.rubric[0].name", f"{JUDGE}.rubric[1].weight", f"{JUDGE}.rubric[2].name",
        f"{JUDGE}.rubric[2].weight",
    }  # fmt: skip
    assert "skill@vN" in found[f"{JUDGE}.judge_model"]
    assert ">= 0" in found[f"{JUDGE}.votes"]
    assert "twice" in found[f"{JUDGE}.rubric[2].name"]
    too_many = violations(pb.JudgeConfig(votes=len(DEFAULT_TEMPLATES) + 1))
    assert list(too_many) == [f"{JUDGE}.votes"]
    assert str(len(DEFAULT_TEMPLATES)) in too_many[f"{JUDGE}.votes"]
    assert list(violations(pb.JudgeConfig(judge_model="Bad Skill@v1"))) == [f"{JUDGE}.judge_model"]


def evaluation(config: pb.EvaluationConfig) -> pb.Evaluation:
    return pb.Evaluation(candidate_policy_id="support_email@v2", config=config)


def test_create_evaluation_carries_the_judge_and_reports_bad_fields_together() -> None:
    judge = pb.JudgeConfig(votes=2, swap_positions=True)
    request = _validated(evaluation(pb.EvaluationConfig(judge=judge, dataset_id="ds-1")), "r-1")
    assert request.judge == JudgeSpec("", "", [], 2, True)
    # Unset: no judge at all (similarity only), not a default judge.
    assert _validated(evaluation(pb.EvaluationConfig()), "r-1").judge is None
    bad = pb.EvaluationConfig(judge=pb.JudgeConfig(votes=-2), max_examples=-1)
    with pytest.raises(InvalidArgument) as info:
        _validated(evaluation(bad), "r-1")
    assert sorted(v.field for v in info.value.violations) == [
        "evaluation.config.judge.votes", "evaluation.config.max_examples",
    ]  # fmt: skip


def test_the_loops_gate_gets_the_same_judge() -> None:
    config = pb.LearningLoopConfig(
        evaluation=pb.EvaluationConfig(judge=pb.JudgeConfig(votes=2, swap_positions=True))
    )
    assert _config(config).judge == JudgeSpec("", "", [], 2, True)
    assert _config(pb.LearningLoopConfig()).judge is None
    bad = pb.LearningLoopConfig(evaluation=pb.EvaluationConfig(judge=pb.JudgeConfig(votes=9)))
    with pytest.raises(InvalidArgument) as info:
        _config(bad)
    assert [v.field for v in info.value.violations] == [
        "learning_loop.config.evaluation.judge.votes"
    ]


def test_an_old_evaluate_input_payload_still_decodes() -> None:
    """Histories recorded before the judge and dataset fields carry payloads without
    them: they decode to "no judge, the golden set"."""
    from temporalio.converter import DataConverter

    old = {"tenant_id": "t", "skill_id": "s", "candidate_policy_id": "s@v2",
           "baseline_policy_id": "s@v1", "rubric": {}}  # fmt: skip
    payload = DataConverter.default.payload_converter.to_payloads([old])
    [decoded] = DataConverter.default.payload_converter.from_payloads(payload, [EvaluateInput])
    assert decoded.judge is None and decoded.dataset_uri == ""
    new = EvaluateInput("t", "s", "s@v2", "s@v1", judge=JudgeSpec(votes=2, rubric=[{"name": "x"}]))
    payload = DataConverter.default.payload_converter.to_payloads([new])
    [back] = DataConverter.default.payload_converter.from_payloads(payload, [EvaluateInput])
    assert back == new


def test_a_report_with_judge_and_heuristic_reads_as_the_contracts_result() -> None:
    judge = WinRateEstimate("judge", "judge-0123456789abcdef", 3, 1, 0, 0.75, 0.4, 1.0, 0.3125)
    heuristic = WinRateEstimate("reference_similarity", "", 1, 2, 1, 0.375, 0.1, 0.7, 0.875)
    report = EvaluationReport(
        example_count=4, wins=3, losses=1, ties=0, win_rate=0.75, win_rate_ci_lower=0.4,
        win_rate_ci_upper=1.0, confidence_level=0.95, p_value=0.3125, safety_results=(),
        baseline_safety_results=(), metrics=(), passed=False, failure_reasons=("p",),
        samples=(), outcomes=(1.0, 1.0, 1.0, 0.0), scoring="judge:judge-0123456789abcdef",
        win_rates=(judge, heuristic), heuristic_outcomes=(1.0, 0.0, 0.0, 0.5),
        judge=JudgeSummary("judge-0123456789abcdef", 16, 4, 2, "v7", "support_email@v1"),
    )  # fmt: skip
    out = _report_to_proto(json.loads(report.to_json()), "file:///r.json")
    assert [(w.scorer, w.wins, w.losses, w.ties, w.win_rate) for w in out.win_rates] == [
        ("judge", 3, 1, 0, 0.75), ("reference_similarity", 1, 2, 1, 0.375),
    ]  # fmt: skip
    assert out.win_rates[1].p_value == 0.875 and out.win_rates[0].win_rate_ci_lower == 0.4
    assert out.win_rates[0].scorer_version == out.judge.judge_version
    assert (out.judge.verdict_count, out.judge.cache_hits, out.judge.invalid_verdict_count) == (
        16, 4, 2,
    )  # fmt: skip
    assert (out.judge.judge_version_label, out.judge.judge_model) == ("v7", "support_email@v1")
