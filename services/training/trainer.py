"""DPO / IPO training of a LoRA adapter on a frozen base model: TRL ``DPOTrainer`` + PEFT.

- The reference model is the frozen base itself: PEFT disables the adapter for the
  reference pass, so no second copy of the weights is loaded. With an SFT warm-start or
  a parent adapter the reference is that starting adapter instead (TRL keeps a frozen
  copy of it as the PEFT adapter ``ref``, a few MB).
- CPU trains in float32. On CUDA the run uses bf16 autocast, and with
  ``LoraSettings.qlora`` a 4-bit NF4 base (QLoRA) when ``bitsandbytes`` imports; both
  are decided at run time, so the CPU path never needs GPU packages.
- Checkpoints are ordinary HF Trainer checkpoint directories (adapter, optimizer,
  scheduler, RNG states, trainer state). ``resume_from`` continues exactly where one
  left off: same data order, same total steps.
- Deterministic for a given seed on the same device.

Blocking: call it in a worker thread (the Temporal activity does).
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

# The base model must never come from a hub: these machines cannot reach one.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    PrinterCallback,
    TrainerCallback,
    set_seed,
)

from services.inference.backends.base import ADAPTER_CONFIG, ADAPTER_WEIGHTS, sha256_file
from services.inference.backends.local import (
    _CACHE_DONE,
    LocalBackendConfig,
    gguf_cache_path,
    load_base_model,
)
from workflows.training_types import DpoSettings, LoraSettings

log = logging.getLogger(__name__)

REF_ADAPTER = "ref"
"""TRL's name for the frozen copy of a starting adapter (the reference model)."""


@dataclass
class TrainResult:
    adapter_dir: Path
    """PEFT adapter directory: adapter_config.json + adapter_model.safetensors."""
    adapter_sha256: str
    steps: int
    """Optimiser steps done in total (including those before a resume)."""
    total_steps: int
    """Planned optimiser steps."""
    final_loss: float
    losses: list[float]
    """Training loss of every step, from step 1 (restored across resumes)."""
    reward_margins: list[float]
    """Mean reward margin (chosen - rejected) of every step."""
    reward_accuracies: list[float]
    tokens_per_s: float
    """Non-padding tokens (chosen + rejected, prompt included) per second of training."""
    tokens: int
    """Tokens trained on in this call (after a resume: since the resume)."""
    seconds: float
    """Wall time of the whole call (loading, SFT warm-start, DPO, saving)."""
    train_seconds: float
    """Wall time of the DPO ``train()`` call alone."""
    sft_seconds: float
    """Wall time of the SFT warm start (0: none ran)."""
    resumed_from_step: int
    train_pairs: int
    replay_pairs: int
    sft_losses: list[float]
    stopped_early: bool
    """Early stopping ended the preference loss before ``total_steps``."""
    edit_similarity: float | None
    """Mean similarity of what users sent to what was served over the edit pairs (None:
    no edit pairs): what the automatic warm start decides on."""
    device: str
    quantization: str
    """``none`` or ``nf4`` (QLoRA)."""
    base_model: str
    versions: dict[str, str]

    def metrics(self) -> dict[str, Any]:
        """JSON-ready metrics (what metrics.json holds)."""
        out = asdict(self)
        out["adapter_dir"] = str(self.adapter_dir)
        return out


class TrainingStopped(Exception):
    """Raised inside the training loop when ``should_stop`` returns True."""


# -- data ------------------------------------------------------------------------------


def _as_messages(value: Any, where: str) -> list[dict[str, str]] | None:
    """Chat messages from a list or a JSON string of one; None for plain text."""
    if isinstance(value, str):
        stripped = value.lstrip()
        if not stripped.startswith("["):
            return None
        try:
            value = json.loads(stripped)
        except json.JSONDecodeError:
            return None  # text that merely starts with "["
    if not isinstance(value, list) or not value:
        raise ValueError(f"{where}: expected text or a non-empty list of chat messages")
    messages = []
    for i, m in enumerate(value):
        if not isinstance(m, Mapping) or not isinstance(m.get("role"), str):
            raise ValueError(f"{where}[{i}]: a chat message needs 'role' and 'content'")
        content = m.get("content")
        if not isinstance(content, str):
            raise ValueError(f"{where}[{i}].content must be a string")
        messages.append({"role": m["role"], "content": content})
    return messages


