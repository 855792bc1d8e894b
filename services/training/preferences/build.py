"""The pipeline: pairs, then the filters in their order, ``max_pairs``, the minimum-pairs
check and the split (``build_dataset``); and the same from Postgres to the object store
(``build_dataset_from_db``)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from datetime import datetime

import numpy as np
import numpy.typing as npt
from sqlalchemy.ext.asyncio import AsyncEngine

from services.errors import FailedPrecondition
from services.objects.store import ObjectStore
from services.rewards.engines import InteractionLike, RewardConfig
from services.training.preferences.filters import (
    TextEmbedder,
    decontaminate,
    dedup_pairs,
    embedding_decontaminate,
    embedding_dedup,
    priority,
)
from services.training.preferences.interactions import load_interactions
from services.training.preferences.pairs import BuildOptions, build_pairs
from services.training.preferences.parquet import (
    DatasetVersion,
    PreferenceDatasetBuild,
    write_dataset,
)
from services.training.preferences.split import split_pairs

NOT_ENOUGH_PAIRS = "NOT_ENOUGH_PAIRS"


class _Memo:
    """An embedder that embeds each distinct text once per build: the dedup and the
    decontamination both need the prompts' vectors."""

    def __init__(self, embedder: TextEmbedder) -> None:
        self._embedder = embedder
        self._vectors: dict[str, npt.NDArray[np.float32]] = {}

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        missing = list(dict.fromkeys(t for t in texts if t not in self._vectors))
        if missing:
            new = np.asarray(self._embedder.embed(missing), dtype=np.float32)
            self._vectors.update(zip(missing, new, strict=True))
        if not texts:
            return np.empty((0, 0), dtype=np.float32)
        return np.stack([self._vectors[t] for t in texts])


def _default_embedder() -> TextEmbedder:
    # Imported on use: loading the model (about a second) is only worth it for a build.
    from services.retrieval.embedding import default_embedder

    return default_embedder()


def build_dataset(
    views: Iterable[InteractionLike],
    config: RewardConfig,
    options: BuildOptions | None = None,
    *,
    eval_prompts: Iterable[str] = (),
    skill: str = "",
    embedder: TextEmbedder | None = None,
) -> PreferenceDatasetBuild:
    """Pairs -> dedup (exact, lexical, embedding) -> decontaminate (lexical, embedding)
    -> max_pairs -> min_pairs -> split. ``embedder`` defaults to the process-wide
    all-MiniLM-L6-v2 (loaded only when an embedding check has pairs to look at).

    Raises ``FailedPrecondition(reason="NOT_ENOUGH_PAIRS")`` below ``min_pairs``."""
    options = options or BuildOptions()
    views = list(views)
    eval_prompts = list(eval_prompts)
    pairs, report = build_pairs(views, config, options)
    pairs, report.dropped_exact_duplicates, report.dropped_near_duplicates = dedup_pairs(
        pairs, near_duplicate_threshold=options.near_duplicate_threshold
    )
    memo: _Memo | None = None
    if options.embedding_duplicate_threshold < 1 and len(pairs) > 1:
        memo = _Memo(embedder or _default_embedder())
        pairs, report.dropped_embedding_duplicates = embedding_dedup(
            pairs, memo, threshold=options.embedding_duplicate_threshold
        )
    pairs, report.dropped_contaminated = decontaminate(
        pairs, eval_prompts, threshold=options.decontamination_threshold
    )
    if options.embedding_decontamination_threshold < 1 and pairs and eval_prompts:
        memo = memo or _Memo(embedder or _default_embedder())
        pairs, report.dropped_embedding_contaminated = embedding_decontaminate(
            pairs, eval_prompts, memo, threshold=options.embedding_decontamination_threshold
        )
    if options.max_pairs and len(pairs) > options.max_pairs:
        report.dropped_over_max = len(pairs) - options.max_pairs
        pairs = sorted(pairs, key=priority)[: options.max_pairs]
    if len(pairs) < options.min_pairs:
        raise FailedPrecondition(
            f"skill {skill!r} has {len(pairs)} preference pairs after filtering; "
            f"at least {options.min_pairs} are needed to build a dataset",
            reason=NOT_ENOUGH_PAIRS,
            metadata={
                "skill": skill,
                "pairs": str(len(pairs)),
                "min_pairs": str(options.min_pairs),
            },
        )
    pairs = split_pairs(pairs, eval_fraction=options.eval_fraction, seed=options.seed)
    pairs = sorted(pairs, key=lambda p: p.pair_id)
    contributing = {i for p in pairs for i in p.interaction_ids}
    report.interaction_count = len(contributing)
    report.skipped_interaction_count = len(views) - len(contributing)
    counts: dict[str, int] = {}
    for p in pairs:
        counts[p.source] = counts.get(p.source, 0) + 1
    report.pair_counts_by_source = dict(sorted(counts.items()))
    report.train_pair_count = sum(p.split == "train" for p in pairs)
    report.eval_pair_count = sum(p.split == "eval" for p in pairs)
    report.mean_reward_margin = sum(p.margin for p in pairs) / len(pairs) if pairs else 0.0
    return PreferenceDatasetBuild(tuple(pairs), report, config.version)


async def build_dataset_from_db(
    engine: AsyncEngine,
    store: ObjectStore,
    tenant_id: str,
    skill: str,
    config: RewardConfig,
    options: BuildOptions | None = None,
    *,
    start_time: datetime | None = None,
    end_time: datetime | None = None,
    eval_prompts: Iterable[str] = (),
) -> DatasetVersion:
    """Read the window from Postgres, build, and store the version in the object store."""
    options = options or BuildOptions()
    views = await load_interactions(
        engine,
        tenant_id,
        skill,
        start_time=start_time,
        end_time=end_time,
    )
    # CPU-bound (rewards, fuzzy matching, embeddings): off the event loop.
    build = await asyncio.to_thread(
        build_dataset, views, config, options, eval_prompts=eval_prompts, skill=skill
    )
    return await write_dataset(store, tenant_id, skill, build)
