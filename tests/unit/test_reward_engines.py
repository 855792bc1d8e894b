"""Reward engines: every signal's score checked by hand, the weighted combination, the
missing-signal policies and config versioning."""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from rlaas.telemetry.v1 import telemetry_pb2 as tel
from rlaas.training.v1 import training_pb2
from services.inference.backends.base import GenerationRequest, GenerationResult
from services.inference.backends.local import LocalBackend, LocalBackendConfig
from services.objects.store import LocalObjectStore
from services.rewards.engines import (
    RewardConfig,
    compute_reward,
    edit_similarity,
    follow_up_score,
    output_rewards,
    reward_config_for,
    reward_config_from_proto,
    time_to_send_score,
)
from services.rewards.online import explicit_reward
from services.telemetry.core import InteractionView
from services.training.judge import (
    DEFAULT_TEMPLATES,
    JudgeCache,
    PairwiseJudge,
    RubricCriterion,
    Vote,
    aggregate_votes,
    parse_verdict,
    templates_for_votes,
)

pytestmark = pytest.mark.unit

UP, DOWN = tel.ExplicitFeedback.THUMB_UP, tel.ExplicitFeedback.THUMB_DOWN
_clock = itertools.count(1_700_000_000)


def view(
    *outputs: str,
    feedback: list[tel.Feedback] | None = None,
    tasks: list[tel.TaskResult] | None = None,
) -> InteractionView:
    outs = [tel.Output(output_id=f"o{i}", text=t, candidate_index=i) for i, t in enumerate(outputs)]
    return InteractionView(
        tel.Interaction(interaction_id="i1", skill="support_email"),
        outs,
        list(feedback or []),
        list(tasks or []),
    )


def fb(output_id: str = "", **kw: Any) -> tel.Feedback:
    explicit = {k: kw.pop(k) for k in ("thumb", "rating", "preferred_text") if k in kw}
    message = tel.Feedback(
        output_id=output_id,
        explicit=tel.ExplicitFeedback(**explicit),
        implicit=tel.ImplicitFeedback(**kw),
    )
    message.create_time.seconds = next(_clock)
    return message


def task(output_id: str = "", **kw: Any) -> tel.TaskResult:
    message = tel.TaskResult(output_id=output_id, **kw)
    message.create_time.seconds = next(_clock)
    return message


# ---- single signals ----------------------------------------------------------------------


def test_edit_similarity_by_hand() -> None:
    # Levenshtein(kitten, sitting) = 3 edits over max length 7.
    assert edit_similarity("kitten", "sitting") == pytest.approx(1 - 3 / 7)
    # InDel: LCS "ittn" (4) -> distance 6 + 7 - 2 * 4 = 5 over 13 characters.
    assert edit_similarity("kitten", "sitting", metric="indel") == pytest.approx(1 - 5 / 13)
    assert edit_similarity("same  text\n", "same text") == 1.0
    assert edit_similarity("same  text", "same text", normalize_whitespace=False) < 1.0
    assert edit_similarity("abc", "xyz") == 0.0


def test_time_to_send_and_follow_up_by_hand() -> None:
    config = RewardConfig(time_to_send_fast_ms=10_000, time_to_send_slow_ms=300_000)
    assert time_to_send_score(155_000, config) == pytest.approx(0.5)  # 145k / 290k
    assert time_to_send_score(5_000, config) == 1.0  # clipped
    assert time_to_send_score(10_000, config) == 1.0
    assert time_to_send_score(400_000, config) == 0.0  # clipped
    assert follow_up_score(0, config) == 1.0
    assert follow_up_score(2, config) == pytest.approx(0.6)  # 1 - 2/5
    assert follow_up_score(7, config) == 0.0


def test_explicit_engine_matches_the_bandit_reward() -> None:
    config = RewardConfig()
    for thumb, rating in itertools.product((0, UP, DOWN), (None, 1, 2, 3, 4, 5)):
        kw: dict[str, Any] = {"thumb": thumb}
        if rating is not None:
            kw["rating"] = rating
        feedback = fb(**kw)
        reward = compute_reward(view("hello", feedback=[feedback]), config)
        expected = explicit_reward(feedback)
        if expected is None:
            assert reward is None
        else:
            assert reward is not None and reward.value == pytest.approx(expected)
    up_four = compute_reward(view("x", feedback=[fb(thumb=UP, rating=4)]), config)
    assert up_four is not None
    assert up_four.value == pytest.approx(0.875)  # (1 + 0.75) / 2
    assert up_four.signals_used == {"rating": 0.75, "thumb": 1.0}


