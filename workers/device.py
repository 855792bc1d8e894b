"""Pick the compute device at run time: CUDA when torch sees one, else the CPU. The CPU
path must always work (no GPU in CI); torch itself is optional at this layer."""

from __future__ import annotations

import importlib.util


def detect_device() -> str:
    if importlib.util.find_spec("torch") is None:
        return "cpu"
    import torch

    if torch.cuda.is_available():
        return f"cuda:{torch.cuda.current_device()} ({torch.cuda.get_device_name()})"
    return "cpu"
