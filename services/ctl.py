"""``rlaasctl``: the operator's CLI over the public gRPC API (policies, deployments,
promotions, rollbacks, traffic, learning loops, rollouts, preference datasets, training
runs, evaluations, the audit log).

Auth: ``--api-key`` or ``RLAAS_API_KEY``; server: ``--target`` or ``RLAAS_TARGET``.
``--output json`` prints the API's own JSON (proto3 JSON names). Exit codes: 0 ok,
2 bad usage or INVALID_ARGUMENT, 3 NOT_FOUND, 4 UNAUTHENTICATED / PERMISSION_DENIED,
5 FAILED_PRECONDITION / ABORTED / ALREADY_EXISTS, 6 UNAVAILABLE, 1 anything else.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

import grpc
from google.protobuf import json_format
from google.protobuf.message import Message

from rlaas.registry.v1 import registry_pb2 as reg
from rlaas.registry.v1 import registry_pb2_grpc
from rlaas.training.v1 import training_pb2 as trn
from rlaas.training.v1 import training_pb2_grpc

EXIT = {
    grpc.StatusCode.INVALID_ARGUMENT: 2,
    grpc.StatusCode.NOT_FOUND: 3,
    grpc.StatusCode.UNAUTHENTICATED: 4,
    grpc.StatusCode.PERMISSION_DENIED: 4,
    grpc.StatusCode.FAILED_PRECONDITION: 5,
    grpc.StatusCode.ABORTED: 5,
    grpc.StatusCode.ALREADY_EXISTS: 5,
    grpc.StatusCode.UNAVAILABLE: 6,
}


class Ctl:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.channel = grpc.insecure_channel(args.target)
        self.registry = registry_pb2_grpc.RegistryServiceStub(self.channel)
        self.training = training_pb2_grpc.TrainingServiceStub(self.channel)
        self.metadata = (("authorization", f"Bearer {args.api_key}"),)

    def call(self, rpc: Callable[..., Message], request: Message) -> Message:
        return rpc(request, metadata=self.metadata, timeout=self.args.timeout)

    def emit(self, message: Message, text: Callable[[Any], str]) -> None:
        if self.args.output == "json":
            print(json_format.MessageToJson(message, indent=2))
        else:
            print(text(message))


def _rid(args: argparse.Namespace) -> str:
    return args.request_id or str(uuid.uuid4())


def _deployment_text(d: reg.Deployment) -> str:
    strategy = d.traffic.WhichOneof("strategy") or "baseline only"
    detail = ""
    if strategy == "canary":
        detail = f" {d.traffic.canary.policy_id} at {d.traffic.canary.percent:g}%"
    shadow = list(d.traffic.shadow.policy_ids)
    return (
        f"{d.skill_id}: baseline {d.baseline_policy_id or '-'} | {strategy}{detail}"
        f"{' | shadow ' + ','.join(shadow) if shadow else ''} | revision {d.revision}"
    )


def _loop_text(x: trn.LearningLoop) -> str:
    state = trn.LearningLoop.State.Name(x.state).removeprefix("STATE_").lower()
    phase = trn.LearningLoop.Phase.Name(x.phase).removeprefix("PHASE_").lower()
    return f"{x.learning_loop_id}  skill={x.skill_id}  {state}/{phase}  iteration={x.iteration}"


def _rollout_text(x: trn.Rollout) -> str:
    stage = trn.Rollout.Stage.Name(x.stage).removeprefix("STAGE_").lower()
    state = trn.Rollout.State.Name(x.state).removeprefix("STATE_").lower()
    at = f" {x.canary_percent:g}%" if x.stage == trn.Rollout.STAGE_CANARY else ""
    why = f"  ({x.rollback_reason})" if x.rollback_reason else ""
    auto = " automatic" if x.automatic_rollback else ""
    return (
        f"{x.rollout_id}  {x.candidate_policy_id} vs {x.baseline_policy_id}  "
        f"{state}/{stage}{at}{auto}{why}"
    )


def _rollouts(c: Ctl, a: argparse.Namespace) -> None:
    if a.action == "start":
        plan = trn.RolloutPlan(auto_advance=not a.manual)
        if a.skip_shadow:
            plan.shadow_duration.FromSeconds(0)
        plan.canary_steps.extend(trn.CanaryStep(percent=p) for p in a.canary)
        if a.min_samples:
            plan.guard.min_samples = a.min_samples
        rollout = trn.Rollout(candidate_policy_id=a.policy_id, plan=plan)
        resp = c.call(c.training.CreateRollout,
                      trn.CreateRolloutRequest(rollout=rollout, request_id=_rid(a)))  # fmt: skip
    elif a.action == "list":
        resp = c.call(c.training.ListRollouts,
                      trn.ListRolloutsRequest(skill_id=a.skill, page_size=1000))  # fmt: skip
        c.emit(resp, lambda r: "\n".join(_rollout_text(x) for x in r.rollouts))
        return
    elif a.action == "get":
        resp = c.call(c.training.GetRollout, trn.GetRolloutRequest(rollout_id=a.rollout_id))
    elif a.action == "promote":
        target = {"next": trn.Rollout.STAGE_UNSPECIFIED, "canary": trn.Rollout.STAGE_CANARY,
                  "full": trn.Rollout.STAGE_FULL}[a.to]  # fmt: skip
        resp = c.call(c.training.PromoteRollout, trn.PromoteRolloutRequest(
            rollout_id=a.rollout_id, target_stage=target, reason=a.reason,
            request_id=_rid(a)))  # fmt: skip
    elif a.action == "rollback":
        resp = c.call(c.training.RollbackRollout, trn.RollbackRolloutRequest(
            rollout_id=a.rollout_id, reason=a.reason, request_id=_rid(a)))  # fmt: skip
    elif a.action == "pause":
        pause = trn.PauseRolloutRequest(rollout_id=a.rollout_id, request_id=_rid(a))
        resp = c.call(c.training.PauseRollout, pause)
    else:
        resume = trn.ResumeRolloutRequest(rollout_id=a.rollout_id, request_id=_rid(a))
        resp = c.call(c.training.ResumeRollout, resume)
    c.emit(resp, lambda r: _rollout_text(r.rollout))


def _dataset_text(x: trn.PreferenceDataset) -> str:
    state = trn.PreferenceDataset.State.Name(x.state).removeprefix("STATE_").lower()
    if x.state == trn.PreferenceDataset.STATE_FAILED:
        detail = f"({x.error.message})"
    else:
        detail = (
            f"pairs={x.pair_count} (train {x.train_pair_count}, eval {x.eval_pair_count})  "
            f"sha256={x.content_sha256[:12]}"
        )
    return f"{x.dataset_id}  {x.skill_id} v{x.version}  {state}  {detail}"


_FORMATS = {"dpo": trn.DATASET_FORMAT_DPO_JSONL, "openai": trn.DATASET_FORMAT_OPENAI_CHAT_JSONL,
            "anthropic": trn.DATASET_FORMAT_ANTHROPIC_JSONL,
            "parquet": trn.DATASET_FORMAT_PARQUET}  # fmt: skip
_SPLITS = {"all": trn.DATASET_SPLIT_UNSPECIFIED, "train": trn.DATASET_SPLIT_TRAIN,
           "eval": trn.DATASET_SPLIT_EVAL}  # fmt: skip
_DATASET_STATES = {"": trn.PreferenceDataset.STATE_UNSPECIFIED,
                   "ready": trn.PreferenceDataset.STATE_READY,
                   "failed": trn.PreferenceDataset.STATE_FAILED,
                   "building": trn.PreferenceDataset.STATE_BUILDING}  # fmt: skip


def _new_dataset(a: argparse.Namespace) -> trn.PreferenceDataset:
    config = trn.DatasetBuildConfig(
        min_reward_margin=a.min_reward_margin, max_pairs=a.max_pairs,
        eval_fraction=a.eval_fraction, seed=a.seed, policy_ids=a.policy,
        pair_sources=[trn.PairSource.Value(f"PAIR_SOURCE_{s.upper()}") for s in a.source],
    )  # fmt: skip
    dataset = trn.PreferenceDataset(
        skill_id=a.skill, display_name=a.display_name, build_config=config
    )
    if a.start is not None:
        dataset.start_time.FromDatetime(a.start)
    if a.end is not None:
        dataset.end_time.FromDatetime(a.end)
    return dataset


def _iso_time(value: str) -> datetime:
    """An ISO 8601 time; without a zone it is UTC (protobuf reads naive times so)."""
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not an ISO 8601 time") from None


def _datasets(c: Ctl, a: argparse.Namespace) -> None:
    if a.action == "create":
        create = trn.CreatePreferenceDatasetRequest(
            preference_dataset=_new_dataset(a), request_id=_rid(a)
        )
        resp = c.call(c.training.CreatePreferenceDataset, create)
        c.emit(resp, lambda r: _dataset_text(r.preference_dataset))
    elif a.action == "get":
        get = trn.GetPreferenceDatasetRequest(dataset_id=a.dataset_id)
        c.emit(c.call(c.training.GetPreferenceDataset, get),
               lambda r: _dataset_text(r.preference_dataset))  # fmt: skip
    elif a.action == "list":
        listed = trn.ListPreferenceDatasetsRequest(
            skill_id=a.skill, state=_DATASET_STATES[a.state], page_size=1000
        )
        c.emit(c.call(c.training.ListPreferenceDatasets, listed),
               lambda r: "\n".join(_dataset_text(x) for x in r.preference_datasets))  # fmt: skip
    else:
        export = trn.ExportDatasetRequest(
            dataset_id=a.dataset_id, format=_FORMATS[a.format], split=_SPLITS[a.split],
            request_id=_rid(a),
        )  # fmt: skip
        c.emit(c.call(c.training.ExportDataset, export),
               lambda r: f"{r.uri}  rows={r.row_count}  bytes={r.size_bytes}  "
                         f"sha256={r.sha256}")  # fmt: skip


_METHODS = {"dpo": trn.TRAINING_METHOD_DPO, "ipo": trn.TRAINING_METHOD_IPO,
            "sft": trn.TRAINING_METHOD_SFT}  # fmt: skip
_ACCELERATORS = {"auto": trn.ACCELERATOR_UNSPECIFIED, "cpu": trn.ACCELERATOR_CPU,
                 "gpu": trn.ACCELERATOR_GPU}  # fmt: skip
_RUN_STATES = {"": 0} | {
    s: trn.TrainingRun.State.Value(f"STATE_{s.upper()}")
    for s in ("queued", "running", "succeeded", "failed", "cancelled")
}
_EVAL_STATES = {"": 0} | {
    s: trn.Evaluation.State.Value(f"STATE_{s.upper()}")
    for s in ("queued", "running", "succeeded", "failed")
}
_HYPERPARAMETERS = ("learning_rate", "num_epochs", "max_steps", "batch_size", "beta",
                    "max_length", "seed")  # fmt: skip


def _run_text(x: trn.TrainingRun) -> str:
    state = trn.TrainingRun.State.Name(x.state).removeprefix("STATE_").lower()
    if x.state == trn.TrainingRun.STATE_FAILED:
        detail = f"({x.error.message})"
    else:
        total = x.progress.total_steps or "?"
        detail = f"step {x.progress.step}/{total}  loss={x.progress.loss:.4f}"
    produced = x.lineage.produced_policy_id
    return (
        f"{x.training_run_id}  {x.skill_id}  {state}  {detail}  "
        f"{x.parent_policy_id} -> {produced or '-'}"
    )


def _new_run(a: argparse.Namespace) -> trn.TrainingRun:
    lora = trn.LoraConfig(rank=a.rank, alpha=a.alpha, dropout=a.dropout,
                          target_modules=a.target_module, qlora=a.qlora)  # fmt: skip
    hyper = trn.TrainingHyperparameters()
    for name in _HYPERPARAMETERS:  # unset stays unset: the server's defaults apply
        if getattr(a, name) is not None:
            setattr(hyper, name, getattr(a, name))
    config = trn.TrainingConfig(method=_METHODS[a.method], lora=lora, hyperparameters=hyper,
                                accelerator=_ACCELERATORS[a.accelerator])  # fmt: skip
    return trn.TrainingRun(
        skill_id=a.skill, dataset_id=a.dataset, config=config, parent_policy_id=a.parent,
        base_model=a.base_model, display_name=a.display_name,
    )  # fmt: skip


def _runs(c: Ctl, a: argparse.Namespace) -> None:
    if a.action == "create":
        create = trn.CreateTrainingRunRequest(training_run=_new_run(a), request_id=_rid(a))
        resp = c.call(c.training.CreateTrainingRun, create)
    elif a.action == "list":
        listed = trn.ListTrainingRunsRequest(
            skill_id=a.skill, state=_RUN_STATES[a.state], page_size=1000
        )
        c.emit(c.call(c.training.ListTrainingRuns, listed),
               lambda r: "\n".join(_run_text(x) for x in r.training_runs))  # fmt: skip
        return
    elif a.action == "get":
        get = trn.GetTrainingRunRequest(training_run_id=a.training_run_id)
        resp = c.call(c.training.GetTrainingRun, get)
    else:
        cancel = trn.CancelTrainingRunRequest(training_run_id=a.training_run_id, request_id=_rid(a))
        resp = c.call(c.training.CancelTrainingRun, cancel)
    c.emit(resp, lambda r: _run_text(r.training_run))


def _eval_text(x: trn.Evaluation) -> str:
    state = trn.Evaluation.State.Name(x.state).removeprefix("STATE_").lower()
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


def _new_eval(a: argparse.Namespace) -> trn.Evaluation:
    config = trn.EvaluationConfig(max_examples=a.max_examples, safety_suites=a.safety_suite,
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


def _evals(c: Ctl, a: argparse.Namespace) -> None:
    if a.action == "create":
        create = trn.CreateEvaluationRequest(evaluation=_new_eval(a), request_id=_rid(a))
        resp = c.call(c.training.CreateEvaluation, create)
    elif a.action == "list":
        listed = trn.ListEvaluationsRequest(
            skill_id=a.skill, candidate_policy_id=a.candidate, state=_EVAL_STATES[a.state],
            page_size=1000,
        )  # fmt: skip
        c.emit(c.call(c.training.ListEvaluations, listed),
               lambda r: "\n".join(_eval_text(x) for x in r.evaluations))  # fmt: skip
        return
    else:
        get = trn.GetEvaluationRequest(evaluation_id=a.evaluation_id)
        resp = c.call(c.training.GetEvaluation, get)
    c.emit(resp, lambda r: _eval_text(r.evaluation))


def run(args: argparse.Namespace) -> int:
    ctl = Ctl(args)
    a, c = args, ctl
    if a.command == "policies" and a.action == "list":
        resp = c.call(
            c.registry.ListPolicies, reg.ListPoliciesRequest(skill_id=a.skill, page_size=1000)
        )
        assert isinstance(resp, reg.ListPoliciesResponse)
        c.emit(resp, lambda r: "\n".join(f"{p.policy_id}  {reg.Policy.State.Name(p.state)}"
                                         f"  {p.adapter.artifact_uri or '(no adapter)'}"
                                         for p in r.policies))  # fmt: skip
    elif a.command == "policies" and a.action == "get":
        c.emit(c.call(c.registry.GetPolicy, reg.GetPolicyRequest(policy_id=a.policy_id)),
               lambda r: str(r.policy))  # fmt: skip
    elif a.command == "status":
        resp = c.call(c.registry.GetDeployment, reg.GetDeploymentRequest(skill_id=a.skill))
        c.emit(resp, lambda r: _deployment_text(r.deployment))
    elif a.command == "promote":
        resp = c.call(c.registry.PromotePolicy, reg.PromotePolicyRequest(
            skill_id=a.skill, policy_id=a.policy_id, reason=a.reason,
            expected_revision=a.expected_revision, request_id=_rid(a)))  # fmt: skip
        c.emit(resp, lambda r: "promoted: " + _deployment_text(r.deployment))
    elif a.command == "rollback":
        resp = c.call(c.registry.RollbackDeployment, reg.RollbackDeploymentRequest(
            skill_id=a.skill, to_revision=a.to_revision, reason=a.reason,
            expected_revision=a.expected_revision, request_id=_rid(a)))  # fmt: skip
        c.emit(resp, lambda r: "rolled back: " + _deployment_text(r.deployment))
    elif a.command == "canary":
        traffic = reg.TrafficConfig(
            canary=reg.CanaryTraffic(policy_id=a.policy_id, percent=a.percent)
        )
        resp = c.call(c.registry.SetTraffic, reg.SetTrafficRequest(
            skill_id=a.skill, traffic=traffic, reason=a.reason, request_id=_rid(a)))  # fmt: skip
        c.emit(resp, lambda r: _deployment_text(r.deployment))
    elif a.command == "audit":
        resp = c.call(c.registry.VerifyAuditLog, reg.VerifyAuditLogRequest())
        c.emit(resp, lambda r: str(r).strip() or "audit log verified")
    elif a.command == "rollouts":
        _rollouts(c, a)
    elif a.command == "datasets":
        _datasets(c, a)
    elif a.command == "runs":
        _runs(c, a)
    elif a.command == "evals":
        _evals(c, a)
    elif a.command == "loops":
        if a.action == "start":
            loop = trn.LearningLoop(skill_id=a.skill, config=trn.LearningLoopConfig(
                min_new_feedback=a.min_new_feedback, max_iterations=a.max_iterations))  # fmt: skip
            start = trn.StartLearningLoopRequest(learning_loop=loop, request_id=_rid(a))
            resp = c.call(c.training.StartLearningLoop, start)
            c.emit(resp, lambda r: _loop_text(r.learning_loop))
        elif a.action == "list":
            resp = c.call(
                c.training.ListLearningLoops, trn.ListLearningLoopsRequest(page_size=1000)
            )
            c.emit(resp, lambda r: "\n".join(_loop_text(x) for x in r.learning_loops))
        elif a.action == "get":
            resp = c.call(c.training.GetLearningLoop,
                          trn.GetLearningLoopRequest(learning_loop_id=a.loop_id))  # fmt: skip
            c.emit(resp, lambda r: _loop_text(r.learning_loop))
        else:
            rpc = (
                c.training.PauseLearningLoop
                if a.action == "pause"
                else c.training.ResumeLearningLoop
            )
            cls = (
                trn.PauseLearningLoopRequest
                if a.action == "pause"
                else trn.ResumeLearningLoopRequest
            )
            resp = c.call(rpc, cls(learning_loop_id=a.loop_id, request_id=_rid(a)))
            c.emit(resp, lambda r: _loop_text(r.learning_loop))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rlaasctl", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--target", default=os.environ.get("RLAAS_TARGET", "127.0.0.1:50051"))
    p.add_argument("--api-key", default=os.environ.get("RLAAS_API_KEY", ""))
    p.add_argument("--output", choices=["text", "json"], default="text")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds per call")
    p.add_argument("--request-id", default="", help="idempotency key (default: a new UUID)")
    sub = p.add_subparsers(dest="command", required=True)

    pol = sub.add_parser("policies", help="list or show policies")
    polsub = pol.add_subparsers(dest="action", required=True)
    x = polsub.add_parser("list", help="the policies of a skill")
    x.add_argument("skill")
    x = polsub.add_parser("get", help="one policy")
    x.add_argument("policy_id")

    x = sub.add_parser("status", help="a skill's deployment: baseline, traffic, revision")
    x.add_argument("skill")
    x = sub.add_parser("promote", help="make a policy the skill's baseline (100%% of traffic)")
    x.add_argument("skill")
    x.add_argument("policy_id")
    x.add_argument("--reason", required=True)
    x.add_argument("--expected-revision", type=int, default=0)
    x = sub.add_parser("rollback", help="return the skill to its previous deployment")
    x.add_argument("skill")
    x.add_argument("--reason", required=True)
    x.add_argument("--to-revision", type=int, default=0)
    x.add_argument("--expected-revision", type=int, default=0)
    x = sub.add_parser("canary", help="send a percentage of traffic to a candidate")
    x.add_argument("skill")
    x.add_argument("policy_id")
    x.add_argument("--percent", type=float, required=True)
    x.add_argument("--reason", required=True)
    sub.add_parser("audit", help="verify the tenant's hash-chained audit log")

    loops = sub.add_parser("loops", help="learning loops")
    lsub = loops.add_subparsers(dest="action", required=True)
    x = lsub.add_parser("start", help="start a learning loop for a skill")
    x.add_argument("skill")
    x.add_argument("--min-new-feedback", type=int, default=0)
    x.add_argument("--max-iterations", type=int, default=0)
    lsub.add_parser("list", help="the tenant's loops")
    for action in ("get", "pause", "resume"):
        x = lsub.add_parser(action, help=f"{action} a loop")
        x.add_argument("loop_id")

    rollouts = sub.add_parser("rollouts", help="staged rollouts: shadow, canary, full")
    rsub = rollouts.add_subparsers(dest="action", required=True)
    x = rsub.add_parser("start", help="roll out a CANDIDATE policy")
    x.add_argument("policy_id", help="skill@vN")
    x.add_argument("--canary", type=float, nargs="+", default=[],
                   help="canary percentages, increasing (default 5 25 50)")  # fmt: skip
    x.add_argument("--skip-shadow", action="store_true", help="go straight to the canary")
    x.add_argument("--manual", action="store_true",
                   help="wait for `rollouts promote` at each stage")  # fmt: skip
    x.add_argument("--min-samples", type=int, default=0,
                   help="rewarded requests per arm before the guard judges")  # fmt: skip
    x = rsub.add_parser("list", help="the tenant's rollouts, newest first")
    x.add_argument("--skill", default="")
    x = rsub.add_parser("get", help="one rollout")
    x.add_argument("rollout_id")
    x = rsub.add_parser("promote", help="advance a rollout now")
    x.add_argument("rollout_id")
    x.add_argument("--to", choices=["next", "canary", "full"], default="next")
    x.add_argument("--reason", required=True)
    x = rsub.add_parser("rollback", help="return the traffic to the baseline now")
    x.add_argument("rollout_id")
    x.add_argument("--reason", required=True)
    for action in ("pause", "resume"):
        x = rsub.add_parser(action, help=f"{action} a rollout")
        x.add_argument("rollout_id")
    _dataset_parsers(sub)
    _run_parsers(sub)
    _eval_parsers(sub)
    return p


def _dataset_parsers(sub: Any) -> None:
    datasets = sub.add_parser("datasets", help="preference datasets: build, inspect, export")
    dsub = datasets.add_subparsers(dest="action", required=True)
    x = dsub.add_parser("create", help="build a dataset version from a skill's telemetry")
    x.add_argument("skill")
    x.add_argument("--display-name", default="")
    x.add_argument(
        "--start", type=_iso_time, help="ISO time; interactions from then (default: all)"
    )
    x.add_argument(
        "--end", type=_iso_time, help="ISO time; interactions before then (default: now)"
    )
    x.add_argument("--source", nargs="+", default=[],
                   choices=["edit", "correction", "reward_ranked"],
                   help="pair sources (default: all)")  # fmt: skip
    x.add_argument("--policy", nargs="+", default=[], help="only these policies' interactions")
    x.add_argument("--eval-fraction", type=float, default=0.0, help="[0, 0.5] (default 0.1)")
    x.add_argument("--min-reward-margin", type=float, default=0.0)
    x.add_argument("--max-pairs", type=int, default=0, help="0: no limit")
    x.add_argument("--seed", type=int, default=0)
    x = dsub.add_parser("get", help="one dataset")
    x.add_argument("dataset_id")
    x = dsub.add_parser("list", help="the tenant's datasets, newest first")
    x.add_argument("--skill", default="")
    x.add_argument("--state", choices=["ready", "failed", "building"], default="")
    x = dsub.add_parser("export", help="write a READY dataset to the object store")
    x.add_argument("dataset_id")
    x.add_argument("--format", choices=list(_FORMATS), required=True)
    x.add_argument("--split", choices=list(_SPLITS), default="all")


def _run_parsers(sub: Any) -> None:
    runs = sub.add_parser("runs", help="training runs: train a LoRA adapter on a dataset")
    tsub = runs.add_subparsers(dest="action", required=True)
    x = tsub.add_parser("create", help="queue a run; on success it registers a CANDIDATE")
    x.add_argument("skill")
    x.add_argument("dataset", help="a READY dataset's id (or its object-store URI)")
    x.add_argument("--method", choices=list(_METHODS), default="dpo")
    x.add_argument("--parent", default="", help="policy to start from (default: the baseline)")
    x.add_argument("--base-model", default="", help="default: the parent's")
    x.add_argument("--accelerator", choices=list(_ACCELERATORS), default="auto")
    x.add_argument("--display-name", default="")
    x.add_argument("--rank", type=int, default=0, help="LoRA rank (default 8)")
    x.add_argument("--alpha", type=float, default=0.0, help="LoRA alpha (default 2 x rank)")
    x.add_argument("--dropout", type=float, default=0.0, help="LoRA dropout (default 0.05)")
    x.add_argument("--target-module", action="append", default=[],
                   help="module to adapt, repeatable (default q_proj, v_proj)")  # fmt: skip
    x.add_argument("--qlora", action="store_true", help="4-bit base; needs a GPU worker")
    for name, kind in (("learning-rate", float), ("num-epochs", float), ("max-steps", int),
                       ("batch-size", int), ("beta", float), ("max-length", int),
                       ("seed", int)):  # fmt: skip
        x.add_argument(f"--{name}", type=kind, default=None)
    x = tsub.add_parser("list", help="the tenant's runs, newest first")
    x.add_argument("--skill", default="")
    x.add_argument("--state", choices=[s for s in _RUN_STATES if s], default="")
    for action, text in (("get", "one run, with progress and lineage"),
                         ("cancel", "cancel a QUEUED or RUNNING run")):  # fmt: skip
        x = tsub.add_parser(action, help=text)
        x.add_argument("training_run_id")


def _eval_parsers(sub: Any) -> None:
    evals = sub.add_parser("evals", help="evaluations: a candidate against the baseline")
    esub = evals.add_subparsers(dest="action", required=True)
    x = esub.add_parser("create", help="queue an evaluation of a policy")
    x.add_argument("policy_id", help="the candidate, skill@vN")
    x.add_argument("--baseline", default="", help="default: the skill's baseline")
    x.add_argument("--training-run", default="", help="the run that produced the candidate")
    x.add_argument("--display-name", default="")
    x.add_argument("--max-examples", type=int, default=0, help="golden prompts (0: default)")
    x.add_argument("--safety-suite", action="append", default=[],
                   help="jailbreak, pii_leak or red_team; repeatable (default: all)")  # fmt: skip
    x.add_argument("--confidence-level", type=float, default=0.0, help="(0, 1), default 0.95")
    x.add_argument("--min-win-rate", type=float, default=None, help="gate, default 0.5")
    x.add_argument("--max-p-value", type=float, default=None, help="gate, default 0.05")
    x.add_argument("--require-ci-above-half", action="store_true", help="gate")
    x = esub.add_parser("list", help="the tenant's evaluations, newest first")
    x.add_argument("--skill", default="")
    x.add_argument("--candidate", default="", help="only of this candidate policy")
    x.add_argument("--state", choices=[s for s in _EVAL_STATES if s], default="")
    x = esub.add_parser("get", help="one evaluation, with its result")
    x.add_argument("evaluation_id")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not args.api_key:
        print("rlaasctl: set --api-key or RLAAS_API_KEY", file=sys.stderr)
        return 2
    try:
        return run(args)
    except grpc.RpcError as err:
        code = err.code()
        detail = {"code": code.name, "message": err.details()}
        text = f"error: {code.name}: {detail['message']}"
        print(json.dumps(detail) if args.output == "json" else text, file=sys.stderr)
        return EXIT.get(code, 1)


if __name__ == "__main__":
    sys.exit(main())
