"""The object store: datasets, adapters, checkpoints and exports live here, and workflow
payloads carry only their URIs.

Two backends behind one small interface: a local directory (the embedded default) and
any S3-compatible server through the ``minio`` client (``RLAAS_S3_ENDPOINT``).
"""

from __future__ import annotations

import asyncio
import io
import os
import tempfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any, Protocol, TypeVar
from urllib.parse import quote, unquote

from services.config import Settings
from services.errors import InvalidArgument, NotFound, Unavailable

T = TypeVar("T")


def _validate_key(key: str) -> str:
    path = PurePosixPath(key)
    if not key or path.is_absolute() or ".." in path.parts or key.endswith("/"):
        raise InvalidArgument.field("key", f"{key!r} is not a relative object key")
    return str(path)


class ObjectStore(Protocol):
    def uri(self, key: str) -> str: ...
    async def put(self, key: str, data: bytes) -> str: ...
    async def get(self, key: str) -> bytes: ...
    async def exists(self, key: str) -> bool: ...
    async def list(self, prefix: str = "") -> list[str]: ...
    async def delete(self, key: str) -> None: ...
    async def ensure_ready(self) -> None: ...


class LocalObjectStore:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def _path(self, key: str) -> Path:
        return self.root / _validate_key(key)

    def uri(self, key: str) -> str:
        # Keep "=" literal: Hive-style partition directories (date=2026-01-01) must
        # read as such in the URI, which Path.as_uri() would percent-encode.
        return "file://" + quote(str(self._path(key)), safe="/=:@-_.~")

    async def ensure_ready(self) -> None:
        await asyncio.to_thread(self.root.mkdir, parents=True, exist_ok=True)

    async def put(self, key: str, data: bytes) -> str:
        path = self._path(key)

        def write() -> None:
            path.parent.mkdir(parents=True, exist_ok=True)
            # Write-then-rename, so a reader never sees half an object.
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)

        await asyncio.to_thread(write)
        return self.uri(key)

    async def get(self, key: str) -> bytes:
        try:
            return await asyncio.to_thread(self._path(key).read_bytes)
        except FileNotFoundError:
            raise NotFound("object", key) from None

    async def exists(self, key: str) -> bool:
        return await asyncio.to_thread(self._path(key).is_file)

    async def list(self, prefix: str = "") -> list[str]:
        def walk() -> list[str]:
            if not self.root.exists():
                return []
            keys = (
                p.relative_to(self.root).as_posix()
                for p in self.root.rglob("*")
                if p.is_file() and not p.name.startswith(".tmp-")
            )
            return sorted(k for k in keys if k.startswith(prefix))

        return await asyncio.to_thread(walk)

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._path(key).unlink, missing_ok=True)


class S3ObjectStore:
    def __init__(
        self,
        endpoint: str,
        bucket: str,
        access_key: str | None,
        secret_key: str | None,
        *,
        secure: bool,
    ) -> None:
        from minio import Minio

        self.bucket = bucket
        self._client = Minio(endpoint, access_key=access_key, secret_key=secret_key, secure=secure)

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{_validate_key(key)}"

    async def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        from minio.error import S3Error
        from urllib3.exceptions import HTTPError

        try:
            return await asyncio.to_thread(fn, *args, **kwargs)
        except S3Error:
            raise
        except (HTTPError, OSError) as exc:
            raise Unavailable(f"object store unreachable: {exc}") from exc

    async def ensure_ready(self) -> None:
        if not await self._call(self._client.bucket_exists, self.bucket):
            await self._call(self._client.make_bucket, self.bucket)

    async def put(self, key: str, data: bytes) -> str:
        await self._call(
            self._client.put_object, self.bucket, _validate_key(key), io.BytesIO(data), len(data)
        )
        return self.uri(key)

    async def get(self, key: str) -> bytes:
        from minio.error import S3Error

        try:
            response = await self._call(self._client.get_object, self.bucket, _validate_key(key))
        except S3Error as exc:
            if exc.code == "NoSuchKey":
                raise NotFound("object", key) from None
            raise
        try:
            return bytes(await asyncio.to_thread(response.read))
        finally:
            response.close()
            response.release_conn()

    async def exists(self, key: str) -> bool:
        from minio.error import S3Error

        try:
            await self._call(self._client.stat_object, self.bucket, _validate_key(key))
        except S3Error as exc:
            if exc.code in ("NoSuchKey", "NoSuchObject"):
                return False
            raise
        return True

    async def list(self, prefix: str = "") -> list[str]:
        def names() -> list[str]:
            objects = self._client.list_objects(self.bucket, prefix=prefix, recursive=True)
            return sorted(o.object_name for o in objects if o.object_name)

        return await self._call(names)

    async def delete(self, key: str) -> None:
        await self._call(self._client.remove_object, self.bucket, _validate_key(key))


def object_store(settings: Settings) -> ObjectStore:
    if settings.s3_endpoint is None:
        return LocalObjectStore(settings.objects_dir)
    return S3ObjectStore(
        settings.s3_endpoint,
        settings.s3_bucket,
        settings.s3_access_key,
        settings.s3_secret_key.get_secret_value() if settings.s3_secret_key else None,
        secure=settings.s3_secure,
    )


def key_for_uri(store: ObjectStore, uri: str) -> str:
    """The object key that ``store.uri(key)`` turned into ``uri``. Raises InvalidArgument
    for a URI outside this store."""
    probe = store.uri("k")
    prefix = probe[: -len("k")]
    if not uri.startswith(prefix) or len(uri) == len(prefix):
        raise InvalidArgument.field("uri", f"{uri!r} is not in this object store ({prefix})")
    key = unquote(uri[len(prefix) :])
    store.uri(key)  # validates: relative, no "..", no trailing "/"
    return key
