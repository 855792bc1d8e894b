#!/usr/bin/env bash
# Re-resolves the CUDA locks that `make gpu-check` installs on a machine with an NVIDIA
# GPU, from PyPI alone: this machine's pip also looks at a CPU-only torch on disk, which
# must not end up in a CUDA lock. Each lock is the closure pip's resolver reports
# (`pip install --dry-run --report`), pinned:
#   engines/vllm/requirements-cuda.lock   vLLM's CUDA build, for `make engine-vllm-cuda`
#   engines/gpu/requirements-train.lock   bitsandbytes and torch's CUDA libraries, added
#                                         to .venv (only what requirements.lock lacks)
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
cert=()
if [ -n "${PIP_CERT:-}" ]; then cert=(--cert "$PIP_CERT"); fi

resolve() {  # resolve OUT EXCLUDE_LOCK SPEC...
  local out=$1 exclude=$2
  shift 2
  "$PY" -m pip install --isolated "${cert[@]}" --index-url https://pypi.org/simple \
    --dry-run --ignore-installed --quiet --report - "$@" |
    "$PY" engines/gpu/pin_report.py "$exclude" "$*" >"$out"
  echo "$out: $(grep -c '==' "$out") pins"
}

resolve engines/vllm/requirements-cuda.lock "" vllm==0.32.0 torch==2.13.0
resolve engines/gpu/requirements-train.lock requirements.lock torch==2.13.0 bitsandbytes==0.50.2
