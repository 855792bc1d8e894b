"""Issue 12, item 14: one code for a reused ``request_id``, everywhere, as documented.

The README said INVALID_ARGUMENT while every RPC answered ALREADY_EXISTS (and the
contract documents ALREADY_EXISTS on each mutation). The code is ALREADY_EXISTS with
reason REQUEST_ID_REUSED on every RPC (services.errors.RequestIdReused says why); this
reads the README's sentence and checks RPCs of every service against it.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Awaitable
from typing import Any

import grpc
import pytest
from google.protobuf import duration_pb2
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from temporalio.client import Client

from rlaas.options.v1 import options_pb2
from rlaas.registry.v1 import registry_pb2 as reg
from rlaas.registry.v1 import registry_pb2_grpc
from rlaas.retrieval.v1 import retrieval_pb2 as ret
from rlaas.retrieval.v1 import retrieval_pb2_grpc
from rlaas.telemetry.v1 import telemetry_pb2 as tel
from rlaas.telemetry.v1 import telemetry_pb2_grpc
from rlaas.training.v1 import training_pb2 as pb
from rlaas.training.v1 import training_pb2_grpc
from tests.conftest import RunningStack
from tests.helpers import ROOT, md, new_tenant

pytestmark = pytest.mark.integration


def documented_code() -> grpc.StatusCode:
    readme = " ".join((ROOT / "README.md").read_text().split())
    found = re.search(
        r"same id with a different payload is `([A-Z_]+)` \(`REQUEST_ID_REUSED`\)", readme
    )
    assert found, "the README no longer states the code of a reused request_id"
    return grpc.StatusCode[found.group(1)]


def error_info(err: grpc.aio.AioRpcError) -> error_details_pb2.ErrorInfo:
    status = rpc_status.from_call(err)
    assert status is not None
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return info
    raise AssertionError("no ErrorInfo")


async def reused(what: str, call: Awaitable[Any], request_id: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    err = caught.value
    info = error_info(err)
    assert (err.code(), info.reason) == (documented_code(), "REQUEST_ID_REUSED"), what
    assert info.metadata["field"] == "request_id", what
    assert request_id not in (err.details() or ""), what  # errors echo no input


async def test_every_service_answers_a_reused_request_id_as_the_readme_says(
    stack: RunningStack, channel: grpc.aio.Channel
) -> None:
    assert documented_code() == grpc.StatusCode.ALREADY_EXISTS
    _, admin = await new_tenant(channel, stack.admin_key, "reuse")
    key = md(admin)
    registry = registry_pb2_grpc.RegistryServiceStub(channel)
    telemetry = telemetry_pb2_grpc.TelemetryServiceStub(channel)
    retrieval = retrieval_pb2_grpc.RetrievalServiceStub(channel)
    training = training_pb2_grpc.TrainingServiceStub(channel)

    # Registry: a create, a key, a tenant (the operator's).
    rid = f"reuse-{uuid.uuid4()}"
    await registry.CreateSkill(
        reg.CreateSkillRequest(skill=reg.Skill(skill_id="reuse_a"), request_id=rid), metadata=key
    )
    await reused(
        "CreateSkill",
        registry.CreateSkill(
            reg.CreateSkillRequest(skill=reg.Skill(skill_id="reuse_b"), request_id=rid),
            metadata=key,
        ),
        rid,
    )
    rid = f"reuse-{uuid.uuid4()}"
    api_key = reg.ApiKey(display_name="first", scopes=[options_pb2.SCOPE_INGEST])
    await registry.CreateApiKey(
        reg.CreateApiKeyRequest(api_key=api_key, request_id=rid), metadata=key
    )
    api_key.display_name = "second"
    await reused(
        "CreateApiKey",
        registry.CreateApiKey(
            reg.CreateApiKeyRequest(api_key=api_key, request_id=rid), metadata=key
        ),
        rid,
    )

    # Telemetry: a unary event, the settings, and an event inside a batch.
    rid = f"reuse-{uuid.uuid4()}"

    def interaction(text: str) -> tel.CreateInteractionRequest:
        return tel.CreateInteractionRequest(
            interaction=tel.Interaction(skill="reuse_a", input=tel.InteractionInput(text=text)),
            request_id=rid,
        )

    await telemetry.CreateInteraction(interaction("one"), metadata=key)
    await reused(
        "CreateInteraction", telemetry.CreateInteraction(interaction("two"), metadata=key), rid
    )
    batch = tel.IngestEventBatchesRequest(
        events=[tel.IngestEventsRequest(create_interaction=interaction("three"))]
    )

    async def one() -> AsyncIterator[tel.IngestEventBatchesRequest]:
        yield batch

    [response] = [r async for r in telemetry.IngestEventBatches(one(), metadata=key)]
    assert response.results[0].error.code == documented_code().value[0]

    rid = f"reuse-{uuid.uuid4()}"
    settings = tel.TelemetrySettings(reward_wait_window=duration_pb2.Duration(seconds=60))
    await telemetry.UpdateTelemetrySettings(
        tel.UpdateTelemetrySettingsRequest(settings=settings, request_id=rid), metadata=key
    )
    settings.reward_wait_window.seconds = 120
    await reused(
        "UpdateTelemetrySettings",
        telemetry.UpdateTelemetrySettings(
            tel.UpdateTelemetrySettingsRequest(settings=settings, request_id=rid), metadata=key
        ),
        rid,
    )

    # Retrieval.
    rid = f"reuse-{uuid.uuid4()}"
    await retrieval.CreateIndex(
        ret.CreateIndexRequest(index=ret.Index(index_id="reuse_one"), request_id=rid), metadata=key
    )
    await reused(
        "CreateIndex",
        retrieval.CreateIndex(
            ret.CreateIndexRequest(index=ret.Index(index_id="reuse_two"), request_id=rid),
            metadata=key,
        ),
        rid,
    )

    # Training: a learning loop (a Temporal workflow, not a row).
    rid = f"reuse-{uuid.uuid4()}"
    loop = pb.LearningLoop(
        skill_id="reuse_a",
        config=pb.LearningLoopConfig(
            min_new_feedback=1_000_000, interval=duration_pb2.Duration(seconds=3600)
        ),
    )
    started = await training.StartLearningLoop(
        pb.StartLearningLoopRequest(learning_loop=loop, request_id=rid), metadata=key
    )
    try:
        loop.display_name = "another"
        await reused(
            "StartLearningLoop",
            training.StartLearningLoop(
                pb.StartLearningLoopRequest(learning_loop=loop, request_id=rid), metadata=key
            ),
            rid,
        )
    finally:
        temporal = await Client.connect(stack.settings.temporal_target)
        await temporal.get_workflow_handle(started.learning_loop.workflow_id).terminate("test over")
