"""A skill's deployment: `status`, `deployments list`, and the top-level verbs that change
it, `promote`, `rollback`, `canary` and `traffic` (canary / A-B / bandit / shadow)."""

from __future__ import annotations

import argparse
from typing import Any

from rlaas.registry.v1 import registry_pb2 as reg
from rlaasctl.client import Ctl, Shown, request_id
from rlaasctl.output import lines
from rlaasctl.parsing import command, group, paging


def deployment_text(d: reg.Deployment) -> str:
    strategy = d.traffic.WhichOneof("strategy") or "baseline only"
    detail = ""
    if strategy == "canary":
        detail = f" {d.traffic.canary.policy_id} at {d.traffic.canary.percent:g}%"
    elif strategy == "ab_split":
        detail = " " + ",".join(f"{a.policy_id}={a.weight:g}" for a in d.traffic.ab_split.arms)
    elif strategy == "bandit":
        detail = " " + ",".join(a.policy_id for a in d.traffic.bandit.arms)
    shadow = list(d.traffic.shadow.policy_ids)
    return (
        f"{d.skill_id}: baseline {d.baseline_policy_id or '-'} | {strategy}{detail}"
        f"{' | shadow ' + ','.join(shadow) if shadow else ''} | revision {d.revision}"
    )


# ---- argument types -------------------------------------------------------------------


def _arm(value: str) -> reg.TrafficArm:
    policy, sep, weight = value.partition("=")
    try:
        return reg.TrafficArm(policy_id=policy, weight=float(weight) if sep else 1.0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not POLICY[=WEIGHT]") from None


def _canary_arg(value: str) -> reg.CanaryTraffic:
    policy, sep, percent = value.partition("=")
    try:
        return reg.CanaryTraffic(policy_id=policy, percent=float(percent) if sep else "")
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"{value!r} is not POLICY=PERCENT") from None


# ---- handlers -------------------------------------------------------------------------


def _status(c: Ctl, a: argparse.Namespace) -> Shown:
    resp = c.call(c.registry.GetDeployment, reg.GetDeploymentRequest(skill_id=a.skill))
    return resp, lambda r: deployment_text(r.deployment)


def _list(c: Ctl, a: argparse.Namespace) -> Shown:
    req = reg.ListDeploymentsRequest(page_size=a.page_size, page_token=a.page_token)
    return c.call(c.registry.ListDeployments, req), lambda r: lines(
        [deployment_text(d) for d in r.deployments], r.next_page_token
    )


def _promote(c: Ctl, a: argparse.Namespace) -> Shown:
    req = reg.PromotePolicyRequest(skill_id=a.skill, policy_id=a.policy_id, reason=a.reason,
                                   expected_revision=a.expected_revision,
                                   request_id=request_id(a))  # fmt: skip
    resp = c.call(c.registry.PromotePolicy, req)
    return resp, lambda r: "promoted: " + deployment_text(r.deployment)


def _rollback(c: Ctl, a: argparse.Namespace) -> Shown:
    req = reg.RollbackDeploymentRequest(skill_id=a.skill, to_revision=a.to_revision,
                                        reason=a.reason, expected_revision=a.expected_revision,
                                        request_id=request_id(a))  # fmt: skip
    resp = c.call(c.registry.RollbackDeployment, req)
    return resp, lambda r: "rolled back: " + deployment_text(r.deployment)


def _set_traffic(c: Ctl, a: argparse.Namespace, traffic: reg.TrafficConfig) -> Shown:
    req = reg.SetTrafficRequest(skill_id=a.skill, traffic=traffic, reason=a.reason,
                                expected_revision=a.expected_revision,
                                request_id=request_id(a))  # fmt: skip
    return c.call(c.registry.SetTraffic, req), lambda r: deployment_text(r.deployment)


def _canary(c: Ctl, a: argparse.Namespace) -> Shown:
    canary = reg.CanaryTraffic(policy_id=a.policy_id, percent=a.percent)
    return _set_traffic(c, a, reg.TrafficConfig(canary=canary))


