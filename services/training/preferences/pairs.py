"""Pair building: the options of a build, the pair type, and the raw pairs of every
source (edits, corrections, reward-ranked outputs) before any filter."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from rlaas.telemetry.v1 import telemetry_pb2 as tel
from services.errors import InvalidArgument
from services.rewards.engines import (
    InteractionLike,
    Reward,
    RewardConfig,
    compute_reward,
    edit_similarity,
    normalize_text,
    primary_output,
)

PairSource = Literal["PAIR_SOURCE_EDIT", "PAIR_SOURCE_CORRECTION", "PAIR_SOURCE_REWARD_RANKED"]
EDIT: PairSource = "PAIR_SOURCE_EDIT"
CORRECTION: PairSource = "PAIR_SOURCE_CORRECTION"
REWARD_RANKED: PairSource = "PAIR_SOURCE_REWARD_RANKED"
ALL_SOURCES: tuple[PairSource, ...] = (EDIT, CORRECTION, REWARD_RANKED)

_ROLE_NAMES = {
    tel.ChatMessage.ROLE_SYSTEM: "system",
    tel.ChatMessage.ROLE_USER: "user",
    tel.ChatMessage.ROLE_ASSISTANT: "assistant",
}


@dataclass(frozen=True)
class BuildOptions:
    """How pairs are built. Mirrors ``rlaas.training.v1.DatasetBuildConfig`` plus the
    quality filters; field names in errors are the proto's paths."""

    pair_sources: tuple[PairSource, ...] = field(
        default=ALL_SOURCES, metadata={"help": "Which pair sources to use."}
    )
    min_reward_margin: float = field(
        default=0.1,
        metadata={"help": "Reward-ranked pairs: min reward(chosen) - reward(rejected)."},
    )
    min_edit_margin: float = field(
        default=0.0,
        metadata={"help": "Edit / correction pairs: min 1 - similarity (0: any real edit)."},
    )
    max_pairs: int = field(default=0, metadata={"help": "0: no limit; highest margin kept."})
    eval_fraction: float = field(default=0.1, metadata={"help": "Held-out share, [0, 0.5]."})
    seed: int = field(default=0, metadata={"help": "Seed of the split."})
    policy_ids: tuple[str, ...] = field(
        default=(), metadata={"help": "Only outputs of these policies (empty: all)."}
    )
    near_duplicate_threshold: float = field(
        default=95.0,
        metadata={
            "help": "rapidfuzz ratio (0-100) of prompt+chosen at or above which a pair "
            "is a near duplicate of a kept one; 100 disables."
        },
    )
    decontamination_threshold: float = field(
        default=90.0,
        metadata={
            "help": "rapidfuzz ratio (0-100) of a pair's prompt to any eval prompt at "
            "or above which the pair is dropped."
        },
    )
    embedding_duplicate_threshold: float = field(
        default=0.90,
        metadata={
            "help": "Cosine (all-MiniLM-L6-v2) of a pair's prompt+chosen embedding to a kept "
            "pair's, at or above which it is a near duplicate when both carry the same "
            "numbers (order ids, amounts); 1 disables."
        },
    )
    embedding_decontamination_threshold: float = field(
        default=0.90,
        metadata={
            "help": "Cosine of a pair's prompt embedding to any eval prompt's at or above "
            "which the pair is dropped; 1 disables."
        },
    )
    min_pairs: int = field(default=16, metadata={"help": "Fewer pairs fail the build."})

    def __post_init__(self) -> None:
        path = "preference_dataset.build_config"
        checks = [
            (0 <= self.eval_fraction <= 0.5, "eval_fraction", "must be in [0, 0.5]"),
            (0 <= self.min_reward_margin <= 1, "min_reward_margin", "must be in [0, 1]"),
            (0 <= self.min_edit_margin <= 1, "min_edit_margin", "must be in [0, 1]"),
            (self.max_pairs >= 0, "max_pairs", "must be >= 0"),
            (self.min_pairs >= 0, "min_pairs", "must be >= 0"),
            (
                0 < self.near_duplicate_threshold <= 100,
                "near_duplicate_threshold",
                "must be in (0, 100]",
            ),
            (
                0 < self.decontamination_threshold <= 100,
                "decontamination_threshold",
                "must be in (0, 100]",
            ),
            (
                0 < self.embedding_duplicate_threshold <= 1,
                "embedding_duplicate_threshold",
                "must be in (0, 1]",
            ),
            (
                0 < self.embedding_decontamination_threshold <= 1,
                "embedding_decontamination_threshold",
                "must be in (0, 1]",
            ),
            (
                bool(self.pair_sources) and set(self.pair_sources) <= set(ALL_SOURCES),
                "pair_sources",
                f"must be a non-empty subset of {list(ALL_SOURCES)}",
            ),
        ]
        for ok, name, description in checks:
            if not ok:
                raise InvalidArgument.field(f"{path}.{name}", description)


