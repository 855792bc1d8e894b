"""The model server (the OpenAI-compatible HTTP API) over a tiny LocalBackend on a free
port: same answers as the local backend, streaming, adapters, errors. Both engine
clients against a port where nothing listens and a socket that never answers: no hang.
(The clients against the real engines: test_vllm_engine, test_triton_engine.)"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import socket
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from services.errors import DeadlineExceeded, Unavailable
from services.inference.backends.base import ADAPTER_SHA256_MISMATCH, Backend, GenerationRequest
from services.inference.backends.local import LocalBackend, LocalBackendConfig
from services.inference.backends.triton import TritonBackend
from services.inference.backends.vllm import VLLMBackend
from services.inference.model_server import ModelServerHandle, start_model_server
from services.objects.store import LocalObjectStore
from tests.backends.conftest import TinyArtifacts

pytestmark = pytest.mark.integration

HELLO = [{"role": "user", "content": "hello world"}]


def req(**kwargs: object) -> GenerationRequest:
    kwargs.setdefault("max_new_tokens", 16)
    return GenerationRequest(messages=list(HELLO), **kwargs)  # type: ignore[arg-type]


@dataclasses.dataclass
class Served:
    local: LocalBackend
    server: ModelServerHandle


@pytest.fixture
async def served(tiny: TinyArtifacts) -> AsyncIterator[Served]:
    local = await LocalBackend.open(
        LocalBackendConfig(model_dir=tiny.model_dir, name="tiny", max_adapters=4)
    )
    server = await start_model_server(local, 0)
    try:
        yield Served(local, server)
    finally:
        await server.stop()
        await local.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_openai_http_api(served: Served, tiny: TinyArtifacts) -> None:
    http = served.server.http_url
    alpha = tiny.adapters["alpha"]
    path = str(tiny.model_dir.parent / "adapters" / "alpha")
    expected = await served.local.generate(req(), timeout_s=30)
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{http}/health") as r:
            assert r.status == 200
        body = {"model": "tiny", "messages": HELLO, "max_tokens": 16, "temperature": 0}
        async with session.post(f"{http}/v1/chat/completions", json=body) as r:
            data = await r.json()
        assert data["object"] == "chat.completion"
        assert data["choices"][0]["message"] == {"role": "assistant", "content": expected.text}
        assert data["usage"]["completion_tokens"] == expected.completion_tokens
        # SSE stream, with usage on the last chunk when asked.
        stream_body = {**body, "stream": True, "stream_options": {"include_usage": True}}
        async with session.post(f"{http}/v1/chat/completions", json=stream_body) as r:
            assert r.headers["Content-Type"].startswith("text/event-stream")
            lines = [ln.decode().strip() async for ln in r.content if ln.strip()]
        assert lines[-1] == "data: [DONE]"
        assert lines[-2].startswith("data: ") and '"usage"' in lines[-2]
        # Raw completions (no chat template).
        completion = {"model": "tiny", "prompt": "hello world", "max_tokens": 5, "temperature": 0}
        async with session.post(f"{http}/v1/completions", json=completion) as r:
            data = await r.json()
        assert data["object"] == "text_completion" and data["choices"][0]["text"]
        assert data["usage"]["completion_tokens"] <= 5
        # Dynamic LoRA endpoints, vLLM-shaped.
        load = {"lora_name": "mine", "lora_path": path}
        async with session.post(f"{http}/v1/load_lora_adapter", json=load) as r:
            assert r.status == 200, await r.text()
        async with session.post(f"{http}/v1/load_lora_adapter", json=load) as r:
            assert r.status == 400
            assert "already been loaded" in (await r.json())["error"]["message"]
        lora_body = {**body, "model": "mine"}
        async with session.post(f"{http}/v1/chat/completions", json=lora_body) as r:
            text = (await r.json())["choices"][0]["message"]["content"]
        assert text == (await served.local.generate(req(adapter=alpha), timeout_s=30)).text
        bad_sha = {"lora_name": "bad", "lora_path": path, "sha256": "0" * 64}
        async with session.post(f"{http}/v1/load_lora_adapter", json=bad_sha) as r:
            assert r.status == 400
            assert (await r.json())["error"]["reason"] == ADAPTER_SHA256_MISMATCH
        async with session.post(f"{http}/v1/unload_lora_adapter", json={"lora_name": "mine"}) as r:
            assert r.status == 200
        async with session.post(f"{http}/v1/chat/completions", json=lora_body) as r:
            assert r.status == 404
        async with session.post(f"{http}/v1/unload_lora_adapter", json={"lora_name": "mine"}) as r:
            assert r.status == 404
        async with session.post(f"{http}/v1/chat/completions", json={"model": "tiny"}) as r:
            assert r.status == 400


def _down_backends(port: int) -> list[tuple[Backend, type[Exception]]]:
    """Each remote client, and what running past its deadline raises."""
    objects = LocalObjectStore(Path("/x"))
    vllm = VLLMBackend(f"http://127.0.0.1:{port}", "tiny", objects=objects, health_timeout_s=0.5)
    triton = TritonBackend(
        f"127.0.0.1:{port}", "tiny", render=str, objects=objects, health_timeout_s=0.5
    )
    return [(triton, DeadlineExceeded), (vllm, DeadlineExceeded)]


async def test_backend_down_is_unavailable_quickly() -> None:
    port = free_port()  # nothing listens there
    for backend, _ in _down_backends(port):
        try:
            start = time.monotonic()
            assert not await backend.health()
            with pytest.raises(Unavailable):
                await backend.generate(req(), timeout_s=5)
            with pytest.raises(Unavailable):
                _ = [d async for d in backend.stream(req(), timeout_s=5)]
            assert time.monotonic() - start < 5, f"{backend.name} took too long"
        finally:
            await backend.close()


async def test_a_server_that_never_answers_cannot_hang_a_call() -> None:
    """A socket that accepts and then says nothing: only the deadline ends the call."""
    held: list[asyncio.StreamWriter] = []

    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        for backend, late in _down_backends(port):
            try:
                start = time.monotonic()
                with pytest.raises(late):
                    await backend.generate(req(), timeout_s=0.5)
                with pytest.raises(late):
                    _ = [d async for d in backend.stream(req(), timeout_s=0.5)]
                assert not await backend.health()
                assert time.monotonic() - start < 4, f"{backend.name} took too long"
            finally:
                await backend.close()
    finally:
        for writer in held:
            writer.close()
        server.close()
        with contextlib.suppress(Exception):
            await server.wait_closed()


async def test_model_server_cli_serves_the_openai_api(tiny: TinyArtifacts) -> None:
    http_port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.inference.model_server",
        "--http-port", str(http_port), "--model-dir", str(tiny.model_dir), "--name", "tiny",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    local = await LocalBackend.open(LocalBackendConfig(model_dir=tiny.model_dir, name="tiny"))
    try:
        assert proc.stdout is not None
        output = b""
        while b"http=" not in output:  # the ready line (after any library warnings)
            line = await asyncio.wait_for(proc.stdout.readline(), 60)
            assert line, f"model server exited early:\n{output.decode()}"
            output += line
        expected = await local.generate(req(), timeout_s=30)
        async with (
            aiohttp.ClientSession() as session,
            session.post(f"http://127.0.0.1:{http_port}/v1/chat/completions",
                         json={"model": "tiny", "messages": HELLO, "max_tokens": 16,
                               "temperature": 0}) as r,
        ):  # fmt: skip
            assert (await r.json())["choices"][0]["message"]["content"] == expected.text
    finally:
        await local.close()
        proc.terminate()
        assert await asyncio.wait_for(proc.wait(), 30) == 0
