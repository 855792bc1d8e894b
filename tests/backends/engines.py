"""What the real-engine test modules share (test_vllm_engine, test_triton_engine): the
questions, a free port, three adapters written to the object store, the engine started
the way `rlaas up` starts it, and the request they ask."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from infra.stack import Stack
from services.config import Settings
from services.inference.backends.base import AdapterRef, GenerationRequest
from services.objects.store import LocalObjectStore
from tests.backends.tiny import build_lora_adapter

QUESTIONS = [
    [{"role": "user", "content": "What is the capital of France?"}],
    [
        {"role": "system", "content": "You answer customer emails in one sentence."},
        {"role": "user", "content": "Where is my order #4411?"},
    ],
]


# The packaged model answers this greedily with all 512 tokens (QUESTIONS[0] takes 8), so
# a request for it is still running when a test cuts it off, however fast the machine.
LONG = GenerationRequest(
    messages=[
        {
            "role": "user",
            "content": "Write a long, detailed essay of at least 1000 words"
            " about the history of France.",
        }
    ],
    max_new_tokens=512,
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stored_adapters(
    settings: Settings, model_dir: Path
) -> tuple[LocalObjectStore, list[AdapterRef]]:
    """Three distinct LoRA adapters in the settings' object store, as the trainer
    writes them (key ``adapters/...``)."""
    store = LocalObjectStore(settings.objects_dir)
    adapters = []
    for seed in (1, 2, 3):
        key = f"adapters/t-1/support_email/support_email-{seed}a2b"
        sha = build_lora_adapter(model_dir, settings.objects_dir / key, seed=seed, std=0.1)
        adapters.append(AdapterRef(f"support@v{seed + 1}", store.uri(key), sha))
    return store, adapters


@contextmanager
def started_engine(settings: Settings, name: str) -> Iterator[Stack]:
    """Engine ``name`` started as `rlaas up` starts it (the stack's own launcher, process
    table and log), stopped after."""
    stack = Stack(settings.model_copy(update={"inference_backend": name}))
    try:
        asyncio.run(stack._engine(echo=lambda line: None))
        assert stack.status()[name].startswith("running")
        yield stack
    finally:
        assert stack.procs.stop(name, timeout=30)
        assert stack.status()[name] == "stopped"


def ask(messages: list[dict[str, str]], adapter: AdapterRef | None = None) -> GenerationRequest:
    return GenerationRequest(messages=messages, adapter=adapter, max_new_tokens=24)


def kill_engine(stack: Stack, name: str) -> None:
    """SIGKILL the engine's process group, as a crash would (no graceful shutdown)."""
    running = stack.procs.running(name)
    assert running is not None, f"{name} is not running"
    os.killpg(running.pid, signal.SIGKILL)
