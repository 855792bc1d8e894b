"""Reward engines: an interaction's signals -> one reward in [0, 1].

Three families of signals, each first mapped to a score in [0, 1] (1 = good):

- explicit: thumb (up 1, down 0) and the 1-5 rating ((r - 1) / 4), the same mapping
  as the bandit's online reward (``services.rewards.online``);
- implicit: edit similarity between the output and the user's ``edited_text``
  (rapidfuzz normalized Levenshtein or InDel ratio), sent (1) vs discarded (0),
  time-to-send (fast = 1, slow = 0, linear in between, clipped), escalated (0) and the
  follow-up count (0 follow-ups = 1, ``follow_up_max`` or more = 0);
- task-native: ``correct``, ``f1`` (clipped to [0, 1]) and ``resolved``;
- plus any externally computed score (the LLM judge's win probability) passed in.

The reward is the weighted mean of the scores present. A signal that was not reported
is excluded and the remaining weights renormalized (or, with the ``neutral`` policy,
counted at ``neutral_value``); no signal at all gives no reward (``None``), never a
made-up one. The computation is pure and deterministic.

A :class:`RewardConfig` mirrors ``rlaas.training.v1.RewardConfig`` (same weight names)
plus the clipping bounds and the missing-signal policy; its ``version`` is the sha256 of
its canonical JSON, so equal configs have equal versions on every machine and any change
gives a new one (recorded with every pair a dataset builds).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, model_validator
from rapidfuzz.distance import Indel, Levenshtein

from rlaas.telemetry.v1 import telemetry_pb2 as tel

SIGNALS: tuple[str, ...] = (
    "thumb",
    "rating",
    "edit_similarity",
    "sent",
    "time_to_send",
    "escalation",
    "follow_up",
    "task_correct",
    "task_f1",
    "task_resolved",
    "judge",
)
"""Every signal a config can weigh; ``<name>_weight`` is its weight field."""

WEIGHT_FIELDS: tuple[str, ...] = tuple(f"{s}_weight" for s in SIGNALS)
"""The weight fields, named as in the proto's ``RewardConfig``."""


class RewardConfig(BaseModel):
    """How one skill's signals become a reward. Immutable; ``version`` identifies it."""

    # No NaN or infinite weight from any source: either makes every reward NaN.
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    label: str = Field(
        default="heuristic-v1",
        description="Human-readable label (the proto's `version` string); part of the hash.",
    )
    skill: str = Field(default="", description="The skill this config is for ('' = any).")
    thumb_weight: float = Field(default=1.0, ge=0, description="Explicit thumb up/down.")
    rating_weight: float = Field(default=1.0, ge=0, description="Explicit 1-5 rating.")
    edit_similarity_weight: float = Field(default=1.0, ge=0, description="Output vs edit.")
    sent_weight: float = Field(default=1.0, ge=0, description="Sent (1) vs discarded (0).")
    time_to_send_weight: float = Field(default=0.5, ge=0, description="Faster is better.")
    escalation_weight: float = Field(default=1.0, ge=0, description="Escalated is bad.")
    follow_up_weight: float = Field(default=0.5, ge=0, description="Fewer is better.")
    task_correct_weight: float = Field(default=1.0, ge=0, description="Task `correct`.")
    task_f1_weight: float = Field(default=1.0, ge=0, description="Task `f1`.")
    task_resolved_weight: float = Field(default=1.0, ge=0, description="Task `resolved`.")
    judge_weight: float = Field(
        default=0.0, ge=0, description="LLM judge score; passed in as the `judge` signal."
    )
    edit_metric: Literal["levenshtein", "indel"] = Field(
        default="levenshtein",
        description="levenshtein: 1 - dist / max(len); indel: rapidfuzz ratio / 100.",
    )
    normalize_whitespace: bool = Field(
        default=True, description="Collapse whitespace runs before comparing texts."
    )
    time_to_send_fast_ms: int = Field(
        default=10_000, ge=0, description="At or below: time-to-send score 1."
    )
    time_to_send_slow_ms: int = Field(
        default=300_000, gt=0, description="At or above: time-to-send score 0."
    )
    follow_up_max: int = Field(default=5, ge=1, description="This many follow-ups or more: 0.")
    missing_signal_policy: Literal["renormalize", "neutral"] = Field(
        default="renormalize",
        description="renormalize: drop missing signals and rescale the other weights; "
        "neutral: count a missing weighted signal at `neutral_value`.",
    )
    neutral_value: float = Field(default=0.5, ge=0, le=1)
    required_signals: tuple[str, ...] = Field(
        default=(), description="Signals without which there is no reward (None)."
    )

    @model_validator(mode="after")
    def _check(self) -> RewardConfig:
        if self.time_to_send_fast_ms >= self.time_to_send_slow_ms:
            raise ValueError("time_to_send_fast_ms must be below time_to_send_slow_ms")
        if not any(self.weight(s) > 0 for s in SIGNALS):
            raise ValueError("at least one signal weight must be positive")
        unknown = sorted(set(self.required_signals) - set(SIGNALS))
        if unknown:
            raise ValueError(f"unknown required_signals {unknown}; known: {list(SIGNALS)}")
        return self

    def weight(self, signal: str) -> float:
        return float(getattr(self, f"{signal}_weight"))

    def canonical_json(self) -> str:
        """Sorted keys, no whitespace, floats as Python prints them: stable bytes."""
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))

    @property
    def version(self) -> str:
        """Hex sha256 of the canonical JSON."""
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()


