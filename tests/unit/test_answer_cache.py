"""The answer cache's keys and store: exact and semantic hits, scopes (tenant, policy,
index content version, settings), TTL, LRU bound."""

from __future__ import annotations

import numpy as np
import pytest

from rlaas.registry.v1 import registry_pb2 as pb
from services.inference import answer_cache as ac
from services.inference.backends.base import GenerationRequest

pytestmark = pytest.mark.unit

POLICY = pb.Policy(policy_id="support@v1", prompt_template=pb.PromptTemplate(system_prompt="x"))


def gen(**kw: object) -> GenerationRequest:
    return GenerationRequest(messages=[], **kw)  # type: ignore[arg-type]


def key(
    question: str, *, tenant: str = "t1", version: int = 0, policy: pb.Policy = POLICY,
    before: list[dict[str, str]] | None = None, generation: GenerationRequest | None = None,
    user_id: str = "",
) -> ac.Key:  # fmt: skip
    messages = [*(before or []), {"role": "user", "content": question}]
    return ac.key_for(
        tenant, "support", policy, version, messages, generation or gen(),
        caller_context=[], user_id=user_id,
    )  # fmt: skip


def entry(text: str = "answer") -> ac.Entry:
    return ac.Entry(text, 1, [], [], [], None, "interaction-1")


def unit(*values: float) -> np.ndarray:
    v = np.asarray(values, dtype=np.float32)
    return v / np.linalg.norm(v)


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def test_exact_keys_ignore_case_and_spacing_but_not_settings_or_context() -> None:
    a = key("How long do refunds take?")
    same = key("  how LONG do refunds   take? ")
    assert (a.scope, a.exact) == (same.scope, same.exact)
    assert a.exact != key("How long do refunds take").exact  # punctuation is content
    assert a.scope != key("How long do refunds take?", generation=gen(temperature=0.7)).scope
    earlier = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    assert a.scope != key("How long do refunds take?", before=earlier).scope
    assert a.scope != key("How long do refunds take?", tenant="t2").scope
    assert a.scope != key("How long do refunds take?", version=3).scope
    v2 = pb.Policy(policy_id="support@v2", prompt_template=POLICY.prompt_template)
    assert a.scope != key("How long do refunds take?", policy=v2).scope
    # The user id matters only when the template reads it.
    assert a.scope == key("How long do refunds take?", user_id="u1").scope
    personal = pb.Policy(
        policy_id="support@v1", prompt_template=pb.PromptTemplate(system_prompt="Hi {{user_id}}")
    )
    assert (
        key("q", policy=personal, user_id="u1").scope
        != key("q", policy=personal, user_id="u2").scope
    )


def test_exact_and_semantic_hits_and_misses() -> None:
    cache = ac.AnswerCache(100)
    k = key("How long do refunds take?")
    cache.put(k, unit(1, 0, 0), entry(), ttl_s=60)
    hit = cache.exact(key("how long do refunds take?"))
    assert hit is not None and (hit.kind, hit.similarity) == ("exact", 1.0)
    near = key("How many days until I get my refund?")
    assert cache.exact(near) is None
    semantic = cache.semantic(near, unit(0.96, 0.28, 0), threshold=0.95)
    assert semantic is not None and semantic.kind == "semantic"
    assert semantic.similarity == pytest.approx(0.96, abs=1e-3)
    assert cache.semantic(near, unit(0.9, 0.43, 0), threshold=0.95) is None  # below
    # Other tenants never see it, whatever the similarity.
    assert cache.semantic(key("How long do refunds take?", tenant="t2"), unit(1, 0, 0), 0.5) is None


def test_entries_expire_and_the_lru_bound_holds() -> None:
    clock = Clock()
    cache = ac.AnswerCache(2, clock=clock)
    cache.put(key("a"), unit(1, 0), entry("A"), ttl_s=10)
    clock.now = 11
    assert cache.exact(key("a")) is None and len(cache) == 0
    assert cache.semantic(key("a"), unit(1, 0), 0.5) is None
    cache.put(key("a"), unit(1, 0), entry("A"), ttl_s=100)
    cache.put(key("b"), unit(0, 1), entry("B"), ttl_s=100)
    assert cache.exact(key("a")) is not None  # a is now the most recently used
    cache.put(key("c"), unit(1, 1), entry("C"), ttl_s=100)
    assert len(cache) == 2 and cache.exact(key("b")) is None
    assert cache.exact(key("a")) is not None and cache.exact(key("c")) is not None
    # The evicted entry left the vector matrix too.
    hit = cache.semantic(key("x"), unit(0, 1), 0.9)
    assert hit is None


def test_a_newer_index_version_drops_the_older_scope() -> None:
    cache = ac.AnswerCache(100)
    cache.put(key("q", version=1), unit(1, 0), entry("old"), ttl_s=100)
    cache.put(key("q", version=2), unit(1, 0), entry("new"), ttl_s=100)
    assert cache.exact(key("q", version=1)) is None and len(cache) == 1
    # An answer grounded in content older than the newest seen is not stored.
    cache.put(key("r", version=1), unit(0, 1), entry("late"), ttl_s=100)
    assert cache.exact(key("r", version=1)) is None


def test_ttl_and_threshold_defaults() -> None:
    assert ac.ttl_of(pb.CacheConfig()) == ac.DEFAULT_TTL_S
    cfg = pb.CacheConfig()
    cfg.ttl.FromSeconds(5)
    assert ac.ttl_of(cfg) == 5
    assert ac.threshold_of(pb.CacheConfig()) == ac.DEFAULT_SIMILARITY_THRESHOLD
    assert ac.threshold_of(pb.CacheConfig(similarity_threshold=0.8)) == 0.8
