"""How the engines fetch adapters (engines/adapters, used by the vLLM resolver plugin and
the Triton model): which names they serve, and that only the bytes the name's hash
promises reach an engine. (It runs inside both engines in tests/backends.)"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "engines" / "adapters"))
from rlaas_engine_adapters import local_fetch, materialize, parse_name

pytestmark = pytest.mark.unit

SHA = "ab" * 32


def test_only_adapter_keys_with_a_full_hash_resolve() -> None:
    key = "adapters/t-24625541bb42/support_email/support_email-2c41d7848984-1"
    assert parse_name(f"{key}@{SHA}") == (key, SHA)
    for name in (
        f"datasets/t-1/x.parquet@{SHA}",  # not an adapter: the engine reads nothing else
        f"adapters/t-1/../../etc@{SHA}",
        f"adapters/t-1/./x@{SHA}",
        f"/adapters/t-1/x@{SHA}",
        f"adapters/t-1/x@{SHA[:12]}",
        f"adapters/t-1/x@{SHA.upper()}",
        "SmolLM2-135M-Instruct",
    ):
        assert parse_name(name) is None, name


def test_materialize_serves_only_what_the_hash_names(tmp_path: Path) -> None:
    root, cache = tmp_path / "objects", tmp_path / "cache"
    key = "adapters/t-1/s/run-1"
    (root / key).mkdir(parents=True)
    weights = b"weights-1"
    (root / key / "adapter_model.safetensors").write_bytes(weights)
    (root / key / "adapter_config.json").write_text('{"peft_type": "LORA"}')
    sha = hashlib.sha256(weights).hexdigest()
    fetch = local_fetch(root)

    path = materialize(fetch, key, sha, cache)
    assert path is not None and (path / "adapter_model.safetensors").read_bytes() == weights
    assert materialize(fetch, key, "0" * 64, cache) is None  # the bytes are not those
    assert materialize(fetch, "adapters/t-1/s/missing", sha, cache) is None
    # A verified copy is served again without the store (a restart, an eviction)...
    (root / key / "adapter_model.safetensors").write_bytes(b"changed since")
    assert materialize(fetch, key, sha, cache) == path
    # ...and only under its own key: the same bytes elsewhere are fetched and checked.
    other = "adapters/t-2/s/run-9"
    assert materialize(fetch, other, sha, cache) is None
    assert [p.name for p in cache.iterdir() if not p.name.startswith(".")] == [path.name]
