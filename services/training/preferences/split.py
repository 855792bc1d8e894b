"""The train / eval split: leak-free (no thread and no prompt in both splits) and
stable as the data grows."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import replace

from services.training.preferences.pairs import PreferencePair, prompt_key


def _unit_hash(seed: int, unit: str) -> float:
    digest = hashlib.sha256(f"{seed}:{unit}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_pairs(
    pairs: Sequence[PreferencePair], *, eval_fraction: float, seed: int = 0
) -> list[PreferencePair]:
    """Assign ``train`` / ``eval``: pairs sharing a thread or a prompt are one unit
    (union-find), and a unit is eval when ``hash(seed, unit) < eval_fraction``. If that
    leaves eval empty while there are two or more units and ``eval_fraction > 0``, the
    unit with the smallest hash goes to eval (small datasets still get one)."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(a: str, b: str) -> None:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)

    members: list[list[str]] = []
    for pair in pairs:
        keys = [f"thread:{t}" for t in (pair.thread_ids or (pair.thread_id,))]
        keys.append(f"prompt:{prompt_key(pair.prompt)}")
        for k in keys[1:]:
            union(keys[0], k)
        members.append(keys)
    units = [find(keys[0]) for keys in members]
    hashes = {u: _unit_hash(seed, u) for u in set(units)}
    eval_units = {u for u, h in hashes.items() if h < eval_fraction}
    if not eval_units and eval_fraction > 0 and len(hashes) >= 2:
        eval_units = {min(hashes, key=lambda u: (hashes[u], u))}
    return [
        replace(p, split="eval" if u in eval_units else "train")
        for p, u in zip(pairs, units, strict=True)
    ]