def _answer_text(value: Any, where: str) -> str:
    if isinstance(value, str):
        messages = _as_messages(value, where) if value.lstrip().startswith("[") else None
    else:
        messages = _as_messages(value, where)
    if messages is not None:
        # An answer given as messages: the assistant's text.
        texts = [m["content"] for m in messages if m["role"] == "assistant"]
        if len(texts) != 1:
            raise ValueError(f"{where}: an answer given as messages needs one assistant message")
        value = texts[0]
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{where}: must be a non-empty string")
    return value


def preference_rows(
    pairs: Sequence[Mapping[str, Any]], *, chat: bool, name: str = "dataset"
) -> list[dict[str, Any]]:
    """Validate pairs and put them in TRL's preference format.

    ``prompt`` is text, a list of chat messages or a JSON string of one; ``chosen`` and
    ``rejected`` are the answers (text). With a chat template (``chat=True``) rows are
    conversational, so TRL applies the template exactly as serving does (a text prompt
    becomes one user message). Raises ValueError naming the bad row."""
    rows = []
    for i, pair in enumerate(pairs):
        where = f"{name}[{i}]"
        if not isinstance(pair, Mapping):
            raise ValueError(f"{where}: expected a mapping with prompt/chosen/rejected")
        missing = [k for k in ("prompt", "chosen", "rejected") if pair.get(k) is None]
        if missing:
            raise ValueError(f"{where}: missing {', '.join(missing)}")
        messages = _as_messages(pair["prompt"], f"{where}.prompt")
        chosen = _answer_text(pair["chosen"], f"{where}.chosen")
        rejected = _answer_text(pair["rejected"], f"{where}.rejected")
        if messages is None:
            text = pair["prompt"]
            if not isinstance(text, str) or not text.strip():
                raise ValueError(f"{where}.prompt: must be non-empty")
            messages = [{"role": "user", "content": text}]
        row: dict[str, Any] = {"prompt": messages, "chosen": chosen, "rejected": rejected}
        if chat:
            row["chosen"] = [{"role": "assistant", "content": chosen}]
            row["rejected"] = [{"role": "assistant", "content": rejected}]
        else:
            row["prompt"] = "\n".join(m["content"] for m in messages)
        rows.append(row)
    return rows


def cap_prompts(rows: list[dict[str, Any]], tokenizer: Any, max_tokens: int) -> int:
    """Shorten, in place, every prompt longer than ``max_tokens`` tokens (as the model
    sees it: chat template and generation prompt included) by cutting the start of its
    last message, keeping system and earlier turns whole. Returns how many were cut.
    Hand-written because TRL 1.x dropped ``max_prompt_length`` (it truncates prompt and
    answer together, which can cut the answer instead)."""

    def length(prompt: list[dict[str, str]] | str) -> int:
        if isinstance(prompt, str):
            return len(tokenizer(prompt, add_special_tokens=False)["input_ids"])
        ids = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=True)
        if isinstance(ids, Mapping):  # transformers 5 returns a BatchEncoding
            ids = ids["input_ids"]
        return len(ids)

    cut = 0
    for i, row in enumerate(rows):
        prompt = row["prompt"]
        over = length(prompt) - max_tokens
        if over <= 0:
            continue
        text = prompt if isinstance(prompt, str) else prompt[-1]["content"]
        tokens = tokenizer(text, add_special_tokens=False)["input_ids"]
        # Re-tokenising a cut text can merge differently: cut again until it fits.
        while over > 0:
            if over >= len(tokens):
                raise ValueError(
                    f"dpo.max_prompt_length={max_tokens} leaves no room for the last "
                    f"message of prompt {i} (the rest of it alone is longer)"
                )
            tokens = tokens[over:]
            text = tokenizer.decode(tokens)
            if isinstance(prompt, str):
                prompt = text
            else:
                prompt = [*prompt[:-1], {**prompt[-1], "content": text}]
            over = length(prompt) - max_tokens
        row["prompt"] = prompt
        cut += 1
    return cut


