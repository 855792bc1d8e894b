"""`rlaas up` / `rlaas down` as a user runs them: a restart keeps the data, `down`
leaves no process behind, and external URLs are used instead of embedded components."""

from __future__ import annotations

import asyncio
import socket
import uuid
from pathlib import Path

import grpc
import pytest
from minio import Minio
from moto.server import ThreadedMotoServer
from temporalio.client import Client

from infra.processes import ProcessTable, alive, group_members, start_time
from infra.stack import postgres_pid
from rlaas.registry.v1 import registry_pb2, registry_pb2_grpc
from tests.conftest import RunningStack, settings_from_env
from tests.helpers import KEY_LINE, free_port, md, rlaas, stack_env
from workflows.queues import CPU_TASK_QUEUE
from workflows.stack_check import StackCheckInput, StackCheckWorkflow

pytestmark = pytest.mark.integration


def _pids(state_dir: Path) -> list[int]:
    table = ProcessTable(state_dir / "run", state_dir / "logs")
    return [m.pid for name in table.names() if (m := table.get(name)) is not None]


async def _identity(target: str, key: str) -> registry_pb2.GetCallerIdentityResponse:
    async with grpc.aio.insecure_channel(target) as channel:
        return await registry_pb2_grpc.RegistryServiceStub(channel).GetCallerIdentity(
            registry_pb2.GetCallerIdentityRequest(), metadata=md(key), timeout=10
        )


async def test_restart_keeps_data_and_down_leaves_nothing(tmp_path: Path) -> None:
    env = stack_env(tmp_path / "state")
    settings = settings_from_env(env)
    up = await asyncio.to_thread(rlaas, "up", env=env)
    assert up.returncode == 0, up.stdout + up.stderr
    assert f"http://127.0.0.1:{settings.temporal_ui_port}" in up.stdout
    key_match = KEY_LINE.search(up.stdout)
    assert key_match
    admin_key = key_match.group(1)
    try:
        first_pids = [*_pids(settings.state_dir), postgres_pid(settings) or -1]
        assert len(first_pids) == 6 and all(alive(p) for p in first_pids)
        # Pids are recycled on a busy machine: a process is its pid and its start time.
        started = {p: start_time(p) for p in first_pids}

        client = await Client.connect(settings.temporal_target)
        workflow_id = f"lifecycle-{uuid.uuid4()}"
        await client.execute_workflow(
            StackCheckWorkflow.run,
            StackCheckInput("before"),
            id=workflow_id,
            task_queue=CPU_TASK_QUEUE,
        )
        # Calling `up` again is harmless: nothing new starts, no new key is printed.
        again = await asyncio.to_thread(rlaas, "up", env=env)
        assert again.returncode == 0 and not KEY_LINE.search(again.stdout)
        assert _pids(settings.state_dir) == first_pids[:-1]

        down = await asyncio.to_thread(rlaas, "down", env=env)
        assert down.returncode == 0, down.stderr
        for pid in first_pids:
            assert not alive(pid, started[pid]), f"pid {pid} survived `rlaas down`"
            if start_time(pid) is None:  # the pid is free, so is its group number
                assert group_members(pid) == [], f"process group {pid} survived"
        status = await asyncio.to_thread(rlaas, "status", env=env)
        assert "running" not in status.stdout

        up2 = await asyncio.to_thread(rlaas, "up", env=env)
        assert up2.returncode == 0, up2.stdout + up2.stderr
        assert not KEY_LINE.search(up2.stdout)  # the operator already exists
        # Postgres data survived: the key minted on the first `up` still works.
        me = await _identity(settings.grpc_target, admin_key)
        assert me.tenant_id == "operator"
        # Temporal history survived (SQLite file under the state dir).
        client = await Client.connect(settings.temporal_target)
        described = await client.get_workflow_handle(workflow_id).describe()
        assert described.status is not None and described.status.name == "COMPLETED"
    finally:
        await asyncio.to_thread(rlaas, "down", env=env)
    assert _pids(settings.state_dir) == []


async def test_external_urls_are_used_instead_of_embedded(
    stack: RunningStack, tmp_path: Path
) -> None:
    """Point a second stack at the session stack's Postgres, Temporal and Milvus, and at
    an S3 API server, as if they were production servers: it must start only its own
    services and workers, and stopping it must leave the "external" servers alone."""
    state = tmp_path / "state"
    s3_port = free_port()
    s3 = ThreadedMotoServer(ip_address="127.0.0.1", port=s3_port)
    s3.start()
    env = stack_env(
        state,
        RLAAS_DATABASE_URL=stack.database_url,
        RLAAS_TEMPORAL_ADDRESS=stack.settings.temporal_target,
        RLAAS_MILVUS_URI=stack.settings.milvus_target,
        RLAAS_S3_ENDPOINT=f"127.0.0.1:{s3_port}",
        RLAAS_S3_BUCKET="rlaas-prod",
        RLAAS_S3_ACCESS_KEY="testing",
        RLAAS_S3_SECRET_KEY="testing",
        RLAAS_S3_SECURE="false",
    )
    up = await asyncio.to_thread(rlaas, "up", env=env)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        assert "postgres     external" in up.stdout
        assert f"objects      external 127.0.0.1:{s3_port}/rlaas-prod: ready" in up.stdout
        for embedded in ("postgres", "temporal", "milvus", "objects"):
            assert not (state / embedded).exists(), embedded
        assert Minio(f"127.0.0.1:{s3_port}", "testing", "testing", secure=False).bucket_exists(
            "rlaas-prod"
        )
        table = ProcessTable(state / "run", state / "logs")
        assert table.names() == ["serve", "worker-cpu", "worker-gpu"]
        # Same database: the session stack's admin key works on this server too.
        me = await _identity(settings_from_env(env).grpc_target, stack.admin_key)
        assert me.tenant_id == "operator"
    finally:
        await asyncio.to_thread(rlaas, "down", env=env)
        s3.stop()
    # The external servers are still up.
    assert (await _identity(stack.grpc_target, stack.admin_key)).tenant_id == "operator"


async def test_up_refuses_a_port_held_by_another_process(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        env = stack_env(tmp_path / "state", RLAAS_TEMPORAL_PORT=str(port))
        up = await asyncio.to_thread(rlaas, "up", env=env)
        await asyncio.to_thread(rlaas, "down", env=env)
    assert up.returncode == 1
    assert f"port {port} is already in use" in up.stderr
    assert "RLAAS_TEMPORAL_PORT" in up.stderr