def reward_config_from_proto(
    message: Any, *, skill: str = "", base: RewardConfig | None = None
) -> RewardConfig:
    """A :class:`RewardConfig` from an ``rlaas.training.v1.RewardConfig``: weights that
    are set override the defaults (0 disables a signal); ``version`` becomes the label.
    The defaults are ``base`` if given (e.g. the skill's own config, which is what
    "unset means the server default" means for a skill that has one), else the generic
    ones."""
    kwargs: dict[str, Any] = base.model_dump() if base is not None else {}
    kwargs["skill"] = skill
    if message.version:
        kwargs["label"] = message.version
    for name in WEIGHT_FIELDS:
        if message.HasField(name):
            kwargs[name] = getattr(message, name)
    return RewardConfig(**kwargs)


DEFAULT_REWARD_CONFIGS: dict[str, RewardConfig] = {
    # Draft assist: what the user did with the draft matters most.
    "support_email": RewardConfig(
        skill="support_email",
        edit_similarity_weight=2.0,
        sent_weight=1.5,
        time_to_send_weight=0.5,
    ),
}


def reward_config_for(skill: str) -> RewardConfig:
    """The default config of a skill (a generic one for skills without their own)."""
    return DEFAULT_REWARD_CONFIGS.get(skill) or RewardConfig(skill=skill)


# ---- the view the engines read ------------------------------------------------------


class InteractionLike(Protocol):
    """What the engines need of an interaction (``services.telemetry.core.InteractionView``
    has it)."""

    interaction: tel.Interaction
    outputs: list[tel.Output]
    feedback: list[tel.Feedback]
    task_results: list[tel.TaskResult]


@dataclass(frozen=True)
class Reward:
    value: float
    """The reward, [0, 1]."""
    signals_used: dict[str, float]
    """Score in [0, 1] of every signal that counted (imputed ones included)."""
    config_version: str
    output_id: str = ""
    weights_used: dict[str, float] = field(default_factory=dict)
    """The weights after renormalization (they sum to 1)."""


def normalize_text(text: str, *, whitespace: bool = True) -> str:
    return " ".join(text.split()) if whitespace else text


def edit_similarity(
    output: str,
    edited: str,
    *,
    metric: Literal["levenshtein", "indel"] = "levenshtein",
    normalize_whitespace: bool = True,
) -> float:
    """1.0 for an untouched answer, towards 0.0 the more the user rewrote it."""
    a = normalize_text(output, whitespace=normalize_whitespace)
    b = normalize_text(edited, whitespace=normalize_whitespace)
    if metric == "levenshtein":
        return float(Levenshtein.normalized_similarity(a, b))
    return float(Indel.normalized_similarity(a, b))


def _clip01(x: float) -> float:
    return 0.0 if x < 0.0 else 1.0 if x > 1.0 else float(x)


def time_to_send_score(ms: int, config: RewardConfig) -> float:
    fast, slow = config.time_to_send_fast_ms, config.time_to_send_slow_ms
    return _clip01((slow - ms) / (slow - fast))


def follow_up_score(count: int, config: RewardConfig) -> float:
    return 1.0 - min(max(count, 0), config.follow_up_max) / config.follow_up_max


def primary_output(view: InteractionLike) -> tel.Output | None:
    """The output feedback without an ``output_id`` is about: the first candidate."""
    if not view.outputs:
        return None
    return min(
        enumerate(view.outputs),
        key=lambda io: (io[1].candidate_index, _time(io[1]), io[0]),
    )[1]


def _time(message: Any) -> tuple[int, int]:
    ts = message.create_time
    return (ts.seconds, ts.nanos)


