"""Session fixtures for the backend tests: a tiny model and three LoRA adapters on disk."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from services.inference.backends.base import AdapterRef
from tests.backends.tiny import build_lora_adapter, build_tiny_model


@dataclass(frozen=True)
class TinyArtifacts:
    model_dir: Path
    adapters: dict[str, AdapterRef]


@pytest.fixture(scope="session")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> TinyArtifacts:
    root = tmp_path_factory.mktemp("tiny")
    model_dir = build_tiny_model(root / "model")
    adapters = {}
    for seed, name in enumerate(["alpha", "beta", "gamma"], start=1):
        directory = root / "adapters" / name
        sha = build_lora_adapter(model_dir, directory, seed=seed)
        # Two URI spellings on purpose: both must work.
        uri = directory.as_uri() if seed % 2 else str(directory)
        adapters[name] = AdapterRef(name=name, uri=uri, sha256=sha)
    return TinyArtifacts(model_dir, adapters)
