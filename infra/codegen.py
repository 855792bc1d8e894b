"""Generate gen/ from proto/ (``make gen``) and check it is fresh (``make gen-check``).

The googleapis protos (google/api, google/rpc) come from the installed
``googleapis-common-protos`` wheel, copied to ``.build/googleapis`` so that buf (which
cannot fetch remote deps here) sees them as a local workspace module and protoc as an
include path. The Python runtime for them is that same wheel.
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_DIR = ROOT / "proto"
GEN_DIR = ROOT / "gen"
GOOGLEAPIS_DIR = ROOT / ".build" / "googleapis"
GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")


def googleapis_source() -> Path:
    import google.api

    return Path(next(iter(google.api.__path__))).parent.parent


def copy_googleapis() -> Path:
    src = googleapis_source()
    if GOOGLEAPIS_DIR.exists():
        shutil.rmtree(GOOGLEAPIS_DIR)
    for sub in ("google/api", "google/rpc"):
        for proto in (src / sub).rglob("*.proto"):
            dest = GOOGLEAPIS_DIR / proto.relative_to(src)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(proto, dest)
    return GOOGLEAPIS_DIR


def protos() -> list[Path]:
    return sorted(PROTO_DIR.rglob("*.proto"))


def generate(out_dir: Path) -> None:
    from grpc_tools import protoc

    include = copy_googleapis()
    wkt = Path(protoc.__file__).parent / "_proto"
    out_dir.mkdir(parents=True, exist_ok=True)
    args = [
        "protoc",
        f"-I{PROTO_DIR}",
        f"-I{include}",
        f"-I{wkt}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        *(str(p.relative_to(PROTO_DIR)) for p in protos()),
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")


def generated_files(root: Path) -> dict[Path, Path]:
    return {
        p.relative_to(root): p
        for p in root.rglob("*")
        if p.is_file() and p.name.endswith(GENERATED_SUFFIXES)
    }


def stale_files() -> list[str]:
    """Paths under gen/ that differ from what `make gen` would write now."""
    with tempfile.TemporaryDirectory() as tmp:
        fresh_root = Path(tmp)
        generate(fresh_root)
        fresh = generated_files(fresh_root)
        current = generated_files(GEN_DIR)
        problems = [f"missing: gen/{p}" for p in sorted(fresh.keys() - current.keys())]
        problems += [f"extra: gen/{p}" for p in sorted(current.keys() - fresh.keys())]
        problems += [
            f"differs: gen/{p}"
            for p in sorted(fresh.keys() & current.keys())
            if not filecmp.cmp(fresh[p], current[p], shallow=False)
        ]
        return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if gen/ is stale")
    parser.add_argument("--deps-only", action="store_true", help="only copy googleapis protos")
    args = parser.parse_args(argv)
    if args.deps_only:
        copy_googleapis()
        return 0
    if args.check:
        problems = stale_files()
        for line in problems:
            print(line, file=sys.stderr)
        if problems:
            print("gen/ is stale: run `make gen` and commit the result", file=sys.stderr)
            return 1
        print("gen/ is fresh")
        return 0
    for path in generated_files(GEN_DIR).values():
        path.unlink()
    generate(GEN_DIR)
    print(f"generated {len(generated_files(GEN_DIR))} files in gen/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
