"""Preference datasets as TrainingService exposes them: create (build), get, list and
export. No gRPC here beyond the generated message types.

A build is small enough to finish within the call (seconds for a window of a few
thousand interactions), so CreatePreferenceDataset returns the dataset READY, or
FAILED with its ``error`` when the window yields too few pairs; the contract allows
either ("BUILDING, or READY if the build finished within the call"). Nothing is ever
stored BUILDING, so no row can be left behind in a state that nobody will finish.

The pairs live in the object store, content-addressed by the builder
(``services.training.preferences``); a ``preference_datasets`` row is the catalogue
entry. Each row is written in one transaction with its ``request_id`` claim, so a
retry finds the dataset its first attempt built, and a crash before commit leaves
neither behind. Rows are always read with the caller's tenant in the key: another
tenant's dataset is NOT_FOUND.

Learning loops record the datasets they build here too (:func:`record_loop_dataset`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import math
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from google.protobuf import any_pb2, json_format
from google.rpc import error_details_pb2, status_pb2
from pydantic import ValidationError
from sqlalchemy import func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from rlaas.training.v1 import training_pb2 as pb
from services.db import idempotency
from services.db.engine import create_session_factory
from services.db.models import IdempotencyRecord, PolicyRow, PreferenceDatasetRow, Skill
from services.errors import (
    ERROR_DOMAIN,
    DomainError,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
)
from services.objects.store import ObjectStore
from services.paging import next_page_token, page_request
from services.registry.validation import parse_policy_id, skill_id_problem
from services.rewards.engines import (
    WEIGHT_FIELDS,
    RewardConfig,
    reward_config_for,
    reward_config_from_proto,
)
from services.tenancy.principal import Principal, Scope
from services.training.preferences import (
    ALL_SOURCES,
    BuildOptions,
    DatasetVersion,
    PairSource,
    PreferencePair,
    build_dataset,
    content_sha256,
    export_anthropic_sft_jsonl,
    export_dpo_jsonl,
    export_openai_sft_jsonl,
    export_parquet,
    load_interactions,
    read_parquet,
    row_pair,
    write_dataset,
)

CREATE = "CreatePreferenceDataset"
EXPORT = "ExportDataset"
LOOP_BUILD = "LearningLoop.build_preference_dataset"
"""Idempotency methods: the RPCs', and the loop activity's (keyed by loop iteration)."""

MAX_DISPLAY_NAME = 200
DEFAULT_EVAL_FRACTION = 0.1
"""The contract's default (``DatasetBuildConfig.eval_fraction``)."""

_FIELD = "preference_dataset"
_CONFIG = f"{_FIELD}.build_config"

READY, FAILED = "ready", "failed"
_STATES = {
    READY: pb.PreferenceDataset.STATE_READY,
    FAILED: pb.PreferenceDataset.STATE_FAILED,
    "building": pb.PreferenceDataset.STATE_BUILDING,
}
_STATE_NAMES = {v: k for k, v in _STATES.items()}

Exporter = Callable[[Sequence[PreferencePair], str | None], bytes]
_FORMATS: dict[int, tuple[Exporter, str]] = {
    pb.DATASET_FORMAT_DPO_JSONL: (export_dpo_jsonl, "dpo.jsonl"),
    pb.DATASET_FORMAT_OPENAI_CHAT_JSONL: (export_openai_sft_jsonl, "openai-chat.jsonl"),
    pb.DATASET_FORMAT_ANTHROPIC_JSONL: (export_anthropic_sft_jsonl, "anthropic.jsonl"),
    pb.DATASET_FORMAT_PARQUET: (export_parquet, "parquet"),
}
_SPLITS: dict[int, str | None] = {
    pb.DATASET_SPLIT_UNSPECIFIED: None,
    pb.DATASET_SPLIT_TRAIN: "train",
    pb.DATASET_SPLIT_EVAL: "eval",
}


def _now() -> datetime:
    return datetime.now(UTC)


# ---- the checked request ----------------------------------------------------------


