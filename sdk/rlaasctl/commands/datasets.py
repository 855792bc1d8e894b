"""`datasets create/get/list/export`: preference datasets built from a skill's
telemetry."""

from __future__ import annotations

import argparse
from typing import Any

from rlaas.training.v1 import training_pb2 as trn
from rlaasctl.client import Ctl, Shown, request_id
from rlaasctl.output import enum_name, lines
from rlaasctl.parsing import command, group, iso_time, paging

_FORMATS = {"dpo": trn.DATASET_FORMAT_DPO_JSONL, "openai": trn.DATASET_FORMAT_OPENAI_CHAT_JSONL,
            "anthropic": trn.DATASET_FORMAT_ANTHROPIC_JSONL,
            "parquet": trn.DATASET_FORMAT_PARQUET}  # fmt: skip
_SPLITS = {"all": trn.DATASET_SPLIT_UNSPECIFIED, "train": trn.DATASET_SPLIT_TRAIN,
           "eval": trn.DATASET_SPLIT_EVAL}  # fmt: skip
_STATES = {"": trn.PreferenceDataset.STATE_UNSPECIFIED,
           "ready": trn.PreferenceDataset.STATE_READY,
           "failed": trn.PreferenceDataset.STATE_FAILED,
           "building": trn.PreferenceDataset.STATE_BUILDING}  # fmt: skip


def _dataset_text(x: trn.PreferenceDataset) -> str:
    state = enum_name(trn.PreferenceDataset.State.Name(x.state))
    if x.state == trn.PreferenceDataset.STATE_FAILED:
        detail = f"({x.error.message})"
    else:
        detail = (
            f"pairs={x.pair_count} (train {x.train_pair_count}, eval {x.eval_pair_count})  "
            f"sha256={x.content_sha256[:12]}"
        )
    return f"{x.dataset_id}  {x.skill_id} v{x.version}  {state}  {detail}"


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


def _create(c: Ctl, a: argparse.Namespace) -> Shown:
    req = trn.CreatePreferenceDatasetRequest(preference_dataset=_new_dataset(a),
                                             request_id=request_id(a))  # fmt: skip
    resp = c.call(c.training.CreatePreferenceDataset, req)
    return resp, lambda r: _dataset_text(r.preference_dataset)


def _get(c: Ctl, a: argparse.Namespace) -> Shown:
    req = trn.GetPreferenceDatasetRequest(dataset_id=a.dataset_id)
    resp = c.call(c.training.GetPreferenceDataset, req)
    return resp, lambda r: _dataset_text(r.preference_dataset)


def _list(c: Ctl, a: argparse.Namespace) -> Shown:
    req = trn.ListPreferenceDatasetsRequest(skill_id=a.skill, state=_STATES[a.state],
                                            page_size=a.page_size,
                                            page_token=a.page_token)  # fmt: skip
    return c.call(c.training.ListPreferenceDatasets, req), lambda r: lines(
        [_dataset_text(x) for x in r.preference_datasets], r.next_page_token
    )


def _export(c: Ctl, a: argparse.Namespace) -> Shown:
    req = trn.ExportDatasetRequest(dataset_id=a.dataset_id, format=_FORMATS[a.format],
                                   split=_SPLITS[a.split], request_id=request_id(a))  # fmt: skip
    return c.call(
        c.training.ExportDataset, req
    ), lambda r: f"{r.uri}  rows={r.row_count}  bytes={r.size_bytes}  sha256={r.sha256}"


def register(sub: Any) -> None:
    datasets = group(sub, "datasets", "preference datasets: build, inspect, export")
    x = command(datasets, "create", "build a dataset version from a skill's telemetry", _create)
    x.add_argument("skill", help="the skill")
    x.add_argument("--display-name", default="", help="human-readable name")
    x.add_argument("--start", type=iso_time, help="ISO time; interactions from then (default: all)")
    x.add_argument("--end", type=iso_time, help="ISO time; interactions before then (default: now)")
    x.add_argument("--source", nargs="+", default=[],
                   choices=["edit", "correction", "reward_ranked"],
                   help="pair sources (default: all)")  # fmt: skip
    x.add_argument("--policy", nargs="+", default=[], help="only these policies' interactions")
    x.add_argument("--eval-fraction", type=float, default=0.0, help="[0, 0.5] (default 0.1)")
    x.add_argument("--min-reward-margin", type=float, default=0.0,
                   help="chosen must beat rejected by this much")  # fmt: skip
    x.add_argument("--max-pairs", type=int, default=0, help="0: no limit")
    x.add_argument("--seed", type=int, default=0, help="split seed")
    x = command(datasets, "get", "one dataset", _get)
    x.add_argument("dataset_id", help="the dataset id")
    x = command(datasets, "list", "the tenant's datasets, newest first", _list)
    x.add_argument("--skill", default="", help="only this skill's")
    x.add_argument("--state", choices=["ready", "failed", "building"], default="",
                   help="only datasets in this state")  # fmt: skip
    paging(x)
    x = command(datasets, "export", "write a READY dataset to the object store", _export)
    x.add_argument("dataset_id", help="the dataset id")
    x.add_argument("--format", choices=list(_FORMATS), required=True, help="file format")
    x.add_argument("--split", choices=list(_SPLITS), default="all", help="which pairs")
