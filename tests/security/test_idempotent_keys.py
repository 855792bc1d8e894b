"""Issue 12, item 7: retrying CreateApiKey killed the key.

16 concurrent identical CreateApiKey calls returned 16 different secrets of which one
worked, and a plain retry invalidated the first secret. A retry (or a concurrent
duplicate) must get the original result, the same working secret included; the same
for CreateTenant's admin key.
"""

from __future__ import annotations

import asyncio
import uuid

import grpc
import pytest

from rlaas.options.v1 import options_pb2
from rlaas.registry.v1 import registry_pb2 as reg
from rlaas.registry.v1 import registry_pb2_grpc
from services.tenancy import keys
from tests.conftest import RunningStack
from tests.helpers import md, new_tenant, rich_error

pytestmark = pytest.mark.integration

DUPLICATES = 16


def _stub(channel: grpc.aio.Channel) -> registry_pb2_grpc.RegistryServiceStub:
    return registry_pb2_grpc.RegistryServiceStub(channel)


async def _identity(channel: grpc.aio.Channel, secret: str) -> reg.GetCallerIdentityResponse:
    return await _stub(channel).GetCallerIdentity(
        reg.GetCallerIdentityRequest(), metadata=md(secret)
    )


async def _reused(call: object) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call  # type: ignore[misc]
    err = rich_error(info.value)
    assert (err.code, err.reason) == (grpc.StatusCode.ALREADY_EXISTS, "REQUEST_ID_REUSED")


@pytest.mark.unit
def test_derived_secrets_depend_on_every_input_and_look_like_random_ones() -> None:
    key = b"k" * 32
    one = keys.derive(key, "0123456789abcdef", "CreateApiKey", "t-1", "r-1")
    assert one == keys.derive(key, "0123456789abcdef", "CreateApiKey", "t-1", "r-1")
    others = {
        keys.derive(b"j" * 32, "0123456789abcdef", "CreateApiKey", "t-1", "r-1").secret,
        keys.derive(key, "0123456789abcdee", "CreateApiKey", "t-1", "r-1").secret,
        keys.derive(key, "0123456789abcdef", "CreateTenant", "t-1", "r-1").secret,
        keys.derive(key, "0123456789abcdef", "CreateApiKey", "t-2", "r-1").secret,
        keys.derive(key, "0123456789abcdef", "CreateApiKey", "t-1", "r-2").secret,
        # Framing: moving a separator does not give the same input.
        keys.derive(key, "0123456789abcdef", "CreateApiKey", "t-1r", "-1").secret,
    }
    assert one.secret not in others and len(others) == 6
    assert keys.parse_key_id(one.secret) == "0123456789abcdef"
    assert len(one.secret) == len(keys.issue("0123456789abcdef").secret)


async def test_concurrent_and_later_retries_of_create_api_key_share_one_working_secret(
    stack: RunningStack, channel: grpc.aio.Channel
) -> None:
    _, admin = await new_tenant(channel, stack.admin_key, "idem-keys")
    request = reg.CreateApiKeyRequest(
        api_key=reg.ApiKey(display_name="retried", scopes=[options_pb2.SCOPE_INGEST]),
        request_id=str(uuid.uuid4()),
    )
    answers = await asyncio.gather(
        *(_stub(channel).CreateApiKey(request, metadata=md(admin)) for _ in range(DUPLICATES))
    )
    assert len({a.api_key.api_key_id for a in answers}) == 1
    assert len({a.secret for a in answers}) == 1
    secret, key_id = answers[0].secret, answers[0].api_key.api_key_id
    listed = await _stub(channel).ListApiKeys(
        reg.ListApiKeysRequest(page_size=1000), metadata=md(admin)
    )
    assert [k.api_key_id for k in listed.api_keys if k.display_name == "retried"] == [key_id]
    me = await _identity(channel, secret)
    assert (me.api_key_id, list(me.scopes)) == (key_id, [options_pb2.SCOPE_INGEST])

    # A later retry, after the key was used, is still the original answer, and the
    # secret it carries still works (the first one was not replaced).
    later = await _stub(channel).CreateApiKey(request, metadata=md(admin))
    assert (later.api_key.api_key_id, later.secret) == (key_id, secret)
    assert (await _identity(channel, secret)).api_key_id == key_id

    # The same request_id for another key keeps its documented error; nothing is made.
    other = reg.CreateApiKeyRequest(request_id=request.request_id)
    other.api_key.CopyFrom(request.api_key)
    other.api_key.display_name = "different"
    await _reused(_stub(channel).CreateApiKey(other, metadata=md(admin)))
    listed = await _stub(channel).ListApiKeys(
        reg.ListApiKeysRequest(page_size=1000), metadata=md(admin)
    )
    assert "different" not in {k.display_name for k in listed.api_keys}

    # The request_id is the tenant's: another tenant's admin gets a key of its own.
    _, admin_b = await new_tenant(channel, stack.admin_key, "idem-keys-b")
    theirs = await _stub(channel).CreateApiKey(request, metadata=md(admin_b))
    assert theirs.api_key.api_key_id != key_id and theirs.secret != secret