@dataclass(frozen=True)
class PreferencePair:
    prompt: str
    """The prompt as one string (the user message, or a transcript if multi-turn)."""
    chosen: str
    rejected: str
    source: PairSource
    margin: float
    """reward(chosen) - reward(rejected); for edits and corrections, 1 - similarity."""
    thread_id: str
    interaction_ids: tuple[str, ...]
    chosen_output_id: str = ""
    rejected_output_id: str = ""
    chosen_reward: float | None = None
    rejected_reward: float | None = None
    signals: Mapping[str, float] = field(default_factory=dict)
    reward_config_version: str = ""
    prompt_messages: tuple[tuple[str, str], ...] = ()
    """(role, content) of the conversation up to the answer."""
    thread_ids: tuple[str, ...] = ()
    split: str = ""

    @property
    def pair_id(self) -> str:
        raw = json.dumps(
            [[list(m) for m in self.prompt_messages], self.prompt, self.chosen, self.rejected],
            ensure_ascii=False,
        )
        return hashlib.sha256(raw.encode()).hexdigest()


@dataclass
class BuildReport:
    interaction_count: int = 0
    """Interactions that contributed at least one kept pair."""
    skipped_interaction_count: int = 0
    """Opted out, shadow, other policy, or no pair."""
    pair_counts_by_source: dict[str, int] = field(default_factory=dict)
    dropped_exact_duplicates: int = 0
    dropped_near_duplicates: int = 0
    """Lexical (rapidfuzz) near duplicates."""
    dropped_embedding_duplicates: int = 0
    """Near duplicates by embedding cosine that the lexical check let through."""
    dropped_contaminated: int = 0
    """Lexically close to an eval prompt."""
    dropped_embedding_contaminated: int = 0
    """Close to an eval prompt by embedding cosine, not lexically."""
    dropped_over_max: int = 0
    train_pair_count: int = 0
    eval_pair_count: int = 0
    mean_reward_margin: float = 0.0


# ---- prompts ---------------------------------------------------------------------------


def prompt_messages(interaction: tel.Interaction) -> tuple[tuple[str, str], ...]:
    """What the model was given: the served conversation when the interaction records
    it (the policy's template rendered: train on what is served), else the
    application's own (``application_messages``)."""
    served = tuple(
        (_ROLE_NAMES[m.role], m.content)
        for m in interaction.served_messages
        if m.role in _ROLE_NAMES and m.content
    )
    return served or application_messages(interaction)


def application_messages(interaction: tel.Interaction) -> tuple[tuple[str, str], ...]:
    """The conversation the application sent: the input messages (tool messages
    dropped), then ``input.text`` as the last user turn unless it repeats it."""
    messages = [
        (_ROLE_NAMES[m.role], m.content)
        for m in interaction.input.messages
        if m.role in _ROLE_NAMES and m.content
    ]
    text = interaction.input.text
    if text and not (messages and messages[-1] == ("user", text)):
        messages.append(("user", text))
    return tuple(messages)


def render_prompt(messages: Sequence[tuple[str, str]]) -> str:
    """A single user turn as itself; anything longer as a plain transcript."""
    if len(messages) == 1 and messages[0][0] == "user":
        return messages[0][1]
    return "\n\n".join(f"{role.capitalize()}: {content}" for role, content in messages)


def prompt_key(prompt: str) -> str:
    return normalize_text(prompt).casefold()


# ---- building pairs --------------------------------------------------------------------


def _usable(view: InteractionLike, options: BuildOptions) -> tuple[list[tel.Output], str | None]:
    it = view.interaction
    if it.training_opt_out:
        return [], "opt_out"
    if it.source == tel.INTERACTION_SOURCE_SHADOW:
        return [], "shadow"
    outputs = [o for o in view.outputs if o.text]
    if options.policy_ids:
        allowed = set(options.policy_ids)
        outputs = [o for o in outputs if (o.policy_id or it.policy_id) in allowed]
    return outputs, None if outputs else "no_output"


