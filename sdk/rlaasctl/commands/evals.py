"""`evals create/list/get`: evaluations of a candidate against the baseline."""

from __future__ import annotations

import argparse
from typing import Any

from rlaas.training.v1 import training_pb2 as trn
from rlaasctl.client import Ctl, Shown, request_id
from rlaasctl.output import enum_name, lines
from rlaasctl.parsing import command, group, paging

_STATES = {"": 0} | {
    s: trn.Evaluation.State.Value(f"STATE_{s.upper()}")
    for s in ("queued", "running", "succeeded", "failed")
}


def _eval_text(x: trn.Evaluation) -> str:
    state = enum_name(trn.Evaluation.State.Name(x.state))
    head = f"{x.evaluation_id}  {x.candidate_policy_id} vs {x.baseline_policy_id}  {state}"
    if x.state == trn.Evaluation.STATE_FAILED:
        return f"{head}  ({x.error.message})"
    if x.state != trn.Evaluation.STATE_SUCCEEDED:
        return head
    r = x.result
    verdict = "passed" if r.passed else "failed: " + "; ".join(r.failure_reasons)
    return (
        f"{head}  win-rate {r.win_rate:.3f} [{r.win_rate_ci_lower:.3f}, "
        f"{r.win_rate_ci_upper:.3f}] ({r.confidence_level:.0%})  p={r.p_value:.4f}  {verdict}"
    )


def _one_eval(r: Any) -> str:
    return _eval_text(r.evaluation)


def _new_eval(a: argparse.Namespace) -> trn.Evaluation:
    config = trn.EvaluationConfig(dataset_id=a.dataset, max_examples=a.max_examples,
                                  safety_suites=a.safety_suite,
                                  confidence_level=a.confidence_level)  # fmt: skip
    if a.min_win_rate is not None or a.max_p_value is not None or a.require_ci_above_half:
        config.gate.CopyFrom(trn.EvaluationGate(
            min_win_rate=a.min_win_rate or 0.0, max_p_value=a.max_p_value or 0.0,
            require_ci_above_half=a.require_ci_above_half,
        ))  # fmt: skip
    return trn.Evaluation(
        candidate_policy_id=a.policy_id, baseline_policy_id=a.baseline,
        training_run_id=a.training_run, display_name=a.display_name, config=config,
    )  # fmt: skip


def _create(c: Ctl, a: argparse.Namespace) -> Shown:
    req = trn.CreateEvaluationRequest(evaluation=_new_eval(a), request_id=request_id(a))
    return c.call(c.training.CreateEvaluation, req), _one_eval


def _list(c: Ctl, a: argparse.Namespace) -> Shown:
    req = trn.ListEvaluationsRequest(
        skill_id=a.skill, candidate_policy_id=a.candidate, state=_STATES[a.state],
        page_size=a.page_size, page_token=a.page_token,
    )  # fmt: skip
    return c.call(c.training.ListEvaluations, req), lambda r: lines(
        [_eval_text(x) for x in r.evaluations], r.next_page_token
    )


def _get(c: Ctl, a: argparse.Namespace) -> Shown:
    req = trn.GetEvaluationRequest(evaluation_id=a.evaluation_id)
    return c.call(c.training.GetEvaluation, req), _one_eval


def register(sub: Any) -> None:
    evals = group(sub, "evals", "evaluations: a candidate against the baseline")
    x = command(evals, "create", "queue an evaluation of a policy", _create)
    x.add_argument("policy_id", help="the candidate, skill@vN")
    x.add_argument("--baseline", default="", help="default: the skill's baseline")
    x.add_argument("--training-run", default="", help="the run that produced the candidate")
    x.add_argument("--display-name", default="", help="human-readable name")
    x.add_argument("--dataset", default="",
                   help="a READY dataset whose eval split gives the prompts")  # fmt: skip
    x.add_argument("--max-examples", type=int, default=0, help="prompts to use (0: all)")
    x.add_argument("--safety-suite", action="append", default=[],
                   help="jailbreak, pii_leak or red_team; repeatable (default: all)")  # fmt: skip
    x.add_argument("--confidence-level", type=float, default=0.0, help="(0, 1), default 0.95")
    x.add_argument("--min-win-rate", type=float, default=None, help="gate, default 0.5")
    x.add_argument("--max-p-value", type=float, default=None, help="gate, default 0.05")
    x.add_argument("--require-ci-above-half", action="store_true", help="gate")
    x = command(evals, "list", "the tenant's evaluations, newest first", _list)
    x.add_argument("--skill", default="", help="only this skill's")
    x.add_argument("--candidate", default="", help="only of this candidate policy")
    x.add_argument("--state", choices=[s for s in _STATES if s], default="",
                   help="only evaluations in this state")  # fmt: skip
    paging(x)
    x = command(evals, "get", "one evaluation, with its result", _get)
    x.add_argument("evaluation_id", help="the evaluation id")
