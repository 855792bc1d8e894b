"""The trainer's settings as payloads (workflows.training_types): pure dataclasses that
the server validates with (without importing torch), the workflows carry and the
worker trains with; the one input and one output of ``train_adapter``. Payloads that
older code wrote (the settings as dicts, the learning loop's own TrainInput and
TrainOutput) still decode into today's types: running workflows replay them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.common.v1 import Payload
from temporalio.converter import DataConverter

from workflows.learning_types import (
    LoopConfig,
    LoopState,
    TrainAdapterInput,
    TrainAdapterOutput,
    TrainingRunInput,
)
from workflows.training_types import DpoSettings, LoraSettings

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]


def _decode(value: dict[str, Any], kind: type[Any]) -> Any:
    payload = Payload(metadata={"encoding": b"json/plain"}, data=json.dumps(value).encode())
    return DataConverter.default.payload_converter.from_payloads([payload], [kind])[0]


def _round_trip(value: Any) -> Any:
    converter = DataConverter.default.payload_converter
    return converter.from_payloads(converter.to_payloads([value]), [type(value)])[0]


def test_a_loop_state_of_older_code_decodes_with_its_settings_dicts() -> None:
    # As tests/data/histories hold it, and with settings set.
    state = {"tenant_id": "t", "skill_id": "s", "loop_id": "l",
             "config": {"lora": {}, "dpo": {}, "min_pairs": 8}}  # fmt: skip
    decoded = _decode(state, LoopState)
    assert (decoded.config.lora, decoded.config.dpo) == (LoraSettings(), DpoSettings())
    state["config"] = {
        "lora": {"rank": 4, "alpha": 8.0, "target_modules": ["q_proj"]},
        "dpo": {"loss": "ipo", "max_steps": 5, "epochs": 2},
    }
    config = _decode(state, LoopState).config
    assert config.lora == LoraSettings(rank=4, alpha=8.0, target_modules=("q_proj",))
    assert config.dpo == DpoSettings(loss="ipo", max_steps=5, epochs=2.0)


def test_the_loops_old_train_input_and_output_decode_into_the_activitys_types() -> None:
    old_input = {"tenant_id": "t", "skill_id": "s", "run_id": "l-1",
                 "dataset_uri": "file:///d.parquet", "parent_policy_id": "s@v1",
                 "lora": {"rank": 16}, "dpo": {}, "checkpoint_every": 10}  # fmt: skip
    inp = _decode(old_input, TrainAdapterInput)
    assert inp == TrainAdapterInput(
        "t", "s", "l-1", "file:///d.parquet", "s@v1",
        lora=LoraSettings(rank=16), dpo=DpoSettings(), checkpoint_every=10,
    )  # fmt: skip
    old_output = {"adapter_uri": "file:///a", "adapter_sha256": "0" * 64,
                  "final_loss": 0.1, "steps": 8}  # fmt: skip
    out = _decode(old_output, TrainAdapterOutput)
    assert (out.adapter_uri, out.steps, out.metrics, out.lineage) == ("file:///a", 8, {}, {})


def test_settings_round_trip_as_payloads() -> None:
    settings = TrainAdapterInput(
        "t", "s", "r", "file:///d.parquet",
        lora=LoraSettings(rank=4, target_modules=("q_proj", "k_proj"), qlora=True),
        dpo=DpoSettings(loss="ipo", beta=0.3, max_steps=7, max_prompt_length=64),
    )  # fmt: skip
    assert _round_trip(TrainingRunInput(settings, "q")).train == settings
    assert _round_trip(LoopConfig(lora=settings.lora, dpo=settings.dpo)).lora == settings.lora


@pytest.mark.parametrize(
    "settings", [{"lora": {"rank": 0}}, {"dpo": {"loss": "hinge"}}, {"dpo": {"beta": -1}}]
)
def test_a_payload_with_bad_settings_does_not_decode(settings: dict[str, Any]) -> None:
    with pytest.raises((TypeError, ValueError)):
        _decode({"tenant_id": "t", "skill_id": "s", "run_id": "r", "dataset_uri": "u",
                 **settings}, TrainAdapterInput)  # fmt: skip


def test_validating_a_training_config_imports_no_torch() -> None:
    """The API server checks a config with the settings alone: neither torch nor
    transformers is imported (a fresh interpreter: this one may have them)."""
    code = """
import sys
from rlaas.training.v1 import training_pb2 as pb
import services.training.servicer
from services.training.loops import training_settings
lora, dpo = training_settings(
    pb.TrainingConfig(method=pb.TRAINING_METHOD_DPO, lora=pb.LoraConfig(rank=4)), "config"
)
assert lora.rank == 4, lora
heavy = sorted(m for m in ("torch", "transformers", "trl", "peft") if m in sys.modules)
assert not heavy, heavy
"""
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr


def test_the_settings_module_is_pure() -> None:
    """workflows.training_types imports the standard library only."""
    code = """
import sys
before = set(sys.modules)
import workflows.training_types
ours = sorted(m for m in set(sys.modules) - before
              if m.split(".")[0] in ("services", "workers", "infra", "rlaas", "temporalio"))
assert ours == [], ours
"""
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
