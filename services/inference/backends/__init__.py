"""Model-serving backends behind one interface (``base.Backend``): ``local`` (transformers
+ PEFT in process, the embedded default), ``triton`` (Triton Inference Server, KServe v2
gRPC) and ``vllm`` (vLLM's OpenAI-compatible HTTP with dynamic LoRA).

The heavy modules (torch, tritonclient, aiohttp) are imported by their own module, not
here: ``from services.inference.backends.local import LocalBackend``.
"""

from services.inference.backends.base import (
    ADAPTER_SHA256_MISMATCH,
    BASE_ADAPTER,
    AdapterRef,
    Backend,
    GenerationRequest,
    GenerationResult,
)

__all__ = [
    "ADAPTER_SHA256_MISMATCH",
    "BASE_ADAPTER",
    "AdapterRef",
    "Backend",
    "GenerationRequest",
    "GenerationResult",
]
