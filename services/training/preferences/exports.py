"""Exports of the pairs in the formats trainers read: TRL DPO, OpenAI preference and
chat JSONL, Anthropic (HH-RLHF) JSONL, and the contract's Parquet columns."""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Mapping
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from services.training.preferences.pairs import PreferencePair
from services.training.preferences.parquet import PARQUET_SCHEMA


def _select(pairs: Iterable[PreferencePair], split: str | None) -> list[PreferencePair]:
    chosen = [p for p in pairs if split is None or p.split == split]
    return sorted(chosen, key=lambda p: p.pair_id)


def _jsonl(objects: Iterable[Mapping[str, Any]]) -> bytes:
    return b"".join(
        (json.dumps(o, ensure_ascii=False, separators=(",", ":")) + "\n").encode() for o in objects
    )


def _messages(pair: PreferencePair) -> list[dict[str, str]]:
    return [{"role": r, "content": c} for r, c in pair.prompt_messages] or [
        {"role": "user", "content": pair.prompt}
    ]


def export_dpo_jsonl(pairs: Iterable[PreferencePair], split: str | None = None) -> bytes:
    """TRL DPO: ``{"prompt", "chosen", "rejected"}`` per line."""
    return _jsonl(
        {"prompt": p.prompt, "chosen": p.chosen, "rejected": p.rejected}
        for p in _select(pairs, split)
    )


def export_openai_preference_jsonl(
    pairs: Iterable[PreferencePair], split: str | None = None
) -> bytes:
    """OpenAI preference fine-tuning (DPO): ``{"input": {"messages": [...]},
    "preferred_output": [assistant], "non_preferred_output": [assistant]}``."""
    return _jsonl(
        {
            "input": {"messages": _messages(p)},
            "preferred_output": [{"role": "assistant", "content": p.chosen}],
            "non_preferred_output": [{"role": "assistant", "content": p.rejected}],
        }
        for p in _select(pairs, split)
    )


def anthropic_prompt(pair: PreferencePair) -> str:
    """``\\n\\nHuman: ...\\n\\nAssistant:`` (HH-RLHF style); a system message goes before
    the first turn."""
    parts = []
    for role, content in pair.prompt_messages or (("user", pair.prompt),):
        if role == "system":
            parts.append(content)
        elif role == "user":
            parts.append(f"\n\nHuman: {content}")
        else:
            parts.append(f"\n\nAssistant: {content}")
    return "".join(parts) + "\n\nAssistant:"


def export_anthropic_jsonl(pairs: Iterable[PreferencePair], split: str | None = None) -> bytes:
    """``{"prompt": "\\n\\nHuman: ...\\n\\nAssistant:", "chosen", "rejected"}``; the
    answers start with a space so ``prompt + chosen`` is the full HH-RLHF transcript."""
    return _jsonl(
        {"prompt": anthropic_prompt(p), "chosen": " " + p.chosen, "rejected": " " + p.rejected}
        for p in _select(pairs, split)
    )


def export_openai_sft_jsonl(pairs: Iterable[PreferencePair], split: str | None = None) -> bytes:
    """The proto's ``DATASET_FORMAT_OPENAI_CHAT_JSONL``: ``{"messages": [...]}`` with the
    chosen answer as the last assistant message (supervised fine-tuning)."""
    return _jsonl(
        {"messages": [*_messages(p), {"role": "assistant", "content": p.chosen}]}
        for p in _select(pairs, split)
    )


def export_anthropic_sft_jsonl(pairs: Iterable[PreferencePair], split: str | None = None) -> bytes:
    """The proto's ``DATASET_FORMAT_ANTHROPIC_JSONL``: ``{"input", "output"}`` with the
    chosen answer."""
    return _jsonl(
        {"input": anthropic_prompt(p), "output": " " + p.chosen} for p in _select(pairs, split)
    )


EXPORT_PARQUET_SCHEMA = pa.schema(
    [
        PARQUET_SCHEMA.field(name)
        for name in ("prompt", "chosen", "rejected", "margin", "split", "source", "interaction_id")
    ]
)


def export_parquet(pairs: Iterable[PreferencePair], split: str | None = None) -> bytes:
    """The proto's ``DATASET_FORMAT_PARQUET``: the contract's seven columns only (the
    canonical file keeps provenance a consumer should not depend on). Deterministic for
    a given pyarrow version: no timestamps are written."""
    rows = [
        {
            "prompt": p.prompt,
            "chosen": p.chosen,
            "rejected": p.rejected,
            "margin": float(p.margin),
            "split": p.split,
            "source": p.source,
            "interaction_id": p.interaction_ids[0] if p.interaction_ids else "",
        }
        for p in _select(pairs, split)
    ]
    buffer = io.BytesIO()
    pq.write_table(
        pa.Table.from_pylist(rows, schema=EXPORT_PARQUET_SCHEMA), buffer, compression="zstd"
    )
    return buffer.getvalue()