def _traffic(c: Ctl, a: argparse.Namespace) -> Shown:
    traffic = reg.TrafficConfig()
    if a.shadow:
        traffic.shadow.CopyFrom(reg.ShadowTraffic(policy_ids=a.shadow, sample_rate=a.shadow_rate))
    if a.canary is not None:
        traffic.canary.CopyFrom(a.canary)
    elif a.ab:
        traffic.ab_split.CopyFrom(reg.AbSplitTraffic(arms=a.ab))
    elif a.bandit:
        traffic.bandit.CopyFrom(reg.BanditTraffic(
            arms=a.bandit, max_exploration=a.max_exploration,
            reward_window_hours=a.reward_window_hours,
        ))  # fmt: skip
    return _set_traffic(c, a, traffic)


# ---- the parsers ----------------------------------------------------------------------


def _revision(x: argparse.ArgumentParser) -> None:
    x.add_argument("--expected-revision", type=int, default=0,
                   help="apply only at this deployment revision (0: any)")  # fmt: skip


def register(sub: Any) -> None:
    x = command(sub, "status", "a skill's deployment: baseline, traffic, revision", _status)
    x.add_argument("skill", help="the skill")
    deployments = group(sub, "deployments", "deployments of all skills")
    paging(command(deployments, "list", "every skill's deployment", _list))

    x = command(sub, "promote", "make a CANDIDATE the skill's baseline (all traffic)",
                _promote)  # fmt: skip
    x.add_argument("skill", help="the skill")
    x.add_argument("policy_id", help="the candidate, skill@vN")
    x.add_argument("--reason", required=True, help="why (audit log)")
    _revision(x)
    x = command(sub, "rollback", "restore the skill's previous deployment revision", _rollback)
    x.add_argument("skill", help="the skill")
    x.add_argument("--reason", required=True, help="why (audit log)")
    x.add_argument("--to-revision", type=int, default=0,
                   help="the revision to restore (0: the one before the current)")  # fmt: skip
    _revision(x)
    x = command(sub, "canary", "send a percentage of traffic to a candidate", _canary)
    x.add_argument("skill", help="the skill")
    x.add_argument("policy_id", help="the candidate, skill@vN")
    x.add_argument("--percent", type=float, required=True, help="[0, 100]")
    x.add_argument("--reason", required=True, help="why (audit log)")
    _revision(x)
    x = command(sub, "traffic", "replace a skill's non-baseline traffic (no strategy: "
                "all to the baseline)", _traffic)  # fmt: skip
    x.add_argument("skill", help="the skill")
    x.add_argument("--reason", required=True, help="why (audit log)")
    strategy = x.add_mutually_exclusive_group()
    strategy.add_argument("--canary", type=_canary_arg, metavar="POLICY=PERCENT",
                          help="canary: PERCENT of users to POLICY")  # fmt: skip
    strategy.add_argument("--ab", type=_arm, nargs="+", default=[], metavar="POLICY=W",
                          help="sticky A/B split over these arms")  # fmt: skip
    strategy.add_argument("--bandit", type=_arm, nargs="+", default=[], metavar="POLICY=W",
                          help="Thompson-sampling bandit over these arms")  # fmt: skip
    x.add_argument("--max-exploration", type=float, default=0.0,
                   help="bandit: max share off the baseline (0: server default)")  # fmt: skip
    x.add_argument("--reward-window-hours", type=int, default=0,
                   help="bandit: only rewards this recent (0: all)")  # fmt: skip
    x.add_argument("--shadow", nargs="+", default=[], metavar="POLICY",
                   help="policies dual-run in shadow")  # fmt: skip
    x.add_argument("--shadow-rate", type=float, default=0.0,
                   help="fraction of requests dual-run (0: server default 1)")  # fmt: skip
    _revision(x)