def mix_replay(
    rows: list[dict[str, Any]], golden: list[dict[str, Any]], fraction: float, seed: int
) -> tuple[list[dict[str, Any]], int]:
    """The training mix: every row plus golden pairs making up ``fraction`` of the total
    (sampled without replacement while there are enough, then cycled); and how many."""
    if fraction <= 0 or not golden or not rows:
        return list(rows), 0
    n = round(fraction * len(rows) / (1 - fraction))
    rng = random.Random(seed)
    picked: list[dict[str, Any]] = []
    while len(picked) < n:
        picked += rng.sample(golden, min(len(golden), n - len(picked)))
    return list(rows) + picked, len(picked)


# -- model -----------------------------------------------------------------------------


@dataclass
class TrainingBase:
    model: Any
    tokenizer: Any
    name: str
    device: str
    quantization: str
    bf16: bool


def _resolve_base(base: Path | LocalBackendConfig) -> tuple[Path | None, Any, Any, str]:
    """(HF model dir, model or None, tokenizer or None, name). A GGUF base is
    dequantized only when its safetensors cache is missing (then the cache is written)."""
    config = base if isinstance(base, LocalBackendConfig) else LocalBackendConfig(model_dir=base)
    name = config.served_name
    if config.model_dir is not None:
        return config.model_dir, None, None, name
    assert config.gguf_path is not None
    if config.cache_dir is not None:
        cached = gguf_cache_path(config.gguf_path, config.cache_dir)
        if (cached / _CACHE_DONE).exists():
            return cached, None, None, name
    # No complete cache: dequantize once (this writes the cache when there is a cache dir).
    model, tokenizer, _ = load_base_model(config)
    directory = gguf_cache_path(config.gguf_path, config.cache_dir) if config.cache_dir else None
    return directory, model, tokenizer, name


def _bnb_available() -> bool:
    try:
        import bitsandbytes  # noqa: F401
    except Exception:  # ImportError, or a broken CUDA setup raising at import
        return False
    return True


def load_training_base(base: Path | LocalBackendConfig, lora: LoraSettings) -> TrainingBase:
    """The frozen base model and tokenizer, on the device the run will use."""
    directory, model, tokenizer, name = _resolve_base(base)
    cuda = torch.cuda.is_available()
    quantization = "none"
    if cuda and lora.qlora and directory is not None and _bnb_available():
        from peft import prepare_model_for_kbit_training
        from transformers import BitsAndBytesConfig

        quant = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_compute_dtype=torch.bfloat16,
            bnb_4bit_use_double_quant=True,
        )
        model = AutoModelForCausalLM.from_pretrained(
            directory, quantization_config=quant, dtype=torch.bfloat16, device_map={"": 0}
        )
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
        quantization = "nf4"
    elif lora.qlora:
        log.warning("QLoRA needs CUDA and bitsandbytes; training the full-precision base")
    if model is None:
        assert directory is not None
        model = AutoModelForCausalLM.from_pretrained(directory, dtype=torch.float32)
    if tokenizer is None:
        assert directory is not None
        tokenizer = AutoTokenizer.from_pretrained(directory)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    bf16 = cuda and torch.cuda.is_bf16_supported()
    device = f"cuda:{torch.cuda.get_device_name(0)}" if cuda else "cpu"
    return TrainingBase(model, tokenizer, name, device, quantization, bf16)


def _lora_config(lora: LoraSettings) -> Any:
    from peft import LoraConfig

    return LoraConfig(
        r=lora.rank,
        lora_alpha=lora.scaling_alpha,  # type: ignore[arg-type]  # a float is fine
        lora_dropout=lora.dropout,
        target_modules=list(lora.target_modules),
        bias="none",
        task_type="CAUSAL_LM",
    )


def versions() -> dict[str, str]:
    import peft
    import transformers
    import trl

    return {
        "trl": trl.__version__,
        "peft": peft.__version__,
        "transformers": transformers.__version__,
        "torch": torch.__version__,
    }