@dataclass(frozen=True)
class BuildSpec:
    """What one build reads and how; everything a row records about its inputs."""

    skill_id: str
    display_name: str
    start_time: datetime | None
    end_time: datetime
    reward: RewardConfig
    options: BuildOptions
    policy_ids: tuple[str, ...] = ()
    learning_loop_id: str = ""

    def build_config(self) -> pb.DatasetBuildConfig:
        """The effective config (server defaults filled in), as Get shows it."""
        o = self.options
        return pb.DatasetBuildConfig(
            reward_config=reward_config_to_proto(self.reward),
            pair_sources=[]
            if set(o.pair_sources) == set(ALL_SOURCES)
            else [pb.PairSource.Value(s) for s in o.pair_sources],
            min_reward_margin=o.min_reward_margin,
            max_pairs=o.max_pairs,
            eval_fraction=o.eval_fraction,
            seed=o.seed,
            policy_ids=list(self.policy_ids),
        )


def reward_config_to_proto(config: RewardConfig) -> pb.RewardConfig:
    """Every weight set explicitly: the record says what was used, not what was asked."""
    out = pb.RewardConfig(version=config.label)
    for name in WEIGHT_FIELDS:
        setattr(out, name, getattr(config, name))
    return out


def _reward(
    skill_id: str, proto: pb.RewardConfig | None, config_path: str = _CONFIG
) -> tuple[RewardConfig | None, list[FieldViolation]]:
    """The skill's reward config with the request's weights over it ("unset means the
    server default"), or the violations. The judge is refused rather than silently
    dropped: the builder has no judge to call, and renormalizing its weight away would
    build a dataset from a different reward than the one asked for."""
    base = reward_config_for(skill_id)
    if proto is None:
        return base, []
    path = f"{config_path}.reward_config"
    # An infinite weight makes every reward NaN (inf * 0, inf / inf); NaN fails too.
    weights = {name: getattr(proto, name) for name in WEIGHT_FIELDS if proto.HasField(name)}
    violations = [
        FieldViolation(f"{path}.{name}", "must be a finite number >= 0")
        for name, weight in weights.items()
        if not (math.isfinite(weight) and weight >= 0)
    ]
    if proto.judge_weight > 0 or proto.HasField("judge"):
        violations.append(
            FieldViolation(
                f"{path}.judge_weight",
                "judge rewards are not supported in dataset builds yet (leave judge unset)",
            )
        )
    if violations:
        return None, violations
    try:
        return reward_config_from_proto(proto, skill=skill_id, base=base), []
    except ValidationError as err:
        return None, [FieldViolation(path, e["msg"]) for e in err.errors()]


def _sources(
    config: pb.DatasetBuildConfig, path: str
) -> tuple[tuple[PairSource, ...], list[FieldViolation]]:
    names = {pb.PairSource.Value(s): s for s in ALL_SOURCES}
    violations = [
        FieldViolation(f"{path}.pair_sources[{i}]", f"{value} is not a pair source")
        for i, value in enumerate(config.pair_sources)
        if value not in names
    ]
    chosen = tuple(dict.fromkeys(names[v] for v in config.pair_sources if v in names))
    return chosen or ALL_SOURCES, violations


def _options(
    config: pb.DatasetBuildConfig, path: str = _CONFIG
) -> tuple[BuildOptions | None, list[FieldViolation]]:
    sources, violations = _sources(config, path)
    checks = (
        ("eval_fraction", 0 <= config.eval_fraction <= 0.5, "must be in [0, 0.5]"),
        ("min_reward_margin", 0 <= config.min_reward_margin <= 1, "must be in [0, 1]"),
        ("max_pairs", config.max_pairs >= 0, "must not be negative"),
    )
    violations += [FieldViolation(f"{path}.{n}", d) for n, ok, d in checks if not ok]
    for i, policy_id in enumerate(config.policy_ids):
        try:
            parse_policy_id(policy_id, f"{path}.policy_ids[{i}]")
        except InvalidArgument as err:
            violations += err.violations
    if violations:
        return None, violations
    defaults = BuildOptions()
    # proto3 zero is "unset" for these scalars: the server defaults apply.
    return BuildOptions(
        pair_sources=sources,
        min_reward_margin=config.min_reward_margin or defaults.min_reward_margin,
        max_pairs=config.max_pairs,
        eval_fraction=config.eval_fraction or DEFAULT_EVAL_FRACTION,
        seed=config.seed,
        policy_ids=tuple(config.policy_ids),
    ), []


