"""Graceful shutdown: health flips to NOT_SERVING before the server stops, and SIGTERM
ends `rlaas serve` cleanly."""

from __future__ import annotations

import asyncio
import json
import signal
import sys

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from rlaas.telemetry.v1 import telemetry_pb2, telemetry_pb2_grpc
from services.app import Runtime, start_server
from services.config import Settings
from tests.conftest import RunningStack
from tests.helpers import ROOT, free_port

pytestmark = pytest.mark.integration


async def test_health_reports_not_serving_during_graceful_shutdown(stack: RunningStack) -> None:
    # The stack's state dir: its server secret (Runtime.create needs one).
    settings = Settings(
        grpc_port=0, services=["registry"], shutdown_grace_s=1, state_dir=stack.settings.state_dir
    )
    runtime = Runtime.create(settings, stack.database_url)
    running = await start_server(runtime, port=0)
    seen: list[int] = []
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            watch = health_pb2_grpc.HealthStub(channel).Watch(
                health_pb2.HealthCheckRequest(service="rlaas.registry.v1.RegistryService")
            )
            first = await watch.read()
            seen.append(first.status)
            stopping = asyncio.create_task(running.stop(1.0))
            try:
                while (reply := await watch.read()) is not grpc.aio.EOF:
                    seen.append(reply.status)
            except grpc.aio.AioRpcError:
                pass  # the server went away after announcing NOT_SERVING
            await stopping
    finally:
        await runtime.close()
    assert seen[0] == health_pb2.HealthCheckResponse.SERVING
    assert health_pb2.HealthCheckResponse.NOT_SERVING in seen[1:]


async def test_sigterm_stops_serve_gracefully_and_flushes_traces(stack: RunningStack) -> None:
    port = free_port()
    env = {
        **stack.env,
        "RLAAS_GRPC_PORT": str(port),
        "RLAAS_DATABASE_URL": stack.database_url,
        "RLAAS_SERVICES": '["telemetry"]',
        "RLAAS_OTEL_EXPORTER": "console",
        "RLAAS_METRICS_PORT": "0",
        "RLAAS_REST_PORT": "0",
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "infra.cli",
        "serve",
        env=env,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            for _ in range(300):
                try:
                    reply = await stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
                    if reply.status == health_pb2.HealthCheckResponse.SERVING:
                        break
                except grpc.aio.AioRpcError:
                    pass
                await asyncio.sleep(0.1)
            # Served alone, telemetry is there and registry is not.
            names = {
                "rlaas.telemetry.v1.TelemetryService": True,
                "rlaas.registry.v1.RegistryService": False,
            }
            for name, present in names.items():
                try:
                    await stub.Check(health_pb2.HealthCheckRequest(service=name), timeout=2)
                    assert present, name
                except grpc.aio.AioRpcError as err:
                    assert not present and err.code() == grpc.StatusCode.NOT_FOUND
            # One traced RPC (refused for want of a key, still a span).
            with pytest.raises(grpc.aio.AioRpcError):
                await telemetry_pb2_grpc.TelemetryServiceStub(channel).ListInteractions(
                    telemetry_pb2.ListInteractionsRequest()
                )
        proc.send_signal(signal.SIGTERM)
        out, raw = await asyncio.wait_for(proc.communicate(), timeout=30)
    finally:
        if proc.returncode is None:
            proc.kill()
    stderr = raw.decode()
    assert proc.returncode == 0, stderr
    events = [json.loads(x)["event"] for x in stderr.splitlines() if x.startswith("{")]
    assert events.index("server_stopping") < events.index("server_stopped")
    # The console exporter flushed on shutdown: the RPC is traced, health checks are not.
    spans = out.decode()
    assert '"name": "/rlaas.telemetry.v1.TelemetryService/ListInteractions"' in spans
    assert "grpc.health.v1.Health" not in spans
