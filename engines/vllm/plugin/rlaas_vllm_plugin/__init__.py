"""A vLLM LoRA resolver that reads adapters from the RLaaS object store
(``rlaas_engine_adapters`` says how and why).

vLLM calls ``register`` in every process that loads general plugins
(``vllm.general_plugins`` entry point); it only asks a resolver when
``VLLM_ALLOW_RUNTIME_LORA_UPDATING`` is on. The verified copies are cached under
``RLAAS_VLLM_LORA_CACHE``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile
from pathlib import Path

from rlaas_engine_adapters import Fetch, fetch_from_env, materialize, parse_name

logger = logging.getLogger(__name__)


def register() -> None:
    from vllm.lora.request import LoRARequest
    from vllm.lora.resolver import LoRAResolver, LoRAResolverRegistry

    found = fetch_from_env()
    if found is None:
        logger.warning("rlaas resolver: neither RLAAS_S3_ENDPOINT nor RLAAS_OBJECTS_DIR is set")
        return
    fetch: Fetch = found
    cache = Path(
        os.environ.get("RLAAS_VLLM_LORA_CACHE") or Path(tempfile.gettempdir()) / "rlaas-loras"
    )

    class ObjectStoreResolver(LoRAResolver):
        async def resolve_lora(self, base_model_name: str, lora_name: str) -> LoRARequest | None:
            parsed = parse_name(lora_name)
            if parsed is None:
                return None
            path = await asyncio.to_thread(materialize, fetch, *parsed, cache)
            if path is None:
                return None
            # vLLM replaces the id with its own counter's.
            return LoRARequest(lora_name=lora_name, lora_int_id=1, lora_path=str(path))

    LoRAResolverRegistry.register_resolver("rlaas object store", ObjectStoreResolver())