def test_task_native_signals() -> None:
    config = RewardConfig()
    r = compute_reward(view("x", tasks=[task(correct=True, f1=0.4, resolved=False)]), config)
    assert r is not None
    assert r.signals_used == {"task_correct": 1.0, "task_f1": 0.4, "task_resolved": 0.0}
    assert r.value == pytest.approx(1.4 / 3)
    clipped = compute_reward(view("x", tasks=[task(f1=1.7)]), config)
    assert clipped is not None and clipped.value == 1.0


# ---- combination -------------------------------------------------------------------------


def test_weighted_mean_of_the_signals_present() -> None:
    config = RewardConfig()  # thumb, edit, sent, escalation, task_f1 all weigh 1
    v = view(
        "kitten",
        feedback=[fb(thumb=DOWN, edited_text="sitting", sent=True, escalated=True)],
    )
    r = compute_reward(v, config)
    assert r is not None
    # (0 + 4/7 + 1 + 0) / 4: weights of the missing signals renormalized away.
    assert r.value == pytest.approx((4 / 7 + 1) / 4)
    assert set(r.signals_used) == {"thumb", "edit_similarity", "sent", "escalation"}
    assert sum(r.weights_used.values()) == pytest.approx(1.0)
    v.task_results.append(task(f1=0.8))
    r2 = compute_reward(v, config)
    assert r2 is not None and r2.value == pytest.approx((4 / 7 + 1 + 0.8) / 5)
    assert r2.config_version == config.version


def test_custom_weights_and_zero_weight_disables() -> None:
    config = RewardConfig(
        thumb_weight=3.0, edit_similarity_weight=1.0, sent_weight=0.0, escalation_weight=0.0
    )
    v = view("kitten", feedback=[fb(thumb=UP, edited_text="sitting", sent=False)])
    r = compute_reward(v, config)
    assert r is not None
    assert r.value == pytest.approx((3 * 1 + 1 * 4 / 7) / 4)
    assert "sent" not in r.signals_used


def test_time_and_follow_up_in_the_mix() -> None:
    config = RewardConfig()  # time_to_send 0.5, follow_up 0.5, sent 1
    v = view("a", feedback=[fb(sent=True, time_to_send_ms=155_000, follow_up_count=2)])
    r = compute_reward(v, config)
    assert r is not None
    assert r.value == pytest.approx((1 * 1 + 0.5 * 0.5 + 0.5 * 0.6) / 2)


def test_no_signal_gives_no_reward() -> None:
    assert compute_reward(view("x"), RewardConfig()) is None
    assert compute_reward(view("x", feedback=[fb(thumb=0)]), RewardConfig()) is None
    # A signal whose weight is 0 is no signal.
    only_thumb_off = RewardConfig(thumb_weight=0.0)
    assert compute_reward(view("x", feedback=[fb(thumb=UP)]), only_thumb_off) is None


def test_neutral_policy_and_required_signals() -> None:
    neutral = RewardConfig(missing_signal_policy="neutral", neutral_value=0.5)
    r = compute_reward(view("x", feedback=[fb(thumb=UP)]), neutral)
    total = 1 + 1 + 1 + 1 + 0.5 + 1 + 0.5 + 1 + 1 + 1  # every positive weight
    assert r is not None and r.value == pytest.approx((1 + (total - 1) * 0.5) / total)
    strict = RewardConfig(required_signals=("sent",))
    assert compute_reward(view("x", feedback=[fb(thumb=UP)]), strict) is None
    assert compute_reward(view("x", feedback=[fb(thumb=UP, sent=True)]), strict) is not None


