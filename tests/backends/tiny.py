"""A tiny causal LM (random Llama weights, a word-level tokenizer trained on a few
sentences, a ChatML-like chat template) and LoRA adapters for it, built on disk in
seconds so the backend tests never need a hub or the real base model."""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from peft import LoraConfig, get_peft_model
from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

CHAT_TEMPLATE = (
    "{% for m in messages %}<s> {{ m['role'] }} : {{ m['content'] }} </s> {% endfor %}"
    "{% if add_generation_prompt %}<s> assistant : {% endif %}"
)

CORPUS = [
    "the quick brown fox jumps over the lazy dog",
    "hello world this is a tiny model for tests",
    "what is the capital of france paris is the capital",
    "one two three four five six seven eight nine ten",
    "system user assistant : please answer briefly and politely",
    "red green blue yellow orange purple black white",
]


def build_tiny_model(directory: Path, *, seed: int = 0) -> Path:
    """Save a tiny Llama + tokenizer under ``directory`` (an HF model dir)."""
    directory.mkdir(parents=True, exist_ok=True)
    tok = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.train_from_iterator(
        CORPUS,
        trainers.WordLevelTrainer(special_tokens=["<unk>", "<pad>", "<s>", "</s>"]),
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="<unk>",
        pad_token="<pad>",
        bos_token="<s>",
        eos_token="</s>",
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    # The word-level decoder joins tokens with spaces.
    tokenizer.save_pretrained(directory)

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        initializer_range=0.3,
        tie_word_embeddings=False,
    )
    model = LlamaForCausalLM(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(directory)
    return directory


def build_lora_adapter(model_dir: Path, directory: Path, *, seed: int, std: float = 0.5) -> str:
    """Save a LoRA adapter with random (non-zero, ``std``) A and B under ``directory``;
    return the sha256 of its ``adapter_model.safetensors``."""
    base = LlamaForCausalLM.from_pretrained(model_dir)
    torch.manual_seed(seed)
    config = LoraConfig(
        r=4,
        lora_alpha=8,
        target_modules=["q_proj", "v_proj", "o_proj", "down_proj"],
        init_lora_weights=False,
    )
    peft_model = get_peft_model(base, config)
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_" in name:
                param.normal_(0.0, std)
    peft_model.save_pretrained(str(directory))
    return sha256_file(directory / "adapter_model.safetensors")


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
