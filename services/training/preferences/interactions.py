"""The builder's input: a tenant's interactions of a skill, with their outputs, feedback
and task results, read from the telemetry events in Postgres."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import cast

from sqlalchemy import Table, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from rlaas.telemetry.v1 import telemetry_pb2 as tel
from services.db.models import TelemetryEvent
from services.errors import InvalidArgument
from services.telemetry.core import InteractionView
from services.telemetry.store import decode

_T = cast(Table, TelemetryEvent.__table__)
_INTERACTION = tel.EVENT_TYPE_INTERACTION


async def load_interactions(
    engine: AsyncEngine,
    tenant_id: str,
    skill: str,
    *,
    start_time: datetime | None = None,
    end_time: datetime | None = None,
    policy_ids: Sequence[str] = (),
    chunk_size: int = 500,
) -> list[InteractionView]:
    """A tenant's interactions of a skill created in ``[start_time, end_time)``, each with
    all its outputs, feedback and task results (whenever they arrived), oldest first.
    Training opt-outs and shadow runs are left out. Tenant-scoped: every query filters
    on ``tenant_id``. ``policy_ids`` filters on the interaction's policy (the builder's
    ``BuildOptions.policy_ids`` filters on each output's)."""
    if not tenant_id:
        raise InvalidArgument.field("tenant_id", "is required")
    if not skill:
        raise InvalidArgument.field("preference_dataset.skill_id", "is required")
    if start_time and end_time and start_time >= end_time:
        raise InvalidArgument.field("preference_dataset.start_time", "is not before end_time")
    query = select(_T.c.event_id, _T.c.payload, _T.c.create_time).where(
        _T.c.tenant_id == tenant_id,
        _T.c.event_type == _INTERACTION,
        _T.c.skill == skill,
        or_(_T.c.source.is_(None), _T.c.source != tel.INTERACTION_SOURCE_SHADOW),
    )
    if start_time is not None:
        query = query.where(_T.c.create_time >= start_time)
    if end_time is not None:
        query = query.where(_T.c.create_time < end_time)
    if policy_ids:
        query = query.where(_T.c.policy_id.in_(list(policy_ids)))
    query = query.order_by(_T.c.create_time, _T.c.event_id)
    views: dict[str, InteractionView] = {}
    async with engine.connect() as conn:
        for row in (await conn.execute(query)).all():
            message = decode(_INTERACTION, row.payload, row.create_time)
            assert isinstance(message, tel.Interaction)
            if message.training_opt_out or message.source == tel.INTERACTION_SOURCE_SHADOW:
                continue
            views[row.event_id] = InteractionView(message)
        ids = list(views)
        for start in range(0, len(ids), chunk_size):
            chunk = ids[start : start + chunk_size]
            rows = await conn.execute(
                select(_T.c.event_type, _T.c.interaction_id, _T.c.payload, _T.c.create_time)
                .where(
                    _T.c.tenant_id == tenant_id,
                    _T.c.interaction_id.in_(chunk),
                    _T.c.event_type != _INTERACTION,
                )
                .order_by(_T.c.create_time, _T.c.event_type, _T.c.event_id)
            )
            for event_type, interaction_id, payload, create_time in rows:
                view = views[interaction_id]
                message = decode(event_type, payload, create_time)
                if isinstance(message, tel.Output):
                    view.outputs.append(message)
                elif isinstance(message, tel.Feedback):
                    view.feedback.append(message)
                elif isinstance(message, tel.TaskResult):
                    view.task_results.append(message)
    return list(views.values())