def test_latest_report_wins_and_feedback_targets_its_output() -> None:
    config = RewardConfig()
    v = view("first", "second", feedback=[fb(thumb=UP), fb(thumb=DOWN), fb("o1", thumb=UP)])
    primary = compute_reward(v, config)
    assert primary is not None and primary.value == 0.0 and primary.output_id == "o0"
    second = compute_reward(v, config, output_id="o1")
    assert second is not None and second.value == 1.0
    assert {k: r.value for k, r in output_rewards(v, config).items()} == {"o0": 0.0, "o1": 1.0}


def test_extra_signals_and_judge_weight() -> None:
    config = RewardConfig(judge_weight=2.0)
    r = compute_reward(view("x", feedback=[fb(thumb=UP)]), config, extra_signals={"judge": 0.25})
    assert r is not None and r.value == pytest.approx((1 + 2 * 0.25) / 3)
    with pytest.raises(ValueError, match="unknown signals"):
        compute_reward(view("x"), config, extra_signals={"vibes": 1.0})


def test_deterministic() -> None:
    v = view("kitten", feedback=[fb(thumb=UP, edited_text="sitting", time_to_send_ms=60_000)])
    assert compute_reward(v, RewardConfig()) == compute_reward(v, RewardConfig())


# ---- config -----------------------------------------------------------------------------


def test_version_is_the_sha256_of_the_canonical_json() -> None:
    a = RewardConfig(thumb_weight=2.0, sent_weight=0.5)
    b = RewardConfig(sent_weight=0.5, thumb_weight=2.0)
    assert a.version == b.version
    assert a.version == hashlib.sha256(a.canonical_json().encode()).hexdigest()
    assert len(a.version) == 64
    assert RewardConfig(thumb_weight=2.0000001, sent_weight=0.5).version != a.version
    assert RewardConfig(label="other").version != RewardConfig().version
    # Round trip through JSON keeps the version.
    assert RewardConfig.model_validate_json(a.model_dump_json()).version == a.version


def test_bad_configs_are_rejected() -> None:
    with pytest.raises(ValidationError, match="greater than or equal to 0"):
        RewardConfig(thumb_weight=-1)
    with pytest.raises(ValidationError, match="fast_ms must be below"):
        RewardConfig(time_to_send_fast_ms=5000, time_to_send_slow_ms=5000)
    zero = {f"{s}_weight": 0.0 for s in ("thumb", "rating", "edit_similarity", "sent")}
    zero.update({f"{s}_weight": 0.0 for s in ("time_to_send", "escalation", "follow_up")})
    zero.update({f"{s}_weight": 0.0 for s in ("task_correct", "task_f1", "task_resolved")})
    with pytest.raises(ValidationError, match="at least one signal weight"):
        RewardConfig.model_validate(zero)
    with pytest.raises(ValidationError, match="unknown required_signals"):
        RewardConfig(required_signals=("mood",))


def test_from_proto_and_per_skill_defaults() -> None:
    message = training_pb2.RewardConfig(version="edits-only", thumb_weight=0.0, sent_weight=2.0)
    config = reward_config_from_proto(message, skill="support_email")
    assert config.label == "edits-only" and config.skill == "support_email"
    assert config.thumb_weight == 0.0 and config.sent_weight == 2.0
    assert config.rating_weight == RewardConfig().rating_weight  # unset: default
    assert reward_config_for("support_email").edit_similarity_weight == 2.0
    assert reward_config_for("triage").skill == "triage"


# ---- the LLM judge ------------------------------------------------------------------------
# The aggregation tests use ScriptedJudgeBackend, a tiny deterministic fake: they are about
# how votes are parsed, swapped and combined, which needs a judge whose answers we know.
# The backend plumbing is tested on the real tiny model (LocalBackend) further down.


class ScriptedJudgeBackend:
    """Says which slot holds ``good`` (``Verdict: A``/``B``), or always ``fixed``."""

    name = "scripted"

    def __init__(self, good: str = "", fixed: str | None = None, garble: str = "") -> None:
        self.good, self.fixed, self.garble = good, fixed, garble
        self.calls = 0

    async def generate(self, req: GenerationRequest, *, timeout_s: float) -> GenerationResult:
        self.calls += 1
        system, user = req.messages[0]["content"], req.messages[1]["content"]
        if self.garble and self.garble in system:
            text = "I cannot decide, sorry."
        elif self.fixed is not None:
            text = self.fixed
        else:
            text = "Verdict: A" if user.find(self.good) < _second_slot(user) else "Verdict: B"
        return GenerationResult(text, 1, 1, "stop")

    def stream(self, req: GenerationRequest, *, timeout_s: float) -> AsyncIterator[str]:
        raise NotImplementedError

    async def health(self) -> bool:
        return True

    async def close(self) -> None:
        return None