def build_config_options(
    skill_id: str, config: pb.DatasetBuildConfig, path: str
) -> tuple[RewardConfig, BuildOptions]:
    """A build config as the builder's reward config and options, the same rules as
    CreatePreferenceDataset's (a learning loop's ``dataset`` config goes through here
    too); INVALID_ARGUMENT names every offending field under ``path``."""
    reward, bad_reward = _reward(
        skill_id, config.reward_config if config.HasField("reward_config") else None, path
    )
    options, bad_options = _options(config, path)
    if bad_reward or bad_options:
        raise InvalidArgument(bad_reward + bad_options)
    assert reward is not None and options is not None
    return reward, options


def _window(
    ds: pb.PreferenceDataset, now: datetime
) -> tuple[datetime | None, datetime, list[FieldViolation]]:
    start = ds.start_time.ToDatetime(tzinfo=UTC) if ds.HasField("start_time") else None
    end = ds.end_time.ToDatetime(tzinfo=UTC) if ds.HasField("end_time") else now
    if start is None or start < end:
        return start, end, []
    empty = FieldViolation(f"{_FIELD}.start_time", "is not before end_time: the window is empty")
    return start, end, [empty]


def check_create(ds: pb.PreferenceDataset, request_id: str, now: datetime) -> BuildSpec:
    """The request as a build spec, or INVALID_ARGUMENT naming every offending field."""
    violations: list[FieldViolation] = []
    try:
        idempotency.validate_request_id(request_id)
    except InvalidArgument as err:
        violations += err.violations
    problem = skill_id_problem(ds.skill_id)
    if problem:
        violations.append(FieldViolation(f"{_FIELD}.skill_id", problem))
    if len(ds.display_name) > MAX_DISPLAY_NAME:
        violations.append(
            FieldViolation(
                f"{_FIELD}.display_name", f"must be at most {MAX_DISPLAY_NAME} characters"
            )
        )
    start, end, bad_window = _window(ds, now)
    config = ds.build_config
    reward, bad_reward = _reward(
        ds.skill_id, config.reward_config if config.HasField("reward_config") else None
    )
    options, bad_options = _options(config)
    violations += bad_window + bad_reward + bad_options
    if violations:
        raise InvalidArgument(violations)
    assert reward is not None and options is not None
    return BuildSpec(
        ds.skill_id, ds.display_name.strip(), start, end, reward, options, tuple(config.policy_ids)
    )


# ---- rows ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Claim:
    method: str
    request_id: str
    payload: Any


def _error_json(err: DomainError) -> dict[str, Any]:
    return {
        "code": err.code.value,
        "message": err.message,
        "reason": err.reason,
        "metadata": dict(err.metadata),
    }


def _values(
    spec: BuildSpec, outcome: DatasetVersion | FailedPrecondition, create_time: datetime
) -> dict[str, Any]:
    """A new row's columns (all but tenant, id and version)."""
    common = {
        "skill_id": spec.skill_id,
        "display_name": spec.display_name,
        "start_time": spec.start_time,
        "end_time": spec.end_time,
        "build_config": json_format.MessageToDict(
            spec.build_config(), preserving_proto_field_name=True
        ),
        "reward_config_version": spec.reward.version,
        "learning_loop_id": spec.learning_loop_id or None,
        "create_time": create_time,
        "complete_time": _now(),
    }
    if isinstance(outcome, FailedPrecondition):
        return {
            **common,
            "state": FAILED,
            "report": {},
            "error": _error_json(outcome),
            "pair_count": 0,
            "train_pair_count": 0,
            "eval_pair_count": 0,
        }
    return {
        **common,
        "state": READY,
        "report": dataclasses.asdict(outcome.report),
        "error": None,
        "content_sha256": outcome.content_sha256,
        "storage_key": outcome.key,
        "storage_uri": outcome.uri,
        "pair_count": outcome.pair_count,
        "train_pair_count": outcome.train_pair_count,
        "eval_pair_count": outcome.eval_pair_count,
    }


async def _next_version(session: AsyncSession, tenant_id: str, skill_id: str) -> int:
    """max + 1, serialized per (tenant, skill) by a transaction-scoped advisory lock (a
    skill need not exist in the registry for a loop to have built from its telemetry,
    so there is no skill row to lock)."""
    key = f"preference_datasets/{tenant_id}/{skill_id}"
    await session.execute(select(func.pg_advisory_xact_lock(func.hashtextextended(key, 0))))
    latest = await session.scalar(
        select(func.max(PreferenceDatasetRow.version)).where(
            PreferenceDatasetRow.tenant_id == tenant_id,
            PreferenceDatasetRow.skill_id == skill_id,
        )
    )
    return (latest or 0) + 1


