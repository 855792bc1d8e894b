"""Train on what was served: a policy whose behaviour comes from its own prompt template
(system prompt, user template) must learn exactly as one whose application sends that
text itself. Both tenants below give the model the same input and the same edits; the
interaction records what the model was given, and the datasets, hence the training, are
the same."""

from __future__ import annotations

import io
import random
import uuid

import grpc
import pyarrow.parquet as pq
import pytest

from rlaas.inference.v1 import inference_pb2 as inf
from rlaas.inference.v1 import inference_pb2_grpc
from rlaas.options.v1 import options_pb2
from rlaas.registry.v1 import registry_pb2 as reg
from rlaas.registry.v1 import registry_pb2_grpc
from rlaas.telemetry.v1 import telemetry_pb2 as tel
from rlaas.telemetry.v1 import telemetry_pb2_grpc
from rlaas.training.v1 import training_pb2 as pb
from rlaas.training.v1 import training_pb2_grpc
from tests.conftest import RunningStack
from tests.helpers import md, new_tenant, scoped_key
from tests.integration.test_training_datasets import WORDS, read_uri
from tests.integration.test_training_runs import DPO, UNFINISHED, eventually

pytestmark = pytest.mark.integration

SKILL = "support_reply"
SYSTEM = "You answer Acme's customers. Greet them by name and quote their ticket."
TEMPLATE = "Customer message:\n{{ input }}"
USER, SYSTEM_ROLE = tel.ChatMessage.ROLE_USER, tel.ChatMessage.ROLE_SYSTEM


def rid() -> str:
    return str(uuid.uuid4())


async def _tenant(
    channel: grpc.aio.Channel, stack: RunningStack, name: str, template: reg.PromptTemplate
) -> tuple[str, str]:
    """A tenant whose skill's baseline is the tiny model with ``template``."""
    _, admin = await new_tenant(channel, stack.admin_key, name)
    r = registry_pb2_grpc.RegistryServiceStub(channel)
    await r.CreateSkill(
        reg.CreateSkillRequest(skill=reg.Skill(skill_id=SKILL), request_id=rid()),
        metadata=md(admin),
    )
    policy = reg.Policy(skill_id=SKILL, base_model="tiny", prompt_template=template,
                        generation_defaults=reg.GenerationConfig(max_tokens=6))  # fmt: skip
    made = await r.CreatePolicy(
        reg.CreatePolicyRequest(policy=policy, request_id=rid()), metadata=md(admin)
    )
    await r.PromotePolicy(
        reg.PromotePolicyRequest(skill_id=SKILL, policy_id=made.policy.policy_id,
                                 reason="first", request_id=rid()),
        metadata=md(admin),
    )  # fmt: skip
    return admin, made.policy.policy_id


async def _traffic(
    channel: grpc.aio.Channel, admin: str, app_sends_prompt: bool, n: int
) -> list[str]:
    """n answers through the gateway, each edited by the same user; the interactions."""
    infer = await scoped_key(channel, admin, options_pb2.SCOPE_INFER)
    ingest = await scoped_key(channel, admin, options_pb2.SCOPE_INGEST)
    g = inference_pb2_grpc.InferenceServiceStub(channel)
    t = telemetry_pb2_grpc.TelemetryServiceStub(channel)
    rng = random.Random(11)
    ids = []
    for i in range(n):
        text = f"{' '.join(rng.sample(WORDS, 6))} (ticket TCK-{40000 + i})"
        if app_sends_prompt:  # the application renders the prompt itself
            messages = [
                tel.ChatMessage(role=SYSTEM_ROLE, content=SYSTEM),
                tel.ChatMessage(role=USER, content=f"Customer message:\n{text}"),
            ]
        else:  # the policy's template does
            messages = [tel.ChatMessage(role=USER, content=text)]
        answer = await g.Infer(
            inf.InferRequest(skill=SKILL, thread_id=f"th{i}", request_id=rid(), messages=messages),
            metadata=md(infer),
        )
        edited = f"Hello Sam, about TCK-{40000 + i}: {' '.join(rng.sample(WORDS, 8))}."
        await t.SubmitFeedback(
            tel.SubmitFeedbackRequest(
                interaction_id=answer.interaction_id, request_id=rid(),
                feedback=tel.Feedback(implicit=tel.ImplicitFeedback(edited_text=edited,
                                                                    sent=True)),
            ),
            metadata=md(ingest),
        )  # fmt: skip
        ids.append(answer.interaction_id)
    return ids


