"""`runs create/list/get/cancel`: training runs, a LoRA adapter trained on a dataset."""

from __future__ import annotations

import argparse
from typing import Any

from rlaas.training.v1 import training_pb2 as trn
from rlaasctl.client import Ctl, Shown, request_id
from rlaasctl.output import enum_name, lines
from rlaasctl.parsing import command, group, paging

_METHODS = {"dpo": trn.TRAINING_METHOD_DPO, "ipo": trn.TRAINING_METHOD_IPO,
            "sft": trn.TRAINING_METHOD_SFT}  # fmt: skip
_ACCELERATORS = {"auto": trn.ACCELERATOR_UNSPECIFIED, "cpu": trn.ACCELERATOR_CPU,
                 "gpu": trn.ACCELERATOR_GPU}  # fmt: skip
_STATES = {"": 0} | {
    s: trn.TrainingRun.State.Value(f"STATE_{s.upper()}")
    for s in ("queued", "running", "succeeded", "failed", "cancelled")
}
_HYPERPARAMETERS = ("learning_rate", "num_epochs", "max_steps", "batch_size", "beta",
                    "max_length", "seed")  # fmt: skip


def _run_text(x: trn.TrainingRun) -> str:
    state = enum_name(trn.TrainingRun.State.Name(x.state))
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


def _one_run(r: Any) -> str:
    return _run_text(r.training_run)


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


def _create(c: Ctl, a: argparse.Namespace) -> Shown:
    req = trn.CreateTrainingRunRequest(training_run=_new_run(a), request_id=request_id(a))
    return c.call(c.training.CreateTrainingRun, req), _one_run


def _list(c: Ctl, a: argparse.Namespace) -> Shown:
    req = trn.ListTrainingRunsRequest(skill_id=a.skill, state=_STATES[a.state],
                                      page_size=a.page_size, page_token=a.page_token)  # fmt: skip
    return c.call(c.training.ListTrainingRuns, req), lambda r: lines(
        [_run_text(x) for x in r.training_runs], r.next_page_token
    )


def _get(c: Ctl, a: argparse.Namespace) -> Shown:
    req = trn.GetTrainingRunRequest(training_run_id=a.training_run_id)
    return c.call(c.training.GetTrainingRun, req), _one_run


def _cancel(c: Ctl, a: argparse.Namespace) -> Shown:
    req = trn.CancelTrainingRunRequest(training_run_id=a.training_run_id,
                                       request_id=request_id(a))  # fmt: skip
    return c.call(c.training.CancelTrainingRun, req), _one_run


def register(sub: Any) -> None:
    runs = group(sub, "runs", "training runs: train a LoRA adapter on a dataset")
    x = command(runs, "create", "queue a run; on success it registers a CANDIDATE", _create)
    x.add_argument("skill", help="the skill")
    x.add_argument("dataset", help="a READY dataset's id (or its object-store URI)")
    x.add_argument("--method", choices=list(_METHODS), default="dpo", help="training method")
    x.add_argument("--parent", default="", help="policy to start from (default: the baseline)")
    x.add_argument("--base-model", default="", help="default: the parent's")
    x.add_argument("--accelerator", choices=list(_ACCELERATORS), default="auto",
                   help="where to train")  # fmt: skip
    x.add_argument("--display-name", default="", help="human-readable name")
    x.add_argument("--rank", type=int, default=0, help="LoRA rank (default 8)")
    x.add_argument("--alpha", type=float, default=0.0, help="LoRA alpha (default 2 x rank)")
    x.add_argument("--dropout", type=float, default=0.0, help="LoRA dropout (default 0.05)")
    x.add_argument("--target-module", action="append", default=[],
                   help="module to adapt, repeatable (default q_proj, v_proj)")  # fmt: skip
    x.add_argument("--qlora", action="store_true", help="4-bit base; needs a GPU worker")
    for name, kind in (("learning-rate", float), ("num-epochs", float), ("max-steps", int),
                       ("batch-size", int), ("beta", float), ("max-length", int),
                       ("seed", int)):  # fmt: skip
        x.add_argument(f"--{name}", type=kind, default=None,
                       help="hyperparameter (unset: the server's default)")  # fmt: skip
    x = command(runs, "list", "the tenant's runs, newest first", _list)
    x.add_argument("--skill", default="", help="only this skill's")
    x.add_argument("--state", choices=[s for s in _STATES if s], default="",
                   help="only runs in this state")  # fmt: skip
    paging(x)
    for name, help, handler in (
        ("get", "one run, with progress and lineage", _get),
        ("cancel", "cancel a QUEUED or RUNNING run", _cancel),
    ):
        x = command(runs, name, help, handler)
        x.add_argument("training_run_id", help="the training run id")
