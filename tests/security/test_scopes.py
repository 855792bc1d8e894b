"""Issue 12, item 3: a `train` key must not move production traffic.

The scope model, once: every RPC that changes which policy answers a tenant's users
(traffic weights, promotion, rollback, every rollout verb, starting or pausing a learning
loop, which rolls candidates out by itself) requires SCOPE_DEPLOY; `admin` implies it.
The contract declares it; these tests read the contract and attack the running server.
"""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import message_factory

from rlaas.options.v1 import options_pb2
from rlaas.registry.v1 import registry_pb2 as reg
from rlaas.training.v1 import training_pb2 as pb
from tests.conftest import RunningStack
from tests.helpers import md, rich_error, scoped_key
from tests.integration.test_training_rollouts import eventually, rid, skill
from tests.security.descriptors import all_methods, required_scope

pytestmark = pytest.mark.integration

# Verbs that change what is served, by name: a new RPC of this shape must declare DEPLOY.
_TRAFFIC_VERBS = ("SetTraffic", "Promote", "Rollback")
_LOOP_OR_ROLLOUT = ("LearningLoop", "Rollout")
_READS = ("Get", "List")


def _changes_traffic(name: str) -> bool:
    if name.startswith(_READS):
        return False
    return name.startswith(_TRAFFIC_VERBS) or name.endswith(_LOOP_OR_ROLLOUT)


@pytest.mark.unit
def test_every_rpc_that_changes_traffic_requires_the_deploy_scope() -> None:
    changing = {f"{s.name}.{m.name}" for s, m in all_methods() if _changes_traffic(m.name)}
    assert changing >= {
        "RegistryService.SetTraffic",
        "RegistryService.PromotePolicy",
        "RegistryService.RollbackDeployment",
        "TrainingService.PromoteRollout",
        "TrainingService.StartLearningLoop",
    }
    wrong = {
        f"{s.name}.{m.name}"
        for s, m in all_methods()
        if _changes_traffic(m.name) and required_scope(m) != options_pb2.SCOPE_DEPLOY
    }
    assert not wrong, f"these RPCs change served traffic without requiring SCOPE_DEPLOY: {wrong}"


async def test_keys_without_deploy_are_refused_every_traffic_rpc(
    stack: RunningStack, channel: grpc.aio.Channel
) -> None:
    s = await skill(channel, stack, "scopes-refused")
    others = await scoped_key(
        channel, s.key, options_pb2.SCOPE_TRAIN, options_pb2.SCOPE_INGEST, options_pb2.SCOPE_INFER
    )
    deploy = [(svc, m) for svc, m in all_methods() if required_scope(m) == options_pb2.SCOPE_DEPLOY]
    assert len(deploy) >= 11
    for service, method in deploy:
        request = message_factory.GetMessageClass(method.input_type)()
        call = channel.unary_unary(
            f"/{service.full_name}/{method.name}",
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=lambda b: b,
        )
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await call(request, metadata=md(others))
        err = rich_error(info.value)
        assert (err.code, err.reason) == (grpc.StatusCode.PERMISSION_DENIED, "MISSING_SCOPE"), (
            method.full_name
        )


async def test_a_train_key_cannot_promote_a_rollout_to_full(
    stack: RunningStack, channel: grpc.aio.Channel
) -> None:
    """The attack of the issue: PromoteRollout(FULL) with a `train` key changed the
    tenant's baseline. Now it is refused and the deployment stays as it was; a key with
    the deploy scope (and nothing else of admin) may do it."""
    s = await skill(channel, stack, "scopes-promote")
    created = await s.create()
    await eventually(s.deployment, lambda d: d.traffic.HasField("shadow"))
    train = await scoped_key(channel, s.key, options_pb2.SCOPE_TRAIN)
    promote = pb.PromoteRolloutRequest(
        rollout_id=created.rollout_id,
        target_stage=pb.Rollout.STAGE_FULL,
        reason="escalate",
        request_id=rid(),
    )
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await s.training.PromoteRollout(promote, metadata=md(train))
    assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await s.registry.SetTraffic(
            reg.SetTrafficRequest(
                skill_id=s.skill_id, traffic=reg.TrafficConfig(), reason="x", request_id=rid()
            ),
            metadata=md(train),
        )
    assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert (await s.deployment()).baseline_policy_id == s.baseline
    assert (await s.get(created.rollout_id)).stage == pb.Rollout.STAGE_SHADOW

    deployer = await scoped_key(channel, s.key, options_pb2.SCOPE_DEPLOY)
    done = (await s.training.PromoteRollout(promote, metadata=md(deployer))).rollout
    assert done.stage == pb.Rollout.STAGE_FULL
    assert (await s.deployment()).baseline_policy_id == s.candidate
