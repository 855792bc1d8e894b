"""The gateway's answer cache (``Policy.cache``): replay an earlier answer to the same,
or a near-identical, request.

Keys. A *scope* is (tenant, skill, policy, index content version, settings digest):

- tenant: entries are never shared across tenants;
- policy: a new policy version is a new scope by construction (policies are immutable);
- index content version: upserting or deleting documents in the policy's retrieval
  index bumps it, so answers grounded in old content stop matching at once (old scopes
  are dropped when a newer version of the same policy's index is seen);
- settings digest: the merged generation settings, the caller's own context chunks,
  the conversation before the last user message, and the user id when the template
  uses it — everything that shapes the prompt besides the last question. A semantic hit
  therefore only ever swaps one last question for a near-identical one.

Within a scope an *exact* hit is the same last user message after normalisation
(case-folded, whitespace collapsed); a *semantic* hit is the stored question whose
all-MiniLM-L6-v2 embedding has the highest cosine with this one, when at least the
policy's threshold (default 0.95).

Storage is in-process: a bounded LRU over all entries (``RLAAS_ANSWER_CACHE_MAX_ENTRIES``)
plus one vector matrix per scope. Several gateway processes each keep their own cache
(a hit rate per process; a miss only costs a model call). Entries expire after the
policy's TTL (default 1 hour).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import structlog

from rlaas.registry.v1 import registry_pb2 as reg
from rlaas.telemetry.v1 import telemetry_pb2 as tel
from services.inference import metrics
from services.inference.backends.base import GenerationRequest
from services.inference.prompting import uses_variable

log = structlog.get_logger(__name__)

DEFAULT_SIMILARITY_THRESHOLD = 0.95
DEFAULT_TTL_S = 3600.0
STATS_LOG_EVERY = 100  # lookups between two `answer_cache_stats` log lines


@dataclass(frozen=True)
class Scope:
    tenant_id: str
    skill: str
    policy_id: str
    content_version: int
    settings_digest: str


@dataclass(frozen=True)
class Key:
    scope: Scope
    exact: str  # sha256 of the normalised last user message
    question: str  # the last user message, for the embedding


@dataclass
class Entry:
    """What a hit replays."""

    text: str
    finish_reason: int
    flags: list[str]
    citations: list[tel.Citation]
    retrieved_chunks: list[tel.RetrievedChunk]
    groundedness: tel.Groundedness | None
    source_interaction_id: str
    expires_at: float = 0.0


@dataclass
class Hit:
    entry: Entry
    kind: str  # "exact" | "semantic"
    similarity: float


def normalise(text: str) -> str:
    return " ".join(text.casefold().split())


def _digest(value: object) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()


def key_for(
    tenant_id: str,
    skill: str,
    policy: reg.Policy,
    content_version: int,
    messages: Sequence[dict[str, str]],
    generation: GenerationRequest,
    *,
    caller_context: Sequence[tel.RetrievedChunk],
    user_id: str,
) -> Key:
    """The cache key of a request (``messages``: after input guardrails, before the
    template)."""
    last = max(i for i, m in enumerate(messages) if m["role"] == "user")
    before = [[m["role"], normalise(m["content"])] for m in messages[:last]]
    after = [[m["role"], normalise(m["content"])] for m in messages[last + 1 :]]
    tpl = policy.prompt_template
    templated_user = uses_variable(tpl, "user_id")
    settings = {
        "max_new_tokens": generation.max_new_tokens,
        "temperature": generation.temperature,
        "top_p": generation.top_p,
        "stop": list(generation.stop),
        "seed": generation.seed,
        "context": [c.SerializeToString(deterministic=True).hex() for c in caller_context],
        "before": before,
        "after": after,
        "user": user_id if templated_user else "",
    }
    question = messages[last]["content"]
    scope = Scope(tenant_id, skill, policy.policy_id, content_version, _digest(settings))
    exact = hashlib.sha256(normalise(question).encode()).hexdigest()
    return Key(scope, exact, question)


@dataclass
class _ScopeStore:
    exact: dict[str, Entry] = field(default_factory=dict)
    ids: list[str] = field(default_factory=list)  # row i of vectors is ids[i]
    vectors: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))

    def add(self, exact: str, vector: np.ndarray | None, entry: Entry) -> None:
        self.remove(exact)
        self.exact[exact] = entry
        if vector is not None:
            row = vector.astype(np.float32).reshape(1, -1)
            self.vectors = row if not self.ids else np.vstack([self.vectors, row])
            self.ids.append(exact)

    def remove(self, exact: str) -> None:
        self.exact.pop(exact, None)
        if exact in self.ids:
            i = self.ids.index(exact)
            del self.ids[i]
            self.vectors = np.delete(self.vectors, i, axis=0)


@dataclass
class Stats:
    exact_hits: int = 0
    semantic_hits: int = 0
    misses: int = 0

    @property
    def hit_rate(self) -> float:
        total = self.exact_hits + self.semantic_hits + self.misses
        return (self.exact_hits + self.semantic_hits) / total if total else 0.0


class AnswerCache:
    """Bounded, in-process. Not thread-safe: used from the server's event loop only."""

    def __init__(self, max_entries: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._max = max_entries
        self._clock = clock
        self._lru: OrderedDict[tuple[Scope, str], None] = OrderedDict()
        self._scopes: dict[Scope, _ScopeStore] = {}
        # (tenant, skill, policy) -> newest content version seen, to drop older scopes.
        self._versions: dict[tuple[str, str, str], int] = {}
        self.stats = Stats()

    def __len__(self) -> int:
        return len(self._lru)

    def count(self, scope: Scope, result: str) -> None:
        """Record a lookup's result (Prometheus, and a log line every so many)."""
        metrics.CACHE_LOOKUPS.labels(scope.tenant_id, scope.skill, scope.policy_id, result).inc()
        st = self.stats
        if result == "exact":
            st.exact_hits += 1
        elif result == "semantic":
            st.semantic_hits += 1
        else:
            st.misses += 1
        lookups = st.exact_hits + st.semantic_hits + st.misses
        if lookups % STATS_LOG_EVERY == 0:
            log.info(
                "answer_cache_stats", lookups=lookups, exact_hits=st.exact_hits,
                semantic_hits=st.semantic_hits, misses=st.misses,
                hit_rate=round(st.hit_rate, 4), entries=len(self),
            )  # fmt: skip

    def exact(self, key: Key) -> Hit | None:
        store = self._scopes.get(key.scope)
        entry = store.exact.get(key.exact) if store else None
        if entry is None or not self._alive(key.scope, key.exact, entry):
            return None
        self._lru.move_to_end((key.scope, key.exact))
        return Hit(entry, "exact", 1.0)

    def semantic(self, key: Key, vector: np.ndarray, threshold: float) -> Hit | None:
        store = self._scopes.get(key.scope)
        if store is None or not store.ids:
            return None
        sims = store.vectors @ vector.astype(np.float32)
        for i in np.argsort(-sims):
            if sims[i] < threshold:
                return None
            exact = store.ids[int(i)]
            entry = store.exact[exact]
            if self._alive(key.scope, exact, entry):
                self._lru.move_to_end((key.scope, exact))
                return Hit(entry, "semantic", float(min(sims[i], 1.0)))
        return None

    def put(self, key: Key, vector: np.ndarray | None, entry: Entry, ttl_s: float) -> None:
        owner = (key.scope.tenant_id, key.scope.skill, key.scope.policy_id)
        newest = self._versions.get(owner)
        if newest is not None and key.scope.content_version < newest:
            return  # answered from content that has changed since
        if newest is None or key.scope.content_version > newest:
            self._versions[owner] = key.scope.content_version
            self._drop_older(owner, key.scope.content_version)
        entry.expires_at = self._clock() + ttl_s
        self._scopes.setdefault(key.scope, _ScopeStore()).add(key.exact, vector, entry)
        self._lru[(key.scope, key.exact)] = None
        self._lru.move_to_end((key.scope, key.exact))
        while len(self._lru) > self._max:
            (scope, exact), _ = self._lru.popitem(last=False)
            self._remove(scope, exact, lru=False)

    def _alive(self, scope: Scope, exact: str, entry: Entry) -> bool:
        if entry.expires_at > self._clock():
            return True
        self._remove(scope, exact)
        return False

    def _remove(self, scope: Scope, exact: str, *, lru: bool = True) -> None:
        if lru:
            self._lru.pop((scope, exact), None)
        store = self._scopes.get(scope)
        if store is not None:
            store.remove(exact)
            if not store.exact:
                del self._scopes[scope]

    def _drop_older(self, owner: tuple[str, str, str], version: int) -> None:
        stale = [
            s
            for s in self._scopes
            if (s.tenant_id, s.skill, s.policy_id) == owner and s.content_version < version
        ]
        for scope in stale:
            for exact in list(self._scopes[scope].exact):
                self._remove(scope, exact)


def threshold_of(cfg: reg.CacheConfig) -> float:
    return cfg.similarity_threshold or DEFAULT_SIMILARITY_THRESHOLD


def ttl_of(cfg: reg.CacheConfig) -> float:
    if cfg.HasField("ttl"):
        seconds = cfg.ttl.ToTimedelta().total_seconds()
        if seconds > 0:
            return seconds
    return DEFAULT_TTL_S


class Embeds(Protocol):
    async def aembed(self, texts: Sequence[str]) -> np.ndarray: ...


async def lookup(
    cache: AnswerCache, key: Key, cfg: reg.CacheConfig, embedder: Embeds
) -> tuple[Hit | None, np.ndarray | None]:
    """An exact hit, else the best semantic hit at or above the policy's threshold;
    with the question's vector on a miss (the answer is stored under it). A threshold
    of 1 means exact hits only: no embedding is computed."""
    hit = cache.exact(key)
    vector = None
    threshold = threshold_of(cfg)
    if hit is None and threshold < 1.0:
        vector = (await embedder.aembed([normalise(key.question)]))[0]
        hit = cache.semantic(key, vector, threshold)
    cache.count(key.scope, hit.kind if hit else "miss")
    return hit, None if hit else vector
