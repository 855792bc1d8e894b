"""A milvus-lite server for one benchmark: started in a data directory on a free port,
ready when the context is entered, stopped when it is left."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from infra.stack import milvus_ready
from tests.helpers import free_port


async def _wait_ready(uri: str, attempts: int = 300) -> None:
    for _ in range(attempts):
        try:
            if await milvus_ready(uri):
                return
        except Exception:  # not listening yet
            pass
        await asyncio.sleep(0.2)
    raise RuntimeError(f"milvus-lite at {uri} did not become ready")


@contextmanager
def milvus_lite_server(data_dir: str) -> Iterator[tuple[str, int]]:
    """(URI, port) of a running milvus-lite server keeping its data in ``data_dir``."""
    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, "-m", "milvus_lite", "server", "--data-dir", data_dir,
         "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        asyncio.run(_wait_ready(uri))
        yield uri, port
    finally:
        server.terminate()
        server.wait(timeout=30)