async def _row(session: AsyncSession, tenant_id: str, dataset_id: str) -> PreferenceDatasetRow:
    row = await session.get(PreferenceDatasetRow, (tenant_id, dataset_id))
    if row is None:
        raise NotFound("preference dataset", dataset_id)
    return row


async def _replayed(
    sessions: async_sessionmaker[AsyncSession], tenant_id: str, claim: _Claim
) -> PreferenceDatasetRow | None:
    """The dataset an earlier call with this request_id made (ALREADY_EXISTS if it came
    with another payload), or None if the request_id is new. Checked before building,
    so a retry costs a lookup, not a build."""
    async with sessions() as session, session.begin():
        seen = await session.scalar(
            select(IdempotencyRecord.id).where(
                IdempotencyRecord.tenant_id == tenant_id,
                IdempotencyRecord.method == claim.method,
                IdempotencyRecord.request_id == claim.request_id,
            )
        )
        if seen is None:
            return None
        # claim() finds the record, compares fingerprints and names the dataset.
        prior = await idempotency.claim(
            session,
            tenant_id=tenant_id,
            method=claim.method,
            request_id=claim.request_id,
            payload=claim.payload,
            resource_id="",
        )
        assert prior is not None
        return await _row(session, tenant_id, prior)


async def _save(
    sessions: async_sessionmaker[AsyncSession],
    tenant_id: str,
    claim: _Claim,
    values: Mapping[str, Any],
) -> PreferenceDatasetRow:
    """Insert the row with its claim, in one transaction; a concurrent twin that
    committed first wins and its row is returned (its build is identical)."""
    dataset_id = f"ds-{uuid.uuid4().hex}"
    async with sessions() as session, session.begin():
        prior = await idempotency.claim(
            session,
            tenant_id=tenant_id,
            method=claim.method,
            request_id=claim.request_id,
            payload=claim.payload,
            resource_id=dataset_id,
        )
        if prior is not None:
            return await _row(session, tenant_id, prior)
        version = await _next_version(session, tenant_id, values["skill_id"])
        row = PreferenceDatasetRow(
            tenant_id=tenant_id, dataset_id=dataset_id, version=version, **values
        )
        session.add(row)
    return row


def _status(error: Mapping[str, Any]) -> status_pb2.Status:
    info = any_pb2.Any()
    info.Pack(
        error_details_pb2.ErrorInfo(
            reason=str(error.get("reason", "")),
            domain=ERROR_DOMAIN,
            metadata={str(k): str(v) for k, v in (error.get("metadata") or {}).items()},
        )
    )
    return status_pb2.Status(
        code=int(error.get("code", 0)), message=str(error.get("message", "")), details=[info]
    )


def to_proto(row: PreferenceDatasetRow) -> pb.PreferenceDataset:
    report = row.report or {}
    out = pb.PreferenceDataset(
        dataset_id=row.dataset_id,
        skill_id=row.skill_id,
        display_name=row.display_name,
        state=_STATES[row.state],
        version=row.version,
        content_sha256=row.content_sha256 or "",
        storage_uri=row.storage_uri or "",
        pair_count=row.pair_count,
        train_pair_count=row.train_pair_count,
        eval_pair_count=row.eval_pair_count,
        interaction_count=int(report.get("interaction_count", 0)),
        skipped_interaction_count=int(report.get("skipped_interaction_count", 0)),
        mean_reward_margin=float(report.get("mean_reward_margin", 0.0)),
        pair_counts_by_source=dict(report.get("pair_counts_by_source") or {}),
        tenant_id=row.tenant_id,
        learning_loop_id=row.learning_loop_id or "",
    )
    json_format.ParseDict(row.build_config, out.build_config, ignore_unknown_fields=True)
    if row.start_time is not None:
        out.start_time.FromDatetime(row.start_time)
    out.end_time.FromDatetime(row.end_time)
    out.create_time.FromDatetime(row.create_time)
    if row.complete_time is not None:
        out.complete_time.FromDatetime(row.complete_time)
    if row.error:
        out.error.CopyFrom(_status(row.error))
    return out


# ---- learning loops ----------------------------------------------------------------


