"""Issue 12, item 6: crafted page tokens gave INTERNAL on List RPCs.

Every List RPC, read from the descriptors, is called with hostile tokens: garbage,
well-formed JSON of the wrong shape, JSON nested 10,000 deep, oversized, another
tenant's, another list's, one byte flipped. Each must be INVALID_ARGUMENT naming
``page_token`` (never INTERNAL/UNKNOWN), and the token is judged before any resource is
looked up. The tokens "from elsewhere" are real ones: some the server issued, the rest
sealed with the running stack's own server secret for the other tenant or list, so
only the binding can be what refuses them.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import grpc
import pytest
from google.api import field_behavior_pb2
from google.protobuf import message_factory
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor
from google.protobuf.message import Message

from rlaas.options.v1 import options_pb2
from rlaas.registry.v1 import registry_pb2 as reg
from rlaas.registry.v1 import registry_pb2_grpc
from services import server_secret
from services.errors import InvalidArgument
from services.paging import MAX_PAGE_TOKEN_CHARS, PageTokens, next_page_token
from tests.conftest import RunningStack
from tests.helpers import md, new_tenant, rich_error, scoped_key
from tests.security.descriptors import all_methods

pytestmark = pytest.mark.integration

LISTS = [(s, m) for s, m in all_methods() if m.name.startswith("List")]


def _ids(lists: list[tuple[ServiceDescriptor, MethodDescriptor]]) -> list[str]:
    return [m.name for _, m in lists]


def _request(method: MethodDescriptor, token: str = "", **fields: object) -> Message:
    """A request for ``method``: required strings get a plausible id (the token must be
    refused before anything is looked up, so it need not exist)."""
    request = message_factory.GetMessageClass(method.input_type)()
    request.page_token = token  # type: ignore[attr-defined]
    for f in method.input_type.fields:
        behaviors = f.GetOptions().Extensions[field_behavior_pb2.field_behavior]
        if field_behavior_pb2.REQUIRED in behaviors and f.type == f.TYPE_STRING:
            setattr(request, f.name, "probe_parent")
    for name, value in fields.items():
        setattr(request, name, value)
    return request


async def _call(
    channel: grpc.aio.Channel, service: ServiceDescriptor, method: MethodDescriptor,
    request: Message, key: str,
) -> Message:  # fmt: skip
    response = message_factory.GetMessageClass(method.output_type)
    rpc = channel.unary_unary(
        f"/{service.full_name}/{method.name}",
        request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=response.FromString,
    )
    result: Message = await rpc(request, metadata=md(key), timeout=30)
    return result


def _flip(token: str, at: int) -> str:
    raw = bytearray(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    raw[at % len(raw)] ^= 0x01
    return base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


# ---- the sealing itself, without a server -------------------------------------------


@pytest.mark.unit
def test_tokens_round_trip_only_where_they_were_issued() -> None:
    tokens = PageTokens(b"k" * 32)
    skills = reg.ListSkillsRequest(page_size=2)
    page = tokens.bind("t-a", skills)
    assert page.cursor == "" and page.seal("") == ""
    token = page.seal(next_page_token([1, 2, 3], 2, lambda i: [i]))
    skills.page_token = token
    skills.page_size = 7  # the page size may change between pages
    cursor = tokens.bind("t-a", skills).cursor
    assert json.loads(base64.urlsafe_b64decode(cursor)) == [2]

    def refused(tenant: str, request: Message) -> bool:
        try:
            tokens.bind(tenant, request)
        except InvalidArgument as err:
            return [v.field for v in err.violations] == ["page_token"]
        return False

    assert refused("t-b", skills)  # another tenant
    assert refused("t-a", reg.ListDeploymentsRequest(page_token=token))  # another list
    assert refused("t-a", reg.ListPoliciesRequest(page_token=token))
    assert refused("t-a", reg.ListPoliciesRequest(page_token=token, skill_id="x"))
    assert refused("t-a", reg.ListSkillsRequest(page_token=_flip(token, 3)))
    assert refused("t-a", reg.ListSkillsRequest(page_token=_flip(token, -1)))
    assert refused("t-a", reg.ListSkillsRequest(page_token=token[:-2]))
    assert refused("t-a", reg.ListSkillsRequest(page_token=token + "A"))
    other = PageTokens(b"x" * 32)  # another server secret
    assert refused("t-a", reg.ListSkillsRequest(page_token=other.seal(b"\0" * 32, "W10")))
    huge = "A" * (MAX_PAGE_TOKEN_CHARS + 1)
    assert refused("t-a", reg.ListSkillsRequest(page_token=huge))


# ---- every List RPC of the running server ---------------------------------------------


def _hostile() -> Iterator[tuple[str, str]]:
    yield "garbage", "!!not a token!!"
    yield "wrong-shaped JSON", _b64(json.dumps([{"a": {"b": [1, None, "x"]}}]))
    yield "JSON object", _b64(json.dumps({"after": ["x"]}))
    yield "10k-deep JSON", _b64("[" * 10_000 + "]" * 10_000)
    yield "100 KB", "A" * 100_000
    yield "unicode", "ü" * 40
    yield "bad length", "A" * 33  # a length base64 never makes


@pytest.fixture(scope="module")
async def tenants(stack: RunningStack, channel: grpc.aio.Channel) -> dict[str, tuple[str, str]]:
    """Two tenants with three keys each (so ListApiKeys pages at size 1): name ->
    (tenant id, admin key). The operator lists tenants."""
    out = {}
    for name in ("tokens-a", "tokens-b"):
        tenant_id, admin = await new_tenant(channel, stack.admin_key, name)
        for _ in range(2):
            await scoped_key(channel, admin, options_pb2.SCOPE_INGEST)
        out[name] = (tenant_id, admin)
    return out


def _caller(
    method: MethodDescriptor, stack: RunningStack, tenants: dict[str, tuple[str, str]]
) -> tuple[str, str]:
    # ListTenants is the operator's; every other list is tenant A's.
    return ("operator", stack.admin_key) if method.name == "ListTenants" else tenants["tokens-a"]


async def _refused(
    channel: grpc.aio.Channel, service: ServiceDescriptor, method: MethodDescriptor,
    request: Message, key: str, what: str,
) -> None:  # fmt: skip
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await _call(channel, service, method, request, key)
    err = rich_error(info.value)
    assert err.code == grpc.StatusCode.INVALID_ARGUMENT, (method.name, what, err)
    assert [f for f, _ in err.field_violations] == ["page_token"], (method.name, what, err)


async def _issued_api_key_token(channel: grpc.aio.Channel, key: str) -> str:
    page = await registry_pb2_grpc.RegistryServiceStub(channel).ListApiKeys(
        reg.ListApiKeysRequest(page_size=1), metadata=md(key)
    )
    assert page.next_page_token
    return page.next_page_token


@pytest.mark.parametrize(("service", "method"), LISTS, ids=_ids(LISTS))
async def test_hostile_tokens_are_invalid_argument_on_every_list(
    stack: RunningStack,
    channel: grpc.aio.Channel,
    tenants: dict[str, tuple[str, str]],
    service: ServiceDescriptor,
    method: MethodDescriptor,
) -> None:
    tenant_id, key = _caller(method, stack, tenants)
    for what, token in _hostile():
        await _refused(channel, service, method, _request(method, token), key, what)

    # Real tokens from elsewhere: the server's own, and ones sealed with its secret.
    sealer = PageTokens(server_secret.embedded_secret(stack.settings).encode())
    cursor = next_page_token([1, 2], 1, lambda i: [i])
    own = sealer.bind(tenant_id, _request(method)).seal(cursor)
    other_tenant = tenants["tokens-b"][0]
    elsewhere = {
        "another tenant's": _request(
            method, sealer.bind(other_tenant, _request(method)).seal(cursor)
        ),
        "another tenant's, issued": _request(
            method, await _issued_api_key_token(channel, tenants["tokens-b"][1])
        ),
        "one byte flipped (tag)": _request(method, _flip(own, 0)),
        "one byte flipped (cursor)": _request(method, _flip(own, -1)),
    }
    if "skill_id" in method.input_type.fields_by_name:
        elsewhere["a filter changed"] = _request(method, own, skill_id="another_skill")
    for _, other in LISTS:
        if other.name != method.name:
            token = sealer.bind(tenant_id, _request(other)).seal(cursor)
            elsewhere[f"{other.name}'s"] = _request(method, token)
    if method.name != "ListApiKeys":
        elsewhere["ListApiKeys', issued"] = _request(
            method, await _issued_api_key_token(channel, tenants["tokens-a"][1])
        )
    for what, request in elsewhere.items():
        await _refused(channel, service, method, request, key, what)


async def test_real_pages_still_page_and_a_changed_filter_starts_over(
    stack: RunningStack, channel: grpc.aio.Channel, tenants: dict[str, tuple[str, str]]
) -> None:
    registry = registry_pb2_grpc.RegistryServiceStub(channel)
    _, key = tenants["tokens-a"]
    seen, token, pages = [], "", 0
    while True:
        # Page size may change between pages; the token stays valid.
        page = await registry.ListApiKeys(
            reg.ListApiKeysRequest(page_size=1 + pages % 2, page_token=token), metadata=md(key)
        )
        seen += [k.api_key_id for k in page.api_keys]
        pages += 1
        token = page.next_page_token
        if not token:
            break
    everything = await registry.ListApiKeys(reg.ListApiKeysRequest(), metadata=md(key))
    assert seen == [k.api_key_id for k in everything.api_keys] and len(seen) == 3
    assert pages == 2  # 1 + 2 keys

    first = await registry.ListApiKeys(reg.ListApiKeysRequest(page_size=1), metadata=md(key))
    changed = reg.ListApiKeysRequest(page_token=first.next_page_token, show_revoked=True)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await registry.ListApiKeys(changed, metadata=md(key))
    err = rich_error(info.value)
    assert (err.code, [f for f, _ in err.field_violations]) == (
        grpc.StatusCode.INVALID_ARGUMENT, ["page_token"],
    )  # fmt: skip
    # The REST bridge carries the same opaque token.
    import aiohttp

    async with aiohttp.ClientSession() as http:
        url = f"{stack.rest_url}/v1/apiKeys"
        headers = {"authorization": f"Bearer {key}"}
        async with http.get(url, params={"pageSize": "1"}, headers=headers) as reply:
            body = await reply.json()
        async with http.get(
            url, params={"pageSize": "2", "pageToken": body["nextPageToken"]}, headers=headers
        ) as reply:
            assert reply.status == 200, await reply.text()
            rest_ids = [k["apiKeyId"] for k in (await reply.json())["apiKeys"]]
    assert [body["apiKeys"][0]["apiKeyId"], *rest_ids] == seen