def _edit_pairs(
    view: InteractionLike,
    outputs: list[tel.Output],
    config: RewardConfig,
    options: BuildOptions,
    rewards: dict[str, Reward | None],
    base: dict[str, Any],
) -> list[PreferencePair]:
    primary = primary_output(view)
    primary_id = primary.output_id if primary is not None else ""
    by_id = {o.output_id: o for o in outputs}
    latest: dict[tuple[str, PairSource], str] = {}
    for fb in sorted(view.feedback, key=lambda f: (f.create_time.seconds, f.create_time.nanos)):
        target = fb.output_id or primary_id
        if target not in by_id:
            continue
        if EDIT in options.pair_sources and fb.implicit.HasField("edited_text"):
            latest[(target, EDIT)] = fb.implicit.edited_text
        if CORRECTION in options.pair_sources and fb.explicit.preferred_text:
            latest[(target, CORRECTION)] = fb.explicit.preferred_text
    pairs = []
    for (output_id, source), better in sorted(latest.items()):
        output = by_id[output_id]
        if not better.strip():
            continue
        similarity = edit_similarity(
            output.text,
            better,
            metric=config.edit_metric,
            normalize_whitespace=config.normalize_whitespace,
        )
        margin = 1.0 - similarity
        if margin <= 0 or margin < options.min_edit_margin:
            continue
        reward = rewards.get(output_id)
        signals = {"edit_similarity": similarity}
        if reward is not None:
            signals.update({f"rejected.{k}": v for k, v in reward.signals_used.items()})
        pairs.append(
            PreferencePair(
                chosen=better,
                rejected=output.text,
                source=source,
                margin=margin,
                rejected_output_id=output_id,
                rejected_reward=reward.value if reward else None,
                signals=signals,
                **base,
            )
        )
    return pairs


def _ranked_pairs(
    group: list[tuple[InteractionLike, tel.Output, Reward]],
    options: BuildOptions,
    config: RewardConfig,
) -> list[PreferencePair]:
    """Best with worst, second best with second worst, ...: every output in at most one
    pair, the widest margins first."""
    ranked = sorted(group, key=lambda x: (-x[2].value, x[1].output_id))
    pairs = []
    for i in range(len(ranked) // 2):
        (hi_view, hi, hi_r), (lo_view, lo, lo_r) = ranked[i], ranked[-1 - i]
        margin = hi_r.value - lo_r.value
        if margin <= 0 or margin < options.min_reward_margin:
            continue
        if normalize_text(hi.text) == normalize_text(lo.text):
            continue
        messages = prompt_messages(hi_view.interaction)
        threads = sorted({_thread(hi_view.interaction), _thread(lo_view.interaction)})
        signals = {f"chosen.{k}": v for k, v in hi_r.signals_used.items()}
        signals.update({f"rejected.{k}": v for k, v in lo_r.signals_used.items()})
        pairs.append(
            PreferencePair(
                prompt=render_prompt(messages),
                chosen=hi.text,
                rejected=lo.text,
                source=REWARD_RANKED,
                margin=margin,
                thread_id=_thread(hi_view.interaction),
                interaction_ids=tuple(
                    dict.fromkeys(
                        [hi_view.interaction.interaction_id, lo_view.interaction.interaction_id]
                    )
                ),
                chosen_output_id=hi.output_id,
                rejected_output_id=lo.output_id,
                chosen_reward=hi_r.value,
                rejected_reward=lo_r.value,
                signals=signals,
                reward_config_version=config.version,
                prompt_messages=messages,
                thread_ids=tuple(threads),
            )
        )
    return pairs


def _thread(interaction: tel.Interaction) -> str:
    return interaction.thread_id or f"interaction:{interaction.interaction_id}"


def build_pairs(
    views: Iterable[InteractionLike], config: RewardConfig, options: BuildOptions
) -> tuple[list[PreferencePair], BuildReport]:
    """Raw pairs from every source, before any filter."""
    report = BuildReport()
    pairs: list[PreferencePair] = []
    groups: dict[str, list[tuple[InteractionLike, tel.Output, Reward]]] = {}
    for view in views:
        outputs, skip = _usable(view, options)
        if skip is not None:
            report.skipped_interaction_count += 1
            continue
        it = view.interaction
        # Keyed, deduplicated, decontaminated and split by the served prompt too: what
        # the model saw is the example (decontamination still finds an eval prompt
        # quoted inside a template).
        messages = prompt_messages(it)
        if not messages:
            report.skipped_interaction_count += 1
            continue
        rewards = {
            o.output_id: compute_reward(view, config, output_id=o.output_id) for o in outputs
        }
        base = {
            "prompt": render_prompt(messages),
            "thread_id": _thread(it),
            "thread_ids": (_thread(it),),
            "interaction_ids": (it.interaction_id,),
            "reward_config_version": config.version,
            "prompt_messages": messages,
        }
        pairs.extend(_edit_pairs(view, outputs, config, options, rewards, base))
        if REWARD_RANKED in options.pair_sources:
            key = prompt_key(render_prompt(messages))
            for output in outputs:
                reward = rewards[output.output_id]
                if reward is not None:
                    groups.setdefault(key, []).append((view, output, reward))
    for key in sorted(groups):
        pairs.extend(_ranked_pairs(groups[key], options, config))
    return pairs, report
