"""LocalBackend on a tiny random Llama: generation, streaming, mixed-adapter batches,
the adapter LRU, sha256 checks, limits and deadlines."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator

import pytest

from services.errors import FailedPrecondition, InvalidArgument, Unavailable
from services.inference.backends.base import (
    ADAPTER_SHA256_MISMATCH,
    Backend,
    GenerationRequest,
)
from services.inference.backends.local import LocalBackend, LocalBackendConfig
from tests.backends.conftest import TinyArtifacts

HELLO = [{"role": "user", "content": "hello world"}]
LONGER = [
    {"role": "system", "content": "please answer briefly"},
    {"role": "user", "content": "what is the capital of france"},
]


@pytest.fixture
async def backend(tiny: TinyArtifacts) -> AsyncIterator[LocalBackend]:
    b = await LocalBackend.open(LocalBackendConfig(model_dir=tiny.model_dir, max_adapters=4))
    yield b
    await b.close()


def req(messages: list[dict[str, str]] = HELLO, **kwargs: object) -> GenerationRequest:
    kwargs.setdefault("max_new_tokens", 16)
    return GenerationRequest(messages=list(messages), **kwargs)  # type: ignore[arg-type]


async def test_generate_is_deterministic_and_counts_tokens(backend: LocalBackend) -> None:
    assert isinstance(backend, Backend)
    first = await backend.generate(req(), timeout_s=30)
    second = await backend.generate(req(), timeout_s=30)
    assert first == second
    assert first.text.strip()
    assert first.prompt_tokens > 0
    assert 0 < first.completion_tokens <= 16
    assert first.finish_reason in ("stop", "length")
    assert await backend.health()


async def test_stream_yields_the_same_text_as_generate(
    backend: LocalBackend, tiny: TinyArtifacts
) -> None:
    for adapter in (None, tiny.adapters["alpha"]):
        whole = await backend.generate(req(adapter=adapter), timeout_s=30)
        deltas = [d async for d in backend.stream(req(adapter=adapter), timeout_s=30)]
        assert len(deltas) > 1
        assert "".join(deltas) == whole.text


async def test_adapters_change_the_output(backend: LocalBackend, tiny: TinyArtifacts) -> None:
    base = await backend.generate(req(), timeout_s=30)
    alpha = await backend.generate(req(adapter=tiny.adapters["alpha"]), timeout_s=30)
    beta = await backend.generate(req(adapter=tiny.adapters["beta"]), timeout_s=30)
    assert len({base.text, alpha.text, beta.text}) == 3
    assert [a.name for a in backend.loaded_adapters()] == ["alpha", "beta"]


async def test_mixed_batch_returns_what_each_adapter_returns_alone(
    backend: LocalBackend, tiny: TinyArtifacts
) -> None:
    a, b = tiny.adapters["alpha"], tiny.adapters["beta"]
    # Different adapters and different prompt lengths (left padding) in one batch.
    requests = [
        req(HELLO, adapter=a),
        req(LONGER, adapter=b),
        req(HELLO),
        req(LONGER, adapter=a, max_new_tokens=5),
        req(HELLO, adapter=b),
    ]
    alone = [await backend.generate(r, timeout_s=30) for r in requests]
    batches_before = backend.stats["batches"]
    together = await asyncio.gather(*(backend.generate(r, timeout_s=30) for r in requests))
    assert backend.stats["batches"] == batches_before + 1, "expected one mixed batch"
    assert list(together) == alone
    assert together[3].completion_tokens == 5 and together[3].finish_reason == "length"


async def test_stop_strings_end_the_reply(backend: LocalBackend) -> None:
    full = await backend.generate(req(max_new_tokens=12), timeout_s=30)
    words = full.text.split()
    assert len(words) >= 4
    stop = words[3]
    cut = await backend.generate(req(max_new_tokens=12, stop=[stop]), timeout_s=30)
    assert cut.finish_reason == "stop"
    assert cut.text == full.text[: full.text.index(stop)]
    streamed = "".join([d async for d in backend.stream(req(stop=[stop]), timeout_s=30)])
    assert streamed == cut.text


async def test_lru_evicts_the_least_recently_used_adapter(tiny: TinyArtifacts) -> None:
    backend = await LocalBackend.open(LocalBackendConfig(model_dir=tiny.model_dir, max_adapters=2))
    try:
        alpha, beta, gamma = (tiny.adapters[n] for n in ("alpha", "beta", "gamma"))
        first_alpha = await backend.generate(req(adapter=alpha), timeout_s=30)
        await backend.generate(req(adapter=beta), timeout_s=30)
        await backend.generate(req(adapter=alpha), timeout_s=30)  # alpha is now most recent
        await backend.generate(req(adapter=gamma), timeout_s=30)
        assert [a.name for a in backend.loaded_adapters()] == ["alpha", "gamma"]
        assert backend.stats["adapter_loads"] == 3
        # beta comes back on demand (evicting alpha) and still gives its own output.
        beta_again = await backend.generate(req(adapter=beta), timeout_s=30)
        assert [a.name for a in backend.loaded_adapters()] == ["gamma", "beta"]
        assert backend.stats["adapter_loads"] == 4
        assert beta_again != first_alpha
        assert await backend.generate(req(adapter=alpha), timeout_s=30) == first_alpha
    finally:
        await backend.close()


async def test_unload_returns_to_the_base_model(backend: LocalBackend, tiny: TinyArtifacts) -> None:
    base = await backend.generate(req(), timeout_s=30)
    await backend.load_adapter(tiny.adapters["alpha"])
    assert [a.name for a in backend.loaded_adapters()] == ["alpha"]
    assert await backend.unload_adapter("alpha")
    assert not await backend.unload_adapter("alpha")
    assert backend.loaded_adapters() == []
    assert await backend.generate(req(), timeout_s=30) == base
    # And adapters load again after the model went back to bare.
    alpha = await backend.generate(req(adapter=tiny.adapters["alpha"]), timeout_s=30)
    assert alpha != base


async def test_sha256_mismatch_is_refused(backend: LocalBackend, tiny: TinyArtifacts) -> None:
    bad = dataclasses.replace(tiny.adapters["alpha"], sha256="0" * 64)
    with pytest.raises(FailedPrecondition) as err:
        await backend.generate(req(adapter=bad), timeout_s=30)
    assert err.value.reason == ADAPTER_SHA256_MISMATCH
    with pytest.raises(FailedPrecondition):
        await backend.load_adapter(bad)
    with pytest.raises(FailedPrecondition):
        _ = [d async for d in backend.stream(req(adapter=bad), timeout_s=30)]
    assert backend.loaded_adapters() == []
    # A bad adapter in a batch fails only its own request.
    good, failed = await asyncio.gather(
        backend.generate(req(), timeout_s=30),
        backend.generate(req(adapter=bad), timeout_s=30),
        return_exceptions=True,
    )
    assert not isinstance(good, BaseException) and good.text
    assert isinstance(failed, FailedPrecondition)


async def test_bad_requests_name_the_field(backend: LocalBackend, tiny: TinyArtifacts) -> None:
    with pytest.raises(InvalidArgument) as err:
        await backend.generate(req([{"role": "user", "content": "one two " * 300}]), timeout_s=30)
    assert err.value.violations[0].field == "messages"
    assert "context" in err.value.violations[0].description
    with pytest.raises(InvalidArgument) as err:
        await backend.generate(req(max_new_tokens=0), timeout_s=30)
    assert err.value.violations[0].field == "max_new_tokens"
    missing = dataclasses.replace(tiny.adapters["alpha"], uri="/nonexistent/adapter")
    with pytest.raises(InvalidArgument) as err:
        await backend.generate(req(adapter=missing), timeout_s=30)
    assert err.value.violations[0].field == "adapter.uri"


async def test_deadline_is_enforced(backend: LocalBackend) -> None:
    long = req(max_new_tokens=400)
    start = time.monotonic()
    with pytest.raises(Unavailable) as err:
        await backend.generate(long, timeout_s=0.05)
    assert err.value.reason == "DEADLINE_EXCEEDED"
    with pytest.raises(Unavailable):
        _ = [d async for d in backend.stream(long, timeout_s=0.05)]
    assert time.monotonic() - start < 5
    # The abandoned rows stop: the backend is free again right away.
    assert (await backend.generate(req(), timeout_s=30)).text


async def test_sampling_with_a_seed_reproduces(backend: LocalBackend) -> None:
    sampled = req(temperature=1.0, top_p=0.9, seed=7)
    assert await backend.generate(sampled, timeout_s=30) == await backend.generate(
        sampled, timeout_s=30
    )


async def test_closed_backend_is_unavailable(tiny: TinyArtifacts) -> None:
    backend = await LocalBackend.open(LocalBackendConfig(model_dir=tiny.model_dir))
    await backend.close()
    assert not await backend.health()
    with pytest.raises(Unavailable):
        await backend.generate(req(), timeout_s=30)


def test_config_rejects_bad_combinations(tiny: TinyArtifacts) -> None:
    with pytest.raises(ValueError, match="exactly one"):
        LocalBackendConfig()
    with pytest.raises(ValueError, match="exactly one"):
        LocalBackendConfig(model_dir=tiny.model_dir, gguf_path=tiny.model_dir)
    with pytest.raises(ValueError, match="max_adapters"):
        LocalBackendConfig(model_dir=tiny.model_dir, max_adapters=0)


async def test_closing_a_stream_early_frees_the_model(backend: LocalBackend) -> None:
    stream = backend.stream(req(max_new_tokens=400), timeout_s=60)
    assert await anext(stream)
    await stream.aclose()  # type: ignore[attr-defined]
    start = time.monotonic()
    assert (await backend.generate(req(max_new_tokens=4), timeout_s=30)).completion_tokens <= 4
    assert time.monotonic() - start < 2
