"""Issue 12, item 9: loose validation, through the real gRPC server.

StartLearningLoop took a skill that does not exist (and control characters in its id)
and ran iterations; Infer took a NaN temperature and a negative top_k; telemetry took
NaN/Inf costs and negative token counts; dataset reward weights took Inf; a tenant
could start loops without bound. Each is now refused naming its field.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import uuid
from collections.abc import AsyncIterator, Awaitable
from datetime import UTC, datetime
from typing import Any

import grpc
import pytest
from google.protobuf import duration_pb2
from pydantic import ValidationError
from temporalio.client import Client
from temporalio.service import RPCError

from rlaas.inference.v1 import inference_pb2 as inf
from rlaas.inference.v1 import inference_pb2_grpc
from rlaas.registry.v1 import registry_pb2 as reg
from rlaas.registry.v1 import registry_pb2_grpc
from rlaas.telemetry.v1 import telemetry_pb2 as tel
from rlaas.telemetry.v1 import telemetry_pb2_grpc
from rlaas.training.v1 import training_pb2 as pb
from rlaas.training.v1 import training_pb2_grpc
from services.rewards.engines import RewardConfig
from tests.conftest import RunningStack
from tests.helpers import md, new_tenant, rich_error

pytestmark = pytest.mark.integration

NAN, INF = math.nan, math.inf


def rid() -> str:
    return str(uuid.uuid4())


async def refused(call: Awaitable[Any], code: grpc.StatusCode = grpc.StatusCode.INVALID_ARGUMENT):
    """The error's (reason, violated fields, metadata field), after checking its code."""
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    err = rich_error(info.value)
    assert err.code == code, err
    return err.reason, [f for f, _ in err.field_violations], err


@pytest.fixture(scope="module")
async def tenant(stack: RunningStack, channel: grpc.aio.Channel) -> tuple[str, str]:
    """A tenant with one skill, ``support_email`` (tenant id, admin key)."""
    tenant_id, admin = await new_tenant(channel, stack.admin_key, "validation")
    await registry_pb2_grpc.RegistryServiceStub(channel).CreateSkill(
        reg.CreateSkillRequest(skill=reg.Skill(skill_id="support_email"), request_id=rid()),
        metadata=md(admin),
    )
    return tenant_id, admin


def _loop(skill_id: str) -> pb.LearningLoop:
    # Waits for far more feedback than a test makes: it never trains.
    return pb.LearningLoop(
        skill_id=skill_id,
        config=pb.LearningLoopConfig(
            min_new_feedback=1_000_000, interval=duration_pb2.Duration(seconds=3600)
        ),
    )


async def test_a_loop_needs_a_valid_existing_skill(
    channel: grpc.aio.Channel, tenant: tuple[str, str]
) -> None:
    _, admin = tenant
    t = training_pb2_grpc.TrainingServiceStub(channel)
    for bad in ("support\x07email", "support_email\n", "support\x00email", "Support Email", ""):
        request = pb.StartLearningLoopRequest(learning_loop=_loop(bad), request_id=rid())
        _, fields, _ = await refused(t.StartLearningLoop(request, metadata=md(admin)))
        assert fields == ["learning_loop.skill_id"], repr(bad)
    request = pb.StartLearningLoopRequest(learning_loop=_loop("no_such_skill"), request_id=rid())
    _, _, err = await refused(
        t.StartLearningLoop(request, metadata=md(admin)), grpc.StatusCode.NOT_FOUND
    )
    assert "no_such_skill" in err.message
    listed = await t.ListLearningLoops(pb.ListLearningLoopsRequest(), metadata=md(admin))
    assert not listed.learning_loops  # nothing was started, so nothing iterates


@pytest.fixture
async def capped_server(stack: RunningStack) -> AsyncIterator[str]:
    """A second server on the stack's database and Temporal, capped at 2 loops per
    tenant (the stack's own keeps the default): its target."""
    from services.app import Runtime, start_server

    settings = stack.settings.model_copy(update={"max_learning_loops_per_tenant": 2})
    runtime = Runtime.create(settings, stack.database_url)
    running = await start_server(runtime, ["training"], port=0)
    try:
        yield f"127.0.0.1:{running.port}"
    finally:
        await running.stop(0)
        await runtime.close()


