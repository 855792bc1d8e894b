#!/usr/bin/env bash
# Re-resolve every Python dependency (runtime + dev tools) into requirements.lock.
# pip-compile uses pip's resolver and so pip's configured indexes and find-links: on a
# machine that keeps the CPU build of torch on disk it resolves `torch==2.13.0+cpu` and
# that wheel's dependencies (no CUDA libraries). The lock records it as `torch==2.13.0`
# (no local label) so that the same line installs PyPI's build on a machine without it.
set -euo pipefail
cd "$(dirname "$0")/.."
pip_compile=${RLAAS_PIP_COMPILE:-.venv/bin/pip-compile}
"$pip_compile" --quiet --upgrade --extra dev --allow-unsafe --strip-extras \
  --no-emit-index-url --no-emit-find-links --output-file requirements.lock pyproject.toml
sed -i -E 's/^torch==([0-9.]+)\+[a-z0-9]+$/torch==\1/' requirements.lock
grep -qE '^nvidia-' requirements.lock && { echo "lock pulls CUDA libraries: torch came from PyPI, not the CPU build" >&2; exit 1; }
echo "requirements.lock refreshed; review 'git diff requirements.lock', then make test"
