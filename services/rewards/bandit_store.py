"""Bandit posteriors shared by every server process (table ``bandit_arms``)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncEngine

# One statement: attribute each reward to the skill and policy that served the
# interaction (gateway interactions only: shadows are never shown, so never rated), and
# add it to that arm's sums atomically, whichever process does it.
_RECORD = """
INSERT INTO bandit_arms (tenant_id, skill_id, policy_id, alpha, beta, observations)
SELECT $1, e.skill, e.policy_id, sum(r.reward), sum(1 - r.reward), count(*)
FROM unnest($2::text[], $3::float8[]) AS r(interaction_id, reward)
JOIN telemetry_events e
  ON e.tenant_id = $1 AND e.event_type = 1 AND e.event_id = r.interaction_id
WHERE e.source = 2 AND e.policy_id IS NOT NULL AND e.skill IS NOT NULL
GROUP BY e.skill, e.policy_id
ON CONFLICT (tenant_id, skill_id, policy_id) DO UPDATE SET
  alpha = bandit_arms.alpha + excluded.alpha,
  beta = bandit_arms.beta + excluded.beta,
  observations = bandit_arms.observations + excluded.observations,
  update_time = now()
"""
_READ = "SELECT policy_id, alpha, beta FROM bandit_arms WHERE tenant_id = $1 AND skill_id = $2"


class BanditStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def record(self, tenant_id: str, rewards: Sequence[tuple[str, float]]) -> None:
        """Rewards in [0, 1] for interactions (by id) the gateway served."""
        if not rewards:
            return
        async with self._engine.connect() as sa_conn:
            conn = (await sa_conn.get_raw_connection()).driver_connection
            assert conn is not None
            await conn.execute(_RECORD, tenant_id, [i for i, _ in rewards], [r for _, r in rewards])

    async def observed(self, tenant_id: str, skill_id: str) -> dict[str, tuple[float, float]]:
        """policy_id -> (summed rewards, summed 1 - rewards)."""
        async with self._engine.connect() as sa_conn:
            conn = (await sa_conn.get_raw_connection()).driver_connection
            assert conn is not None
            rows = await conn.fetch(_READ, tenant_id, skill_id)
        return {r["policy_id"]: (r["alpha"], r["beta"]) for r in rows}
