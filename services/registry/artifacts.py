"""Adapter artifacts: who owns one, how one is uploaded, and checking its SHA-256.

An adapter artifact is a PEFT adapter directory in the platform's object store
(``adapter_config.json`` + ``adapter_model.safetensors``, as ``save_pretrained`` writes
it). Its SHA-256 is that of ``adapter_model.safetensors``, the one every serving backend
checks before loading it (``services.inference.backends.base.verify_adapter``).

Ownership is by place: every artifact of a tenant lives under ``adapters/<tenant_id>/``,
written either by one of its training runs (``adapters/<t>/<skill>/<run>``) or by
``RegistryService.UploadAdapter`` (``adapters/<t>/uploads/<sha256>``). A policy may name
only an artifact under its own tenant's prefix, and the check is on the URI alone, before
any I/O: no path outside the store, and nothing of another tenant, is ever opened on a
caller's behalf. Errors name the rule, never another tenant's data, a hash that was
found, or whether some other path exists.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from dataclasses import dataclass, field

from services.errors import FailedPrecondition, InvalidArgument, NotFound
from services.objects.store import ObjectStore

ADAPTER_WEIGHTS = "adapter_model.safetensors"
ADAPTER_CONFIG = "adapter_config.json"
MAX_CONFIG_BYTES = 1 << 20
"""adapter_config.json is a few hundred bytes; a megabyte is generous."""


# What the platform itself writes below a tenant's prefix (ids, hex digests): anything
# else, escapes and dot segments included, is not an artifact it made.
_KEY = re.compile(r"[A-Za-z0-9_@=-][A-Za-z0-9._@=-]*(/[A-Za-z0-9_@=-][A-Za-z0-9._@=-]*)*")


def adapter_prefix(tenant_id: str) -> str:
    if not tenant_id or "/" in tenant_id or tenant_id in (".", ".."):
        raise InvalidArgument.field("tenant_id", "cannot be part of an object key")
    return f"adapters/{tenant_id}/"


def owned_adapter_key(
    objects: ObjectStore, tenant_id: str, uri: str, *, field: str = "policy.adapter.artifact_uri"
) -> str:
    """The object key of a tenant's adapter artifact named by ``uri``.

    INVALID_ARGUMENT unless ``uri`` is exactly the store's URI of a key under the
    tenant's prefix. Comparing with the canonical URI (not a decoded one) refuses
    percent-encoded dot segments and other spellings of a path elsewhere.
    """
    prefix = adapter_prefix(tenant_id)
    root = objects.uri("_")[:-1]  # the store's URI prefix, e.g. s3://bucket/ or file:///…/
    refused = InvalidArgument.field(
        field,
        "must name an adapter artifact of this tenant: the artifact_uri returned by "
        "RegistryService.UploadAdapter or written by one of its training runs",
        reason="ADAPTER_NOT_OWNED",
    )
    if not uri.startswith(root + prefix):
        raise refused
    key = uri[len(root) :].rstrip("/")
    try:
        canonical = objects.uri(key)
    except InvalidArgument:
        raise refused from None
    if (
        canonical != uri.rstrip("/")
        or not key.startswith(prefix)
        or not _KEY.fullmatch(key[len(prefix) :])
    ):
        raise refused
    return key


def _missing(field_name: str) -> FailedPrecondition:
    return FailedPrecondition(
        "the adapter artifact is missing: upload it again (RegistryService.UploadAdapter)",
        reason="ADAPTER_MISSING",
        metadata={"field": field_name},
    )


async def verify_adapter(objects: ObjectStore, tenant_id: str, uri: str, sha256: str) -> None:
    """Check that ``uri`` is the tenant's own adapter directory and that its weights hash
    to ``sha256``: INVALID_ARGUMENT (not the tenant's), FAILED_PRECONDITION (missing, or
    another hash; the hash found is not disclosed)."""
    key = owned_adapter_key(objects, tenant_id, uri)
    try:
        if not await objects.exists(f"{key}/{ADAPTER_CONFIG}"):
            raise _missing("policy.adapter.artifact_uri")
        weights = await objects.get(f"{key}/{ADAPTER_WEIGHTS}")
    except NotFound as exc:
        raise _missing("policy.adapter.artifact_uri") from exc
    if await asyncio.to_thread(lambda: hashlib.sha256(weights).hexdigest()) != sha256:
        raise FailedPrecondition(
            "the adapter artifact's weights do not hash to the declared sha256",
            reason="ADAPTER_SHA256_MISMATCH",
            metadata={"field": "policy.adapter.sha256"},
        )


@dataclass
class AdapterUpload:
    """The files of one UploadAdapter stream, collected under a total size limit."""

    max_bytes: int
    files: dict[str, bytearray] = field(default_factory=dict)
    total: int = 0

    def add(self, name: str, data: bytes) -> None:
        if name not in (ADAPTER_CONFIG, ADAPTER_WEIGHTS):
            raise InvalidArgument.field("chunk.file", "must be FILE_CONFIG or FILE_WEIGHTS")
        self.total += len(data)
        if self.total > self.max_bytes:
            raise InvalidArgument.field(
                "chunk.data",
                f"the adapter is larger than this server accepts ({self.max_bytes} bytes)",
                reason="ADAPTER_TOO_LARGE",
            )
        self.files.setdefault(name, bytearray()).extend(data)


@dataclass(frozen=True)
class StoredAdapter:
    uri: str
    sha256: str
    size_bytes: int
    rank: int


def _check_files(upload: AdapterUpload, declared_sha256: str) -> tuple[bytes, bytes, str, int]:
    """Validate an upload's two files (blocking: parses the weights). Returns the config,
    the weights, their SHA-256 and the LoRA rank (0 if the config names none)."""
    config_raw = bytes(upload.files.get(ADAPTER_CONFIG, b""))
    weights = bytes(upload.files.get(ADAPTER_WEIGHTS, b""))
    if not config_raw:
        raise InvalidArgument.field("chunk.file", f"{ADAPTER_CONFIG} (FILE_CONFIG) is missing")
    if not weights:
        raise InvalidArgument.field("chunk.file", f"{ADAPTER_WEIGHTS} (FILE_WEIGHTS) is missing")
    if len(config_raw) > MAX_CONFIG_BYTES:
        raise InvalidArgument.field("chunk.data", f"{ADAPTER_CONFIG} is larger than 1 MiB")
    try:
        config = json.loads(config_raw)
    except (ValueError, RecursionError):
        config = None
    if not isinstance(config, dict) or not isinstance(config.get("peft_type"), str):
        raise InvalidArgument.field(
            "chunk.data", f"{ADAPTER_CONFIG} must be a JSON object with a 'peft_type' (PEFT)"
        )
    rank = config.get("r")
    from safetensors import SafetensorError
    from safetensors.numpy import load

    try:
        load(weights)  # parses the header and checks every tensor's extent
    except (SafetensorError, ValueError, TypeError) as exc:
        raise InvalidArgument.field(
            "chunk.data", f"{ADAPTER_WEIGHTS} is not a safetensors file"
        ) from exc
    digest = hashlib.sha256(weights).hexdigest()
    if declared_sha256 and declared_sha256 != digest:
        raise InvalidArgument.field(
            "header.sha256", "the uploaded weights do not hash to it", reason="SHA256_MISMATCH"
        )
    return config_raw, weights, digest, rank if isinstance(rank, int) and rank > 0 else 0


async def store_upload(
    objects: ObjectStore, tenant_id: str, upload: AdapterUpload, declared_sha256: str
) -> StoredAdapter:
    """Check an upload and write it under the tenant's prefix, content-addressed by the
    weights' SHA-256 (a retried or repeated upload lands on the same key). The config
    is written last: an artifact counts as present once its config exists."""
    config, weights, digest, rank = await asyncio.to_thread(_check_files, upload, declared_sha256)
    # Both files address it: the same weights under another config serve differently.
    config_digest = hashlib.sha256(config).hexdigest()[:16]
    key = f"{adapter_prefix(tenant_id)}uploads/{digest}-{config_digest}"
    await objects.put(f"{key}/{ADAPTER_WEIGHTS}", weights)
    await objects.put(f"{key}/{ADAPTER_CONFIG}", config)
    return StoredAdapter(objects.uri(key), digest, len(config) + len(weights), rank)