def _second_slot(user: str) -> int:
    for marker in ("[Reply B]", "Answer B:", "--- Draft B ---"):
        if marker in user:
            return user.index(marker)
    raise AssertionError("no B slot in the judge prompt")


GOOD = "Hi Maria, order NW-1 ships today. Best regards"
BAD = "whatever"


@pytest.mark.parametrize(
    ("text", "verdict"),
    [
        ("A", "A"),
        ("b.", "B"),
        ("Verdict: B", "B"),
        ("[[tie]]", "tie"),
        ("Final verdict: **A**", "A"),
        ("Reply B is clearly better than reply A.", "B"),
        ("I prefer draft A because it greets the customer.", "A"),
        ("Both are equally good.", "tie"),
        ("Verdict: A\nOn reflection... Verdict: B", "B"),
        ("A) it quotes the order number", "A"),
        ("the quick brown fox", None),
        ("A good reply would greet the customer", None),
        ("", None),
    ],
)
def test_parse_verdict(text: str, verdict: str | None) -> None:
    assert parse_verdict(text) == verdict


async def test_a_fair_judge_finds_the_better_answer_in_both_orders() -> None:
    backend = ScriptedJudgeBackend(good=GOOD)
    judge = PairwiseJudge(backend)
    b_better = await judge.judge("Where is NW-1?", BAD, GOOD)
    assert b_better.p_b_wins == 1.0 and b_better.verdict == 1
    assert b_better.valid_votes == 6 and b_better.invalid_votes == 0
    assert b_better.order_consistency == 1.0 and b_better.agreement == 1.0
    a_better = await judge.judge("Where is NW-1?", GOOD, BAD)
    assert a_better.p_b_wins == 0.0 and a_better.verdict == -1
    assert {(v.template_id, v.order) for v in a_better.votes} == {
        (t.template_id, o) for t in DEFAULT_TEMPLATES for o in ("AB", "BA")
    }


async def test_position_bias_cancels_out() -> None:
    judge = PairwiseJudge(ScriptedJudgeBackend(fixed="Verdict: A"))
    j = await judge.judge("p", GOOD, BAD)
    assert j.p_b_wins == 0.5 and j.verdict == 0
    assert j.order_consistency == 0.0 and j.agreement == 0.5
    unswapped = PairwiseJudge(ScriptedJudgeBackend(fixed="Verdict: A"), swap_positions=False)
    assert (await unswapped.judge("p", GOOD, BAD)).p_b_wins == 0.0  # the bias shows


async def test_invalid_votes_are_left_out_of_the_consensus() -> None:
    garbled = DEFAULT_TEMPLATES[1].system
    judge = PairwiseJudge(ScriptedJudgeBackend(good=GOOD, garble=garbled))
    j = await judge.judge("p", BAD, GOOD)
    assert (j.valid_votes, j.invalid_votes) == (4, 2)
    assert j.p_b_wins == 1.0 and j.order_consistency == 1.0
    nothing = await PairwiseJudge(ScriptedJudgeBackend(fixed="hmm")).judge("p", BAD, GOOD)
    assert nothing.valid_votes == 0 and nothing.p_b_wins == 0.5 and nothing.agreement is None


def test_aggregate_votes_by_hand() -> None:
    votes = [
        Vote("t1", "AB", "B", 1.0),
        Vote("t1", "BA", "A", 1.0),
        Vote("t2", "AB", "tie", 0.5),
        Vote("t2", "BA", "B", 0.0),
        Vote("t3", "AB", None, None),
    ]
    j = aggregate_votes(votes, "v")
    assert j.p_b_wins == pytest.approx(2.5 / 4)
    assert j.order_consistency == 0.5  # t1 agrees, t2 does not, t3 has one vote
    assert j.agreement == 0.5  # two of four valid votes say 1.0
    assert (j.valid_votes, j.invalid_votes) == (4, 1)