async def record_loop_dataset(
    sessions: async_sessionmaker[AsyncSession],
    *,
    tenant_id: str,
    spec: BuildSpec,
    version: DatasetVersion,
    iteration_key: str,
    create_time: datetime,
) -> pb.PreferenceDataset:
    """Record a dataset a learning loop built, once per loop iteration: a retried
    activity (same ``iteration_key``) gets the row its first attempt wrote, whatever it
    built this time. The payload is the key alone for that reason: a retry that read
    one more late event must not fail as a reused request_id."""
    request_id = hashlib.sha256(iteration_key.encode()).hexdigest()
    claim = _Claim(LOOP_BUILD, request_id, {"iteration": iteration_key})
    row = await _save(sessions, tenant_id, claim, _values(spec, version, create_time))
    return to_proto(row)


# ---- the service --------------------------------------------------------------------


class DatasetService:
    def __init__(
        self,
        engine: AsyncEngine,
        objects: ObjectStore,
        eval_prompts: Callable[[], Sequence[str]] | None = None,
    ) -> None:
        self._engine = engine
        self._sessions = create_session_factory(engine)
        self._objects = objects
        self._eval_prompts = eval_prompts or golden_prompts

    # ---- create -------------------------------------------------------------------

    async def create(
        self, caller: Principal, dataset: pb.PreferenceDataset, request_id: str
    ) -> pb.PreferenceDataset:
        caller.require(Scope.TRAIN)
        create_time = _now()
        spec = check_create(dataset, request_id, create_time)
        digest = hashlib.sha256(dataset.SerializeToString(deterministic=True)).hexdigest()
        claim = _Claim(CREATE, request_id, {"preference_dataset": digest})
        replay = await _replayed(self._sessions, caller.tenant_id, claim)
        if replay is not None:
            return to_proto(replay)
        await self._check_references(caller.tenant_id, spec)
        outcome = await self._build(caller.tenant_id, spec)
        row = await _save(
            self._sessions, caller.tenant_id, claim, _values(spec, outcome, create_time)
        )
        return to_proto(row)

    async def _check_references(self, tenant_id: str, spec: BuildSpec) -> None:
        async with self._sessions() as session:
            if await session.get(Skill, (tenant_id, spec.skill_id)) is None:
                raise NotFound("skill", spec.skill_id)
            for i, policy_id in enumerate(spec.policy_ids):
                skill_id, number = parse_policy_id(policy_id)
                if skill_id != spec.skill_id:
                    raise InvalidArgument.field(
                        f"{_CONFIG}.policy_ids[{i}]",
                        f"{policy_id} is a policy of skill {skill_id!r}, not {spec.skill_id!r}",
                    )
                if await session.get(PolicyRow, (tenant_id, skill_id, number)) is None:
                    raise NotFound("policy", policy_id)

    async def _build(self, tenant_id: str, spec: BuildSpec) -> DatasetVersion | FailedPrecondition:
        """The stored version, or the builder's refusal (too few pairs), which becomes
        a FAILED dataset rather than an RPC error: the request was valid, the data was
        not enough, and the dataset's ``error`` says so."""
        views = await load_interactions(
            self._engine,
            tenant_id,
            spec.skill_id,
            start_time=spec.start_time,
            end_time=spec.end_time,
            policy_ids=spec.policy_ids,
        )
        try:
            # Pure CPU (rewards, fuzzy dedup): off the event loop, which serves RPCs.
            build = await asyncio.to_thread(
                build_dataset,
                views,
                spec.reward,
                spec.options,
                eval_prompts=self._eval_prompts(),
                skill=spec.skill_id,
            )
        except FailedPrecondition as err:
            return err
        return await write_dataset(self._objects, tenant_id, spec.skill_id, build)

    # ---- read ---------------------------------------------------------------------

    async def get(self, caller: Principal, dataset_id: str) -> pb.PreferenceDataset:
        caller.require(Scope.TRAIN)
        if not dataset_id:
            raise InvalidArgument.field("dataset_id", "is required")
        async with self._sessions() as session:
            return to_proto(await _row(session, caller.tenant_id, dataset_id))

    async def list(
        self,
        caller: Principal,
        *,
        skill_id: str = "",
        state: int = 0,
        page_size: int = 0,
        page_token: str = "",
    ) -> tuple[list[pb.PreferenceDataset], str]:
        """Newest first; the page token is the (create time, id) of the last one."""
        caller.require(Scope.TRAIN)
        page = page_request(page_size, page_token)
        t = PreferenceDatasetRow
        query = select(t).where(t.tenant_id == caller.tenant_id)
        if skill_id:
            query = query.where(t.skill_id == skill_id)
        if state:
            if state not in _STATE_NAMES:
                raise InvalidArgument.field("state", f"{state} is not a dataset state")
            query = query.where(t.state == _STATE_NAMES[state])
        if page.after:
            query = query.where(tuple_(t.create_time, t.dataset_id) < _after(page.after))
        query = query.order_by(t.create_time.desc(), t.dataset_id.desc()).limit(page.size + 1)
        async with self._sessions() as session:
            rows = list((await session.scalars(query)).all())
        token = next_page_token(
            rows, page.size, lambda r: [r.create_time.isoformat(), r.dataset_id]
        )
        return [to_proto(r) for r in rows[: page.size]], token

    # ---- export -------------------------------------------------------------------

    async def export(
        self, caller: Principal, dataset_id: str, fmt: int, split: int, request_id: str
    ) -> pb.ExportDatasetResponse:
        caller.require(Scope.TRAIN)
        _check_export(dataset_id, fmt, split, request_id)
        async with self._sessions() as session:
            row = await _row(session, caller.tenant_id, dataset_id)
        if row.state != READY or not row.storage_key:
            raise FailedPrecondition(
                f"dataset {dataset_id} is {row.state.upper()}; only a READY dataset exports",
                reason="DATASET_NOT_READY",
                metadata={"dataset_id": dataset_id, "state": row.state.upper()},
            )
        # Claimed before writing: the export is deterministic, so a replay (or a retry
        # after a failed write) simply writes the same bytes to the same key again.
        async with self._sessions() as session, session.begin():
            await idempotency.claim(
                session,
                tenant_id=caller.tenant_id,
                method=EXPORT,
                request_id=request_id,
                payload={"dataset_id": dataset_id, "format": fmt, "split": split},
                resource_id=dataset_id,
            )
        return await self._write_export(row, fmt, _SPLITS[split])

    async def _write_export(
        self, row: PreferenceDatasetRow, fmt: int, split: str | None
    ) -> pb.ExportDatasetResponse:
        assert row.storage_key is not None
        rows = read_parquet(await self._objects.get(row.storage_key))
        if content_sha256(rows) != row.content_sha256:
            raise DomainError(
                f"dataset {row.dataset_id}'s stored pairs do not match its content_sha256",
                reason="DATASET_CORRUPT",
                metadata={"dataset_id": row.dataset_id},
            )
        pairs = [row_pair(r) for r in rows]
        exporter, extension = _FORMATS[fmt]
        data = exporter(pairs, split)
        key = (
            f"exports/{row.tenant_id}/{row.skill_id}/{row.content_sha256}/"
            f"{split or 'all'}.{extension}"
        )
        uri = await self._objects.put(key, data)
        return pb.ExportDatasetResponse(
            uri=uri,
            format=pb.DatasetFormat.ValueType(fmt),
            row_count=sum(1 for p in pairs if split is None or p.split == split),
            size_bytes=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
        )