def _common_args(dpo: DpoSettings, base: TrainingBase, output_dir: Path) -> dict[str, Any]:
    """TrainingArguments shared by the SFT warm-start and DPO. TRL's own defaults differ
    from transformers' (bf16 on, gradient checkpointing on): every one is set here."""
    return {
        "output_dir": str(output_dir),
        "per_device_train_batch_size": dpo.batch_size,
        "gradient_accumulation_steps": dpo.gradient_accumulation_steps,
        "max_length": dpo.max_length,
        "seed": dpo.seed,
        "data_seed": dpo.seed,
        "bf16": base.bf16,
        "fp16": False,
        "use_cpu": not base.device.startswith("cuda"),
        # transformers 5 renamed it; TRL's default (True) for the old name warns.
        "gradient_checkpointing": None,
        "activation_checkpointing": dpo.gradient_checkpointing,
        "logging_strategy": "steps",
        "logging_steps": 1,
        "report_to": "none",
        "disable_tqdm": True,
        "dataloader_pin_memory": False,
        "dataset_num_proc": None,
    }


class _Progress(TrainerCallback):
    def __init__(
        self,
        on_step: Callable[[int, float], None] | None,
        on_checkpoint: Callable[[Path], None] | None,
        should_stop: Callable[[], bool] | None,
    ) -> None:
        self.on_step = on_step
        self.on_checkpoint = on_checkpoint
        self.should_stop = should_stop
        self.tokens = 0

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.should_stop is not None and self.should_stop():
            raise TrainingStopped(f"stopped at step {state.global_step}")

    def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kw: Any) -> None:
        if not logs or "loss" not in logs:
            return
        if "num_tokens" in logs:
            self.tokens = int(logs["num_tokens"])
        if self.on_step is not None:
            self.on_step(int(state.global_step), float(logs["loss"]))

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.on_checkpoint is not None:
            self.on_checkpoint(Path(args.output_dir) / f"checkpoint-{state.global_step}")


class _EarlyStop(TrainerCallback):
    """Stops training once the mean loss of the last ``window`` steps is below
    ``threshold``, counting only steps of the first epoch. In the first epoch a step's
    loss is computed on a batch before the optimiser has seen it, so the running mean
    is a held-out estimate for free (progressive validation) and the iteration's own
    held-out split stays untouched for the gate. Reads ``state.log_history``, so a
    resumed run decides on the same losses as an uninterrupted one."""

    def __init__(self, threshold: float, window: int, steps_per_epoch: int) -> None:
        self.threshold = threshold
        self.window = window
        self.steps_per_epoch = steps_per_epoch
        self.stopped = False

    def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kw: Any) -> None:
        if not logs or "loss" not in logs or state.global_step > self.steps_per_epoch:
            return
        losses = [float(e["loss"]) for e in state.log_history if "loss" in e][-self.window :]
        if len(losses) == self.window and sum(losses) / self.window < self.threshold:
            log.info(
                "early stop at step %d of %d: mean loss of the last %d steps %.4f < %g",
                state.global_step, state.max_steps, self.window,
                sum(losses) / self.window, self.threshold,
            )  # fmt: skip
            control.should_training_stop = True
            self.stopped = True


_EDIT_SOURCES = frozenset({"PAIR_SOURCE_EDIT", "PAIR_SOURCE_CORRECTION"})


def edit_similarity(pairs: Sequence[Mapping[str, Any]]) -> float | None:
    """How much of the served answers users kept: the mean normalized InDel similarity
    (rapidfuzz, as the edit reward) of chosen (what the user sent) to rejected (what was
    served) over the edit and correction pairs. None when there are none (rows without
    a ``source`` are not known to be edits)."""
    from rapidfuzz.distance import Indel

    scores = [
        Indel.normalized_similarity(str(p["chosen"]), str(p["rejected"]))
        for p in pairs
        if p.get("source") in _EDIT_SOURCES
    ]
    return sum(scores) / len(scores) if scores else None


def sft_warmup_steps(dpo: DpoSettings, rows: int, similarity: float | None = None) -> int:
    """The warm start's optimiser steps: as set, or ``sft_warmup_epochs`` over ``rows``
    (so the rule scales with the dataset rather than being tuned to one size), or, with
    neither set, one epoch when the users' edits kept less than
    ``sft_warmup_below_similarity`` of the served answers (``similarity``)."""
    if dpo.sft_warmup_steps:
        return dpo.sft_warmup_steps
    epochs = dpo.sft_warmup_epochs
    if not epochs and similarity is not None and similarity < dpo.sft_warmup_below_similarity:
        epochs = 1.0
    if not epochs:
        return 0
    per_step = dpo.batch_size * dpo.gradient_accumulation_steps
    return max(1, math.ceil(rows * epochs / per_step))


