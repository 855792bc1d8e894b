"""Shared test helpers: free ports, the CLI, metadata, rich-status decoding."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import grpc
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

ROOT = Path(__file__).resolve().parent.parent
KEY_LINE = re.compile(r"RLAAS_API_KEY=(rlaas_\S+)")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stack_env(state_dir: Path, **overrides: str) -> dict[str, str]:
    """Environment for an isolated embedded stack on free ports."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RLAAS_")}
    env.update(
        RLAAS_STATE_DIR=str(state_dir),
        RLAAS_GRPC_PORT=str(free_port()),
        RLAAS_TEMPORAL_PORT=str(free_port()),
        RLAAS_TEMPORAL_UI_PORT=str(free_port()),
        RLAAS_MILVUS_PORT=str(free_port()),
        RLAAS_METRICS_PORT=str(free_port()),
        RLAAS_REST_PORT=str(free_port()),
        RLAAS_LOG_FORMAT="json",
        RLAAS_SHUTDOWN_GRACE_S="3",
        # Rollout guards look often, so a regression rolls back within a test's time.
        RLAAS_ROLLOUT_POLL_INTERVAL_S="2",
    )
    env.update(overrides)
    return env


def rlaas(
    *args: str, env: dict[str, str], timeout: float = 240
) -> subprocess.CompletedProcess[str]:
    """Run the real `rlaas` CLI (as `make up` does)."""
    return subprocess.run(
        [sys.executable, "-m", "infra.cli", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def md(key: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {key}"),)


@dataclass
class RichError:
    code: grpc.StatusCode
    message: str
    reason: str | None
    field_violations: list[tuple[str, str]]


def rich_error(err: grpc.aio.AioRpcError) -> RichError:
    """Decode google.rpc.Status details from a failed call's trailing metadata."""
    status = rpc_status.from_call(err)
    reason: str | None = None
    violations: list[tuple[str, str]] = []
    if status is not None:
        assert isinstance(status, status_pb2.Status)
        reason, violations = status_details(status)
    return RichError(err.code(), err.details() or "", reason, violations)


def status_details(
    status: status_pb2.Status,
) -> tuple[str | None, list[tuple[str, str]]]:
    """A google.rpc.Status's ErrorInfo reason and BadRequest (field, description) pairs,
    e.g. of a per-event error in a stream's result."""
    reason: str | None = None
    violations: list[tuple[str, str]] = []
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            reason = info.reason
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            violations = [(v.field, v.description) for v in bad.field_violations]
    return reason, violations


async def new_tenant(channel: grpc.aio.Channel, operator_key: str, name: str) -> tuple[str, str]:
    """A fresh tenant: (tenant_id, its admin key)."""
    from rlaas.registry.v1 import registry_pb2, registry_pb2_grpc

    created = await registry_pb2_grpc.RegistryServiceStub(channel).CreateTenant(
        registry_pb2.CreateTenantRequest(
            tenant=registry_pb2.Tenant(display_name=name), request_id=str(uuid.uuid4())
        ),
        metadata=md(operator_key),
    )
    return created.tenant.tenant_id, created.admin_api_key_secret


async def scoped_key(channel: grpc.aio.Channel, admin_key: str, *scopes: int) -> str:
    from rlaas.registry.v1 import registry_pb2, registry_pb2_grpc

    made = await registry_pb2_grpc.RegistryServiceStub(channel).CreateApiKey(
        registry_pb2.CreateApiKeyRequest(
            api_key=registry_pb2.ApiKey(display_name="scoped", scopes=list(scopes)),
            request_id=str(uuid.uuid4()),
        ),
        metadata=md(admin_key),
    )
    return made.secret


async def upload_adapter(channel: grpc.aio.Channel, key: str, source: str | Path) -> Any:
    """Upload a PEFT adapter directory (a path or its file:// URI) into the key's tenant;
    returns the registry's Adapter (artifact_uri, sha256) that a policy may name."""
    from rlaas.registry.v1 import registry_pb2_grpc
    from rlaas_sdk.adapters import upload_requests

    text = str(source)
    directory = Path(unquote(urlparse(text).path)) if text.startswith("file:") else Path(text)
    stub = registry_pb2_grpc.RegistryServiceStub(channel)
    made = await stub.UploadAdapter(upload_requests(directory), metadata=md(key))
    return made.adapter


def stored_path(uri: str) -> Path:
    """The local file behind a file:// artifact URI of the embedded object store."""
    return Path(unquote(urlparse(uri).path))
