"""Issue 12, item 13: what the stack exposes to whoever can reach the machine.

- The Prometheus endpoint has no authentication. It listed every tenant id (and each
  tenant's skills and policy ids) and listened wherever the gRPC port did. Now those
  labels are empty unless ``RLAAS_METRICS_TENANT_LABELS`` opts in, and it listens on
  ``RLAAS_METRICS_HOST`` (loopback) whatever ``RLAAS_GRPC_HOST`` is.
- The embedded Postgres (pgserver) had a world-writable socket and ``trust`` for every
  local user. Now its socket is 0700 and it authenticates peers, mapping only the stack's
  OS user (and the cluster's owner) to the ``postgres`` role.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import secrets
import shutil
import socket
import stat
import subprocess
import sys
import urllib.request
import uuid
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from rlaas.inference.v1 import inference_pb2 as inf
from rlaas.inference.v1 import inference_pb2_grpc
from rlaas.options.v1 import options_pb2
from rlaas.registry.v1 import registry_pb2 as reg
from rlaas.registry.v1 import registry_pb2_grpc
from rlaas.telemetry.v1 import telemetry_pb2 as tel
from rlaas.telemetry.v1 import telemetry_pb2_grpc
from services.config import Settings
from tests.conftest import RunningStack
from tests.helpers import ROOT, free_port, md, new_tenant, scoped_key

pytestmark = pytest.mark.integration


def rid() -> str:
    return str(uuid.uuid4())


def scrape(port: int, host: str = "127.0.0.1") -> str:
    with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=10) as reply:
        return str(reply.read().decode())


async def test_metrics_name_no_tenant_skill_or_policy(
    stack: RunningStack, channel: grpc.aio.Channel
) -> None:
    tenant_id, admin = await new_tenant(channel, stack.admin_key, "exposure-metrics")
    ingest = await scoped_key(channel, admin, options_pb2.SCOPE_INGEST)
    skill = f"exposure_{secrets.token_hex(4)}"
    registry = registry_pb2_grpc.RegistryServiceStub(channel)
    await registry.CreateSkill(
        reg.CreateSkillRequest(skill=reg.Skill(skill_id=skill), request_id=rid()),
        metadata=md(admin),
    )
    policy = reg.Policy(
        skill_id=skill,
        base_model="tiny-llama",
        generation_defaults=reg.GenerationConfig(max_tokens=4, temperature=0.0),
    )
    made = await registry.CreatePolicy(
        reg.CreatePolicyRequest(policy=policy, request_id=rid()), metadata=md(admin)
    )
    policy_id = made.policy.policy_id
    await registry.PromotePolicy(
        reg.PromotePolicyRequest(
            skill_id=skill, policy_id=policy_id, reason="probe", request_id=rid()
        ),
        metadata=md(admin),
    )
    # Ingest (telemetry counters) and an Infer (inference counters and histograms).
    telemetry = telemetry_pb2_grpc.TelemetryServiceStub(channel)
    for _ in range(2):
        await telemetry.CreateInteraction(
            tel.CreateInteractionRequest(
                interaction=tel.Interaction(skill=skill, input=tel.InteractionInput(text="hi")),
                request_id=rid(),
            ),
            metadata=md(ingest),
        )
    await inference_pb2_grpc.InferenceServiceStub(channel).Infer(
        inf.InferRequest(
            skill=skill,
            messages=[tel.ChatMessage(role=tel.ChatMessage.ROLE_USER, content="hello")],
            request_id=rid(),
        ),
        metadata=md(admin),
    )
    body = await asyncio.to_thread(scrape, stack.settings.metrics_port)
    assert "rlaas_telemetry_events_total" in body and "rlaas_inference_requests_total" in body
    for secret in (tenant_id, skill, policy_id):
        assert secret not in body, f"{secret} is on the unauthenticated metrics port"
    # The tenant still sees its own counts, through its own key.
    mine = await telemetry.GetTelemetrySettings(
        tel.GetTelemetrySettingsRequest(), metadata=md(ingest)
    )
    counters = {tel.EventType.Name(c.event_type): c.accepted for c in mine.counters}
    assert counters["EVENT_TYPE_INTERACTION"] >= 2


@pytest.mark.unit
def test_metrics_listen_on_loopback_even_when_grpc_is_exposed() -> None:
    settings = Settings(grpc_host="0.0.0.0")
    assert settings.metrics_host == "127.0.0.1"
    assert settings.metrics_tenant_labels is False


def connects(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=5):
            return True
    except OSError:
        return False


async def test_serve_on_all_interfaces_keeps_metrics_on_loopback(stack: RunningStack) -> None:
    grpc_port, metrics_port = free_port(), free_port()
    env = {
        **stack.env,
        "RLAAS_GRPC_HOST": "0.0.0.0",
        "RLAAS_GRPC_PORT": str(grpc_port),
        "RLAAS_METRICS_PORT": str(metrics_port),
        "RLAAS_REST_PORT": "0",
        "RLAAS_DATABASE_URL": stack.database_url,
        "RLAAS_SERVER_SECRET": secrets.token_urlsafe(48),
        "RLAAS_SERVICES": '["telemetry"]',
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "infra.cli",
        "serve",
        env=env,
        cwd=ROOT,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
            for _ in range(600):
                try:
                    reply = await health_pb2_grpc.HealthStub(channel).Check(
                        health_pb2.HealthCheckRequest(), timeout=1
                    )
                    if reply.status == health_pb2.HealthCheckResponse.SERVING:
                        break
                except grpc.aio.AioRpcError:
                    pass
                assert proc.returncode is None, "rlaas serve exited"
                await asyncio.sleep(0.1)
        # 127.0.0.2 is another address of this machine: it reaches what listens on all
        # interfaces (the gRPC port), not what listens on 127.0.0.1 only.
        assert await asyncio.to_thread(connects, "127.0.0.2", grpc_port)
        assert "rlaas_telemetry_events" in await asyncio.to_thread(scrape, metrics_port)
        assert not await asyncio.to_thread(connects, "127.0.0.2", metrics_port)
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), timeout=30)


# ---- the embedded Postgres ---------------------------------------------------------


def postmaster(pgdata: Path) -> tuple[Path, int]:
    """The running cluster's socket directory and port (from postmaster.pid)."""
    lines = (pgdata / "postmaster.pid").read_text().splitlines()
    return Path(lines[4]), int(lines[3])


