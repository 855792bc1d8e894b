"""`rollouts start/list/get/promote/rollback/pause/resume`: staged rollouts (shadow,
canary, full)."""

from __future__ import annotations

import argparse
from typing import Any

from rlaas.training.v1 import training_pb2 as trn
from rlaasctl.client import Ctl, Shown, request_id
from rlaasctl.output import enum_name, lines
from rlaasctl.parsing import command, group, paging

_STATES = {"": 0} | {
    s: trn.Rollout.State.Value(f"STATE_{s.upper()}") for s in ("running", "paused", "completed")
}
_STAGES = {"next": trn.Rollout.STAGE_UNSPECIFIED, "canary": trn.Rollout.STAGE_CANARY,
           "full": trn.Rollout.STAGE_FULL}  # fmt: skip


def _rollout_text(x: trn.Rollout) -> str:
    stage = enum_name(trn.Rollout.Stage.Name(x.stage), "STAGE_")
    state = enum_name(trn.Rollout.State.Name(x.state))
    at = f" {x.canary_percent:g}%" if x.stage == trn.Rollout.STAGE_CANARY else ""
    why = f"  ({x.rollback_reason})" if x.rollback_reason else ""
    auto = " automatic" if x.automatic_rollback else ""
    return (
        f"{x.rollout_id}  {x.candidate_policy_id} vs {x.baseline_policy_id}  "
        f"{state}/{stage}{at}{auto}{why}"
    )


def _one_rollout(r: Any) -> str:
    return _rollout_text(r.rollout)


def _start(c: Ctl, a: argparse.Namespace) -> Shown:
    plan = trn.RolloutPlan(auto_advance=not a.manual)
    if a.skip_shadow:
        plan.shadow_duration.FromSeconds(0)
    plan.canary_steps.extend(trn.CanaryStep(percent=p) for p in a.canary)
    if a.min_samples:
        plan.guard.min_samples = a.min_samples
    rollout = trn.Rollout(candidate_policy_id=a.policy_id, evaluation_id=a.evaluation, plan=plan)
    req = trn.CreateRolloutRequest(rollout=rollout, request_id=request_id(a))
    return c.call(c.training.CreateRollout, req), _one_rollout


def _list(c: Ctl, a: argparse.Namespace) -> Shown:
    req = trn.ListRolloutsRequest(skill_id=a.skill, state=_STATES[a.state],
                                  page_size=a.page_size, page_token=a.page_token)  # fmt: skip
    return c.call(c.training.ListRollouts, req), lambda r: lines(
        [_rollout_text(x) for x in r.rollouts], r.next_page_token
    )


def _get(c: Ctl, a: argparse.Namespace) -> Shown:
    req = trn.GetRolloutRequest(rollout_id=a.rollout_id)
    return c.call(c.training.GetRollout, req), _one_rollout


def _promote(c: Ctl, a: argparse.Namespace) -> Shown:
    req = trn.PromoteRolloutRequest(rollout_id=a.rollout_id, target_stage=_STAGES[a.to],
                                    reason=a.reason, request_id=request_id(a))  # fmt: skip
    return c.call(c.training.PromoteRollout, req), _one_rollout


def _rollback(c: Ctl, a: argparse.Namespace) -> Shown:
    req = trn.RollbackRolloutRequest(rollout_id=a.rollout_id, reason=a.reason,
                                     request_id=request_id(a))  # fmt: skip
    return c.call(c.training.RollbackRollout, req), _one_rollout


def _pause(c: Ctl, a: argparse.Namespace) -> Shown:
    req = trn.PauseRolloutRequest(rollout_id=a.rollout_id, request_id=request_id(a))
    return c.call(c.training.PauseRollout, req), _one_rollout


def _resume(c: Ctl, a: argparse.Namespace) -> Shown:
    req = trn.ResumeRolloutRequest(rollout_id=a.rollout_id, request_id=request_id(a))
    return c.call(c.training.ResumeRollout, req), _one_rollout


def register(sub: Any) -> None:
    rollouts = group(sub, "rollouts", "staged rollouts: shadow, canary, full")
    x = command(rollouts, "start", "roll out a CANDIDATE policy", _start)
    x.add_argument("policy_id", help="the candidate, skill@vN")
    x.add_argument("--canary", type=float, nargs="+", default=[],
                   help="canary percentages, increasing (default 5 25 50)")  # fmt: skip
    x.add_argument("--skip-shadow", action="store_true", help="go straight to the canary")
    x.add_argument("--manual", action="store_true",
                   help="wait for `rollouts promote` at each stage")  # fmt: skip
    x.add_argument("--min-samples", type=int, default=0,
                   help="rewarded requests per arm before the guard judges")  # fmt: skip
    x.add_argument("--evaluation", default="", help="a passed evaluation of the candidate")
    x = command(rollouts, "list", "the tenant's rollouts, newest first", _list)
    x.add_argument("--skill", default="", help="only this skill's")
    x.add_argument("--state", choices=[s for s in _STATES if s], default="",
                   help="only rollouts in this state")  # fmt: skip
    paging(x)
    x = command(rollouts, "get", "one rollout: stage, state, arm metrics", _get)
    x.add_argument("rollout_id", help="the rollout id")
    x = command(rollouts, "promote", "advance a rollout now", _promote)
    x.add_argument("rollout_id", help="the rollout id")
    x.add_argument("--to", choices=list(_STAGES), default="next",
                   help="the next canary step (default), canary or full")  # fmt: skip
    x.add_argument("--reason", required=True, help="why (audit log)")
    x = command(rollouts, "rollback", "return the traffic to the baseline now", _rollback)
    x.add_argument("rollout_id", help="the rollout id")
    x.add_argument("--reason", required=True, help="why (audit log)")
    for name, help, handler in (
        ("pause", "hold a rollout at its stage (the guard still rolls back)", _pause),
        ("resume", "resume a paused rollout", _resume),
    ):
        x = command(rollouts, name, help, handler)
        x.add_argument("rollout_id", help="the rollout id")