async def test_loops_per_tenant_are_capped_even_under_a_burst(
    stack: RunningStack, channel: grpc.aio.Channel, capped_server: str
) -> None:
    _, admin = await new_tenant(channel, stack.admin_key, "validation-cap")
    skills = [f"capped_{i}" for i in range(6)]  # one loop per skill: a loop each
    for skill in skills:
        await registry_pb2_grpc.RegistryServiceStub(channel).CreateSkill(
            reg.CreateSkillRequest(skill=reg.Skill(skill_id=skill), request_id=rid()),
            metadata=md(admin),
        )
    temporal = await Client.connect(stack.settings.temporal_target)
    started: list[pb.LearningLoop] = []
    try:
        async with grpc.aio.insecure_channel(capped_server) as capped:
            t = training_pb2_grpc.TrainingServiceStub(capped)
            requests = [
                pb.StartLearningLoopRequest(learning_loop=_loop(skill), request_id=rid())
                for skill in skills[:5]
            ]
            results = await asyncio.gather(
                *(t.StartLearningLoop(r, metadata=md(admin)) for r in requests),
                return_exceptions=True,
            )
            started = [
                r.learning_loop for r in results if isinstance(r, pb.StartLearningLoopResponse)
            ]
            errors = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
            assert len(started) == 2 and len(errors) == 3, results
            for error in errors:
                err = rich_error(error)
                assert (err.code, err.reason) == (
                    grpc.StatusCode.RESOURCE_EXHAUSTED, "LEARNING_LOOP_LIMIT",
                )  # fmt: skip
            # A retry of an accepted start is not a new loop: it still answers.
            accepted = next(
                r for r, res in zip(requests, results, strict=True)
                if isinstance(res, pb.StartLearningLoopResponse)
            )  # fmt: skip
            again = await t.StartLearningLoop(accepted, metadata=md(admin))
            assert again.learning_loop.learning_loop_id in {x.learning_loop_id for x in started}
            # A tenant at its cap stops one loop and has room again.
            stopped = await t.StopLearningLoop(
                pb.StopLearningLoopRequest(
                    learning_loop_id=started[0].learning_loop_id, request_id=rid()
                ),
                metadata=md(admin),
            )
            assert stopped.learning_loop.state == pb.LearningLoop.STATE_STOPPED
            fresh = await t.StartLearningLoop(
                pb.StartLearningLoopRequest(learning_loop=_loop(skills[5]), request_id=rid()),
                metadata=md(admin),
            )
            assert fresh.learning_loop.state == pb.LearningLoop.STATE_RUNNING
            started.append(fresh.learning_loop)
    finally:
        for loop in started:
            with contextlib.suppress(RPCError):  # the stopped one has ended
                await temporal.get_workflow_handle(loop.workflow_id).terminate("test over")


async def test_a_skill_has_one_open_loop_at_a_time(
    stack: RunningStack, channel: grpc.aio.Channel
) -> None:
    _, admin = await new_tenant(channel, stack.admin_key, "validation-one-loop")
    for skill in ("orders", "orders_eu"):  # one id is a prefix of the other
        await registry_pb2_grpc.RegistryServiceStub(channel).CreateSkill(
            reg.CreateSkillRequest(skill=reg.Skill(skill_id=skill), request_id=rid()),
            metadata=md(admin),
        )
    t = training_pb2_grpc.TrainingServiceStub(channel)
    temporal = await Client.connect(stack.settings.temporal_target)
    started: list[pb.LearningLoop] = []

    async def start(skill: str, request_id: str = "") -> pb.LearningLoop:
        request = pb.StartLearningLoopRequest(
            learning_loop=_loop(skill), request_id=request_id or rid()
        )
        loop = (await t.StartLearningLoop(request, metadata=md(admin))).learning_loop
        started.append(loop)
        return loop

    try:
        first_id = rid()
        first = await start("orders", first_id)
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await start("orders")
        err = rich_error(info.value)
        assert (err.code, err.reason) == (
            grpc.StatusCode.FAILED_PRECONDITION, "LEARNING_LOOP_EXISTS",
        )  # fmt: skip
        assert first.learning_loop_id in err.message
        # A retry of the open loop's own start still answers; another skill may start.
        assert (await start("orders", first_id)).learning_loop_id == first.learning_loop_id
        assert (await start("orders_eu")).state == pb.LearningLoop.STATE_RUNNING
        # Paused still counts; stopped frees the skill.
        await t.PauseLearningLoop(
            pb.PauseLearningLoopRequest(learning_loop_id=first.learning_loop_id, request_id=rid()),
            metadata=md(admin),
        )
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await start("orders")
        assert rich_error(info.value).reason == "LEARNING_LOOP_EXISTS"
        await t.StopLearningLoop(
            pb.StopLearningLoopRequest(learning_loop_id=first.learning_loop_id, request_id=rid()),
            metadata=md(admin),
        )
        assert (await start("orders")).state == pb.LearningLoop.STATE_RUNNING
    finally:
        for loop in started:
            with contextlib.suppress(RPCError):  # the stopped one has ended
                await temporal.get_workflow_handle(loop.workflow_id).terminate("test over")