def _about(events: Iterable[Any], output_id: str, primary_id: str) -> list[Any]:
    """Events about one output, oldest first (an empty ``output_id`` means the primary)."""
    chosen = [(i, e) for i, e in enumerate(events) if (e.output_id or primary_id) == output_id]
    return [e for _, e in sorted(chosen, key=lambda ie: (_time(ie[1]), ie[0]))]


def collect_signals(
    view: InteractionLike, config: RewardConfig, *, output_id: str | None = None
) -> tuple[str, dict[str, float]]:
    """``(output_id, scores)`` of every signal reported for one output (default: the
    primary). When a signal is reported more than once, the latest report wins."""
    primary = primary_output(view)
    primary_id = primary.output_id if primary is not None else ""
    target_id = output_id if output_id is not None else primary_id
    output = next((o for o in view.outputs if o.output_id == target_id), None)
    scores: dict[str, float] = {}

    for fb in _about(view.feedback, target_id, primary_id):
        ex, im = fb.explicit, fb.implicit
        if ex.thumb == tel.ExplicitFeedback.THUMB_UP:
            scores["thumb"] = 1.0
        elif ex.thumb == tel.ExplicitFeedback.THUMB_DOWN:
            scores["thumb"] = 0.0
        if ex.HasField("rating"):
            scores["rating"] = _clip01((ex.rating - 1) / 4)
        if im.HasField("edited_text") and output is not None and output.text:
            scores["edit_similarity"] = edit_similarity(
                output.text,
                im.edited_text,
                metric=config.edit_metric,
                normalize_whitespace=config.normalize_whitespace,
            )
        if im.HasField("sent"):
            scores["sent"] = 1.0 if im.sent else 0.0
        if im.HasField("time_to_send_ms"):
            scores["time_to_send"] = time_to_send_score(im.time_to_send_ms, config)
        if im.HasField("escalated"):
            scores["escalation"] = 0.0 if im.escalated else 1.0
        if im.HasField("follow_up_count"):
            scores["follow_up"] = follow_up_score(im.follow_up_count, config)

    for tr in _about(view.task_results, target_id, primary_id):
        if tr.HasField("correct"):
            scores["task_correct"] = 1.0 if tr.correct else 0.0
        if tr.HasField("f1"):
            scores["task_f1"] = _clip01(tr.f1)
        if tr.HasField("resolved"):
            scores["task_resolved"] = 1.0 if tr.resolved else 0.0
    return target_id, scores


def combine(
    scores: Mapping[str, float], config: RewardConfig, *, output_id: str = ""
) -> Reward | None:
    """The weighted mean of the scores under the config's missing-signal policy."""
    present = {s: _clip01(v) for s, v in scores.items() if s in SIGNALS and config.weight(s) > 0}
    if not present or any(s not in scores for s in config.required_signals):
        return None
    if config.missing_signal_policy == "neutral":
        for s in SIGNALS:
            if config.weight(s) > 0 and s not in present:
                present[s] = config.neutral_value
    total = sum(config.weight(s) for s in present)
    weights = {s: config.weight(s) / total for s in sorted(present)}
    value = _clip01(sum(weights[s] * present[s] for s in weights))
    return Reward(
        value=value,
        signals_used=dict(sorted(present.items())),
        config_version=config.version,
        output_id=output_id,
        weights_used=weights,
    )


def compute_reward(
    interaction_view: InteractionLike,
    config: RewardConfig,
    *,
    output_id: str | None = None,
    extra_signals: Mapping[str, float] | None = None,
) -> Reward | None:
    """The reward of one output of an interaction (default: the primary output), or
    ``None`` when no weighted signal was reported. ``extra_signals`` adds scores
    computed elsewhere, e.g. ``{"judge": 0.8}``."""
    target_id, scores = collect_signals(interaction_view, config, output_id=output_id)
    if extra_signals:
        unknown = sorted(set(extra_signals) - set(SIGNALS))
        if unknown:
            raise ValueError(f"unknown signals {unknown}; known: {list(SIGNALS)}")
        scores.update(extra_signals)
    return combine(scores, config, output_id=target_id)


def output_rewards(view: InteractionLike, config: RewardConfig) -> dict[str, Reward]:
    """The reward of every output of an interaction that has one."""
    rewards: dict[str, Reward] = {}
    for output in view.outputs:
        reward = compute_reward(view, config, output_id=output.output_id)
        if reward is not None:
            rewards[output.output_id] = reward
    return rewards


def mean_reward(rewards: Sequence[Reward]) -> float | None:
    return sum(r.value for r in rewards) / len(rewards) if rewards else None
