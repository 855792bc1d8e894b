"""Preference datasets as resources, without a database: request checks (every bad field
named), server defaults, the effective build config a dataset records, the row -> proto
conversion and the Parquet export's columns."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pyarrow.parquet as pq
import pytest

from rlaas.training.v1 import training_pb2 as pb
from services.db.models import PreferenceDatasetRow
from services.errors import InvalidArgument
from services.rewards.engines import reward_config_for
from services.training.datasets import check_create, to_proto
from services.training.preferences import EDIT, REWARD_RANKED, PreferencePair, export_parquet

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def fields(err: pytest.ExceptionInfo[InvalidArgument]) -> set[str]:
    return {v.field for v in err.value.violations}


def test_every_offending_field_is_named() -> None:
    ds = pb.PreferenceDataset(
        build_config=pb.DatasetBuildConfig(
            eval_fraction=0.7,
            min_reward_margin=1.5,
            max_pairs=-1,
            pair_sources=[pb.PAIR_SOURCE_UNSPECIFIED],
            policy_ids=["not a policy"],
            reward_config=pb.RewardConfig(thumb_weight=-1, sent_weight=float("nan")),
        ),
    )
    ds.start_time.FromDatetime(NOW)
    ds.end_time.FromDatetime(NOW - timedelta(hours=1))
    with pytest.raises(InvalidArgument) as err:
        check_create(ds, "", NOW)
    c = "preference_dataset.build_config"
    assert fields(err) == {
        "request_id",
        "preference_dataset.skill_id",
        "preference_dataset.start_time",
        f"{c}.eval_fraction",
        f"{c}.min_reward_margin",
        f"{c}.max_pairs",
        f"{c}.pair_sources[0]",
        f"{c}.policy_ids[0]",
        f"{c}.reward_config.thumb_weight",
        f"{c}.reward_config.sent_weight",
    }


def test_all_weights_zero_and_the_judge_are_refused() -> None:
    zero = {f"{s}_weight": 0.0 for s in ("thumb", "rating", "edit_similarity", "sent",
                                         "time_to_send", "escalation", "follow_up",
                                         "task_correct", "task_f1", "task_resolved")}  # fmt: skip
    ds = pb.PreferenceDataset(
        skill_id="drafts",
        build_config=pb.DatasetBuildConfig(reward_config=pb.RewardConfig(**zero)),
    )
    with pytest.raises(InvalidArgument) as err:
        check_create(ds, "r1", NOW)
    assert fields(err) == {"preference_dataset.build_config.reward_config"}
    ds.build_config.reward_config.Clear()
    ds.build_config.reward_config.judge_weight = 1.0
    with pytest.raises(InvalidArgument) as err:
        check_create(ds, "r1", NOW)
    assert fields(err) == {"preference_dataset.build_config.reward_config.judge_weight"}


def test_defaults_are_the_servers_and_the_skills() -> None:
    spec = check_create(pb.PreferenceDataset(skill_id="support_email"), "r1", NOW)
    assert (spec.start_time, spec.end_time) == (None, NOW)  # the window ends at creation
    assert spec.reward == reward_config_for("support_email")
    assert spec.options.eval_fraction == 0.1 and spec.options.max_pairs == 0
    config = spec.build_config()
    assert config.eval_fraction == 0.1 and not config.pair_sources
    # The record carries every weight used, the skill's own defaults included.
    assert config.reward_config.edit_similarity_weight == 2.0
    assert config.reward_config.HasField("judge_weight")


def test_set_weights_override_the_skills_config_and_unset_ones_keep_it() -> None:
    ds = pb.PreferenceDataset(
        skill_id="support_email",
        build_config=pb.DatasetBuildConfig(
            reward_config=pb.RewardConfig(version="edits-only", thumb_weight=0),
            pair_sources=[pb.PAIR_SOURCE_EDIT, pb.PAIR_SOURCE_EDIT],
            eval_fraction=0.25,
        ),
    )
    spec = check_create(ds, "r1", NOW)
    assert spec.reward.label == "edits-only" and spec.reward.thumb_weight == 0
    assert spec.reward.edit_similarity_weight == 2.0  # support_email's, not the generic 1.0
    assert spec.reward.version != reward_config_for("support_email").version
    assert spec.options.pair_sources == (EDIT,) and spec.options.eval_fraction == 0.25
    assert list(spec.build_config().pair_sources) == [pb.PAIR_SOURCE_EDIT]


def test_a_failed_row_reads_as_a_failed_dataset_with_its_error() -> None:
    row = PreferenceDatasetRow(
        tenant_id="t1", dataset_id="ds-1", skill_id="drafts", version=3, display_name="x",
        state="failed", start_time=None, end_time=NOW, build_config={"eval_fraction": 0.1},
        pair_count=0, train_pair_count=0, eval_pair_count=0, reward_config_version="v",
        report={}, learning_loop_id=None, create_time=NOW, complete_time=NOW,
        error={"code": 9, "message": "too few", "reason": "NOT_ENOUGH_PAIRS",
               "metadata": {"pairs": "2"}},
    )  # fmt: skip
    ds = to_proto(row)
    assert ds.state == pb.PreferenceDataset.STATE_FAILED and ds.version == 3
    assert (ds.error.code, ds.error.message) == (9, "too few")
    assert ds.build_config.eval_fraction == 0.1 and not ds.HasField("start_time")
    assert ds.end_time.ToDatetime(tzinfo=UTC) == NOW and not ds.content_sha256


def test_parquet_export_has_the_contracts_columns_and_is_deterministic() -> None:
    pairs = [
        PreferencePair("p1", "good", "bad", EDIT, 0.5, "t1", ("i1",), split="train"),
        PreferencePair("p2", "yes", "no", REWARD_RANKED, 0.3, "t2", ("i2", "i3"), split="eval"),
    ]
    data = export_parquet(pairs)
    assert data == export_parquet(list(reversed(pairs)))
    table = pq.read_table(io.BytesIO(data))
    assert table.column_names == [
        "prompt", "chosen", "rejected", "margin", "split", "source", "interaction_id"
    ]  # fmt: skip
    assert pq.read_table(io.BytesIO(export_parquet(pairs, "eval"))).to_pylist() == [
        {"prompt": "p2", "chosen": "yes", "rejected": "no", "margin": 0.3, "split": "eval",
         "source": REWARD_RANKED, "interaction_id": "i2"}
    ]  # fmt: skip
