"""The object store, on both backends: a local directory and a real S3 API server
(moto's server mode over HTTP, through the same minio client production uses)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from moto.server import ThreadedMotoServer

from services.errors import InvalidArgument, NotFound, Unavailable
from services.objects.store import LocalObjectStore, ObjectStore, S3ObjectStore
from tests.helpers import free_port

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture(params=["local", "s3"])
async def store(
    request: pytest.FixtureRequest, tmp_path: Path, s3_endpoint: str
) -> AsyncIterator[ObjectStore]:
    if request.param == "local":
        store: ObjectStore = LocalObjectStore(tmp_path / "objects")
    else:
        bucket = f"b-{tmp_path.name.lower().replace('_', '-')[-40:]}"
        store = S3ObjectStore(s3_endpoint, bucket, "testing", "testing", secure=False)
    await store.ensure_ready()
    await store.ensure_ready()  # idempotent
    yield store


async def test_round_trip(store: ObjectStore) -> None:
    uri = await store.put("tenant-a/datasets/v1.parquet", b"\x00parquet")
    assert uri.endswith("tenant-a/datasets/v1.parquet")
    assert await store.get("tenant-a/datasets/v1.parquet") == b"\x00parquet"
    assert await store.exists("tenant-a/datasets/v1.parquet")
    await store.put("tenant-a/datasets/v1.parquet", b"replaced")
    assert await store.get("tenant-a/datasets/v1.parquet") == b"replaced"
    await store.put("tenant-b/x", b"other")
    assert await store.list("tenant-a/") == ["tenant-a/datasets/v1.parquet"]
    await store.delete("tenant-a/datasets/v1.parquet")
    assert not await store.exists("tenant-a/datasets/v1.parquet")
    with pytest.raises(NotFound):
        await store.get("tenant-a/datasets/v1.parquet")


@pytest.mark.parametrize("key", ["", "/abs", "../escape", "a/../../b", "dir/"])
async def test_bad_keys_are_refused(store: ObjectStore, key: str) -> None:
    with pytest.raises(InvalidArgument):
        await store.put(key, b"x")


async def test_unreachable_s3_is_unavailable() -> None:
    store = S3ObjectStore(f"127.0.0.1:{free_port()}", "bucket", "k", "s", secure=False)
    with pytest.raises(Unavailable):
        await store.ensure_ready()
