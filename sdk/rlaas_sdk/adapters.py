"""Uploading a LoRA adapter directory (PEFT ``save_pretrained`` output) with
``RegistryService.UploadAdapter``: the request stream, in chunks well under gRPC's
default 4 MiB message limit."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

from rlaas.registry.v1 import registry_pb2 as reg

CHUNK_BYTES = 1 << 20
_FILES = (
    ("adapter_config.json", reg.AdapterFileChunk.FILE_CONFIG),
    ("adapter_model.safetensors", reg.AdapterFileChunk.FILE_WEIGHTS),
)


def upload_requests(directory: Path | str) -> Iterator[reg.UploadAdapterRequest]:
    """The header (with the weights' SHA-256, so the server checks what it received),
    then each file's chunks in order. Raises FileNotFoundError for a missing file."""
    directory = Path(directory)
    paths = [(directory / name, kind) for name, kind in _FILES]
    for path, _ in paths:
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing: not a PEFT adapter directory")
    digest = hashlib.sha256(paths[1][0].read_bytes()).hexdigest()
    yield reg.UploadAdapterRequest(header=reg.AdapterUploadHeader(sha256=digest))
    for path, kind in paths:
        with path.open("rb") as fh:
            while block := fh.read(CHUNK_BYTES):
                yield reg.UploadAdapterRequest(chunk=reg.AdapterFileChunk(file=kind, data=block))
