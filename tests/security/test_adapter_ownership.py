"""Issue 12, item 1: one tenant could serve another tenant's adapter, and read the
SHA-256 of any file the server could open (it answered with `/etc/shadow`'s).

Now adapters are artifacts of the tenant that registers them: uploaded through the API
(or written by its training runs) under the tenant's own prefix of the object store; a
policy may name nothing else, no path outside the store is opened on a caller's behalf,
and errors disclose no hash and no existence."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import grpc
import pytest
from sqlalchemy import text

from rlaas.inference.v1 import inference_pb2 as inf
from rlaas.inference.v1 import inference_pb2_grpc
from rlaas.options.v1 import options_pb2
from rlaas.registry.v1 import registry_pb2 as reg
from rlaas.registry.v1 import registry_pb2_grpc
from rlaas.telemetry.v1 import telemetry_pb2 as tel
from services.db.engine import create_engine
from services.errors import InvalidArgument
from services.objects.store import LocalObjectStore, ObjectStore, S3ObjectStore
from services.registry.artifacts import owned_adapter_key
from tests.conftest import RunningStack
from tests.helpers import md, new_tenant, rich_error, scoped_key, stored_path, upload_adapter

pytestmark = pytest.mark.integration
HEX64 = re.compile(r"[0-9a-f]{64}")


def rid() -> str:
    return str(uuid.uuid4())


async def _tenant_with_skill(
    channel: grpc.aio.Channel, stack: RunningStack, name: str
) -> tuple[str, str]:
    tenant_id, admin = await new_tenant(channel, stack.admin_key, name)
    await registry_pb2_grpc.RegistryServiceStub(channel).CreateSkill(
        reg.CreateSkillRequest(skill=reg.Skill(skill_id="support_email"), request_id=rid()),
        metadata=md(admin),
    )
    return tenant_id, admin


async def _create_policy(
    channel: grpc.aio.Channel, key: str, adapter: reg.Adapter
) -> reg.CreatePolicyResponse:
    policy = reg.Policy(skill_id="support_email", base_model="tiny", adapter=adapter)
    return await registry_pb2_grpc.RegistryServiceStub(channel).CreatePolicy(
        reg.CreatePolicyRequest(policy=policy, request_id=rid()), metadata=md(key)
    )


async def _refused(channel: grpc.aio.Channel, key: str, adapter: reg.Adapter) -> tuple[str, str]:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await _create_policy(channel, key, adapter)
    err = rich_error(info.value)
    trailers = repr(info.value.trailing_metadata())
    return f"{err.code.name}/{err.reason}/{err.field_violations}", trailers


async def test_another_tenants_adapter_cannot_be_registered(
    stack: RunningStack, channel: grpc.aio.Channel
) -> None:
    victim_id, victim = await _tenant_with_skill(channel, stack, "adapter-victim")
    _, thief = await _tenant_with_skill(channel, stack, "adapter-thief")
    stolen = await upload_adapter(channel, victim, stack.tiny.adapters["a"][0])
    assert (await _create_policy(channel, victim, stolen)).policy.adapter.sha256 == stolen.sha256

    verdict, trailers = await _refused(channel, thief, stolen)
    assert stolen.sha256 not in trailers or stolen.sha256 in str(stolen)
    assert verdict.startswith("INVALID_ARGUMENT/ADAPTER_NOT_OWNED/")
    assert "policy.adapter.artifact_uri" in verdict
    assert victim_id not in verdict

    # Other spellings of a path into the victim's artifacts are refused the same way.
    root = stolen.artifact_uri.split("/adapters/")[0]
    thief_id = (
        await registry_pb2_grpc.RegistryServiceStub(channel).GetCallerIdentity(
            reg.GetCallerIdentityRequest(), metadata=md(thief)
        )
    ).tenant_id
    tail = stolen.artifact_uri.split("/adapters/")[1]
    for spelling in (
        f"{root}/adapters/{thief_id}/../{tail}",
        f"{root}/adapters/{thief_id}/%2e%2e/{tail}",
        f"{root}/adapters/{thief_id}/./../{tail}",
        stolen.artifact_uri.replace("file:///", "file://localhost/"),
    ):
        verdict, _ = await _refused(
            channel, thief, reg.Adapter(artifact_uri=spelling, sha256=stolen.sha256)
        )
        assert verdict.startswith("INVALID_ARGUMENT/ADAPTER_NOT_OWNED/"), spelling


async def test_no_hash_oracle_and_no_existence_oracle(
    stack: RunningStack, channel: grpc.aio.Channel, tmp_path: Path
) -> None:
    _, attacker = await _tenant_with_skill(channel, stack, "adapter-oracle")
    declared = "0" * 64
    present = tmp_path / "present.bin"
    present.write_bytes(b"a file the server can read")
    answers = set()
    for uri in (
        "file:///etc/passwd",
        present.as_uri(),
        (tmp_path / "absent").as_uri(),
        f"file://{stack.settings.objects_dir.resolve()}/adapters/nobody/x",
        "s3://bucket/adapters/x",
        "/etc/hostname",
    ):
        verdict, trailers = await _refused(
            channel, attacker, reg.Adapter(artifact_uri=uri, sha256=declared)
        )
        answers.add(verdict)
        # No hash of anything but the one the caller declared comes back.
        assert set(HEX64.findall(trailers)) <= {declared}, uri
    # Present and absent paths, readable or not, answer exactly alike.
    assert len(answers) == 1, answers

    # Its own artifact with a wrong hash: refused without disclosing the real one.
    own = await upload_adapter(channel, attacker, stack.tiny.adapters["b"][0])
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await _create_policy(
            channel, attacker, reg.Adapter(artifact_uri=own.artifact_uri, sha256=declared)
        )
    err = rich_error(info.value)
    assert (err.code, err.reason) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "ADAPTER_SHA256_MISMATCH",
    )
    assert own.sha256 not in repr(info.value.trailing_metadata()) + (err.message or "")


async def test_upload_is_content_addressed_and_checked(
    stack: RunningStack, channel: grpc.aio.Channel, tmp_path: Path
) -> None:
    tenant_id, admin = await _tenant_with_skill(channel, stack, "adapter-upload")
    stub = registry_pb2_grpc.RegistryServiceStub(channel)
    first = await upload_adapter(channel, admin, stack.tiny.adapters["a"][0])
    again = await upload_adapter(channel, admin, stack.tiny.adapters["a"][0])
    assert first == again and first.sha256 == stack.tiny.adapters["a"][1]
    assert f"/adapters/{tenant_id}/uploads/" in first.artifact_uri
    assert (stored_path(first.artifact_uri) / "adapter_model.safetensors").is_file()

    header = reg.UploadAdapterRequest(header=reg.AdapterUploadHeader())
    config = reg.UploadAdapterRequest(
        chunk=reg.AdapterFileChunk(
            file=reg.AdapterFileChunk.FILE_CONFIG, data=b'{"peft_type": "LORA", "r": 4}'
        )
    )

    def weights(data: bytes) -> reg.UploadAdapterRequest:
        return reg.UploadAdapterRequest(
            chunk=reg.AdapterFileChunk(file=reg.AdapterFileChunk.FILE_WEIGHTS, data=data)
        )

    cases = {
        "no header": ([config, weights(b"x")], "header"),
        "not safetensors": ([header, config, weights(b"not a tensor file")], "chunk.data"),
        "no weights": ([header, config], "chunk.file"),
        "no file named": ([header, reg.UploadAdapterRequest(chunk=reg.AdapterFileChunk())], ""),
        "wrong declared sha": (
            [
                reg.UploadAdapterRequest(header=reg.AdapterUploadHeader(sha256="1" * 64)),
                *_upload_of(stack),
            ],
            "header.sha256",
        ),
    }
    for name, (stream, field) in cases.items():
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stub.UploadAdapter(iter(stream), metadata=md(admin))
        err = rich_error(info.value)
        assert err.code == grpc.StatusCode.INVALID_ARGUMENT, name
        assert not field or field in [f for f, _ in err.field_violations], (name, err)

    # Uploading is the tenant admin's, like registering policies.
    train = await scoped_key(channel, admin, options_pb2.SCOPE_TRAIN, options_pb2.SCOPE_DEPLOY)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await upload_adapter(channel, train, stack.tiny.adapters["a"][0])
    assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED


def _upload_of(stack: RunningStack) -> list[reg.UploadAdapterRequest]:
    from rlaas_sdk.adapters import upload_requests

    return list(upload_requests(stored_path(stack.tiny.adapters["a"][0])))[1:]


async def test_gateway_refuses_a_stored_policy_naming_a_foreign_adapter(
    stack: RunningStack, channel: grpc.aio.Channel
) -> None:
    """Defence in depth for policies stored before the registry checked ownership: the
    gateway serves only the policy's own tenant's artifacts."""
    _, victim = await _tenant_with_skill(channel, stack, "adapter-legacy-victim")
    thief_id, thief = await _tenant_with_skill(channel, stack, "adapter-legacy-thief")
    stolen = await upload_adapter(channel, victim, stack.tiny.adapters["a"][0])
    own = await upload_adapter(channel, thief, stack.tiny.adapters["a"][0])
    registry = registry_pb2_grpc.RegistryServiceStub(channel)
    baseline = (await _create_policy(channel, thief, reg.Adapter())).policy
    await registry.PromotePolicy(
        reg.PromotePolicyRequest(
            skill_id="support_email", policy_id=baseline.policy_id, reason="r", request_id=rid()
        ),
        metadata=md(thief),
    )
    made = (await _create_policy(channel, thief, own)).policy
    # What an old server let through: rewrite the stored policy to the victim's artifact.
    engine = create_engine(stack.database_url, pool_size=1)
    try:
        async with engine.begin() as conn:
            row = await conn.execute(
                text("SELECT payload FROM policies WHERE tenant_id = :t AND version = 2"),
                {"t": thief_id},
            )
            content = reg.Policy.FromString(row.scalar_one())
            content.adapter.artifact_uri = stolen.artifact_uri
            await conn.execute(
                text("UPDATE policies SET payload = :p WHERE tenant_id = :t AND version = 2"),
                {"p": content.SerializeToString(), "t": thief_id},
            )
    finally:
        await engine.dispose()
    infer = await scoped_key(channel, thief, options_pb2.SCOPE_INFER)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await inference_pb2_grpc.InferenceServiceStub(channel).Infer(
            inf.InferRequest(
                skill="support_email",
                policy_id=made.policy_id,
                messages=[tel.ChatMessage(role=tel.ChatMessage.ROLE_USER, content="hello")],
                request_id=rid(),
            ),
            metadata=md(infer),
        )
    err = rich_error(info.value)
    assert (err.code, err.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "ADAPTER_NOT_OWNED")


@pytest.mark.unit
@pytest.mark.parametrize(
    "objects",
    [
        LocalObjectStore(Path("/srv/objects")),
        S3ObjectStore("minio:9000", "bucket", "k", "s", secure=False),
    ],
    ids=["local", "s3"],
)
def test_owned_adapter_key_accepts_only_the_canonical_uri_of_own_artifacts(
    objects: ObjectStore,
) -> None:
    own = objects.uri("adapters/t1/uploads/abc")
    assert owned_adapter_key(objects, "t1", own) == "adapters/t1/uploads/abc"
    assert owned_adapter_key(objects, "t1", own + "/") == "adapters/t1/uploads/abc"
    for uri in (
        objects.uri("adapters/t2/uploads/abc"),
        objects.uri("adapters/t1"),
        own.replace("/t1/", "/t1/../t2/"),
        own.replace("/t1/", "/t1/%2e%2e/t2/"),
        own.replace("/t1/", "/t1//"),
        own.replace("/uploads/", "/./uploads/"),
        "file:///etc/shadow",
        "/etc/shadow",
        "",
    ):
        with pytest.raises(InvalidArgument):
            owned_adapter_key(objects, "t1", uri)
