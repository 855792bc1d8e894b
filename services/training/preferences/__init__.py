"""The preference builder: interactions with their outputs, feedback and rewards ->
DPO pairs, with provenance, quality filters, a leak-free split and content-addressed
versions.

Pair sources (the proto's ``PairSource``):

- ``PAIR_SOURCE_EDIT``: the text the user actually sent after editing (chosen) over the
  model's output (rejected);
- ``PAIR_SOURCE_CORRECTION``: a reviewer's ``preferred_text`` (chosen) over the output;
- ``PAIR_SOURCE_REWARD_RANKED``: two outputs for the same prompt (candidates of one
  interaction, or interactions with the same prompt), the higher-reward one chosen, kept
  when the reward margin is at least ``min_reward_margin``.

Then, in this order: exact dedup, near-duplicate removal (rapidfuzz ratio of
prompt + chosen, then embedding cosine of prompt and chosen: paraphrases that share no
surface form), decontamination against an eval set (a pair whose prompt is too close to
any eval prompt, lexically or by embedding cosine, is dropped), ``max_pairs`` (highest
margin kept), the minimum-pairs check, and the train / eval split. The split unit is a
connected component of threads and prompts: no thread and no prompt is in both splits;
a component's split depends only on its id and the seed, so a thread keeps its split as
the data grows.

A dataset version is content-addressed: the hex sha256 of its canonical rows (sorted by
pair id, canonical JSON) names the Parquet file
``datasets/<tenant>/<skill>/<sha>.parquet``: equal rows give the same name on every
machine and pyarrow version; any change gives another.

Layout, one job per module: ``pairs`` (options, the pair type, pairs from
interactions), ``filters`` (dedup and decontamination, lexical and by embedding),
``split`` (the train / eval split), ``parquet`` (canonical rows, content address,
Parquet file and its storage), ``exports`` (the training formats), ``interactions``
(the builder's input, read from Postgres) and ``build`` (the pipeline over them all).
The names other modules import are re-exported here.
"""

from services.training.preferences.build import (
    NOT_ENOUGH_PAIRS,
    build_dataset,
    build_dataset_from_db,
)
from services.training.preferences.exports import (
    EXPORT_PARQUET_SCHEMA,
    anthropic_prompt,
    export_anthropic_jsonl,
    export_anthropic_sft_jsonl,
    export_dpo_jsonl,
    export_openai_preference_jsonl,
    export_openai_sft_jsonl,
    export_parquet,
)
from services.training.preferences.filters import (
    TextEmbedder,
    decontaminate,
    dedup_pairs,
    embedding_decontaminate,
    embedding_dedup,
)
from services.training.preferences.interactions import load_interactions
from services.training.preferences.pairs import (
    ALL_SOURCES,
    CORRECTION,
    EDIT,
    REWARD_RANKED,
    BuildOptions,
    BuildReport,
    PairSource,
    PreferencePair,
    application_messages,
    build_pairs,
    prompt_messages,
    render_prompt,
)
from services.training.preferences.parquet import (
    PARQUET_SCHEMA,
    DatasetVersion,
    PreferenceDatasetBuild,
    canonical_rows,
    content_sha256,
    dataset_key,
    pair_row,
    read_parquet,
    row_pair,
    to_parquet,
    write_dataset,
)
from services.training.preferences.split import split_pairs

__all__ = [
    "ALL_SOURCES",
    "CORRECTION",
    "EDIT",
    "EXPORT_PARQUET_SCHEMA",
    "NOT_ENOUGH_PAIRS",
    "PARQUET_SCHEMA",
    "REWARD_RANKED",
    "BuildOptions",
    "BuildReport",
    "DatasetVersion",
    "PairSource",
    "PreferenceDatasetBuild",
    "PreferencePair",
    "TextEmbedder",
    "anthropic_prompt",
    "application_messages",
    "build_dataset",
    "build_dataset_from_db",
    "build_pairs",
    "canonical_rows",
    "content_sha256",
    "dataset_key",
    "decontaminate",
    "dedup_pairs",
    "embedding_decontaminate",
    "embedding_dedup",
    "export_anthropic_jsonl",
    "export_anthropic_sft_jsonl",
    "export_dpo_jsonl",
    "export_openai_preference_jsonl",
    "export_openai_sft_jsonl",
    "export_parquet",
    "load_interactions",
    "pair_row",
    "prompt_messages",
    "read_parquet",
    "render_prompt",
    "row_pair",
    "split_pairs",
    "to_parquet",
    "write_dataset",
]
