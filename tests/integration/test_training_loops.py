"""TrainingService's learning-loop RPCs through the real server and Temporal."""

from __future__ import annotations

import uuid

import grpc
import pytest
from google.protobuf import duration_pb2
from temporalio.client import Client

from rlaas.options.v1 import options_pb2
from rlaas.registry.v1 import registry_pb2, registry_pb2_grpc
from rlaas.training.v1 import training_pb2 as pb
from rlaas.training.v1 import training_pb2_grpc
from tests.conftest import RunningStack
from tests.helpers import md, new_tenant, rich_error, scoped_key
from workflows.learning_types import LoopState

pytestmark = pytest.mark.integration


async def test_start_get_pause_resume_list_and_isolation(
    stack: RunningStack, channel: grpc.aio.Channel
) -> None:
    _, admin = await new_tenant(channel, stack.admin_key, "loops")
    # A loop needs its skill to exist (NOT_FOUND otherwise: tests/security/test_validation.py).
    await registry_pb2_grpc.RegistryServiceStub(channel).CreateSkill(
        registry_pb2.CreateSkillRequest(
            skill=registry_pb2.Skill(skill_id="support_email"), request_id=str(uuid.uuid4())
        ),
        metadata=md(admin),
    )
    # A loop rolls candidates out by itself: starting and pausing one needs the deploy scope.
    key = await scoped_key(channel, admin, options_pb2.SCOPE_TRAIN, options_pb2.SCOPE_DEPLOY)
    t = training_pb2_grpc.TrainingServiceStub(channel)
    loop = pb.LearningLoop(
        skill_id="support_email",
        display_name="nightly",
        config=pb.LearningLoopConfig(
            min_new_feedback=10_000, interval=duration_pb2.Duration(seconds=3600)
        ),
    )
    request = pb.StartLearningLoopRequest(learning_loop=loop, request_id=str(uuid.uuid4()))
    started = (await t.StartLearningLoop(request, metadata=md(key))).learning_loop
    loop_id = started.learning_loop_id
    assert started.state == pb.LearningLoop.STATE_RUNNING and started.skill_id == "support_email"
    # A retried start finds the same loop; the same request_id for another loop is refused.
    again = (await t.StartLearningLoop(request, metadata=md(key))).learning_loop
    assert again.learning_loop_id == loop_id
    other = pb.StartLearningLoopRequest(request_id=request.request_id)
    other.learning_loop.CopyFrom(loop)
    other.learning_loop.display_name = "another"
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await t.StartLearningLoop(other, metadata=md(key))
    assert rich_error(info.value).reason == "REQUEST_ID_REUSED"

    def rid() -> str:
        return str(uuid.uuid4())

    paused = await t.PauseLearningLoop(
        pb.PauseLearningLoopRequest(learning_loop_id=loop_id, request_id=rid()), metadata=md(key)
    )
    assert paused.learning_loop.state == pb.LearningLoop.STATE_PAUSED
    resumed = await t.ResumeLearningLoop(
        pb.ResumeLearningLoopRequest(learning_loop_id=loop_id, request_id=rid()), metadata=md(key)
    )
    assert resumed.learning_loop.state == pb.LearningLoop.STATE_RUNNING
    got = await t.GetLearningLoop(
        pb.GetLearningLoopRequest(learning_loop_id=loop_id), metadata=md(key)
    )
    assert got.learning_loop.phase == pb.LearningLoop.PHASE_WAITING
    # The loop's config as it runs (what was asked, the defaults filled in), its times.
    config = got.learning_loop.config
    assert config.min_new_feedback == 10_000 and config.interval.seconds == 3600
    assert config.min_pairs == 16 and config.training.method == pb.TRAINING_METHOD_DPO
    assert config.training.lora.rank == 8 and config.training.hyperparameters.batch_size > 0
    assert config.evaluation.gate.min_win_rate == pytest.approx(0.5)
    created = got.learning_loop.create_time.ToDatetime()
    assert created <= got.learning_loop.update_time.ToDatetime()
    assert not got.learning_loop.HasField("current_iteration")
    listed = await t.ListLearningLoops(pb.ListLearningLoopsRequest(), metadata=md(key))
    assert [x.learning_loop_id for x in listed.learning_loops] == [loop_id]

    # Another tenant sees nothing of it.
    _, admin_b = await new_tenant(channel, stack.admin_key, "loops-b")
    key_b = await scoped_key(channel, admin_b, options_pb2.SCOPE_TRAIN)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await t.GetLearningLoop(
            pb.GetLearningLoopRequest(learning_loop_id=loop_id), metadata=md(key_b)
        )
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    assert not (
        await t.ListLearningLoops(pb.ListLearningLoopsRequest(), metadata=md(key_b))
    ).learning_loops

    # Stopped for good: it ends (it was waiting), a retry answers the same, and a
    # stopped loop can be neither paused nor resumed.
    stop = pb.StopLearningLoopRequest(learning_loop_id=loop_id, reason="done", request_id=rid())
    stopped = (await t.StopLearningLoop(stop, metadata=md(key))).learning_loop
    assert stopped.state == pb.LearningLoop.STATE_STOPPED
    assert stopped.phase == pb.LearningLoop.PHASE_UNSPECIFIED
    client = await Client.connect(stack.settings.temporal_target)
    ended = await client.get_workflow_handle(started.workflow_id).describe()
    assert ended.status is not None and ended.status.name == "COMPLETED"
    again_stopped = (await t.StopLearningLoop(stop, metadata=md(key))).learning_loop
    assert again_stopped.state == pb.LearningLoop.STATE_STOPPED
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await t.PauseLearningLoop(
            pb.PauseLearningLoopRequest(learning_loop_id=loop_id, request_id=rid()),
            metadata=md(key),
        )
    assert rich_error(info.value).reason == "LEARNING_LOOP_ENDED"
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    # Stopping needs the deploy scope (it rolls back a rollout in progress).
    train_only = await scoped_key(channel, admin, options_pb2.SCOPE_TRAIN)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await t.StopLearningLoop(stop, metadata=md(train_only))
    assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_a_loop_trains_on_the_configured_gpu_queue(
    stack: RunningStack, channel: grpc.aio.Channel
) -> None:
    """RLAAS_GPU_TASK_QUEUE reaches a learning loop's training and evaluation, as it does
    a training run's (loops used to keep the default queue name)."""
    from services.app import Runtime, start_server

    settings = stack.settings.model_copy(update={"gpu_task_queue": "gpu-elsewhere"})
    runtime = Runtime.create(settings, stack.database_url)
    running = await start_server(runtime, ["training"], port=0)
    _, admin = await new_tenant(channel, stack.admin_key, "loops-queue")
    await registry_pb2_grpc.RegistryServiceStub(channel).CreateSkill(
        registry_pb2.CreateSkillRequest(
            skill=registry_pb2.Skill(skill_id="queued"), request_id=str(uuid.uuid4())
        ),
        metadata=md(admin),
    )
    client = await Client.connect(stack.settings.temporal_target)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as other:
            t = training_pb2_grpc.TrainingServiceStub(other)
            started = await t.StartLearningLoop(
                pb.StartLearningLoopRequest(
                    learning_loop=pb.LearningLoop(
                        skill_id="queued", config=pb.LearningLoopConfig(min_new_feedback=10_000)
                    ),
                    request_id=str(uuid.uuid4()),
                ),
                metadata=md(admin),
            )
        handle = client.get_workflow_handle(started.learning_loop.workflow_id)
        history = await handle.fetch_history()
        first = history.events[0].workflow_execution_started_event_attributes
        [state] = await client.data_converter.decode(first.input.payloads, [LoopState])
        assert state.config.gpu_task_queue == "gpu-elsewhere"
        await handle.terminate("test over")
    finally:
        await running.stop(0)
        await runtime.close()
