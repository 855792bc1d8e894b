"""The GPU readiness check's own logic (bench/gpu_check.py): the pairs it trains on, and
its verdict on a machine without a GPU. The whole check runs with `make gpu-check`
(GPU_CHECK_ARGS=--cpu here; results in bench/results/gpu_check_cpu.json)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from bench.gpu_check import main, preference_pairs
from simulation.simulated_user import SimulatedUser
from simulation.workload import training_stream


def test_pairs_are_the_users_edits_over_the_drafts_and_skip_what_it_sent_as_is() -> None:
    user = SimulatedUser()
    first, second = training_stream(2, seed=7)
    kept = user.ideal_edit(second, "We will look into it.")
    pairs = preference_pairs(user, [first, second], ["Please check our website.", kept])
    assert len(pairs) == 1  # the second draft was already what the user sends
    [pair] = pairs
    assert pair["rejected"] == "Please check our website."
    assert pair["chosen"].startswith(f"Hi {first.first_name},")
    assert first.order_number in pair["chosen"]
    assert pair["prompt"][1] == {"role": "user", "content": first.text}


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the verdict without a GPU")
def test_without_a_gpu_the_check_fails_saying_why(tmp_path: Path) -> None:
    out = tmp_path / "gpu_check.json"
    assert main(["--out", str(out)]) == 1
    doc = json.loads(out.read_text())
    assert doc["mode"] == "gpu" and doc["passed"] is False
    assert any("CPU build" in f for f in doc["failures"])
    assert any("no CUDA device" in f for f in doc["failures"])
    assert doc["facts"]["cuda_available"] is False
    assert "device" in doc["steps_s"] and "engine start" not in doc["steps_s"]
