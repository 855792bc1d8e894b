"""Greedy answers by content: what a policy answered to a served conversation, kept in the
object store so the gate never asks the model the same question twice.

A policy is immutable (base model, prompt template and adapter are fixed when it is
registered) and the gate decodes greedily, so its answer to one served conversation is
a fact about the policy. The gate's baseline answers the same safety suite and golden
set at every iteration: cached, they cost one generation per policy, not one per
evaluation; a candidate's answers, cached as it is evaluated, are the next iteration's
baseline answers when it is promoted (and a rejected one's baseline is the same
policy again).

A batching engine may pad a prompt differently from one batch to the next, which can
flip a near-tie between two tokens: a cached answer is one of the policy's greedy
answers, not necessarily the one a new batch would give. The gate compares policies on
many prompts; that is noise it already tolerates.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection
from dataclasses import dataclass

from services.errors import NotFound
from services.objects.store import ObjectStore
from services.training.evaluation import Generate

_PREFIX = "gate-answers"


@dataclass(frozen=True)
class PolicyIdentity:
    """What decides a policy's greedy answers, besides the conversation."""

    engine: str
    """The serving engine and the model it serves (``LocalBackend:SmolLM2-135M-Instruct``):
    engines round differently."""
    base_model: str
    adapter_sha256: str
    """Empty for the base model alone."""
    max_new_tokens: int


def answer_key(policy: PolicyIdentity, messages: list[dict[str, str]]) -> str:
    """A hex digest of everything that decides the answer."""
    body = json.dumps(
        {
            "engine": policy.engine,
            "base_model": policy.base_model,
            "adapter_sha256": policy.adapter_sha256,
            "max_new_tokens": policy.max_new_tokens,
            "messages": [[m["role"], m["content"]] for m in messages],
        },
        sort_keys=True,
        ensure_ascii=False,
    )
    return hashlib.sha256(body.encode()).hexdigest()


class GateAnswerCache:
    """Answers under ``gate-answers/<namespace>/<digest>.json``. ``namespace`` is the
    tenant: two tenants never share an answer (a hit would tell one what another's
    policy said). Counts its hits and misses, for the gate's log."""

    def __init__(self, store: ObjectStore, namespace: str) -> None:
        if not namespace or "/" in namespace:
            raise ValueError(f"namespace must be a non-empty name without '/': {namespace!r}")
        self.store = store
        self.namespace = namespace
        self.hits = 0
        self.misses = 0

    def _object_key(self, digest: str) -> str:
        return f"{_PREFIX}/{self.namespace}/{digest}.json"

    async def get(self, digest: str) -> str | None:
        try:
            raw = await self.store.get(self._object_key(digest))
        except NotFound:
            self.misses += 1
            return None
        self.hits += 1
        return str(json.loads(raw)["answer"])

    async def put(self, digest: str, answer: str) -> None:
        await self.store.put(self._object_key(digest), json.dumps({"answer": answer}).encode())

    def wrap(self, generate: Generate, policy: PolicyIdentity, only: Collection[str]) -> Generate:
        """``generate`` (greedy, as ``policy``) answering from the cache first, for the
        conversations whose :func:`answer_key` is in ``only``: the packaged prompts. The
        users' own prompts (a dataset's held-out split) are new at every iteration, and
        an answer to one is their data: those are never kept."""

        async def cached(messages: list[dict[str, str]]) -> str:
            digest = answer_key(policy, messages)
            if digest not in only:
                return await generate(messages)
            answer = await self.get(digest)
            if answer is None:
                answer = await generate(messages)
                await self.put(digest, answer)
            return answer

        return cached
