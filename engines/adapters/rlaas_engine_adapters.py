"""How a serving engine gets an RLaaS LoRA adapter: from the platform's object store,
by name, checked against the hash the name carries. Shared by the vLLM resolver plugin
(engines/vllm/plugin) and the Triton model (engines/triton/model.py).

Why engines fetch adapters themselves: an engine may run on another host, so a path on
the gateway's host means nothing to it, and a shared filesystem is not something a
deployment should need. The gateway names an adapter by its object key and content hash
(``adapters/<tenant>/<skill>/<run>@<sha256>``) and the engine fetches it from the same
store the trainer wrote it to: a local directory (``RLAAS_OBJECTS_DIR``, the embedded
stack) or any S3-compatible server (``RLAAS_S3_ENDPOINT``, ``RLAAS_S3_BUCKET``,
``RLAAS_S3_ACCESS_KEY``, ``RLAAS_S3_SECRET_KEY``, ``RLAAS_S3_SECURE``), the settings the
platform's own services read. The weights' sha256 must match the name before an engine
sees them; a verified copy is kept in the engine's cache directory (one directory per
key and hash), so a restart or an eviction reloads from disk. Only keys under
``adapters/`` resolve: an engine never reads anything else from the store, whatever
name a caller sends.

Runs inside the engines' own venvs (vLLM needs protobuf 7; Triton's Python backend
numpy < 2), so it imports nothing from the platform: the few lines of store access
are written out here.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

logger = logging.getLogger(__name__)

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
NAME = re.compile(
    r"^(?P<key>adapters/[\w.~=+:-]+(?:/[\w.~=+:-]+)*)@(?P<sha>[0-9a-f]{64})$", re.ASCII
)
"""``<object key of the adapter directory>@<sha256 of its weights>``."""

Fetch = Callable[[str], bytes]
"""Object key -> bytes; raises FileNotFoundError when there is no such object."""


def parse_name(lora_name: str) -> tuple[str, str] | None:
    """(key, sha256) of an adapter name this resolver serves, else None."""
    match = NAME.match(lora_name)
    if match is None:
        return None
    key = match["key"]
    if any(part in (".", "..") for part in key.split("/")):
        return None
    return key, match["sha"]


def local_fetch(root: Path) -> Fetch:
    def fetch(key: str) -> bytes:
        return (root / key).read_bytes()

    return fetch


def s3_fetch(
    endpoint: str, bucket: str, access: str | None, secret: str | None, secure: bool
) -> Fetch:
    from minio import Minio
    from minio.error import S3Error

    client = Minio(endpoint, access_key=access, secret_key=secret, secure=secure)

    def fetch(key: str) -> bytes:
        try:
            response = client.get_object(bucket, key)
        except S3Error as exc:
            if exc.code in ("NoSuchKey", "NoSuchBucket"):
                raise FileNotFoundError(key) from exc
            raise
        try:
            return response.read()
        finally:
            response.close()
            response.release_conn()

    return fetch


def materialize(fetch: Fetch, key: str, sha256: str, cache: Path) -> Path | None:
    """The adapter's verified local copy (downloaded once), or None when the store has
    no such adapter or its weights do not hash to ``sha256``."""
    # Per key and hash: a name is served only if the store holds that key with those
    # bytes, even when the same bytes sit in the cache under another key.
    target = cache / f"{hashlib.sha256(key.encode()).hexdigest()[:16]}-{sha256}"
    if (target / ADAPTER_WEIGHTS).is_file() and (target / ADAPTER_CONFIG).is_file():
        return target
    try:
        weights = fetch(f"{key}/{ADAPTER_WEIGHTS}")
        config = fetch(f"{key}/{ADAPTER_CONFIG}")
    except FileNotFoundError:
        logger.warning("rlaas resolver: no adapter at %s", key)
        return None
    digest = hashlib.sha256(weights).hexdigest()
    if digest != sha256:
        logger.error("rlaas resolver: %s has sha256 %s, the name says %s", key, digest, sha256)
        return None
    cache.mkdir(parents=True, exist_ok=True)
    # Write beside the target and rename: a crash never leaves half an adapter.
    tmp = Path(tempfile.mkdtemp(dir=cache, prefix=".tmp-"))
    try:
        (tmp / ADAPTER_WEIGHTS).write_bytes(weights)
        (tmp / ADAPTER_CONFIG).write_bytes(config)
        try:
            os.replace(tmp, target)
        except OSError:  # another process put it there first: same bytes
            if not (target / ADAPTER_WEIGHTS).is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def fetch_from_env() -> Fetch | None:
    endpoint = os.environ.get("RLAAS_S3_ENDPOINT")
    if endpoint:
        return s3_fetch(
            endpoint,
            os.environ.get("RLAAS_S3_BUCKET", "rlaas"),
            os.environ.get("RLAAS_S3_ACCESS_KEY"),
            os.environ.get("RLAAS_S3_SECRET_KEY"),
            os.environ.get("RLAAS_S3_SECURE", "true").lower() in ("1", "true", "yes"),
        )
    root = os.environ.get("RLAAS_OBJECTS_DIR")
    return local_fetch(Path(root)) if root else None