def _sft_warmup(
    peft_model: Any, base: TrainingBase, rows: list[dict[str, Any]], dpo: DpoSettings,
    steps: int, out: Path,
) -> list[float]:  # fmt: skip
    """A few supervised steps on the chosen answers (completion-only loss)."""
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    sft_rows = [{"prompt": r["prompt"], "completion": r["chosen"]} for r in rows]
    args = SFTConfig(
        **_common_args(dpo, base, out),
        learning_rate=dpo.learning_rate,
        max_steps=steps,
        save_strategy="no",
        lr_scheduler_type="constant",
    )
    trainer = SFTTrainer(
        model=peft_model,
        args=args,
        train_dataset=Dataset.from_list(sft_rows),
        processing_class=base.tokenizer,
    )
    trainer.remove_callback(PrinterCallback)
    trainer.train()
    return [float(e["loss"]) for e in trainer.state.log_history if "loss" in e]


def _checkpoint_has_ref(checkpoint: Path) -> bool:
    return (checkpoint / REF_ADAPTER / ADAPTER_WEIGHTS).is_file()


def train_dpo(
    base: Path | LocalBackendConfig,
    dataset: Sequence[Mapping[str, Any]],
    output_dir: Path,
    *,
    lora: LoraSettings | None = None,
    dpo: DpoSettings | None = None,
    golden: Sequence[Mapping[str, Any]] = (),
    parent_adapter: Path | None = None,
    resume_from: Path | None = None,
    on_step: Callable[[int, float], None] | None = None,
    checkpoint_every: int = 0,
    on_checkpoint: Callable[[Path], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> TrainResult:
    """Train a LoRA adapter with DPO (or IPO) on ``dataset``; see the module docstring.

    ``base``: an HF model directory, or a ``LocalBackendConfig`` (GGUF + cache dir: the
    cache is reused, never re-dequantized). ``dataset`` / ``golden``: mappings with
    ``prompt`` (text, chat messages, or JSON of them), ``chosen``, ``rejected``.
    ``parent_adapter``: a PEFT adapter directory to continue from; it is also the
    reference, and its own LoRA config (rank, targets) is kept over ``lora``.
    ``resume_from``: an HF checkpoint directory written by an earlier call with the same
    inputs. ``on_step(step, loss)`` after every optimiser step; ``on_checkpoint(dir)``
    after every checkpoint (every ``checkpoint_every`` steps; 0: none), before the next
    step starts. ``should_stop()`` is polled after each step; True raises
    ``TrainingStopped``. The adapter lands in ``output_dir / "adapter"``.
    Raises ValueError for bad settings or data."""
    from datasets import Dataset, disable_progress_bars
    from peft import PeftModel, get_peft_model
    from trl import DPOConfig, DPOTrainer

    started = time.perf_counter()
    disable_progress_bars()  # datasets' per-map bars: noise in a worker's log
    lora = lora or LoraSettings()
    dpo = dpo or DpoSettings()
    if checkpoint_every < 0:
        raise ValueError(f"checkpoint_every must be >= 0, got {checkpoint_every}")
    if resume_from is not None and not (resume_from / "trainer_state.json").is_file():
        raise ValueError(f"{resume_from} is not a trainer checkpoint (no trainer_state.json)")
    if parent_adapter is not None and not (parent_adapter / ADAPTER_CONFIG).is_file():
        raise ValueError(f"{parent_adapter} holds no {ADAPTER_CONFIG}")

    base_ = load_training_base(base, lora)
    chat = bool(getattr(base_.tokenizer, "chat_template", None))
    rows = preference_rows(dataset, chat=chat)
    if not rows:
        raise ValueError("dataset: no preference pairs")
    golden_rows = preference_rows(golden, chat=chat, name="golden")
    mix, replay_pairs = mix_replay(rows, golden_rows, dpo.replay_fraction, dpo.seed)
    if dpo.max_prompt_length is not None:
        cap_prompts(mix, base_.tokenizer, dpo.max_prompt_length)

    output_dir.mkdir(parents=True, exist_ok=True)
    sft_losses: list[float] = []
    sft_seconds = 0.0
    similarity = edit_similarity(dataset)
    sft_steps = sft_warmup_steps(dpo, len(mix), similarity)
    # Which model shape: a fresh adapter (TRL wraps the base, reference = adapter off),
    # or a starting adapter (reference = a frozen "ref" copy of it). A resumed run
    # rebuilds the same shape; the trainer then loads every adapter from the checkpoint.
    starts_from_adapter = (
        _checkpoint_has_ref(resume_from)
        if resume_from is not None
        else (parent_adapter is not None or sft_steps > 0)
    )
    model: Any = base_.model
    peft_config = None
    if starts_from_adapter:
        set_seed(dpo.seed)
        if parent_adapter is not None and resume_from is None:
            model = PeftModel.from_pretrained(model, str(parent_adapter), is_trainable=True)
        else:
            model = get_peft_model(model, _lora_config(lora))
        if sft_steps > 0 and resume_from is None:
            sft_started = time.perf_counter()
            sft_losses = _sft_warmup(model, base_, mix, dpo, sft_steps, output_dir / "sft")
            sft_seconds = time.perf_counter() - sft_started
    else:
        peft_config = _lora_config(lora)

    args = DPOConfig(
        **_common_args(dpo, base_, output_dir / "checkpoints"),
        loss_type=[dpo.loss],
        beta=dpo.beta,
        learning_rate=dpo.learning_rate,
        num_train_epochs=dpo.epochs,
        max_steps=dpo.max_steps if dpo.max_steps is not None else -1,
        warmup_steps=dpo.warmup_ratio,
        # Keep the configured LoRA dropout (TRL zeroes every dropout by default).
        disable_dropout=False,
        save_strategy="steps" if checkpoint_every else "no",
        save_steps=checkpoint_every or 500,
        save_total_limit=2,
    )
    progress = _Progress(on_step, on_checkpoint, should_stop)
    callbacks: list[TrainerCallback] = [progress]
    early_stop = None
    if dpo.early_stop_loss > 0:
        per_step = dpo.batch_size * dpo.gradient_accumulation_steps
        early_stop = _EarlyStop(
            dpo.early_stop_loss, dpo.early_stop_window, math.ceil(len(mix) / per_step)
        )
        callbacks.append(early_stop)
    trainer = DPOTrainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(mix),
        processing_class=base_.tokenizer,
        peft_config=peft_config,
        callbacks=callbacks,
    )
    trainer.remove_callback(PrinterCallback)  # it prints every log dict to stdout
    train_started = time.perf_counter()
    trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    train_seconds = time.perf_counter() - train_started

    adapter_dir = output_dir / "adapter"
    # Only the trained adapter: the "ref" copy is the reference, not the product.
    trained: Any = trainer.model
    trained.save_pretrained(str(adapter_dir), selected_adapters=["default"])
    history = [e for e in trainer.state.log_history if "loss" in e]
    losses = [float(e["loss"]) for e in history]
    resumed_from_step = 0
    if resume_from is not None:
        state = json.loads((resume_from / "trainer_state.json").read_text())
        resumed_from_step = int(state["global_step"])
    return TrainResult(
        adapter_dir=adapter_dir,
        adapter_sha256=sha256_file(adapter_dir / ADAPTER_WEIGHTS),
        steps=int(trainer.state.global_step),
        total_steps=int(trainer.state.max_steps),
        final_loss=losses[-1] if losses else math.nan,
        losses=losses,
        reward_margins=[float(e.get("rewards/margins", math.nan)) for e in history],
        reward_accuracies=[float(e.get("rewards/accuracies", math.nan)) for e in history],
        tokens_per_s=progress.tokens / train_seconds if train_seconds > 0 else 0.0,
        tokens=progress.tokens,
        seconds=time.perf_counter() - started,
        train_seconds=train_seconds,
        sft_seconds=sft_seconds,
        resumed_from_step=resumed_from_step,
        train_pairs=len(rows),
        replay_pairs=replay_pairs,
        sft_losses=sft_losses,
        stopped_early=early_stop is not None and early_stop.stopped,
        edit_similarity=similarity,
        device=base_.device,
        quantization=base_.quantization,
        base_model=base_.name,
        versions=versions(),
    )
