"""``buf breaking`` (WIRE_JSON) of the working tree's contract against a git ref.

buf cannot resolve the googleapis imports of an old tree from a ``.git#ref=`` input
(they live in the untracked ``.build/googleapis``), so the old contract is exported with
``git archive``, given the same local googleapis copy, built into an image, and the
image is the ``--against`` input.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from infra.codegen import GOOGLEAPIS_DIR, ROOT, copy_googleapis

RULES = '{"version": "v2", "breaking": {"use": ["WIRE_JSON"]}}'


def _buf() -> str:
    beside = Path(sys.executable).parent / "buf"
    return str(beside) if beside.exists() else "buf"


def check(ref: str) -> int:
    if not ref:
        print("buf breaking: no landed commit to compare against yet; skipped")
        return 0
    archive = subprocess.run(
        ["git", "archive", "--format=tar", ref, "--", "proto", "buf.yaml"],
        cwd=ROOT,
        capture_output=True,
        check=False,
    )
    if archive.returncode != 0:
        print(f"buf breaking: {ref} has no contract (proto/, buf.yaml); skipped")
        return 0
    copy_googleapis()
    with tempfile.TemporaryDirectory() as tmp:
        old = Path(tmp) / "old"
        with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
            tar.extractall(old, filter="data")
        shutil.copytree(GOOGLEAPIS_DIR, old / ".build" / "googleapis")
        against, current = Path(tmp) / "against.binpb", Path(tmp) / "current.binpb"
        subprocess.run([_buf(), "build", str(old), "-o", str(against)], check=True)
        subprocess.run([_buf(), "build", str(ROOT), "-o", str(current)], check=True)
        # Image against image: a workspace input would be one image per module.
        result = subprocess.run(
            [_buf(), "breaking", str(current), "--against", str(against), "--config", RULES],
            cwd=ROOT,
            check=False,
        )
    short = subprocess.run(
        ["git", "rev-parse", "--short", ref], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    if result.returncode == 0:
        print(f"buf breaking: no WIRE_JSON breaking change against {short}")
    return result.returncode


if __name__ == "__main__":
    sys.exit(check(sys.argv[1] if len(sys.argv) > 1 else ""))
