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
    AdapterRef,
    Backend,
    GenerationRequest,
    Scorer,
    ScoreRequest,
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


def _reference_score(
    tiny: TinyArtifacts, adapter: str | None, messages: list[dict[str, str]], completion: str
) -> float:
    """The same log-likelihood computed the plain way: one unpadded sequence, a model
    with only that adapter, every position's logits."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny.model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny.model_dir).eval()
    if adapter is not None:
        model = PeftModel.from_pretrained(model, str(tiny.model_dir.parent / "adapters" / adapter))
    prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    completion_ids = tokenizer(completion, add_special_tokens=False)["input_ids"]
    ids = torch.tensor([prompt_ids + completion_ids + [tokenizer.eos_token_id]])
    with torch.no_grad():
        logprobs = torch.log_softmax(model(input_ids=ids).logits[0, :-1].float(), dim=-1)
    targets = ids[0, 1:]
    picked = logprobs.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    return float(picked[len(prompt_ids) - 1 :].sum())


async def test_scores_in_a_mixed_batch_match_each_sequence_scored_alone(
    backend: LocalBackend, tiny: TinyArtifacts
) -> None:
    assert isinstance(backend, Scorer)
    cases = [
        (None, HELLO, "red green blue"),
        ("alpha", LONGER, "the capital of france is paris"),
        ("beta", HELLO, "hello"),
        ("alpha", HELLO, "red green blue"),
        (None, LONGER, "please answer briefly and politely"),
        # More rows than one forward pass holds (SCORE_ROWS_PER_PASS), among them a
        # preference pair's two answers to one prompt, split across the passes.
        ("alpha", LONGER, "paris"),
        (None, HELLO, "red"),
        ("beta", HELLO, "hello there, how can i help you today with your question"),
        (None, LONGER, "no"),
        ("alpha", HELLO, "blue"),
    ]
    requests = [ScoreRequest(list(m), c, tiny.adapters[a] if a else None) for a, m, c in cases]
    scores = await backend.score(requests, timeout_s=60)
    expected = [_reference_score(tiny, a, list(m), c) for a, m, c in cases]
    assert scores == pytest.approx(expected, abs=1e-3)
    # Each adapter changes the likelihood of the same reply.
    assert scores[0] != pytest.approx(scores[3], abs=1e-3)
    assert all(s < 0 for s in scores)
    # Scoring shares the model with generation: both still work, in either order.
    assert (await backend.generate(req(), timeout_s=30)).text


async def test_scoring_names_the_bad_request_and_refuses_a_tampered_adapter(
    backend: LocalBackend, tiny: TinyArtifacts
) -> None:
    too_long = ScoreRequest(list(HELLO), "red " * 600)
    with pytest.raises(InvalidArgument) as err:
        await backend.score([ScoreRequest(list(HELLO), "red"), too_long], timeout_s=30)
    assert err.value.violations[0].field == "requests[1]"
    tampered = dataclasses.replace(tiny.adapters["gamma"], sha256="0" * 64)
    with pytest.raises(FailedPrecondition) as refused:
        await backend.score([ScoreRequest(list(HELLO), "red", tampered)], timeout_s=30)
    assert refused.value.reason == ADAPTER_SHA256_MISMATCH


async def test_preference_outcomes_follow_the_likelihoods_both_ways(
    backend: LocalBackend, tiny: TinyArtifacts
) -> None:
    from services.training.evaluation import HeldOutPair, outcomes_of_margins, preference_margins

    async def preference_outcomes(
        pairs: list[HeldOutPair], *, candidate: AdapterRef, baseline: AdapterRef | None
    ) -> list[float]:
        return outcomes_of_margins(
            await preference_margins(backend, pairs, candidate=candidate, baseline=baseline)
        )

    prompts = [(("user", "hello world"),), (("system", "please answer briefly"),
               ("user", "what is the capital of france")), (("user", "red green"),)]  # fmt: skip
    texts = [("red green blue", "purple black white"), ("paris", "the capital"),
             ("hello", "yellow orange")]  # fmt: skip
    pairs = [HeldOutPair(p, c, r) for p, (c, r) in zip(prompts, texts, strict=True)]
    swapped = [HeldOutPair(p.messages, p.rejected, p.chosen) for p in pairs]
    alpha = tiny.adapters["alpha"]
    forward = await preference_outcomes(pairs, candidate=alpha, baseline=None)
    backward = await preference_outcomes(swapped, candidate=alpha, baseline=None)
    # One outcome per prompt; what wins one way loses the other.
    assert len(forward) == 3 and set(forward) <= {0.0, 1.0}
    assert [f + b for f, b in zip(forward, backward, strict=True)] == [1.0, 1.0, 1.0]
    # A policy against itself moved nothing: every prompt ties.
    assert await preference_outcomes(pairs, candidate=alpha, baseline=alpha) == [0.5] * 3
    # Two pairs on one prompt count once, their margins summed.
    doubled = await preference_outcomes(pairs + pairs, candidate=alpha, baseline=None)
    assert doubled == forward
    # The margins behind the outcomes: their signs are the outcomes, swapping the pairs
    # negates them, and a doubled pair doubles its prompt's margin.
    margins = await preference_margins(backend, pairs, candidate=alpha, baseline=None)
    assert outcomes_of_margins(margins) == forward
    negated = await preference_margins(backend, swapped, candidate=alpha, baseline=None)
    assert negated == pytest.approx([-m for m in margins], abs=1e-4)
    twice = await preference_margins(backend, pairs + pairs, candidate=alpha, baseline=None)
    assert twice == pytest.approx([2 * m for m in margins], abs=1e-4)
