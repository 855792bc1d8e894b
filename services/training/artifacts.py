"""What a training run reads from and writes to the object store: the preference
dataset (Parquet), checkpoints (one tar each, so a checkpoint appears whole or not at
all), adapter files, metrics, the loss curve and the lineage record.

Key layout (``<t>/<s>/<r>`` = tenant / skill / run id):

- ``checkpoints/<t>/<s>/<r>/step-<n>/checkpoint.tar``
- ``adapters/<t>/<s>/<r>/{adapter_config.json, adapter_model.safetensors, metrics.json,
  loss_curve.png, lineage.json}``
"""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from services.errors import InvalidArgument

CHECKPOINT_TAR = "checkpoint.tar"


def run_prefix(kind: str, tenant_id: str, skill_id: str, run_id: str) -> str:
    for name, value in (("tenant_id", tenant_id), ("skill_id", skill_id), ("run_id", run_id)):
        if not value or "/" in value or value in (".", ".."):
            raise InvalidArgument.field(name, f"{value!r} cannot be part of an object key")
    return f"{kind}/{tenant_id}/{skill_id}/{run_id}"


def checkpoint_key(tenant_id: str, skill_id: str, run_id: str, step: int) -> str:
    return f"{run_prefix('checkpoints', tenant_id, skill_id, run_id)}/step-{step}/{CHECKPOINT_TAR}"


def tar_directory(directory: Path) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        tar.add(directory, arcname=directory.name)
    return buf.getvalue()


def untar_directory(data: bytes, destination: Path) -> Path:
    """Unpack a ``tar_directory`` archive under ``destination``; the directory it held."""
    destination.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r") as tar:
        roots = {m.name.split("/", 1)[0] for m in tar.getmembers()}
        if len(roots) != 1:
            raise ValueError("a checkpoint archive holds exactly one directory")
        tar.extractall(destination, filter="data")  # "data": no links out, no abs paths
    return destination / roots.pop()


def read_preference_parquet(data: bytes, *, split: str = "train") -> list[dict[str, Any]]:
    """The training rows of a preference dataset: prompt / chosen / rejected, and the
    pair's ``source`` where the file has one (the trainer's warm-start rule reads the
    edit pairs); other columns are ignored. Raises ValueError when it is not such a
    Parquet file.

    A dataset the platform built also has ``split`` and ``prompt_messages``: only rows
    of ``split`` are returned (the eval split must never be trained on), and the prompt
    is the conversation as served (JSON ``[[role, content], ...]``), so the trainer
    applies the chat template exactly as the backend does instead of seeing the
    flattened text."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(io.BytesIO(data))
    except (pa.ArrowInvalid, OSError) as exc:
        raise ValueError(f"not a Parquet file: {exc}") from exc
    missing = [c for c in ("prompt", "chosen", "rejected") if c not in table.column_names]
    if missing:
        raise ValueError(f"dataset lacks column(s) {', '.join(missing)}")
    extra = [c for c in ("split", "prompt_messages", "source") if c in table.column_names]
    rows: list[dict[str, Any]] = table.select(["prompt", "chosen", "rejected", *extra]).to_pylist()
    if "split" in extra:
        rows = [r for r in rows if r.pop("split") == split]
    for row in rows:
        messages = row.pop("prompt_messages", None)
        if messages:
            row["prompt"] = [{"role": role, "content": text} for role, text in json.loads(messages)]
    return rows


def loss_curve_png(losses: Sequence[float], margins: Sequence[float], title: str) -> bytes:
    """Loss (and reward margin, right axis) per step as a PNG. Uses the Agg canvas
    directly: no pyplot, no global backend state, safe in a worker thread."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 3.5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    steps = list(range(1, len(losses) + 1))
    ax.plot(steps, losses, color="tab:blue", label="loss")
    ax.set_xlabel("step")
    ax.set_ylabel("loss", color="tab:blue")
    if margins:
        right = ax.twinx()
        right.plot(steps, margins, color="tab:orange", label="reward margin")
        right.set_ylabel("reward margin", color="tab:orange")
    ax.set_title(title)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def code_version() -> str:
    """The rlaas package version, plus the git commit when running from a checkout."""
    try:
        version = metadata.version("rlaas")
    except metadata.PackageNotFoundError:
        version = "unknown"
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return f"rlaas=={version}" + (f"+g{commit}" if commit else "")


def dumps(obj: Any) -> bytes:
    return (json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n").encode()
