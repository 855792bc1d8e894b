"""train_dpo on a tiny random Llama (tests/backends/tiny.py): DPO / IPO / SFT warm-start
move the LoRA weights the right way, replay mixes golden pairs in, bad settings are
rejected, and a resumed run ends exactly where an uninterrupted one does."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import torch
from peft import LoraConfig, get_peft_model
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, set_seed

from services.training.trainer import (
    DpoSettings,
    LoraSettings,
    cap_prompts,
    edit_similarity,
    mix_replay,
    preference_rows,
    sft_warmup_steps,
    train_dpo,
)
from tests.backends.tiny import build_tiny_model

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")

# Words from the tiny tokenizer's corpus (anything else is <unk>).
PAIRS: list[dict[str, Any]] = [
    {
        "prompt": "what is the capital of france",
        "chosen": "paris is the capital",
        "rejected": "red green blue yellow",
    },
    {
        "prompt": json.dumps([{"role": "user", "content": "one two three"}]),
        "chosen": "four five six",
        "rejected": "the lazy dog",
    },
    {
        "prompt": [
            {"role": "system", "content": "please answer briefly"},
            {"role": "user", "content": "hello world"},
        ],
        "chosen": "hello this is a tiny model",
        "rejected": "black white orange",
    },
    {
        "prompt": "the quick brown fox",
        "chosen": "jumps over the lazy dog",
        "rejected": "seven eight nine",
    },
]
GOLDEN: list[dict[str, Any]] = [
    {"prompt": "red green blue", "chosen": "yellow orange purple", "rejected": "one two"},
    {"prompt": "one two three four", "chosen": "five six seven", "rejected": "paris"},
]
FAST = DpoSettings(max_steps=8, batch_size=2, learning_rate=5e-3, seed=3)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def test_dpo_changes_lora_weights_and_learns_the_preference(
    model_dir: Path, tmp_path: Path
) -> None:
    steps: list[tuple[int, float]] = []
    settings = DpoSettings(max_steps=16, batch_size=4, learning_rate=5e-3, seed=3)
    result = train_dpo(
        model_dir, PAIRS, tmp_path, dpo=settings, on_step=lambda s, x: steps.append((s, x))
    )

    assert result.steps == result.total_steps == 16
    assert [s for s, _ in steps] == list(range(1, 17))
    assert [x for _, x in steps] == result.losses
    # At step 1 the adapter is a no-op (B = 0): the DPO loss is exactly log 2.
    assert result.losses[0] == pytest.approx(0.6931, abs=1e-3)
    assert _mean(result.losses[-4:]) < result.losses[0] - 0.1
    assert result.reward_margins[0] == pytest.approx(0.0, abs=1e-3)
    assert _mean(result.reward_margins[-4:]) > 0.3
    assert result.reward_accuracies[-1] == 1.0
    assert result.tokens > 0 and result.tokens_per_s > 0
    assert result.device == "cpu" and result.quantization == "none"

    # Parameters changed: B left zero, A left its seeded initialisation.
    trained = load_file(result.adapter_dir / "adapter_model.safetensors")
    set_seed(settings.seed)
    fresh = get_peft_model(
        AutoModelForCausalLM.from_pretrained(model_dir),
        LoraConfig(r=8, lora_alpha=16, lora_dropout=0.05, target_modules=["q_proj", "v_proj"]),
    )
    initial = {k: v for k, v in fresh.state_dict().items() if "lora_" in k}
    b_keys = [k for k in trained if "lora_B" in k]
    a_keys = [k for k in trained if "lora_A" in k]
    assert len(b_keys) == len(a_keys) == 4  # 2 layers x (q_proj, v_proj)
    assert all(trained[k].abs().max() > 0 for k in b_keys)
    for key in a_keys:
        start = initial[key.replace(".weight", ".default.weight")]
        assert not torch.allclose(trained[key], start)
    config = json.loads((result.adapter_dir / "adapter_config.json").read_text())
    assert config["r"] == 8 and sorted(config["target_modules"]) == ["q_proj", "v_proj"]


def test_ipo_loss_trains(model_dir: Path, tmp_path: Path) -> None:
    ipo = DpoSettings(loss="ipo", beta=0.5, max_steps=6, batch_size=4, learning_rate=5e-3)
    result = train_dpo(model_dir, PAIRS, tmp_path, dpo=ipo)
    assert result.steps == 6
    # IPO's loss is (margin/beta - 1/(2 tau))^2: 1/(2*0.5)^2 = 1 when the margin is 0.
    assert result.losses[0] == pytest.approx(1.0, abs=1e-3)
    assert result.losses[-1] < result.losses[0]


def _window_means(losses: list[float], window: int) -> list[float]:
    """Mean loss of the ``window`` steps ending at each step (index 0: step ``window``)."""
    return [_mean(losses[i - window : i]) for i in range(window, len(losses) + 1)]


def test_early_stopping_ends_the_first_epoch_once_unseen_pairs_are_ranked(
    model_dir: Path, tmp_path: Path
) -> None:
    # 16 pairs at batch 2: 8 steps an epoch. Two epochs with no early stop give every
    # step's loss; an early-stopped run takes the same steps until it stops.
    settings = DpoSettings(epochs=2, batch_size=2, learning_rate=5e-3, seed=3)
    full = train_dpo(model_dir, PAIRS * 4, tmp_path / "full", dpo=settings)
    assert full.steps == full.total_steps == 16 and not full.stopped_early
    means = _window_means(full.losses, 2)
    first_epoch, second_epoch = means[:7], means[7:]  # windows ending at steps 2-8, 9-16
    # Stop at the first window (not the last of the epoch) that beats every earlier one.
    stop = next(i for i in range(1, 6) if first_epoch[i] < min(first_epoch[:i]))
    threshold = (first_epoch[stop] + min(first_epoch[:stop])) / 2
    stopped = train_dpo(
        model_dir, PAIRS * 4, tmp_path / "stopped",
        dpo=replace(settings, early_stop_loss=threshold, early_stop_window=2),
    )  # fmt: skip
    assert stopped.stopped_early and stopped.total_steps == 16
    assert stopped.steps == stop + 2  # window index i ends at step i + 2
    assert stopped.losses == pytest.approx(full.losses[: stop + 2], abs=1e-6)

    # Past the first epoch the pairs have been trained on: their loss says nothing about
    # unseen ones, so it never stops the run, however low it falls.
    below_every_first = min(first_epoch) - 1e-4
    assert min(second_epoch) < below_every_first  # else this half would test nothing
    later = train_dpo(
        model_dir, PAIRS * 4, tmp_path / "later",
        dpo=replace(settings, early_stop_loss=below_every_first, early_stop_window=2),
    )  # fmt: skip
    assert later.steps == 16 and not later.stopped_early


def test_sft_warm_start_then_dpo(model_dir: Path, tmp_path: Path) -> None:
    settings = DpoSettings(max_steps=4, batch_size=4, learning_rate=5e-3, sft_warmup_steps=4)
    result = train_dpo(model_dir, PAIRS, tmp_path, dpo=settings)
    assert len(result.sft_losses) == 4
    assert result.sft_losses[-1] < result.sft_losses[0]
    assert result.steps == 4
    # The reference is the warmed-up adapter, so DPO starts at a zero margin again.
    assert result.reward_margins[0] == pytest.approx(0.0, abs=0.05)
    # Only the trained adapter is shipped, not TRL's frozen "ref" copy.
    assert (result.adapter_dir / "adapter_model.safetensors").is_file()
    assert not (result.adapter_dir / "ref").exists()


def test_sft_warm_start_steps_follow_the_datasets_size(model_dir: Path, tmp_path: Path) -> None:
    # One epoch over the pairs at batch 2: ceil(len / 2) steps, whatever the size.
    assert sft_warmup_steps(DpoSettings(batch_size=2, sft_warmup_epochs=1.0), 9) == 5
    assert sft_warmup_steps(DpoSettings(batch_size=2, sft_warmup_epochs=0.5), 90) == 23
    assert sft_warmup_steps(DpoSettings(batch_size=2, gradient_accumulation_steps=2,
                                        sft_warmup_epochs=1.0), 9) == 3  # fmt: skip
    # Steps set explicitly win; neither set: no warm start (the trainer's default; the
    # platform's API lets the data decide, services.training.loops.RECIPE).
    assert sft_warmup_steps(DpoSettings(sft_warmup_steps=7, sft_warmup_epochs=1.0), 90) == 7
    assert sft_warmup_steps(DpoSettings(), 90) == 0
    settings = DpoSettings(max_steps=2, batch_size=4, learning_rate=5e-3, sft_warmup_epochs=1.0)
    result = train_dpo(model_dir, PAIRS, tmp_path, dpo=settings)
    assert len(result.sft_losses) == -(-len(PAIRS) // 4) and result.steps == 2


def test_the_warm_start_rule_reads_how_much_users_kept() -> None:
    touched_up = {"source": "PAIR_SOURCE_EDIT", "chosen": "Hi Ann, it ships today.",
                  "rejected": "Hi Ann, it ships today!"}  # fmt: skip
    rewritten = {"source": "PAIR_SOURCE_CORRECTION", "chosen": "Category: billing; P2",
                 "rejected": "Thank you for reaching out about your invoice."}  # fmt: skip
    ranked = {"source": "PAIR_SOURCE_REWARD_RANKED", "chosen": "a", "rejected": "zzzz"}
    assert edit_similarity([touched_up]) == pytest.approx(44 / 46)
    # Only what a user wrote counts: ranked pairs (and rows of no known source) do not.
    assert edit_similarity([ranked, {"chosen": "a", "rejected": "b"}]) is None
    both = edit_similarity([touched_up, rewritten, ranked])
    assert both is not None and both == pytest.approx(
        (edit_similarity([touched_up]) + edit_similarity([rewritten])) / 2  # type: ignore[operator]
    )
    rule = DpoSettings(batch_size=2, sft_warmup_below_similarity=0.5)
    assert sft_warmup_steps(rule, 9, edit_similarity([rewritten])) == 5  # one epoch
    assert sft_warmup_steps(rule, 9, edit_similarity([touched_up])) == 0
    assert sft_warmup_steps(rule, 9, None) == 0  # no edits: nothing shows a format
    # An explicit warm start is not second-guessed; the rule off: never.
    assert sft_warmup_steps(DpoSettings(sft_warmup_epochs=0.5, sft_warmup_below_similarity=0.5),
                            8, 0.9) == 2  # fmt: skip
    assert sft_warmup_steps(DpoSettings(), 9, 0.0) == 0
    with pytest.raises(ValueError, match=r"dpo\.sft_warmup_below_similarity"):
        DpoSettings(sft_warmup_below_similarity=1.5)


def test_rewritten_answers_get_a_warm_start_and_the_run_says_why(
    model_dir: Path, tmp_path: Path
) -> None:
    rewrites = [{**p, "source": "PAIR_SOURCE_EDIT"} for p in PAIRS]  # nothing kept
    settings = DpoSettings(max_steps=1, batch_size=4, sft_warmup_below_similarity=0.5)
    result = train_dpo(model_dir, rewrites, tmp_path / "rewrites", dpo=settings)
    assert result.edit_similarity is not None and result.edit_similarity < 0.5
    assert len(result.sft_losses) == 1  # one epoch of 4 pairs at batch 4
    assert result.metrics()["edit_similarity"] == result.edit_similarity
    # Its time is reported apart from the preference steps', both within the call's.
    assert result.sft_seconds > 0 and result.sft_seconds + result.train_seconds < result.seconds
    touch_ups = [{**p, "rejected": p["chosen"] + " dog", "source": "PAIR_SOURCE_EDIT"}
                 for p in PAIRS]  # fmt: skip
    result = train_dpo(model_dir, touch_ups, tmp_path / "touch_ups", dpo=settings)
    assert result.edit_similarity is not None and result.edit_similarity > 0.5
    assert result.sft_losses == [] and result.sft_seconds == 0


def test_parent_adapter_is_continued_and_is_the_reference(model_dir: Path, tmp_path: Path) -> None:
    parent = train_dpo(model_dir, PAIRS, tmp_path / "parent", dpo=FAST)
    child = train_dpo(
        model_dir,
        PAIRS,
        tmp_path / "child",
        dpo=DpoSettings(max_steps=2, batch_size=4, learning_rate=5e-3),
        parent_adapter=parent.adapter_dir,
    )
    # Policy == reference at the start (dropout aside): a margin of about zero, though
    # the parent already prefers the chosen answers over the base.
    assert child.reward_margins[0] == pytest.approx(0.0, abs=0.05)
    assert child.adapter_sha256 != parent.adapter_sha256
    assert not (child.adapter_dir / "ref").exists()


def test_replay_mix_includes_golden_pairs(model_dir: Path, tmp_path: Path) -> None:
    rows = preference_rows(PAIRS, chat=True)
    golden = preference_rows(GOLDEN, chat=True, name="golden")
    mix, n = mix_replay(rows, golden, 0.5, seed=0)
    assert n == 4 and len(mix) == 8  # half of the mix is replay (golden cycled)
    assert sum(r in golden for r in mix) == 4
    assert mix_replay(rows, golden, 0.2, seed=0)[1] == 1
    assert mix_replay(rows, [], 0.5, seed=0) == (rows, 0)
    assert mix_replay(rows, golden, 0.0, seed=0) == (rows, 0)

    settings = DpoSettings(max_steps=2, batch_size=4, replay_fraction=1 / 3)
    result = train_dpo(model_dir, PAIRS, tmp_path, dpo=settings, golden=GOLDEN)
    assert (result.train_pairs, result.replay_pairs) == (4, 2)


def test_preference_rows_accept_text_chat_and_json_prompts() -> None:
    rows = preference_rows(PAIRS, chat=True)
    assert rows[0]["prompt"] == [{"role": "user", "content": "what is the capital of france"}]
    assert rows[1]["prompt"] == [{"role": "user", "content": "one two three"}]
    assert rows[2]["prompt"][0]["role"] == "system"
    assert rows[0]["chosen"] == [{"role": "assistant", "content": "paris is the capital"}]
    plain = preference_rows(PAIRS, chat=False)
    assert plain[2]["prompt"] == "please answer briefly\nhello world"
    assert plain[0]["rejected"] == "red green blue yellow"


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        ({"prompt": "x", "chosen": "y"}, r"dataset\[0\]: missing rejected"),
        ({"prompt": "x", "chosen": " ", "rejected": "z"}, r"dataset\[0\]\.chosen"),
        ({"prompt": [{"content": "x"}], "chosen": "y", "rejected": "z"}, r"prompt\[0\]"),
        ({"prompt": "", "chosen": "y", "rejected": "z"}, r"prompt: must be non-empty"),
    ],
)
def test_bad_pairs_are_rejected_with_the_row_named(bad: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        preference_rows([bad], chat=True)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"loss": "hinge"}, "dpo.loss"),
        ({"beta": 0}, "dpo.beta"),
        ({"learning_rate": -1.0}, "dpo.learning_rate"),
        ({"epochs": 0}, "dpo.epochs"),
        ({"max_steps": 0}, "dpo.max_steps"),
        ({"batch_size": 0}, "dpo.batch_size"),
        ({"gradient_accumulation_steps": 0}, "gradient_accumulation_steps"),
        ({"max_length": 8}, "dpo.max_length"),
        ({"warmup_ratio": 1.0}, "dpo.warmup_ratio"),
        ({"sft_warmup_steps": -1}, "dpo.sft_warmup_steps"),
        ({"sft_warmup_epochs": -0.5}, "dpo.sft_warmup_epochs"),
        ({"sft_warmup_epochs": float("nan")}, "dpo.sft_warmup_epochs"),
        ({"replay_fraction": 1.0}, "dpo.replay_fraction"),
        ({"early_stop_loss": -0.1}, "dpo.early_stop_loss"),
        ({"early_stop_loss": float("nan")}, "dpo.early_stop_loss"),
        ({"early_stop_window": 0}, "dpo.early_stop_window"),
        ({"seed": -1}, "dpo.seed"),
        ({"max_prompt_length": 0}, "dpo.max_prompt_length"),
        ({"max_length": 64, "max_prompt_length": 64}, "dpo.max_prompt_length"),
    ],
)
def test_dpo_settings_validation(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        DpoSettings(**kwargs)  # type: ignore[arg-type]


def test_long_prompts_lose_the_start_of_their_last_message(model_dir: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    words = " ".join(["red green blue yellow orange purple black white"] * 4)
    system = {"role": "system", "content": "please answer briefly"}
    rows = preference_rows(
        [
            {"prompt": [system, {"role": "user", "content": words}], "chosen": "yes",
             "rejected": "no"},
            {"prompt": [system, {"role": "user", "content": "red"}], "chosen": "yes",
             "rejected": "no"},
        ],
        chat=True,
    )  # fmt: skip

    def length(prompt: list[dict[str, str]]) -> int:
        encoded: Any = tokenizer.apply_chat_template(prompt, add_generation_prompt=True)
        return len(encoded["input_ids"])

    short_before = length(rows[1]["prompt"])
    cap = short_before + 10
    assert length(rows[0]["prompt"]) > cap
    assert cap_prompts(rows, tokenizer, cap) == 1
    assert length(rows[0]["prompt"]) <= cap and length(rows[1]["prompt"]) == short_before
    # The system message stays whole; the user's message keeps its end.
    assert rows[0]["prompt"][0] == system
    assert words.endswith(rows[0]["prompt"][1]["content"].split(" ", 1)[1])
    with pytest.raises(ValueError, match="max_prompt_length"):
        cap_prompts(rows, tokenizer, 3)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"rank": 0}, "lora.rank"),
        ({"alpha": 0.0}, "lora.alpha"),
        ({"dropout": 1.0}, "lora.dropout"),
        ({"target_modules": []}, "lora.target_modules"),
        ({"target_modules": ["q_proj", ""]}, "lora.target_modules"),
    ],
)
def test_lora_settings_validation(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        LoraSettings(**kwargs)  # type: ignore[arg-type]


def test_lora_defaults_mirror_the_contract() -> None:
    lora = LoraSettings(target_modules=["q_proj"])  # type: ignore[arg-type]
    assert lora.target_modules == ("q_proj",)
    assert LoraSettings().scaling_alpha == 16.0
    assert LoraSettings().target_modules == ("q_proj", "v_proj")


def test_train_dpo_rejects_bad_inputs(model_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no preference pairs"):
        train_dpo(model_dir, [], tmp_path, dpo=FAST)
    with pytest.raises(ValueError, match="not a trainer checkpoint"):
        train_dpo(model_dir, PAIRS, tmp_path, dpo=FAST, resume_from=tmp_path)
    with pytest.raises(ValueError, match="checkpoint_every"):
        train_dpo(model_dir, PAIRS, tmp_path, dpo=FAST, checkpoint_every=-1)


@pytest.mark.parametrize("sft_warmup_steps", [0, 2])
def test_resume_from_checkpoint_matches_an_uninterrupted_run(
    model_dir: Path, tmp_path: Path, sft_warmup_steps: int
) -> None:
    settings = DpoSettings(
        max_steps=8, batch_size=2, learning_rate=5e-3, sft_warmup_steps=sft_warmup_steps
    )
    kept: list[Path] = []

    def keep(directory: Path) -> None:
        # The trainer rotates old checkpoints away; keep a copy of each.
        kept.append(shutil.copytree(directory, tmp_path / "kept" / directory.name))

    full = train_dpo(model_dir, PAIRS, tmp_path / "full", dpo=settings, checkpoint_every=3)
    train_dpo(
        model_dir, PAIRS, tmp_path / "a", dpo=settings, checkpoint_every=3, on_checkpoint=keep
    )
    # Every 3 steps, and at the end.
    assert [p.name for p in kept] == ["checkpoint-3", "checkpoint-6", "checkpoint-8"]

    steps: list[int] = []
    resumed = train_dpo(
        model_dir,
        PAIRS,
        tmp_path / "b",
        dpo=settings,
        resume_from=kept[0],
        on_step=lambda s, _: steps.append(s),
    )
    assert resumed.resumed_from_step == 3
    assert steps == [4, 5, 6, 7, 8]  # did not start at step 0
    assert resumed.steps == resumed.total_steps == full.steps == 8
    # Exact resume: optimizer, scheduler, RNG and data order all restored.
    assert resumed.losses == pytest.approx(full.losses, abs=1e-6)
    assert resumed.adapter_sha256 == full.adapter_sha256