def test_embedded_postgres_socket_is_private(stack: RunningStack) -> None:
    pgdata = stack.settings.postgres_dir
    socket_dir, port = postmaster(pgdata)
    socket_mode = stat.S_IMODE((socket_dir / f".s.PGSQL.{port}").stat().st_mode)
    assert socket_mode & 0o077 == 0, oct(socket_mode)
    dir_mode = stat.S_IMODE(socket_dir.stat().st_mode)
    assert dir_mode & 0o077 == 0, oct(dir_mode)
    rules = [
        line.split()
        for line in (pgdata / "pg_hba.conf").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert rules == [["local", "all", "all", "peer", "map=rlaas"]], rules


def _as_nobody(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["su", "-s", "/bin/sh", "nobody", "-c", " ".join(command)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _can_act_as_nobody() -> bool:
    try:
        pwd.getpwnam("nobody")
    except KeyError:
        return False
    return os.geteuid() == 0 and shutil.which("su") is not None


@pytest.mark.skipif(
    not _can_act_as_nobody(), reason="needs root (and a nobody user) to act as another user"
)
def test_another_local_user_cannot_connect_even_through_an_open_socket(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    from pgserver._commands import POSTGRES_BIN_PATH

    from infra.stack import embedded_postgres_url, stop_embedded_postgres

    settings = Settings(state_dir=tmp_path_factory.mktemp("private-pg"))
    embedded_postgres_url(settings)
    try:
        socket_dir, port = postmaster(settings.postgres_dir)
        psql = [str(POSTGRES_BIN_PATH / "psql"), "-h", str(socket_dir), "-p", str(port)]
        psql += ["-U", "postgres", "-d", "postgres", "-c", "'select 1'"]
        refused = _as_nobody(*psql)
        assert refused.returncode != 0 and "Permission denied" in refused.stderr
        # Second line of defence: with the socket opened to everyone (a mistake, or a
        # directory pgserver made 0777), authentication still refuses the stranger.
        for path, mode in ((socket_dir, 0o755), (socket_dir / f".s.PGSQL.{port}", 0o777)):
            path.chmod(mode)
        refused = _as_nobody(*psql)
        assert refused.returncode != 0
        assert "Peer authentication failed" in refused.stderr, refused.stderr
    finally:
        stop_embedded_postgres(settings)