def _check_export(dataset_id: str, fmt: int, split: int, request_id: str) -> None:
    violations: list[FieldViolation] = []
    if not dataset_id:
        violations.append(FieldViolation("dataset_id", "is required"))
    if fmt not in _FORMATS:
        violations.append(
            FieldViolation(
                "format", "is required: DPO_JSONL, OPENAI_CHAT_JSONL, ANTHROPIC_JSONL or PARQUET"
            )
        )
    if split not in _SPLITS:
        violations.append(FieldViolation("split", f"{split} is not a dataset split"))
    try:
        idempotency.validate_request_id(request_id)
    except InvalidArgument as err:
        violations += err.violations
    if violations:
        raise InvalidArgument(violations)


def _after(after: Sequence[Any]) -> tuple[datetime, str]:
    """The (create time, id) a page token carries; INVALID_ARGUMENT if it is not one."""
    try:
        stamp, dataset_id = after
        return datetime.fromisoformat(stamp), str(dataset_id)
    except (TypeError, ValueError) as err:
        raise InvalidArgument.field("page_token", "is not a token this server issued") from err


def golden_prompts() -> list[str]:
    """Never train on what the gate evaluates on: a pair whose prompt is close to a
    golden prompt is dropped (the loop's builds do the same)."""
    from services.training.evaluation import load_golden_set

    return [g.prompt for g in load_golden_set()]
