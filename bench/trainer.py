"""Trainer benchmark: what ``services.training.trainer.train_dpo`` costs over a bare TRL
``DPOTrainer`` script, on the real base model (SmolLM2-135M-Instruct, loaded from the
GGUF's safetensors cache) in one run.

- throughput: the same 32 preference pairs, the same hyperparameters (LoRA r=8 on q/v,
  batch 4, max_length 128, float32 on CPU), ``STEPS`` optimiser steps each; tokens/s
  of training (non-padding tokens of chosen + rejected, as TRL counts them) for
  ``train_dpo`` vs the bare script. Goal: ratio >= 0.9. The two are interleaved,
  ``ROUNDS`` times each (alternating who goes first) after one warm-up run, so machine
  noise hits them alike; medians and bests are reported (on a shared machine the best
  run is the least disturbed one). ``same_run`` checks that both trained identically
  (same per-step losses).
- one epoch over 64 pairs with ``train_dpo``: wall time, s/step and the reward margin
  at the start and the end.

Results go to bench/results/trainer.json.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from services.config import Settings
from services.inference.backends.local import (
    LocalBackendConfig,
    gguf_cache_path,
    smollm2_gguf_path,
)
from services.training.trainer import (
    DpoSettings,
    LoraSettings,
    load_training_base,
    preference_rows,
    train_dpo,
    versions,
)

RESULTS = Path(__file__).resolve().parent / "results" / "trainer.json"
STEPS = int(os.environ.get("BENCH_STEPS", "4"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
MAX_LENGTH = 128
BATCH = 4

NAMES = ["Anna", "Ben", "Chloe", "Dev", "Eve", "Farid", "Gina", "Hugo"]
ISSUES = [
    "Where is my order {n}?",
    "My order {n} arrived damaged, what can I do?",
    "Can I change the address on order {n}?",
    "Please cancel order {n}.",
]


def make_pairs(count: int) -> list[dict[str, Any]]:
    """Support-desk pairs with a hidden preference: greet by name, quote the order
    number, sign off. Deterministic."""
    pairs = []
    for i in range(count):
        name, n = NAMES[i % len(NAMES)], f"#{1000 + 7 * i}"
        question = ISSUES[i % len(ISSUES)].format(n=n)
        pairs.append(
            {
                "prompt": [
                    {"role": "system", "content": "You are a helpful support agent."},
                    {"role": "user", "content": f"Hi, I am {name}. {question}"},
                ],
                "chosen": f"Hello {name}, thanks for reaching out about order {n}. I have "
                "checked it and will sort it out today. Best regards, the Support Team",
                "rejected": "Please check the website for more information about orders.",
            }
        )
    return pairs


def bare_trl(base: LocalBackendConfig, pairs: list[dict[str, Any]], out: Path) -> dict[str, Any]:
    """The reference: a plain TRL script with the same model, data and settings."""
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import DPOConfig, DPOTrainer

    assert base.gguf_path is not None and base.cache_dir is not None
    cached = gguf_cache_path(base.gguf_path, base.cache_dir)  # the same weights
    model = AutoModelForCausalLM.from_pretrained(cached, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(cached)
    dataset = Dataset.from_list(preference_rows(pairs, chat=True))
    tokens = {"n": 0}

    class Tokens(TrainerCallback):
        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kw: Any) -> None:
            if logs and "num_tokens" in logs:
                tokens["n"] = int(logs["num_tokens"])

    args = DPOConfig(
        output_dir=str(out),
        per_device_train_batch_size=BATCH,
        max_length=MAX_LENGTH,
        max_steps=STEPS,
        learning_rate=1e-4,
        beta=0.1,
        seed=0,
        bf16=False,
        activation_checkpointing=False,
        disable_dropout=False,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
        use_cpu=not torch.cuda.is_available(),
    )
    trainer = DPOTrainer(
        model=model,
        args=args,
        train_dataset=dataset,
        processing_class=tokenizer,
        peft_config=LoraConfig(
            r=8, lora_alpha=16, lora_dropout=0.05, target_modules=["q_proj", "v_proj"]
        ),
        callbacks=[Tokens()],
    )
    start = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - start
    losses = [round(e["loss"], 5) for e in trainer.state.log_history if "loss" in e]
    return {
        "tokens": tokens["n"],
        "seconds": round(seconds, 3),
        "tokens_per_s": round(tokens["n"] / seconds, 2),
        "losses": losses,
    }


def ours(base: LocalBackendConfig, pairs: list[dict[str, Any]], out: Path) -> dict[str, Any]:
    settings = DpoSettings(max_steps=STEPS, batch_size=BATCH, max_length=MAX_LENGTH)
    result = train_dpo(base, pairs, out, dpo=settings)
    return {
        "tokens": result.tokens,
        "seconds": round(result.train_seconds, 3),
        "tokens_per_s": round(result.tokens_per_s, 2),
        "losses": [round(x, 5) for x in result.losses],
        "wall_s_incl_load_and_save": round(result.seconds, 3),
    }


def _median(runs: list[dict[str, Any]], key: str) -> float:
    return round(statistics.median(r[key] for r in runs), 2)


def _best(runs: list[dict[str, Any]]) -> float:
    return round(max(r["tokens_per_s"] for r in runs), 2)


def main() -> None:
    base = LocalBackendConfig(
        gguf_path=smollm2_gguf_path(), cache_dir=Settings().state_dir.resolve() / "models"
    )
    load_start = time.perf_counter()
    load_training_base(base, LoraSettings())  # builds the cache on a fresh machine
    first_load_s = time.perf_counter() - load_start
    pairs32, pairs64 = make_pairs(32), make_pairs(64)

    bare_runs, our_runs = [], []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        ours(base, pairs32[:8], root / "warm-up")  # first-call costs (threads, imports)
        for i in range(ROUNDS):
            # Alternate who goes first, so drift in machine load hits both alike.
            if i % 2:
                our_runs.append(ours(base, pairs32, root / f"ours-{i}"))
                bare_runs.append(bare_trl(base, pairs32, root / f"bare-{i}"))
            else:
                bare_runs.append(bare_trl(base, pairs32, root / f"bare-{i}"))
                our_runs.append(ours(base, pairs32, root / f"ours-{i}"))
            print(f"round {i}: bare {bare_runs[-1]}, ours {our_runs[-1]}", flush=True)
        epoch = train_dpo(
            base,
            pairs64,
            root / "epoch",
            dpo=DpoSettings(epochs=1.0, batch_size=BATCH, max_length=MAX_LENGTH),
        )

    bare_tps, our_tps = _median(bare_runs, "tokens_per_s"), _median(our_runs, "tokens_per_s")
    bare_best, our_best = _best(bare_runs), _best(our_runs)
    report = {
        "benchmark": "trainer: train_dpo vs a bare TRL DPOTrainer script (SmolLM2-135M-Instruct)",
        "machine": {
            "cpus": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "device": epoch.device,
            "python": platform.python_version(),
            **versions(),
        },
        "settings": {
            "lora": "r=8 alpha=16 dropout=0.05 q_proj,v_proj",
            "loss": "sigmoid (DPO), beta 0.1, lr 1e-4",
            "batch_size": BATCH,
            "max_length": MAX_LENGTH,
            "dtype": "float32" if epoch.device == "cpu" else "bf16 autocast",
            "base_load_first_s": round(first_load_s, 2),
        },
        "throughput_32_pairs": {
            "steps_per_run": STEPS,
            "rounds": ROUNDS,
            "same_run": all(r["losses"] == bare_runs[0]["losses"] for r in bare_runs + our_runs),
            "bare_trl": {
                "tokens_per_s_median": bare_tps,
                "tokens_per_s_best": bare_best,
                "s_per_step": round(_median(bare_runs, "seconds") / STEPS, 3),
                "runs": bare_runs,
            },
            "train_dpo": {
                "tokens_per_s_median": our_tps,
                "tokens_per_s_best": our_best,
                "s_per_step": round(_median(our_runs, "seconds") / STEPS, 3),
                "runs": our_runs,
            },
            "ratio_median": round(our_tps / bare_tps, 3),
            "ratio_best": round(our_best / bare_best, 3),
            "goal": ">= 0.9",
        },
        "one_epoch_64_pairs": {
            "steps": epoch.steps,
            "wall_s": round(epoch.seconds, 2),
            "train_s": round(epoch.train_seconds, 2),
            "s_per_step": round(epoch.train_seconds / max(epoch.steps, 1), 3),
            "tokens_per_s": round(epoch.tokens_per_s, 1),
            "loss_first_last": [round(epoch.losses[0], 4), round(epoch.final_loss, 4)],
            "reward_margin_first_last": [
                round(epoch.reward_margins[0], 4),
                round(epoch.reward_margins[-1], 4),
            ],
        },
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
