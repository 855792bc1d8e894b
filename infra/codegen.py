"""Generate gen/ from proto/ (``make gen``) and check it is fresh (``make gen-check``).

The googleapis protos (google/api, google/rpc) come from the installed
``googleapis-common-protos`` wheel, copied to ``.build/googleapis`` so that buf (which
cannot fetch remote deps here) sees them as a local workspace module and protoc as an
include path. The Python runtime for them is that same wheel.

The TypeScript client (gen/ts/) comes from ts-proto (`outputServices=grpc-js`), a protoc
plugin installed by npm into sdk/node/node_modules (`make node-deps`, exact versions from
the committed package-lock.json), run by the same protoc over the same include paths.
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
GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py", ".ts", ".openapi.json")
OPENAPI_GEN_FILE = Path("openapi") / "rlaas.openapi.json"
TS_GEN_SUBDIR = "ts"
TS_PLUGIN = ROOT / "sdk" / "node" / "node_modules" / ".bin" / "protoc-gen-ts_proto"
# Typed grpc-js clients; Timestamps as Date; `X.fromPartial({...})` builds requests. No
# version header (the output must not change with protoc's version). buf.gen.yaml's
# TypeScript entry uses the same options.
TS_PROTO_OPTS = ",".join(
    ("outputServices=grpc-js", "esModuleInterop=true", "env=node", "annotateFilesWithVersion=false")
)


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
    generate_openapi(out_dir / OPENAPI_GEN_FILE, [f"-I{PROTO_DIR}", f"-I{include}", f"-I{wkt}"])
    generate_ts(out_dir / TS_GEN_SUBDIR, [f"-I{PROTO_DIR}", f"-I{include}", f"-I{wkt}"])


def generate_openapi(out_file: Path, includes: list[str]) -> None:
    """The REST bridge's OpenAPI document (services.rest.openapi), from a descriptor set of
    the same protos with source info, so the proto comments become its descriptions. No
    protoc-gen-openapiv2 binary exists here (and it writes Swagger 2.0): the generator is
    Python over the descriptors and the bridge's own routes."""
    from google.protobuf import descriptor_pb2, descriptor_pool
    from grpc_tools import protoc

    from services.rest import openapi

    ours = [str(p.relative_to(PROTO_DIR)) for p in protos()]
    with tempfile.TemporaryDirectory() as tmp:
        descriptor_set = Path(tmp) / "rlaas.binpb"
        args = [
            "protoc",
            *includes,
            f"--descriptor_set_out={descriptor_set}",
            "--include_imports",
            "--include_source_info",
            *ours,
        ]
        if protoc.main(args) != 0:
            raise SystemExit("protoc (descriptor set) failed")
        files = descriptor_pb2.FileDescriptorSet.FromString(descriptor_set.read_bytes()).file
    pool = descriptor_pool.DescriptorPool()
    for file in files:
        pool.Add(file)
    services = [
        pool.FindServiceByName(f"{file.package}.{service.name}")
        for file in files
        if file.name in ours
        for service in file.service
    ]
    out_file.parent.mkdir(parents=True, exist_ok=True)
    out_file.write_text(openapi.render(openapi.build(services, openapi.comments_from(files))))


def generate_ts(out_dir: Path, includes: list[str]) -> None:
    from grpc_tools import protoc

    if not TS_PLUGIN.exists():
        raise SystemExit(f"{TS_PLUGIN.relative_to(ROOT)} is missing: run `make node-deps`")
    out_dir.mkdir(parents=True, exist_ok=True)
    args = [
        "protoc",
        *includes,
        f"--plugin=protoc-gen-ts_proto={TS_PLUGIN}",
        f"--ts_proto_out={out_dir}",
        f"--ts_proto_opt={TS_PROTO_OPTS}",
        *(str(p.relative_to(PROTO_DIR)) for p in protos()),
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc (ts-proto) failed")


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