async def test_infer_refuses_non_finite_and_out_of_range_sampling(
    channel: grpc.aio.Channel, tenant: tuple[str, str]
) -> None:
    _, admin = tenant
    stub = inference_pb2_grpc.InferenceServiceStub(channel)
    cases = {
        "temperature": NAN,
        "top_p": INF,
        "top_k": -1,
        "repetition_penalty": NAN,
        "presence_penalty": -INF,
        "frequency_penalty": NAN,
    }
    for name, value in cases.items():
        request = inf.InferRequest(
            skill="support_email",
            messages=[tel.ChatMessage(role=tel.ChatMessage.ROLE_USER, content="hi")],
            request_id=rid(),
        )
        setattr(request.generation, name, value)
        _, fields, _ = await refused(stub.Infer(request, metadata=md(admin)))
        assert fields == [f"generation.{name}"], name


async def test_telemetry_refuses_non_finite_numbers_and_negative_counts(
    channel: grpc.aio.Channel, tenant: tuple[str, str]
) -> None:
    _, admin = tenant
    stub = telemetry_pb2_grpc.TelemetryServiceStub(channel)

    def interaction(**kw: Any) -> tel.CreateInteractionRequest:
        return tel.CreateInteractionRequest(
            interaction=tel.Interaction(
                skill="support_email", input=tel.InteractionInput(text="hello"), **kw
            ),
            request_id=rid(),
        )

    chunk = tel.RetrievedChunk(text="a chunk", score=INF)
    for request, field in (
        (interaction(cost_usd=NAN), "interaction.cost_usd"),
        (interaction(cost_usd=INF), "interaction.cost_usd"),
        (interaction(cost_usd=-1), "interaction.cost_usd"),
        (interaction(usage=tel.TokenUsage(prompt_tokens=-5)), "interaction.usage.prompt_tokens"),
        (interaction(usage=tel.TokenUsage(total_tokens=-1)), "interaction.usage.total_tokens"),
        (interaction(retrieved_chunks=[chunk]), "interaction.retrieved_chunks[0].score"),
    ):
        _, fields, _ = await refused(stub.CreateInteraction(request, metadata=md(admin)))
        assert fields == [field], field

    made = await stub.CreateInteraction(interaction(), metadata=md(admin))
    iid = made.interaction.interaction_id
    output = tel.RecordOutputRequest(
        interaction_id=iid,
        output=tel.Output(text="answer", cost_usd=INF, usage=tel.TokenUsage(completion_tokens=-2)),
        request_id=rid(),
    )
    _, fields, _ = await refused(stub.RecordOutput(output, metadata=md(admin)))
    assert sorted(fields) == ["output.cost_usd", "output.usage.completion_tokens"]
    result = tel.RecordTaskResultRequest(
        interaction_id=iid,
        task_result=tel.TaskResult(metrics={"csat": NAN, "handle_time_s": 3.0}),
        request_id=rid(),
    )
    _, fields, _ = await refused(stub.RecordTaskResult(result, metadata=md(admin)))
    assert fields == ["task_result.metrics['csat']"]

    # The batch path refuses the same event, alone, with the same code.
    bad = interaction(cost_usd=NAN)
    good = interaction()
    batch = tel.IngestEventBatchesRequest(
        events=[
            tel.IngestEventsRequest(create_interaction=bad),
            tel.IngestEventsRequest(create_interaction=good),
        ]
    )

    async def one() -> AsyncIterator[tel.IngestEventBatchesRequest]:
        yield batch

    [response] = [r async for r in stub.IngestEventBatches(one(), metadata=md(admin))]
    outcomes = [tel.IngestEventsResponse.Outcome.Name(r.outcome) for r in response.results]
    assert outcomes == ["OUTCOME_REJECTED", "OUTCOME_ACCEPTED"]
    assert response.results[0].error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]


@pytest.mark.unit
def test_reward_configs_refuse_non_finite_weights_from_any_source() -> None:
    for value in (INF, NAN):
        with pytest.raises(ValidationError):
            RewardConfig(thumb_weight=value)


async def test_dataset_reward_weights_must_be_finite(
    channel: grpc.aio.Channel, tenant: tuple[str, str]
) -> None:
    _, admin = tenant
    t = training_pb2_grpc.TrainingServiceStub(channel)
    path = "preference_dataset.build_config.reward_config"
    for name, value in (("thumb_weight", INF), ("rating_weight", NAN), ("sent_weight", -INF)):
        dataset = pb.PreferenceDataset(skill_id="support_email")
        dataset.end_time.FromDatetime(datetime.now(UTC))
        setattr(dataset.build_config.reward_config, name, value)
        request = pb.CreatePreferenceDatasetRequest(preference_dataset=dataset, request_id=rid())
        _, fields, _ = await refused(t.CreatePreferenceDataset(request, metadata=md(admin)))
        assert fields == [f"{path}.{name}"], name
