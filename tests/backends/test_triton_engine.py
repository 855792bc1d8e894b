"""TritonBackend against the real Triton Inference Server (tritonserver 2.51 from
`make engine-triton`'s venv) serving the packaged SmolLM2 through the project's
Python-backend model, started once for this module the way `rlaas up` starts it
(infra.engines): greedy answers match the local backend, base and adapters alike;
adapters come from the object store, mixed in one batch, streamed through the decoupled
model; a request shaped like the one Triton's vLLM backend documents works unchanged;
bad input, bad adapters, deadlines and a dead server get the right errors, never a
hang."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tritonclient.grpc import InferInput
from tritonclient.grpc.aio import InferenceServerClient

from infra.stack import Stack
from services.config import Settings
from services.errors import DeadlineExceeded, FailedPrecondition, InvalidArgument, Unavailable
from services.inference.backend_factory import base_model_dir
from services.inference.backends.base import AdapterRef, GenerationRequest
from services.inference.backends.engine_adapters import ADAPTER_UNAVAILABLE
from services.inference.backends.local import LocalBackend, LocalBackendConfig
from services.inference.backends.triton import ChatTemplate, TritonBackend, _map_error
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
    store: LocalObjectStore
    adapters: list[AdapterRef]
    model_dir: Path
    template: ChatTemplate
    stack: Stack

    def backend(self, url: str | None = None) -> TritonBackend:
        return TritonBackend(
            url or self.settings.triton_target,
            self.settings.base_model_name,
            render=self.template,
            objects=self.store,
        )


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    state = tmp_path_factory.mktemp("triton-state")
    # Two adapters loaded at once: the third evicts one inside the model.
    settings = Settings(state_dir=state, triton_port=free_port(), max_adapters=2)
    model_dir = base_model_dir(settings)
    store, adapters = stored_adapters(settings, model_dir)
    with started_engine(settings, "triton") as stack:
        yield Engine(settings, store, adapters, model_dir, ChatTemplate(model_dir), stack)


@pytest.fixture(scope="module")
async def local(engine: Engine) -> AsyncIterator[LocalBackend]:
    backend = await LocalBackend.open(LocalBackendConfig(model_dir=engine.model_dir))
    try:
        yield backend
    finally:
        await backend.close()


@pytest.fixture
async def triton(engine: Engine) -> AsyncIterator[TritonBackend]:
    backend = engine.backend()
    try:
        yield backend
    finally:
        await backend.close()


async def test_greedy_answers_match_the_local_backend_with_and_without_adapters(
    engine: Engine, triton: TritonBackend, local: LocalBackend
) -> None:
    for messages in QUESTIONS:
        for adapter in (None, *engine.adapters):
            request = ask(messages, adapter)
            served = await triton.generate(request, timeout_s=120)
            reference = await local.generate(request, timeout_s=120)
            assert served.text == reference.text, (adapter, served.text, reference.text)
            assert served.completion_tokens == reference.completion_tokens
            assert served.prompt_tokens == reference.prompt_tokens
            assert served.finish_reason == reference.finish_reason
    base = await triton.generate(ask(QUESTIONS[0]), timeout_s=60)
    tuned = await triton.generate(ask(QUESTIONS[0], engine.adapters[0]), timeout_s=60)
    assert base.text != tuned.text  # the adapter is really applied
    # Evicted by the third adapter (two fit), fetched again: the same answer.
    again = await triton.generate(ask(QUESTIONS[0], engine.adapters[0]), timeout_s=60)
    assert again.text == tuned.text


async def test_a_mixed_batch_keeps_each_requests_adapter(
    engine: Engine, triton: TritonBackend
) -> None:
    requests = [ask(QUESTIONS[i % 2], a) for i, a in enumerate([None, *engine.adapters[:2]] * 2)]
    alone = [(await triton.generate(r, timeout_s=120)).text for r in requests]
    together = await asyncio.gather(*(triton.generate(r, timeout_s=120) for r in requests))
    assert [r.text for r in together] == alone


async def test_streaming_yields_the_same_answer(engine: Engine, triton: TritonBackend) -> None:
    request = ask(QUESTIONS[1], engine.adapters[1])
    whole = await triton.generate(request, timeout_s=60)
    deltas = [d async for d in triton.stream(request, timeout_s=60)]
    assert len(deltas) > 1 and "".join(deltas) == whole.text


def _vllm_backend_request(model: str, prompt: str, sampling: dict[str, Any]) -> dict[str, Any]:
    """A request as Triton's vLLM backend documents it (its sample client): string
    sampling values, the prompt echoed in the output, no extra outputs asked for."""
    tensors = []
    for name, value, datatype in (
        ("text_input", np.array([prompt.encode()], dtype=np.object_), "BYTES"),
        ("stream", np.array([False]), "BOOL"),
        ("sampling_parameters", np.array([json.dumps(sampling).encode()], np.object_), "BYTES"),
    ):
        tensor = InferInput(name, [1], datatype)
        tensor.set_data_from_numpy(value)
        tensors.append(tensor)
    return {"model_name": model, "inputs": tensors, "parameters": sampling}


async def _raw(engine: Engine, request: dict[str, Any]) -> list[tuple[Any, Any]]:
    client = InferenceServerClient(engine.settings.triton_target)

    async def requests() -> AsyncIterator[dict[str, Any]]:
        yield request

    replies = []
    try:
        async for result, error in client.stream_infer(requests(), stream_timeout=60):
            replies.append((result, error))
            break  # not streaming: one response, final
    finally:
        await client.close()
    return replies


async def test_a_request_shaped_for_tritons_vllm_backend_works_unchanged(
    engine: Engine, local: LocalBackend
) -> None:
    prompt = engine.template(QUESTIONS[0])
    sampling = {"temperature": "0", "top_p": "1", "max_tokens": "16"}
    [(result, error)] = await _raw(
        engine, _vllm_backend_request(engine.settings.base_model_name, prompt, sampling)
    )
    assert error is None
    text = result.as_numpy("text_output").flat[0].decode()
    reference = await local.generate(
        GenerationRequest(messages=QUESTIONS[0], max_new_tokens=16), timeout_s=60
    )
    assert text == prompt + reference.text  # the vLLM backend echoes the prompt by default


async def test_bad_input_is_invalid_argument_naming_the_field(
    engine: Engine, triton: TritonBackend
) -> None:
    sampling = {"max_tokens": 8, "top_k": 5}
    request = _vllm_backend_request(engine.settings.base_model_name, "hi", sampling)
    [(_, error)] = await _raw(engine, request)
    mapped = _map_error(None, error.message(), "t")
    assert isinstance(mapped, InvalidArgument)
    assert [v.field for v in mapped.violations] == ["sampling_parameters.top_k"]
    too_long = GenerationRequest(messages=QUESTIONS[0], max_new_tokens=9000)
    with pytest.raises(InvalidArgument) as info:
        await triton.generate(too_long, timeout_s=60)
    assert "context" in info.value.message


async def test_an_adapter_the_model_cannot_fetch_is_a_failed_precondition(
    engine: Engine, triton: TritonBackend
) -> None:
    good = engine.adapters[0]
    tampered = AdapterRef(good.name, good.uri, "0" * 64)
    nowhere = engine.store.uri("adapters/t-1/support_email/no_such_run")
    missing = AdapterRef("x@v9", nowhere, good.sha256)
    outside = AdapterRef("y@v1", "file:///etc/rlaas", good.sha256)
    for ref in (tampered, missing, outside):
        with pytest.raises(FailedPrecondition) as info:
            await triton.generate(ask(QUESTIONS[0], ref), timeout_s=60)
        assert info.value.reason == ADAPTER_UNAVAILABLE
        with pytest.raises(FailedPrecondition):
            async for _ in triton.stream(ask(QUESTIONS[0], ref), timeout_s=60):
                pass
    # The server is fine afterwards.
    assert (await triton.generate(ask(QUESTIONS[0], good), timeout_s=60)).text


async def test_deadlines_and_a_dead_server_never_hang(
    engine: Engine, triton: TritonBackend
) -> None:
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded):
        await triton.generate(LONG, timeout_s=0.3)
    with pytest.raises(DeadlineExceeded):
        async for _ in triton.stream(LONG, timeout_s=0.3):
            pass
    assert time.monotonic() - started < 5
    dead = engine.backend(f"127.0.0.1:{free_port()}")
    try:
        assert not await dead.health()
        with pytest.raises(Unavailable):
            await dead.generate(ask(QUESTIONS[0]), timeout_s=5)
    finally:
        await dead.close()
    assert await triton.health()


async def test_a_restart_is_unavailable_midstream_and_the_client_recovers(
    engine: Engine, triton: TritonBackend
) -> None:
    """Last in the module: it kills the server and starts it again as `rlaas up` does."""
    stream = triton.stream(LONG, timeout_s=120)
    assert await anext(stream)  # in flight
    kill_engine(engine.stack, "triton")
    started = time.monotonic()
    with pytest.raises(Unavailable):
        async for _ in stream:
            pass
    with pytest.raises(Unavailable):
        await triton.generate(ask(QUESTIONS[0]), timeout_s=5)
    assert time.monotonic() - started < 10
    await engine.stack._engine(echo=lambda line: None)
    # The same client (its channel backs off while the server is down) serves again.
    deadline = time.monotonic() + 60
    while True:
        try:
            assert (await triton.generate(ask(QUESTIONS[0]), timeout_s=30)).text
            break
        except Unavailable:
            assert time.monotonic() < deadline, "the client did not reconnect within 60 s"
            await asyncio.sleep(1)
