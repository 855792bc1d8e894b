"""A built dataset as stored: its canonical rows, their content address (sha256), the
Parquet file, and its key in the object store."""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, cast

import pyarrow as pa
import pyarrow.parquet as pq

from services.objects.store import ObjectStore
from services.training.preferences.pairs import BuildReport, PairSource, PreferencePair


@dataclass(frozen=True)
class PreferenceDatasetBuild:
    pairs: tuple[PreferencePair, ...]
    """Canonical order (by pair id), each with its split."""
    report: BuildReport
    reward_config_version: str

    @property
    def rows(self) -> list[dict[str, Any]]:
        return [pair_row(p) for p in self.pairs]

    @property
    def content_sha256(self) -> str:
        return content_sha256(self.rows)


@dataclass(frozen=True)
class DatasetVersion:
    tenant_id: str
    skill: str
    content_sha256: str
    key: str
    uri: str
    pair_count: int
    train_pair_count: int
    eval_pair_count: int
    reward_config_version: str
    report: BuildReport


PARQUET_SCHEMA = pa.schema(
    [
        ("pair_id", pa.string()),
        ("prompt", pa.string()),
        ("chosen", pa.string()),
        ("rejected", pa.string()),
        ("margin", pa.float64()),
        ("split", pa.string()),
        ("source", pa.string()),
        ("interaction_id", pa.string()),
        ("interaction_ids", pa.list_(pa.string())),
        ("thread_id", pa.string()),
        ("thread_ids", pa.list_(pa.string())),
        ("chosen_output_id", pa.string()),
        ("rejected_output_id", pa.string()),
        ("chosen_reward", pa.float64()),
        ("rejected_reward", pa.float64()),
        ("signals", pa.string()),
        ("reward_config_version", pa.string()),
        ("prompt_messages", pa.string()),
    ]
)


def pair_row(pair: PreferencePair) -> dict[str, Any]:
    return {
        "pair_id": pair.pair_id,
        "prompt": pair.prompt,
        "chosen": pair.chosen,
        "rejected": pair.rejected,
        "margin": float(pair.margin),
        "split": pair.split,
        "source": pair.source,
        "interaction_id": pair.interaction_ids[0] if pair.interaction_ids else "",
        "interaction_ids": list(pair.interaction_ids),
        "thread_id": pair.thread_id,
        "thread_ids": list(pair.thread_ids),
        "chosen_output_id": pair.chosen_output_id,
        "rejected_output_id": pair.rejected_output_id,
        "chosen_reward": pair.chosen_reward,
        "rejected_reward": pair.rejected_reward,
        "signals": json.dumps(dict(sorted(pair.signals.items())), sort_keys=True),
        "reward_config_version": pair.reward_config_version,
        "prompt_messages": json.dumps([list(m) for m in pair.prompt_messages], ensure_ascii=False),
    }


def row_pair(row: Mapping[str, Any]) -> PreferencePair:
    return PreferencePair(
        prompt=row["prompt"],
        chosen=row["chosen"],
        rejected=row["rejected"],
        source=cast(PairSource, row["source"]),
        margin=float(row["margin"]),
        thread_id=row["thread_id"],
        interaction_ids=tuple(row["interaction_ids"]),
        chosen_output_id=row["chosen_output_id"],
        rejected_output_id=row["rejected_output_id"],
        chosen_reward=row["chosen_reward"],
        rejected_reward=row["rejected_reward"],
        signals=json.loads(row["signals"]),
        reward_config_version=row["reward_config_version"],
        prompt_messages=tuple((r, c) for r, c in json.loads(row["prompt_messages"])),
        thread_ids=tuple(row["thread_ids"]),
        split=row["split"],
    )


def canonical_rows(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    return sorted((dict(r) for r in rows), key=lambda r: (r["pair_id"], r["split"]))


def content_sha256(rows: Iterable[Mapping[str, Any]]) -> str:
    """Hex sha256 of the canonical rows: sorted by pair id, one canonical JSON object
    per line. Independent of the Parquet writer, so stable across pyarrow versions."""
    digest = hashlib.sha256()
    for row in canonical_rows(rows):
        line = json.dumps(row, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        digest.update(line.encode())
        digest.update(b"\n")
    return digest.hexdigest()


def to_parquet(rows: Iterable[Mapping[str, Any]]) -> bytes:
    table = pa.Table.from_pylist(canonical_rows(rows), schema=PARQUET_SCHEMA)
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd")
    return buffer.getvalue()


def read_parquet(data: bytes) -> list[dict[str, Any]]:
    return cast(list[dict[str, Any]], pq.read_table(io.BytesIO(data)).to_pylist())


def dataset_key(tenant_id: str, skill: str, sha256: str) -> str:
    return f"datasets/{tenant_id}/{skill}/{sha256}.parquet"


async def write_dataset(
    store: ObjectStore, tenant_id: str, skill: str, build: PreferenceDatasetBuild
) -> DatasetVersion:
    """Store the build as ``datasets/<tenant>/<skill>/<sha>.parquet`` (once: the same
    rows are the same object)."""
    rows = build.rows
    sha = content_sha256(rows)
    key = dataset_key(tenant_id, skill, sha)
    if not await store.exists(key):
        await store.put(key, to_parquet(rows))
    return DatasetVersion(
        tenant_id=tenant_id,
        skill=skill,
        content_sha256=sha,
        key=key,
        uri=store.uri(key),
        pair_count=len(rows),
        train_pair_count=build.report.train_pair_count,
        eval_pair_count=build.report.eval_pair_count,
        reward_config_version=build.reward_config_version,
        report=build.report,
    )
