"""The telemetry domain core: ingest (validate, scrub, store exactly once), reads for the
event explorer, tenant settings, and the reward wait window. No gRPC here."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TypeAlias, cast

from google.protobuf.message import Message
from sqlalchemy import Table, and_, exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from rlaas.telemetry.v1 import telemetry_pb2 as pb
from services.config import Settings
from services.db.models import TelemetryEvent
from services.errors import DomainError, InvalidArgument, NotFound
from services.paging import next_page_token, page_request
from services.rewards.bandit_store import BanditStore
from services.rewards.online import explicit_reward
from services.telemetry import metrics
from services.telemetry.events import (
    FEEDBACK,
    INTERACTION,
    NUL,
    NUL_MESSAGE,
    OUTPUT,
    TASK_RESULT,
    EventPreparer,
    GatewayFields,
    Limits,
    Prepared,
)
from services.telemetry.pii import Entity
from services.telemetry.pseudonyms import Pseudonyms
from services.telemetry.settings_store import TelemetrySettingsStore, TenantTelemetrySettings
from services.telemetry.store import EventStore, Outcome, Written, decode
from services.tenancy.principal import Principal, Scope

IncomingEvent: TypeAlias = (
    pb.CreateInteractionRequest
    | pb.RecordOutputRequest
    | pb.SubmitFeedbackRequest
    | pb.RecordTaskResultRequest
)

_EVENT_TYPE_OF = {
    pb.CreateInteractionRequest: INTERACTION,
    pb.RecordOutputRequest: OUTPUT,
    pb.SubmitFeedbackRequest: FEEDBACK,
    pb.RecordTaskResultRequest: TASK_RESULT,
}
_T = cast(Table, TelemetryEvent.__table__)


@dataclass
class InteractionView:
    interaction: pb.Interaction
    outputs: list[pb.Output] = field(default_factory=list)
    feedback: list[pb.Feedback] = field(default_factory=list)
    task_results: list[pb.TaskResult] = field(default_factory=list)


@dataclass(frozen=True)
class InteractionFilter:
    skill: str = ""
    user_id: str = ""
    thread_id: str = ""
    policy_id: str = ""
    start_time: datetime | None = None
    end_time: datetime | None = None
    has_feedback: bool | None = None
    include_shadow: bool = False
    labels: tuple[tuple[str, str], ...] = ()

    def digest(self) -> str:
        raw = json.dumps(self.__dict__, default=str, sort_keys=True).encode()
        return hashlib.sha256(raw).hexdigest()[:16]


class TelemetryCore:
    def __init__(
        self,
        settings: Settings,
        engine: AsyncEngine,
        sessions: async_sessionmaker[AsyncSession],
        pseudonyms: Pseudonyms | None = None,
    ) -> None:
        self._engine = engine
        self._sessions = sessions
        self.store = EventStore(engine)
        self.bandits = BanditStore(engine)
        self.preparer = EventPreparer(
            Limits(
                max_event_bytes=settings.ingest_max_event_bytes,
                max_text_chars=settings.ingest_max_text_chars,
                max_items=settings.ingest_max_items,
                max_clock_skew=timedelta(seconds=settings.ingest_max_clock_skew_s),
                max_event_age=timedelta(days=settings.ingest_max_event_age_days),
            ),
            pseudonyms,
        )
        self.tenant_settings = TelemetrySettingsStore(
            sessions,
            default_reward_window_s=settings.reward_wait_window_s,
            cache_ttl_s=settings.auth_cache_ttl_s,
        )

    # ---- ingest ------------------------------------------------------------------

    def _prepare(
        self, event: IncomingEvent, tenant_id: str, cfg: TenantTelemetrySettings, now: datetime
    ) -> list[Prepared]:
        scrubber = self.tenant_settings.scrubber(cfg)
        kw = {"tenant_id": tenant_id, "scrubber": scrubber, "now": now}
        if isinstance(event, pb.CreateInteractionRequest):
            return self.preparer.interaction(event, **kw)  # type: ignore[arg-type]
        if isinstance(event, pb.RecordOutputRequest):
            return [self.preparer.output(event, **kw)]  # type: ignore[arg-type]
        if isinstance(event, pb.SubmitFeedbackRequest):
            return [self.preparer.feedback(event, **kw)]  # type: ignore[arg-type]
        return [self.preparer.task_result(event, **kw)]  # type: ignore[arg-type]

    async def log_gateway_interaction(
        self,
        tenant_id: str,
        request: pb.CreateInteractionRequest,
        gateway: GatewayFields,
    ) -> Written:
        """The inference gateway's own record of an answer it served (or a shadow run):
        the same validation, scrubbing and exactly-once store as any event, plus the
        routing fields no client may set."""
        cfg = await self.tenant_settings.get(tenant_id)
        try:
            prepared = self.preparer.interaction(
                request,
                tenant_id=tenant_id,
                scrubber=self.tenant_settings.scrubber(cfg),
                now=datetime.now(UTC),
                gateway=gateway,
            )
        except DomainError as err:
            written = Written(Outcome.REJECTED, INTERACTION, request.request_id, error=err)
        else:
            [written] = await self.store.write(tenant_id, [prepared])
        metrics.record(tenant_id, INTERACTION, written.outcome.value)
        return written

    async def ingest(
        self,
        caller: Principal,
        events: Sequence[IncomingEvent],
        refused: Mapping[int, DomainError] | None = None,
    ) -> list[Written]:
        """Store a batch of events exactly once; one result per event, in order. A bad
        event is rejected alone: the others are stored. ``refused``: events (by index)
        already refused when their message was decoded; they are rejected with that
        error."""
        caller.require(Scope.INGEST)
        cfg = await self.tenant_settings.get(caller.tenant_id)
        now = datetime.now(UTC)
        results: list[Written | None] = [None] * len(events)
        ready: list[list[Prepared]] = []
        positions: list[int] = []
        for i, event in enumerate(events):
            try:
                if refused and i in refused:
                    raise refused[i]
                ready.append(self._prepare(event, caller.tenant_id, cfg, now))
                positions.append(i)
            except DomainError as err:
                results[i] = Written(
                    Outcome.REJECTED, _EVENT_TYPE_OF[type(event)], event.request_id, error=err
                )
        if ready:
            for i, written in zip(
                positions, await self.store.write(caller.tenant_id, ready), strict=True
            ):
                results[i] = written
        done = [r for r in results if r is not None]
        for r in done:
            metrics.record(caller.tenant_id, r.event_type, r.outcome.value)
        await self._feed_bandits(caller.tenant_id, done)
        return done

    async def _feed_bandits(self, tenant_id: str, written: list[Written]) -> None:
        rewards = []
        for w in written:
            if w.outcome is Outcome.ACCEPTED and w.event_type == FEEDBACK:
                feedback = w.stored[0]
                assert isinstance(feedback, pb.Feedback)
                reward = explicit_reward(feedback)
                if reward is not None:
                    rewards.append((w.interaction_id, reward))
        await self.bandits.record(tenant_id, rewards)

    # ---- reads -------------------------------------------------------------------

    async def get_interaction(self, caller: Principal, interaction_id: str) -> InteractionView:
        caller.require(Scope.INGEST)
        if not interaction_id:
            raise InvalidArgument.field("interaction_id", "is required")
        async with self._engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(_T.c.event_type, _T.c.payload, _T.c.create_time)
                    .where(
                        _T.c.tenant_id == caller.tenant_id, _T.c.interaction_id == interaction_id
                    )
                    .order_by(_T.c.create_time, _T.c.event_type, _T.c.event_id)
                )
            ).all()
        view: InteractionView | None = None
        others: list[Message] = []
        for event_type, payload, create_time in rows:
            message = decode(event_type, payload, create_time)
            if event_type == INTERACTION:
                view = InteractionView(message)
            else:
                others.append(message)
        if view is None:
            # Feedback that arrived first is kept, but the interaction is not here yet.
            raise NotFound("interaction", interaction_id)
        for message in others:
            if isinstance(message, pb.Output):
                view.outputs.append(message)
            elif isinstance(message, pb.Feedback):
                view.feedback.append(message)
            elif isinstance(message, pb.TaskResult):
                view.task_results.append(message)
        view.interaction.output_count = len(view.outputs)
        view.interaction.feedback_count = len(view.feedback)
        view.interaction.task_result_count = len(view.task_results)
        return view

    async def list_interactions(
        self, caller: Principal, filters: InteractionFilter, *, page_size: int, page_token: str
    ) -> tuple[list[pb.Interaction], str]:
        caller.require(Scope.INGEST)
        if filters.start_time and filters.end_time and filters.start_time > filters.end_time:
            raise InvalidArgument.field("start_time", "is after end_time")
        named = [(n, getattr(filters, n)) for n in ("skill", "user_id", "thread_id", "policy_id")]
        for name, value in [*named, *((f"labels[{k!r}]", k + v) for k, v in filters.labels)]:
            if NUL in value:  # PostgreSQL text cannot hold U+0000: never a match, say so
                raise InvalidArgument.field(name, NUL_MESSAGE)
        page = page_request(page_size, page_token)
        digest = filters.digest()
        query = select(_T.c.event_id, _T.c.payload, _T.c.create_time).where(
            _T.c.tenant_id == caller.tenant_id, _T.c.event_type == INTERACTION
        )
        # Ids stored as pseudonyms are found by the id the caller knows.
        scrubber = self.tenant_settings.scrubber(await self.tenant_settings.get(caller.tenant_id))
        pseudonyms = self.preparer.pseudonyms
        for column, value in (
            (_T.c.skill, filters.skill),
            (_T.c.user_id, pseudonyms.identifier(caller.tenant_id, filters.user_id, scrubber)),
            (_T.c.thread_id, pseudonyms.identifier(caller.tenant_id, filters.thread_id, scrubber)),
            (_T.c.policy_id, filters.policy_id),
        ):
            if value:
                query = query.where(column == value)
        if filters.start_time:
            query = query.where(_T.c.create_time >= filters.start_time)
        if filters.end_time:
            query = query.where(_T.c.create_time < filters.end_time)
        if not filters.include_shadow:
            query = query.where(
                or_(_T.c.source.is_(None), _T.c.source != pb.INTERACTION_SOURCE_SHADOW)
            )
        if filters.labels:
            query = query.where(_T.c.labels.contains(dict(filters.labels)))
        if filters.has_feedback is not None:
            f = _T.alias("f")
            has = exists().where(
                f.c.tenant_id == _T.c.tenant_id,
                f.c.interaction_id == _T.c.interaction_id,
                f.c.event_type == FEEDBACK,
            )
            query = query.where(has if filters.has_feedback else ~has)
        if page.after is not None:
            if len(page.after) != 3 or page.after[2] != digest:
                raise InvalidArgument.field(
                    "page_token", "was issued for different filters; start over without it"
                )
            after_time = datetime.fromisoformat(page.after[0])
            query = query.where(
                or_(
                    _T.c.create_time < after_time,
                    and_(_T.c.create_time == after_time, _T.c.event_id < page.after[1]),
                )
            )
        query = query.order_by(_T.c.create_time.desc(), _T.c.event_id.desc()).limit(page.size + 1)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
            ids = [r.event_id for r in rows[: page.size]]
            counts: dict[tuple[str, int], int] = {}
            if ids:
                grouped = await conn.execute(
                    select(_T.c.interaction_id, _T.c.event_type, func.count())
                    .where(
                        _T.c.tenant_id == caller.tenant_id,
                        _T.c.interaction_id.in_(ids),
                        _T.c.event_type != INTERACTION,
                    )
                    .group_by(_T.c.interaction_id, _T.c.event_type)
                )
                counts = {(r[0], r[1]): r[2] for r in grouped}
        interactions = []
        for row in rows[: page.size]:
            message = decode(INTERACTION, row.payload, row.create_time)
            assert isinstance(message, pb.Interaction)
            message.output_count = counts.get((row.event_id, OUTPUT), 0)
            message.feedback_count = counts.get((row.event_id, FEEDBACK), 0)
            message.task_result_count = counts.get((row.event_id, TASK_RESULT), 0)
            interactions.append(message)
        token = next_page_token(
            rows, page.size, lambda r: [r.create_time.isoformat(), r.event_id, digest]
        )
        return interactions, token

    async def rewardable_interactions(
        self, tenant_id: str, skill: str, *, now: datetime | None = None, limit: int = 1000
    ) -> list[str]:
        """Interactions of a skill whose reward wait window has closed: their feedback
        is as complete as it will be, so a reward can be computed (the learning loop)."""
        cfg = await self.tenant_settings.get(tenant_id)
        cutoff = (now or datetime.now(UTC)) - timedelta(seconds=cfg.reward_wait_window_s)
        async with self._engine.connect() as conn:
            rows = await conn.execute(
                select(_T.c.event_id)
                .where(
                    _T.c.tenant_id == tenant_id,
                    _T.c.event_type == INTERACTION,
                    _T.c.skill == skill,
                    _T.c.create_time <= cutoff,
                )
                .order_by(_T.c.create_time)
                .limit(limit)
            )
            return [r.event_id for r in rows]

    # ---- settings ----------------------------------------------------------------

    async def get_settings(self, caller: Principal) -> TenantTelemetrySettings:
        caller.require(Scope.INGEST)
        return await self.tenant_settings.get(caller.tenant_id)

    async def update_settings(
        self,
        caller: Principal,
        *,
        pii_enabled: bool,
        pii_entities: frozenset[Entity],
        reward_wait_window_s: float | None,
        request_id: str,
    ) -> TenantTelemetrySettings:
        caller.require(Scope.ADMIN)
        return await self.tenant_settings.update(
            caller.tenant_id,
            pii_enabled=pii_enabled,
            pii_entities=pii_entities,
            reward_wait_window_s=reward_wait_window_s,
            request_id=request_id,
        )