async def test_concurrent_and_later_retries_of_create_tenant_share_one_admin_secret(
    stack: RunningStack, channel: grpc.aio.Channel
) -> None:
    name = f"idem-tenant-{uuid.uuid4().hex[:8]}"
    request = reg.CreateTenantRequest(
        tenant=reg.Tenant(display_name=name), request_id=str(uuid.uuid4())
    )
    operator = md(stack.admin_key)
    answers = await asyncio.gather(
        *(_stub(channel).CreateTenant(request, metadata=operator) for _ in range(DUPLICATES))
    )
    assert len({a.tenant.tenant_id for a in answers}) == 1
    assert len({a.admin_api_key.api_key_id for a in answers}) == 1
    assert len({a.admin_api_key_secret for a in answers}) == 1
    tenant_id, secret = answers[0].tenant.tenant_id, answers[0].admin_api_key_secret
    me = await _identity(channel, secret)
    assert (me.tenant_id, list(me.scopes)) == (tenant_id, [options_pb2.SCOPE_ADMIN])
    tenants = await _stub(channel).ListTenants(
        reg.ListTenantsRequest(page_size=1000), metadata=operator
    )
    assert [t.tenant_id for t in tenants.tenants if t.display_name == name] == [tenant_id]
    keys_of_tenant = await _stub(channel).ListApiKeys(reg.ListApiKeysRequest(), metadata=md(secret))
    assert len(keys_of_tenant.api_keys) == 1

    later = await _stub(channel).CreateTenant(request, metadata=operator)
    assert (later.tenant.tenant_id, later.admin_api_key_secret) == (tenant_id, secret)
    assert (await _identity(channel, secret)).tenant_id == tenant_id

    other = reg.CreateTenantRequest(
        tenant=reg.Tenant(display_name=f"{name}-other"), request_id=request.request_id
    )
    await _reused(_stub(channel).CreateTenant(other, metadata=operator))


async def test_the_secret_cannot_be_recomputed_after_the_replay_window(
    stack: RunningStack, channel: grpc.aio.Channel
) -> None:
    """The secret's random salt is erased once the replay window is over: a retry then
    gets FAILED_PRECONDITION and nothing at rest (nor the server secret) can rebuild it."""
    import asyncpg

    _, admin = await new_tenant(channel, stack.admin_key, "keys-window")
    request = reg.CreateApiKeyRequest(
        api_key=reg.ApiKey(display_name="ci", scopes=[options_pb2.SCOPE_INGEST]),
        request_id=str(uuid.uuid4()),
    )
    made = await _stub(channel).CreateApiKey(request, metadata=md(admin))
    key_id = made.api_key.api_key_id
    conn = await asyncpg.connect(stack.database_url)
    try:
        assert await conn.fetchval(
            "SELECT secret_salt IS NOT NULL FROM api_keys WHERE api_key_id = $1", key_id
        )
        await conn.execute(
            "UPDATE api_keys SET create_time = now() - interval '25 hours' WHERE api_key_id = $1",
            key_id,
        )
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await _stub(channel).CreateApiKey(request, metadata=md(admin))
        err = rich_error(info.value)
        assert (err.code, err.reason) == (
            grpc.StatusCode.FAILED_PRECONDITION,
            "API_KEY_SECRET_UNAVAILABLE",
        )
        # The next create anywhere sweeps the expired salt away.
        await _stub(channel).CreateApiKey(
            reg.CreateApiKeyRequest(
                api_key=reg.ApiKey(display_name="other", scopes=[options_pb2.SCOPE_INGEST]),
                request_id=str(uuid.uuid4()),
            ),
            metadata=md(admin),
        )
        assert await conn.fetchval(
            "SELECT secret_salt IS NULL FROM api_keys WHERE api_key_id = $1", key_id
        )
    finally:
        await conn.close()
    # The key itself still works: only the ability to show its secret again is gone.
    assert (await _identity(channel, made.secret)).api_key_id == key_id
