"""Adapter artifacts: reading one and checking its SHA-256 when a policy is created.

An artifact is either a PEFT adapter directory (``adapter_config.json`` +
``adapter_model.safetensors``, as ``save_pretrained`` writes it) or a single file. Its
SHA-256 is the one every serving backend checks before loading it
(``services.inference.backends.base.verify_adapter``): for a directory, the SHA-256 of
``adapter_model.safetensors``; for a single file, of the file.

Two kinds of URI are readable: ``file://`` (the embedded object store is a local
directory, and the serving backends load from local paths) and URIs inside the
platform's own object store (``s3://<bucket>/...`` with an S3 store).
"""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path
from urllib.parse import unquote, urlparse

from services.errors import FailedPrecondition, InvalidArgument, NotFound
from services.objects.store import ObjectStore

ADAPTER_WEIGHTS = "adapter_model.safetensors"
ADAPTER_CONFIG = "adapter_config.json"


def _unreadable(uri: str, why: str) -> FailedPrecondition:
    return FailedPrecondition(
        f"adapter artifact {uri} cannot be read: {why}",
        reason="ADAPTER_UNREADABLE",
        metadata={"field": "policy.adapter.artifact_uri"},
    )


def _sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def local_sha256(uri: str, path: Path) -> str:
    """Blocking: run it in a thread."""
    if path.is_file():
        return _sha256_file(path)
    if path.is_dir():
        if not (path / ADAPTER_WEIGHTS).is_file() or not (path / ADAPTER_CONFIG).is_file():
            raise _unreadable(uri, f"the directory holds no {ADAPTER_CONFIG} + {ADAPTER_WEIGHTS}")
        return _sha256_file(path / ADAPTER_WEIGHTS)
    raise _unreadable(uri, "no such file or directory")


def object_key(objects: ObjectStore, uri: str) -> str | None:
    """The object-store key of ``uri``, or None if the URI is not in this store."""
    root = objects.uri("_")[:-1]  # the store's URI prefix, e.g. s3://bucket/
    if not uri.startswith(root):
        return None
    return uri[len(root) :].rstrip("/") or None


async def _stored_sha256(objects: ObjectStore, uri: str, key: str) -> str:
    try:
        if await objects.exists(key):
            return hashlib.sha256(await objects.get(key)).hexdigest()
        weights, config = f"{key}/{ADAPTER_WEIGHTS}", f"{key}/{ADAPTER_CONFIG}"
        if await objects.exists(weights) and await objects.exists(config):
            return hashlib.sha256(await objects.get(weights)).hexdigest()
    except NotFound as exc:
        raise _unreadable(uri, "no such object") from exc
    except InvalidArgument as exc:  # a malformed key, e.g. with ".."
        raise _unreadable(uri, exc.message) from exc
    raise _unreadable(uri, f"no such object, nor a directory with {ADAPTER_WEIGHTS}")


async def artifact_sha256(objects: ObjectStore, uri: str) -> str:
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise _unreadable(uri, "file:// URIs must name a local path")
        return await asyncio.to_thread(local_sha256, uri, Path(unquote(parsed.path)))
    key = object_key(objects, uri)
    if key is None:
        root = objects.uri("_")[:-1]
        raise _unreadable(uri, f"use a file:// URI or one in the platform's object store ({root})")
    return await _stored_sha256(objects, uri, key)


async def verify_adapter(objects: ObjectStore, uri: str, sha256: str) -> None:
    """FAILED_PRECONDITION unless the artifact at ``uri`` exists and hashes to
    ``sha256``."""
    actual = await artifact_sha256(objects, uri)
    if actual != sha256:
        raise FailedPrecondition(
            f"adapter artifact {uri} has SHA-256 {actual}, not the declared {sha256}",
            reason="ADAPTER_SHA256_MISMATCH",
            metadata={"field": "policy.adapter.sha256", "expected": sha256, "actual": actual},
        )
