"""The real `rlaas serve` over a real socket: health, reflection, auth, errors, logs."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from google.protobuf import descriptor_pb2, timestamp_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from rlaas.options.v1 import options_pb2
from rlaas.registry.v1 import registry_pb2, registry_pb2_grpc
from rlaas.training.v1 import training_pb2, training_pb2_grpc
from tests.conftest import RunningStack
from tests.helpers import md, rich_error

pytestmark = pytest.mark.integration

SERVICES = [
    "rlaas.telemetry.v1.TelemetryService",
    "rlaas.inference.v1.InferenceService",
    "rlaas.registry.v1.RegistryService",
    "rlaas.training.v1.TrainingService",
]


def registry(channel: grpc.aio.Channel) -> registry_pb2_grpc.RegistryServiceStub:
    return registry_pb2_grpc.RegistryServiceStub(channel)


async def make_key(
    channel: grpc.aio.Channel, admin: str, *scopes: int, name: str = "test key"
) -> registry_pb2.CreateApiKeyResponse:
    return await registry(channel).CreateApiKey(
        registry_pb2.CreateApiKeyRequest(
            api_key=registry_pb2.ApiKey(display_name=name, scopes=list(scopes)),
            request_id=str(uuid.uuid4()),
        ),
        metadata=md(admin),
    )


async def create_tenant(
    channel: grpc.aio.Channel, operator_key: str, name: str
) -> registry_pb2.CreateTenantResponse:
    return await registry(channel).CreateTenant(
        registry_pb2.CreateTenantRequest(
            tenant=registry_pb2.Tenant(display_name=name), request_id=str(uuid.uuid4())
        ),
        metadata=md(operator_key),
    )


async def test_health_serving_for_every_service(channel: grpc.aio.Channel) -> None:
    stub = health_pb2_grpc.HealthStub(channel)
    for service in ["", *SERVICES]:
        reply = await stub.Check(health_pb2.HealthCheckRequest(service=service))
        assert reply.status == health_pb2.HealthCheckResponse.SERVING, service
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.Check(health_pb2.HealthCheckRequest(service="no.such.Service"))
    assert info.value.code() == grpc.StatusCode.NOT_FOUND


async def test_reflection_lists_and_describes_services(channel: grpc.aio.Channel) -> None:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)

    async def ask(**kw: str) -> reflection_pb2.ServerReflectionResponse:
        call = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(**kw)]))
        async for reply in call:
            return reply
        raise AssertionError("reflection sent no reply")

    listed = {s.name for s in (await ask(list_services="")).list_services_response.service}
    assert set(SERVICES) <= listed
    assert "grpc.health.v1.Health" in listed
    # A reflection client (buf curl, grpcurl) can fetch the schema, custom options included.
    reply = await ask(file_containing_symbol="rlaas.registry.v1.RegistryService")
    files = [
        descriptor_pb2.FileDescriptorProto.FromString(raw)
        for raw in reply.file_descriptor_response.file_descriptor_proto
    ]
    assert any(f.package == "rlaas.registry.v1" for f in files)


def test_buf_curl_reaches_every_service_through_reflection(stack: RunningStack) -> None:
    """What the README tells users to run: buf curl, with no proto files at hand."""
    buf = str(Path(sys.executable).parent / "buf")
    base = f"http://{stack.grpc_target}"
    flags = ["--protocol", "grpc", "--http2-prior-knowledge"]
    listed = subprocess.run(
        [buf, "curl", *flags, "--list-services", base], capture_output=True, text=True, check=True
    ).stdout.split()
    assert set(SERVICES) <= set(listed)
    for service in SERVICES:
        reply = subprocess.run(
            [
                buf,
                "curl",
                *flags,
                f"{base}/grpc.health.v1.Health/Check",
                "-d",
                json.dumps({"service": service}),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        assert json.loads(reply.stdout) == {"status": "SERVING"}
    me = subprocess.run(
        [
            buf,
            "curl",
            *flags,
            "-H",
            f"authorization: Bearer {stack.admin_key}",
            f"{base}/rlaas.registry.v1.RegistryService/GetCallerIdentity",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(me.stdout)["scopes"] == ["SCOPE_ADMIN"]


def test_temporal_web_ui_answers(stack: RunningStack) -> None:
    url = f"http://127.0.0.1:{stack.settings.temporal_ui_port}/"
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.status == 200
        assert b"<html" in response.read().lower()


async def test_missing_and_unknown_keys_are_unauthenticated(channel: grpc.aio.Channel) -> None:
    call = registry(channel).GetCallerIdentity
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call(registry_pb2.GetCallerIdentityRequest())
    err = rich_error(info.value)
    assert (err.code, err.reason) == (grpc.StatusCode.UNAUTHENTICATED, "API_KEY_MISSING")

    for bogus in ["nonsense", f"rlaas_{'0' * 16}_{'x' * 43}"]:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await call(registry_pb2.GetCallerIdentityRequest(), metadata=md(bogus))
        err = rich_error(info.value)
        assert (err.code, err.reason) == (grpc.StatusCode.UNAUTHENTICATED, "API_KEY_INVALID")


async def test_admin_key_identity_and_x_api_key_header(
    stack: RunningStack, channel: grpc.aio.Channel
) -> None:
    me = await registry(channel).GetCallerIdentity(
        registry_pb2.GetCallerIdentityRequest(), metadata=(("x-api-key", stack.admin_key),)
    )
    assert me.tenant_id == "operator"
    assert me.operator
    assert list(me.scopes) == [options_pb2.SCOPE_ADMIN]


async def test_wrong_scope_is_permission_denied(
    stack: RunningStack, channel: grpc.aio.Channel
) -> None:
    ingest = await make_key(channel, stack.admin_key, options_pb2.SCOPE_INGEST)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await registry(channel).ListApiKeys(
            registry_pb2.ListApiKeysRequest(), metadata=md(ingest.secret)
        )
    err = rich_error(info.value)
    assert (err.code, err.reason) == (grpc.StatusCode.PERMISSION_DENIED, "MISSING_SCOPE")
    # The same key may call what its scope allows: GetCallerIdentity needs any key.
    me = await registry(channel).GetCallerIdentity(
        registry_pb2.GetCallerIdentityRequest(), metadata=md(ingest.secret)
    )
    assert list(me.scopes) == [options_pb2.SCOPE_INGEST]


async def test_revoked_key_is_refused(stack: RunningStack, channel: grpc.aio.Channel) -> None:
    made = await make_key(channel, stack.admin_key, options_pb2.SCOPE_TRAIN)
    await registry(channel).GetCallerIdentity(
        registry_pb2.GetCallerIdentityRequest(), metadata=md(made.secret)
    )
    revoked = await registry(channel).RevokeApiKey(
        registry_pb2.RevokeApiKeyRequest(
            api_key_id=made.api_key.api_key_id, request_id=str(uuid.uuid4())
        ),
        metadata=md(stack.admin_key),
    )
    assert revoked.api_key.state == registry_pb2.ApiKey.STATE_REVOKED
    assert revoked.api_key.HasField("revoke_time")
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await registry(channel).GetCallerIdentity(
            registry_pb2.GetCallerIdentityRequest(), metadata=md(made.secret)
        )
    err = rich_error(info.value)
    assert (err.code, err.reason) == (grpc.StatusCode.UNAUTHENTICATED, "API_KEY_REVOKED")


async def test_secret_is_shown_once_and_stored_hashed(
    stack: RunningStack, channel: grpc.aio.Channel
) -> None:
    import asyncpg

    made = await make_key(channel, stack.admin_key, options_pb2.SCOPE_INFER)
    assert made.secret.startswith(f"rlaas_{made.api_key.api_key_id}_")
    got = await registry(channel).GetApiKey(
        registry_pb2.GetApiKeyRequest(api_key_id=made.api_key.api_key_id),
        metadata=md(stack.admin_key),
    )
    assert made.secret not in str(got)
    url = stack.database_url.replace("postgresql+asyncpg", "postgresql")
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("SELECT * FROM api_keys")
    finally:
        await conn.close()
    dumped = repr([dict(r) for r in rows])
    secret_part = made.secret.rsplit("_", 1)[1]
    assert secret_part not in dumped
    assert made.secret not in dumped


async def test_bad_input_names_the_field(stack: RunningStack, channel: grpc.aio.Channel) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await registry(channel).CreateApiKey(
            registry_pb2.CreateApiKeyRequest(
                api_key=registry_pb2.ApiKey(
                    display_name="x",
                    scopes=[options_pb2.SCOPE_INGEST, options_pb2.SCOPE_AUTHENTICATED],
                ),
                request_id=str(uuid.uuid4()),
            ),
            metadata=md(stack.admin_key),
        )
    err = rich_error(info.value)
    assert err.code == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in err.field_violations] == ["api_key.scopes[1]"]

    with pytest.raises(grpc.aio.AioRpcError) as info:
        await registry(channel).CreateApiKey(
            registry_pb2.CreateApiKeyRequest(
                api_key=registry_pb2.ApiKey(display_name="  ", scopes=[options_pb2.SCOPE_INGEST]),
                request_id=str(uuid.uuid4()),
            ),
            metadata=md(stack.admin_key),
        )
    err = rich_error(info.value)
    assert err.code == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in err.field_violations] == ["api_key.display_name"]

    with pytest.raises(grpc.aio.AioRpcError) as info:
        await registry(channel).ListApiKeys(
            registry_pb2.ListApiKeysRequest(page_token="not-a-token"), metadata=md(stack.admin_key)
        )
    assert rich_error(info.value).field_violations[0][0] == "page_token"

    # Mutations require a request_id (the idempotency key), and nothing is created.
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await registry(channel).CreateApiKey(
            registry_pb2.CreateApiKeyRequest(
                api_key=registry_pb2.ApiKey(display_name="no-id", scopes=[options_pb2.SCOPE_INGEST])
            ),
            metadata=md(stack.admin_key),
        )
    err = rich_error(info.value)
    assert err.code == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in err.field_violations] == ["request_id"]
    listed = await registry(channel).ListApiKeys(
        registry_pb2.ListApiKeysRequest(page_size=1000), metadata=md(stack.admin_key)
    )
    assert "no-id" not in {k.display_name for k in listed.api_keys}


async def test_create_api_key_request_id_is_idempotent(
    stack: RunningStack, channel: grpc.aio.Channel
) -> None:
    request = registry_pb2.CreateApiKeyRequest(
        api_key=registry_pb2.ApiKey(display_name="retried", scopes=[options_pb2.SCOPE_INGEST]),
        request_id=str(uuid.uuid4()),
    )
    first = await registry(channel).CreateApiKey(request, metadata=md(stack.admin_key))
    # The response was "lost": the replay returns the original, secret included.
    replay = await registry(channel).CreateApiKey(request, metadata=md(stack.admin_key))
    assert (replay.api_key.api_key_id, replay.secret) == (first.api_key.api_key_id, first.secret)
    me = await registry(channel).GetCallerIdentity(
        registry_pb2.GetCallerIdentityRequest(), metadata=md(first.secret)
    )
    assert me.api_key_id == first.api_key.api_key_id
    # Once used, a retry still answers the same (tests/security/test_idempotent_keys.py).
    again = await registry(channel).CreateApiKey(request, metadata=md(stack.admin_key))
    assert again.secret == first.secret
    # The same request_id with another payload is refused, as the contract says.
    other = registry_pb2.CreateApiKeyRequest(
        api_key=registry_pb2.ApiKey(display_name="different", scopes=[options_pb2.SCOPE_INGEST]),
        request_id=request.request_id,
    )
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await registry(channel).CreateApiKey(other, metadata=md(stack.admin_key))
    err = rich_error(info.value)
    assert (err.code, err.reason) == (grpc.StatusCode.ALREADY_EXISTS, "REQUEST_ID_REUSED")
    # Exactly one key was created under that name.
    listed = await registry(channel).ListApiKeys(
        registry_pb2.ListApiKeysRequest(page_size=1000), metadata=md(stack.admin_key)
    )
    assert sum(k.display_name == "retried" for k in listed.api_keys) == 1


async def test_tenants_are_isolated(stack: RunningStack, channel: grpc.aio.Channel) -> None:
    created = await create_tenant(channel, stack.admin_key, "acme")
    acme_admin = created.admin_api_key_secret
    me = await registry(channel).GetCallerIdentity(
        registry_pb2.GetCallerIdentityRequest(), metadata=md(acme_admin)
    )
    assert me.tenant_id == created.tenant.tenant_id
    assert not me.operator
    # The tenant never comes from the request: acme's admin sees only acme's keys ...
    listed = await registry(channel).ListApiKeys(
        registry_pb2.ListApiKeysRequest(), metadata=md(acme_admin)
    )
    assert {k.tenant_id for k in listed.api_keys} == {created.tenant.tenant_id}
    # ... and the operator's keys do not exist for it.
    operator_me = await registry(channel).GetCallerIdentity(
        registry_pb2.GetCallerIdentityRequest(), metadata=md(stack.admin_key)
    )
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await registry(channel).GetApiKey(
            registry_pb2.GetApiKeyRequest(api_key_id=operator_me.api_key_id),
            metadata=md(acme_admin),
        )
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await registry(channel).RevokeApiKey(
            registry_pb2.RevokeApiKeyRequest(
                api_key_id=operator_me.api_key_id, request_id=str(uuid.uuid4())
            ),
            metadata=md(acme_admin),
        )
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    # Tenant management is the operator's alone.
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await create_tenant(channel, acme_admin, "evil")
    err = rich_error(info.value)
    assert (err.code, err.reason) == (grpc.StatusCode.PERMISSION_DENIED, "OPERATOR_ONLY")


async def test_list_api_keys_pages_through_everything(
    stack: RunningStack, channel: grpc.aio.Channel
) -> None:
    tenant = await create_tenant(channel, stack.admin_key, "pager")
    admin = tenant.admin_api_key_secret
    for i in range(6):
        await make_key(channel, admin, options_pb2.SCOPE_INGEST, name=f"k{i}")
    seen, token = [], ""
    while True:
        page = await registry(channel).ListApiKeys(
            registry_pb2.ListApiKeysRequest(page_size=3, page_token=token), metadata=md(admin)
        )
        assert len(page.api_keys) <= 3
        seen += [k.api_key_id for k in page.api_keys]
        token = page.next_page_token
        if not token:
            break
    assert len(seen) == len(set(seen)) == 7  # 6 + the tenant's first admin key


async def test_unimplemented_rpc_is_unimplemented_not_internal(
    stack: RunningStack, channel: grpc.aio.Channel
) -> None:
    # Every RPC of the contract is served now, so the generated base class (whose
    # methods are all unimplemented) stands in for a servicer that lags the contract,
    # behind the real interceptor and the stack's real key store.
    from services.app import Runtime
    from services.server.interceptors import RpcInterceptor
    from services.server.policy import rules_for

    descriptor = training_pb2.DESCRIPTOR.services_by_name["TrainingService"]
    runtime = Runtime.create(stack.settings, stack.database_url)
    server = grpc.aio.server(
        interceptors=[RpcInterceptor(runtime.tenancy, rules_for([descriptor]))]
    )
    training_pb2_grpc.add_TrainingServiceServicer_to_server(
        training_pb2_grpc.TrainingServiceServicer(), server
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    train = await make_key(channel, stack.admin_key, options_pb2.SCOPE_TRAIN)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as lagging:
            stub = training_pb2_grpc.TrainingServiceStub(lagging)
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await stub.ListTrainingRuns(
                    training_pb2.ListTrainingRunsRequest(), metadata=md(train.secret)
                )
            err = rich_error(info.value)
            assert (err.code, err.reason) == (grpc.StatusCode.UNIMPLEMENTED, "NOT_IMPLEMENTED")
            # Auth still comes first: no key is UNAUTHENTICATED even on an unimplemented RPC.
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await stub.ListTrainingRuns(training_pb2.ListTrainingRunsRequest())
            assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
    finally:
        await server.stop(0)
        await runtime.close()


async def test_one_json_log_line_per_rpc(stack: RunningStack, channel: grpc.aio.Channel) -> None:
    marker = await make_key(channel, stack.admin_key, options_pb2.SCOPE_INGEST, name="logged")
    log_path = stack.settings.logs_dir / "serve.log"
    lines = [json.loads(x) for x in log_path.read_text().splitlines() if x.startswith("{")]
    rpc_lines = [x for x in lines if x.get("event") == "rpc"]
    create = [
        x for x in rpc_lines if x["method"] == "/rlaas.registry.v1.RegistryService/CreateApiKey"
    ]
    assert create, "no canonical log line for CreateApiKey"
    last = create[-1]
    assert last["tenant"] == "operator"
    assert last["code"] == "OK"
    assert isinstance(last["ms"], float)
    denied = [x for x in rpc_lines if x["code"] == "UNAUTHENTICATED"]
    assert denied and denied[-1]["tenant"] is None
    # Secrets never reach the log.
    assert marker.secret not in log_path.read_text()
    assert stack.admin_key not in log_path.read_text()


async def test_last_admin_key_cannot_be_revoked(
    stack: RunningStack, channel: grpc.aio.Channel
) -> None:
    tenant = await create_tenant(channel, stack.admin_key, "lockout")
    admin = tenant.admin_api_key_secret

    async def revoke(key_id: str, key: str) -> registry_pb2.RevokeApiKeyResponse:
        return await registry(channel).RevokeApiKey(
            registry_pb2.RevokeApiKeyRequest(api_key_id=key_id, request_id=str(uuid.uuid4())),
            metadata=md(key),
        )

    with pytest.raises(grpc.aio.AioRpcError) as info:
        await revoke(tenant.admin_api_key.api_key_id, admin)
    err = rich_error(info.value)
    assert (err.code, err.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "LAST_ADMIN_KEY")
    # With a second admin key the first can go, and it stops working at once.
    second = await make_key(channel, admin, options_pb2.SCOPE_ADMIN)
    await revoke(tenant.admin_api_key.api_key_id, second.secret)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await registry(channel).GetCallerIdentity(
            registry_pb2.GetCallerIdentityRequest(), metadata=md(admin)
        )
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_key_stops_working_at_its_expire_time(
    stack: RunningStack, channel: grpc.aio.Channel
) -> None:
    expire = timestamp_pb2.Timestamp()
    expire.FromDatetime(datetime.now(UTC) + timedelta(seconds=2))
    made = await registry(channel).CreateApiKey(
        registry_pb2.CreateApiKeyRequest(
            api_key=registry_pb2.ApiKey(
                display_name="short-lived", scopes=[options_pb2.SCOPE_INGEST], expire_time=expire
            ),
            request_id=str(uuid.uuid4()),
        ),
        metadata=md(stack.admin_key),
    )
    # Used (and so cached by the server) while valid ...
    await registry(channel).GetCallerIdentity(
        registry_pb2.GetCallerIdentityRequest(), metadata=md(made.secret)
    )
    await asyncio.sleep(2.5)
    # ... and refused after its expiry, although the auth cache TTL (5 s) has not run out.
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await registry(channel).GetCallerIdentity(
            registry_pb2.GetCallerIdentityRequest(), metadata=md(made.secret)
        )
    err = rich_error(info.value)
    assert (err.code, err.reason) == (grpc.StatusCode.UNAUTHENTICATED, "API_KEY_EXPIRED")

    past = timestamp_pb2.Timestamp()
    past.FromDatetime(datetime.now(UTC) - timedelta(minutes=1))
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await registry(channel).CreateApiKey(
            registry_pb2.CreateApiKeyRequest(
                api_key=registry_pb2.ApiKey(
                    display_name="stale", scopes=[options_pb2.SCOPE_INGEST], expire_time=past
                ),
                request_id=str(uuid.uuid4()),
            ),
            metadata=md(stack.admin_key),
        )
    assert rich_error(info.value).field_violations[0][0] == "api_key.expire_time"