async def test_cache_in_process_and_in_the_object_store(tmp_path: Path) -> None:
    backend = ScriptedJudgeBackend(good=GOOD)
    store = LocalObjectStore(tmp_path / "objects")
    judge = PairwiseJudge(backend, cache=JudgeCache(store=store))
    first = await judge.judge("p", BAD, GOOD)
    assert backend.calls == 6
    assert await judge.judge("p", BAD, GOOD) == first
    assert backend.calls == 6 and judge.cache.hits == 6
    # A new process: empty LRU, same store -> still no judge calls.
    fresh = PairwiseJudge(backend, cache=JudgeCache(store=store))
    assert await fresh.judge("p", BAD, GOOD) == first
    assert backend.calls == 6
    keys = await store.list("judge-cache/")
    assert len(keys) == 6 and all(k.startswith(f"judge-cache/{judge.judge_version}/") for k in keys)
    # Different content: a miss.
    await judge.judge("p", BAD, GOOD + "!")
    assert backend.calls == 12
    # The LRU is bounded.
    small = JudgeCache(maxsize=3)
    await PairwiseJudge(backend, cache=small).judge("q", BAD, GOOD)
    assert len(small) == 3


def test_judge_version_tracks_what_shapes_a_verdict() -> None:
    backend = ScriptedJudgeBackend()
    base = PairwiseJudge(backend).judge_version
    assert base.startswith("judge-") and base == PairwiseJudge(backend).judge_version
    assert PairwiseJudge(backend, templates=templates_for_votes(1)).judge_version != base
    assert PairwiseJudge(backend, model_label="SmolLM2").judge_version != base
    assert PairwiseJudge(backend, rubric=[RubricCriterion("tone")]).judge_version != base
    assert PairwiseJudge(backend, swap_positions=False).judge_version != base
    with pytest.raises(ValueError):
        templates_for_votes(9)


@pytest.fixture(scope="module")
async def tiny_backend(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[LocalBackend]:
    from tests.backends.tiny import build_tiny_model

    model_dir = build_tiny_model(tmp_path_factory.mktemp("tiny-judge") / "model")
    backend = await LocalBackend.open(LocalBackendConfig(model_dir=model_dir))
    yield backend
    await backend.close()


class CountingBackend:
    """Delegates to a real backend and counts the calls."""

    def __init__(self, inner: LocalBackend) -> None:
        self.inner, self.name, self.calls = inner, inner.name, 0
        self.texts: list[str] = []

    async def generate(self, req: GenerationRequest, *, timeout_s: float) -> GenerationResult:
        self.calls += 1
        result = await self.inner.generate(req, timeout_s=timeout_s)
        self.texts.append(result.text)
        return result

    def stream(self, req: GenerationRequest, *, timeout_s: float) -> AsyncIterator[str]:
        return self.inner.stream(req, timeout_s=timeout_s)

    async def health(self) -> bool:
        return await self.inner.health()

    async def close(self) -> None:
        return None


async def test_judge_on_a_real_local_model(tiny_backend: LocalBackend) -> None:
    backend = CountingBackend(tiny_backend)
    judge = PairwiseJudge(
        backend,
        rubric=[RubricCriterion("helpfulness", "answers the question", 2.0)],
        model_label="tiny",
        max_new_tokens=8,
    )
    j = await judge.judge("hello world", "the quick brown fox", "one two three")
    assert backend.calls == 6 and all(t.strip() for t in backend.texts)
    # Every vote is what the parser made of the model's real text (calls finish in any
    # order, so compare as multisets).
    parsed = sorted(str(parse_verdict(t)) for t in backend.texts)
    assert sorted(str(v.verdict) for v in j.votes) == parsed
    assert j.valid_votes + j.invalid_votes == 6 and 0.0 <= j.p_b_wins <= 1.0
    assert j.judge_version == judge.judge_version
    # Greedy decoding + the cache: the same judgement, no new generation.
    assert await judge.judge("hello world", "the quick brown fox", "one two three") == j
    assert backend.calls == 6
