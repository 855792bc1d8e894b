"""A fresh embedded stack for a benchmark: every process `rlaas up` starts, in a temp
state dir on free ports (the dequantized model cache reused from ``.rlaas/models``),
stopped again on exit. The benchmark runs as a client of it, like any application."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from services.config import Settings

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env(state_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RLAAS_")}
    env.update(
        RLAAS_STATE_DIR=str(state_dir),
        RLAAS_GRPC_PORT=str(_free_port()),
        RLAAS_TEMPORAL_PORT=str(_free_port()),
        RLAAS_TEMPORAL_UI_PORT=str(_free_port()),
        RLAAS_MILVUS_PORT=str(_free_port()),
        RLAAS_METRICS_PORT=str(_free_port()),
        RLAAS_REST_PORT=str(_free_port()),
        RLAAS_VLLM_PORT=str(_free_port()),
        RLAAS_TRITON_PORT=str(_free_port()),
        RLAAS_LOG_FORMAT="json",
    )
    return env


def _cli(*args: str, env: dict[str, str]) -> None:
    subprocess.run([sys.executable, "-m", "infra.cli", *args], env=env, cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)  # fmt: skip


@contextmanager
def embedded_stack(prefix: str, **settings: str) -> Iterator[Settings]:
    """The stack's settings while it runs; this process's environment points at it
    meanwhile (RLAAS_*), and is restored after. ``settings``: more RLAAS_* variables
    for the stack (e.g. ``RLAAS_INFERENCE_BACKEND="vllm"``)."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        state = Path(tmp)
        cache = ROOT / ".rlaas" / "models"
        if cache.is_dir():  # skip re-dequantizing the GGUF (~20 s)
            (state / "models").symlink_to(cache)
        env = {**_env(state), **settings}
        saved = dict(os.environ)
        _cli("up", env=env)
        try:
            os.environ.update({k: v for k, v in env.items() if k.startswith("RLAAS_")})
            yield Settings()
        finally:
            os.environ.clear()
            os.environ.update(saved)
            _cli("down", env=env)
