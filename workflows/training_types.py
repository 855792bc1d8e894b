"""The trainer's settings: LoRA adapter and DPO/IPO hyperparameters, validated when
made. Pure (stdlib only): the API server validates a training config with them, the
workflows carry them in their payloads (``LoopConfig``, ``TrainAdapterInput``) and the
training worker trains with them (services.training.trainer), with no torch anywhere but
the worker.

Payload compatibility: these were once plain dicts of the same fields in the payloads
(``"lora": {"rank": 4}``, ``"dpo": {}``); the JSON converter decodes such a dict into
the dataclass, missing fields taking their defaults. Add fields with defaults only. A
payload whose values fail the checks does not decode at all: the server checks a config
(by making these) before it starts a workflow with it."""

# No ``from __future__ import annotations`` here: the payload converter resolves these
# fields' types with typing.get_type_hints, and inside the workflow sandbox this module
# is not in sys.modules, so string annotations (``LossType``) would not resolve.
from dataclasses import dataclass, field
from typing import Literal

LossType = Literal["sigmoid", "ipo"]


@dataclass(frozen=True)
class LoraSettings:
    """LoRA adapter settings; mirrors ``rlaas.training.v1.LoraConfig``."""

    rank: int = field(default=8, metadata={"help": "LoRA rank r, >= 1."})
    alpha: float | None = field(
        default=None, metadata={"help": "LoRA scaling alpha, > 0; default 2 * rank."}
    )
    dropout: float = field(default=0.05, metadata={"help": "LoRA dropout, in [0, 1)."})
    target_modules: tuple[str, ...] = field(
        default=("q_proj", "v_proj"), metadata={"help": "Module names to adapt."}
    )
    qlora: bool = field(
        default=False,
        metadata={
            "help": "Train on a 4-bit NF4 base (QLoRA). Used only where CUDA is available "
            "and bitsandbytes imports; elsewhere the base stays in full precision."
        },
    )

    def __post_init__(self) -> None:
        # Accept a list (JSON payloads, proto repeated fields) but store a tuple.
        object.__setattr__(self, "target_modules", tuple(self.target_modules))
        if self.rank < 1:
            raise ValueError(f"lora.rank must be >= 1, got {self.rank}")
        if self.alpha is not None and not self.alpha > 0:
            raise ValueError(f"lora.alpha must be > 0, got {self.alpha}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"lora.dropout must be in [0, 1), got {self.dropout}")
        if not self.target_modules or any(
            not isinstance(m, str) or not m for m in self.target_modules
        ):
            raise ValueError("lora.target_modules must be a non-empty list of module names")

    @property
    def scaling_alpha(self) -> float:
        return self.alpha if self.alpha is not None else 2.0 * self.rank


@dataclass(frozen=True)
class DpoSettings:
    """Preference-optimisation hyperparameters; mirrors
    ``rlaas.training.v1.TrainingHyperparameters`` (plus SFT warm-start and replay)."""

    loss: LossType = field(default="sigmoid", metadata={"help": "'sigmoid' (DPO) or 'ipo' (IPO)."})
    beta: float = field(
        default=0.1, metadata={"help": "DPO beta / IPO tau: pull towards the reference, > 0."}
    )
    learning_rate: float = field(default=5e-4, metadata={"help": "Peak learning rate, > 0."})
    epochs: float = field(default=1.0, metadata={"help": "Epochs over the mix, > 0."})
    max_steps: int | None = field(
        default=None, metadata={"help": "Optimiser steps; overrides epochs when set, >= 1."}
    )
    batch_size: int = field(default=2, metadata={"help": "Pairs per device batch, >= 1."})
    gradient_accumulation_steps: int = field(
        default=1, metadata={"help": "Batches per optimiser step, >= 1."}
    )
    max_length: int = field(
        default=512, metadata={"help": "Most tokens of prompt + answer, >= 16."}
    )
    max_prompt_length: int | None = field(
        default=None,
        metadata={
            "help": "Most tokens of the prompt, < max_length; a longer prompt loses the start "
            "of its last message (None: only max_length applies)."
        },
    )
    warmup_ratio: float = field(
        default=0.0, metadata={"help": "Linear warm-up fraction of the steps, [0, 1)."}
    )
    seed: int = field(default=0, metadata={"help": "Seed of LoRA init, data order, dropout."})
    sft_warmup_steps: int = field(
        default=0,
        metadata={
            "help": "SFT steps on the chosen answers before DPO (0: none). The warmed-up "
            "adapter becomes the DPO reference."
        },
    )
    sft_warmup_epochs: float = field(
        default=0.0,
        metadata={
            "help": "SFT epochs over the chosen answers before DPO, when sft_warmup_steps "
            "is 0: the steps follow from the dataset's size (0: none; the platform's "
            "API leaves it to sft_warmup_below_similarity)."
        },
    )
    sft_warmup_below_similarity: float = field(
        default=0.0,
        metadata={
            "help": "When no warm start is set (steps and epochs 0): one SFT epoch if the "
            "edit pairs' mean similarity of what the user sent to what was served is below "
            "this, [0, 1]. Users who rewrite most of an answer are showing a format the "
            "model does not produce, which SFT teaches and DPO alone does not; users who "
            "touch up an answer are ranking, which DPO learns without the SFT's collapse "
            "(0: never; the platform's API sets 0.5, services.training.loops.RECIPE)."
        },
    )
    replay_fraction: float = field(
        default=0.0,
        metadata={
            "help": "Fraction of the training mix drawn from golden replay pairs (against "
            "forgetting), [0, 1)."
        },
    )
    early_stop_loss: float = field(
        default=0.0,
        metadata={
            "help": "Stop the preference loss once the mean loss of the last "
            "early_stop_window steps is below this, while those steps are in the first "
            "epoch: each step's loss is then measured on pairs not trained on yet "
            "(progressive validation), an unbiased held-out estimate that costs no extra "
            "forward pass. In the loss's own units (DPO: -log sigmoid of the margin). "
            "0: never; the platform's API sets 0.1, services.training.loops.RECIPE."
        },
    )
    early_stop_window: int = field(
        default=4, metadata={"help": "Steps whose mean loss early stopping reads, >= 1."}
    )
    gradient_checkpointing: bool = field(
        default=False,
        metadata={"help": "Trade compute for memory (TRL turns it on by default; we do not)."},
    )

    def __post_init__(self) -> None:
        if self.loss not in ("sigmoid", "ipo"):
            raise ValueError(f"dpo.loss must be 'sigmoid' or 'ipo', got {self.loss!r}")
        if not self.beta > 0:
            raise ValueError(f"dpo.beta must be > 0, got {self.beta}")
        if not self.learning_rate > 0:
            raise ValueError(f"dpo.learning_rate must be > 0, got {self.learning_rate}")
        if self.max_steps is None and not self.epochs > 0:
            raise ValueError(f"dpo.epochs must be > 0, got {self.epochs}")
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError(f"dpo.max_steps must be >= 1, got {self.max_steps}")
        if self.batch_size < 1:
            raise ValueError(f"dpo.batch_size must be >= 1, got {self.batch_size}")
        if self.gradient_accumulation_steps < 1:
            raise ValueError(
                "dpo.gradient_accumulation_steps must be >= 1, "
                f"got {self.gradient_accumulation_steps}"
            )
        if self.max_length < 16:
            raise ValueError(f"dpo.max_length must be >= 16, got {self.max_length}")
        if self.max_prompt_length is not None and not 0 < self.max_prompt_length < self.max_length:
            raise ValueError(
                f"dpo.max_prompt_length must be in [1, max_length={self.max_length}), "
                f"got {self.max_prompt_length}"
            )
        if not 0 <= self.warmup_ratio < 1:
            raise ValueError(f"dpo.warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
        if self.seed < 0:
            raise ValueError(f"dpo.seed must be >= 0, got {self.seed}")
        if self.sft_warmup_steps < 0:
            raise ValueError(f"dpo.sft_warmup_steps must be >= 0, got {self.sft_warmup_steps}")
        if not 0 <= self.sft_warmup_epochs <= 10:  # NaN fails too
            raise ValueError(
                f"dpo.sft_warmup_epochs must be in [0, 10], got {self.sft_warmup_epochs}"
            )
        if not 0 <= self.sft_warmup_below_similarity <= 1:
            raise ValueError(
                "dpo.sft_warmup_below_similarity must be in [0, 1], "
                f"got {self.sft_warmup_below_similarity}"
            )
        if not 0 <= self.early_stop_loss < 10:  # NaN fails too
            raise ValueError(f"dpo.early_stop_loss must be in [0, 10), got {self.early_stop_loss}")
        if self.early_stop_window < 1:
            raise ValueError(f"dpo.early_stop_window must be >= 1, got {self.early_stop_window}")
        if not 0 <= self.replay_fraction < 1:
            raise ValueError(f"dpo.replay_fraction must be in [0, 1), got {self.replay_fraction}")