async def _dataset_rows(
    channel: grpc.aio.Channel, admin: str
) -> tuple[pb.PreferenceDataset, list[tuple[str, str, str, str]]]:
    key = await scoped_key(channel, admin, options_pb2.SCOPE_TRAIN)
    training = training_pb2_grpc.TrainingServiceStub(channel)
    made = await training.CreatePreferenceDataset(
        pb.CreatePreferenceDatasetRequest(
            preference_dataset=pb.PreferenceDataset(skill_id=SKILL), request_id=rid()
        ),
        metadata=md(key),
    )
    dataset = made.preference_dataset
    assert dataset.state == pb.PreferenceDataset.STATE_READY, dataset.error
    table = pq.read_table(io.BytesIO(read_uri(dataset.storage_uri)))
    rows = sorted(
        (r["prompt_messages"], r["chosen"], r["rejected"], r["split"]) for r in table.to_pylist()
    )
    return dataset, rows


async def test_a_templated_policy_trains_on_what_it_serves(
    stack: RunningStack, channel: grpc.aio.Channel
) -> None:
    templated_admin, templated_policy = await _tenant(
        channel, stack, "served-template",
        reg.PromptTemplate(system_prompt=SYSTEM, user_template=TEMPLATE),
    )  # fmt: skip
    app_admin, _ = await _tenant(channel, stack, "served-app", reg.PromptTemplate())
    n = 20
    templated_ids = await _traffic(channel, templated_admin, app_sends_prompt=False, n=n)
    await _traffic(channel, app_admin, app_sends_prompt=True, n=n)

    # The interaction records what the model was given: the template rendered.
    t = telemetry_pb2_grpc.TelemetryServiceStub(channel)
    read = await t.GetInteraction(
        tel.GetInteractionRequest(interaction_id=templated_ids[0]), metadata=md(templated_admin)
    )
    served = [(m.role, m.content) for m in read.interaction.served_messages]
    assert served[0] == (SYSTEM_ROLE, SYSTEM)
    assert served[-1][0] == USER and served[-1][1].startswith("Customer message:\n")
    assert [m.content for m in read.interaction.input.messages] == [
        served[-1][1].removeprefix("Customer message:\n")
    ]
    assert read.interaction.policy_id == templated_policy

    # The same model input and the same edits: the same training data, row for row
    # (the answers too: the tiny model decodes greedily from the same prompt).
    templated, templated_rows = await _dataset_rows(channel, templated_admin)
    app, app_rows = await _dataset_rows(channel, app_admin)
    assert templated.pair_count == app.pair_count > 0
    for mine, theirs in zip(templated_rows, app_rows, strict=True):
        assert mine == theirs, (mine, theirs)
    assert all(SYSTEM in prompt for prompt, *_ in templated_rows)

    # And so the same adapter, bit for bit: the same rows, order and seed.
    adapters = [
        await _trained_adapter(channel, admin, dataset.dataset_id)
        for admin, dataset in ((templated_admin, templated), (app_admin, app))
    ]
    assert adapters[0] == adapters[1] and len(adapters[0]) == 64


async def _trained_adapter(channel: grpc.aio.Channel, admin: str, dataset_id: str) -> str:
    key = await scoped_key(channel, admin, options_pb2.SCOPE_TRAIN)
    training = training_pb2_grpc.TrainingServiceStub(channel)
    run = pb.TrainingRun(skill_id=SKILL, dataset_id=dataset_id, config=DPO)
    made = await training.CreateTrainingRun(
        pb.CreateTrainingRunRequest(training_run=run, request_id=rid()), metadata=md(key)
    )
    request = pb.GetTrainingRunRequest(training_run_id=made.training_run.training_run_id)
    done = await eventually(
        lambda: training.GetTrainingRun(request, metadata=md(key)),
        lambda r: r.training_run.state not in UNFINISHED,
    )
    assert done.training_run.state == pb.TrainingRun.STATE_SUCCEEDED, done.training_run.error
    return done.training_run.lineage.adapter_sha256
