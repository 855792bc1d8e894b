"""The main job end to end (slow: ~15-20 min on 2 cores): its own embedded stack with
the real default model (SmolLM2-135M-Instruct), the simulated user teaching it through
the public API, one real learning-loop iteration, the rollout and promotion, then the
bad candidate's automatic rollback. Asserts what a user cares about: on held-out emails
the candidate's drafts need fewer edits than the baseline's."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from infra.operator_key import temporary_operator_key
from services.config import Settings
from simulation.job import JobConfig, app_channel, run_job
from tests.helpers import rlaas, stack_env

pytestmark = [pytest.mark.slow, pytest.mark.e2e]
ROOT = Path(__file__).resolve().parents[2]


async def test_the_platform_learns_the_hidden_preference(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    cache = ROOT / ".rlaas" / "models"
    if cache.is_dir():  # the dequantized weights: skip ~20 s of GGUF decoding
        (state / "models").symlink_to(cache)
    env = stack_env(state)
    up = rlaas("up", env=env, timeout=600)
    assert up.returncode == 0, up.stdout + up.stderr
    try:
        saved = dict(os.environ)
        os.environ.update({k: v for k, v in env.items() if k.startswith("RLAAS_")})
        try:
            settings = Settings()
        finally:
            os.environ.clear()
            os.environ.update(saved)
        key, cleanup = await temporary_operator_key(settings, minutes=60, purpose="demo e2e")
        lines: list[str] = []
        try:
            async with app_channel(settings.grpc_target) as channel:
                rc = await run_job(channel, key, JobConfig(out_dir=tmp_path / "demo"), lines.append)
        finally:
            await cleanup()
        report = json.loads((tmp_path / "demo" / "report.json").read_text())
        held = report["held_out"]
        assert held["candidate"]["edit_similarity"] > held["baseline"]["edit_similarity"], lines
        assert held["win_rate"] > 0.5, lines
        assert report["rollout"]["stage"] == "full", lines
        assert report["bad_rollout"]["stage"] == "rolled_back", lines
        assert report["bad_rollout"]["automatic_rollback"], lines
        assert (tmp_path / "demo" / "reward.png").read_bytes().startswith(b"\x89PNG")
        live = report["live"]
        assert len(live) >= 64 and {r["policy_id"] for r in live} >= {
            "support_email@v1",
            "support_email@v2",
            "support_email@v3",
        }
        assert rc == 0, "\n".join(lines)
    finally:
        rlaas("down", env=env, timeout=120)
