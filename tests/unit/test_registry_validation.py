"""Registry input checks: policies, traffic configurations, policy diffs."""

from __future__ import annotations

import pytest

from rlaas.registry.v1 import registry_pb2 as pb
from services.errors import FailedPrecondition, InvalidArgument, NotFound
from services.registry.diff import field_changes, prompt_diff
from services.registry.validation import (
    ACTIVE,
    CANDIDATE,
    RETIRED,
    PolicyInfo,
    check_traffic_policies,
    normalize_traffic,
    parse_policy_id,
    prune_traffic,
    render_user_message,
    stage_of,
    validate_policy,
)

pytestmark = pytest.mark.unit

SHA = "a" * 64


def fields_of(exc: InvalidArgument) -> set[str]:
    return {v.field for v in exc.violations}


def good_policy(**kw: object) -> pb.Policy:
    policy = pb.Policy(
        skill_id="support_email",
        base_model="SmolLM2-135M-Instruct",
        prompt_template=pb.PromptTemplate(
            system_prompt="Be kind.", user_template="Q: {{ input }}\n{{ context }}"
        ),
        generation_defaults=pb.GenerationConfig(temperature=0.0, top_p=1.0, max_tokens=64),
    )
    for key, value in kw.items():
        field = getattr(policy, key)
        if hasattr(field, "CopyFrom"):
            field.CopyFrom(value)
        else:
            setattr(policy, key, value)
    return policy


def test_a_good_policy_passes_and_renders() -> None:
    policy = good_policy()
    validate_policy(policy)
    assert render_user_message(policy, "hi", "ctx") == "Q: hi\nctx"


@pytest.mark.parametrize(
    ("template", "needle"),
    [("{{ input ", "does not compile"), ("{% for x in %}", "does not compile"),
     ("{{ inptu }}", "undefined variable")],
)  # fmt: skip
def test_bad_templates_name_the_field(template: str, needle: str) -> None:
    policy = good_policy(prompt_template=pb.PromptTemplate(user_template=template))
    with pytest.raises(InvalidArgument) as info:
        validate_policy(policy)
    [violation] = info.value.violations
    assert violation.field == "policy.prompt_template.user_template"
    assert needle in violation.description


def test_sandbox_refuses_unsafe_attribute_access() -> None:
    from services.templating import RenderError

    policy = good_policy(
        prompt_template=pb.PromptTemplate(user_template="{{ input.__class__.__mro__ }}")
    )
    validate_policy(policy)  # it compiles ...
    with pytest.raises(RenderError, match="unsafe"):  # ... but the sandbox will not run it
        render_user_message(policy, "x")


@pytest.mark.parametrize(
    ("adapter", "field"),
    [
        (pb.Adapter(artifact_uri="file:///a"), "policy.adapter.sha256"),
        (pb.Adapter(sha256=SHA), "policy.adapter.artifact_uri"),
        (pb.Adapter(artifact_uri="file:///a", sha256="A" * 64), "policy.adapter.sha256"),
        (pb.Adapter(artifact_uri="file:///a", sha256="ab"), "policy.adapter.sha256"),
        (pb.Adapter(rank=8), "policy.adapter.artifact_uri"),
    ],
)
def test_adapter_needs_uri_and_sha256_together(adapter: pb.Adapter, field: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        validate_policy(good_policy(adapter=adapter))
    assert field in fields_of(info.value)


def test_generation_guardrail_and_retrieval_ranges_are_all_reported() -> None:
    policy = good_policy(
        generation_defaults=pb.GenerationConfig(
            temperature=-0.1, top_p=0.0, max_tokens=0, top_k=-1, presence_penalty=3,
            repetition_penalty=0, stop=[""] * 9,
        ),
        guardrails=pb.GuardrailConfig(blocked_terms=["x", "X", " "], max_input_tokens=-1),
        retrieval=pb.RetrievalConfig(enabled=True, top_k=0),
    )  # fmt: skip
    with pytest.raises(InvalidArgument) as info:
        validate_policy(policy)
    g, r = "policy.generation_defaults", "policy.retrieval"
    assert {
        f"{g}.temperature", f"{g}.top_p", f"{g}.max_tokens", f"{g}.top_k",
        f"{g}.presence_penalty", f"{g}.repetition_penalty", f"{g}.stop",
        "policy.guardrails.blocked_terms[1]", "policy.guardrails.blocked_terms[2]",
        "policy.guardrails.max_input_tokens", f"{r}.collection", f"{r}.top_k",
    } <= fields_of(info.value)  # fmt: skip


def test_unset_generation_fields_are_not_checked_but_explicit_zero_is() -> None:
    validate_policy(good_policy(generation_defaults=pb.GenerationConfig()))
    with pytest.raises(InvalidArgument) as info:
        validate_policy(good_policy(generation_defaults=pb.GenerationConfig(top_p=0)))
    assert fields_of(info.value) == {"policy.generation_defaults.top_p"}


def test_required_fields() -> None:
    with pytest.raises(InvalidArgument) as info:
        validate_policy(pb.Policy(skill_id="Bad-Skill"))
    assert {"policy.skill_id", "policy.base_model"} <= fields_of(info.value)


@pytest.mark.parametrize("bad", ["", "x", "skill@v0", "skill@1", "Skill@v1", "a@v1x"])
def test_policy_ids(bad: str) -> None:
    assert parse_policy_id("support_email@v12") == ("support_email", 12)
    with pytest.raises(InvalidArgument):
        parse_policy_id(bad)


# ---- traffic ---------------------------------------------------------------------


def arms(*pairs: tuple[str, float]) -> list[pb.TrafficArm]:
    return [pb.TrafficArm(policy_id=p, weight=w) for p, w in pairs]


def test_canary_percent_range() -> None:
    for pct in (0.0, 50.0, 100.0):
        normalize_traffic(pb.TrafficConfig(canary=pb.CanaryTraffic(policy_id="s@v2", percent=pct)))
    for pct in (-1, 100.5, float("nan")):
        with pytest.raises(InvalidArgument) as info:
            normalize_traffic(
                pb.TrafficConfig(canary=pb.CanaryTraffic(policy_id="s@v2", percent=pct))
            )
        assert fields_of(info.value) == {"traffic.canary.percent"}


def test_ab_split_needs_two_arms_nonnegative_not_all_zero_weights_no_duplicates() -> None:
    def check(*pairs: tuple[str, float]) -> set[str]:
        with pytest.raises(InvalidArgument) as info:
            normalize_traffic(pb.TrafficConfig(ab_split=pb.AbSplitTraffic(arms=arms(*pairs))))
        return fields_of(info.value)

    assert check(("s@v1", 1)) == {"traffic.ab_split.arms"}
    assert check(("s@v1", 0), ("s@v2", 0)) == {"traffic.ab_split.arms"}
    assert check(("s@v1", 1), ("s@v2", -1)) == {"traffic.ab_split.arms[1].weight"}
    assert check(("s@v1", 1), ("s@v1", 1)) == {"traffic.ab_split.arms[1].policy_id"}
    assert check(("s@v1", 1), ("nope", 1)) == {"traffic.ab_split.arms[1].policy_id"}
    ok = normalize_traffic(
        pb.TrafficConfig(ab_split=pb.AbSplitTraffic(arms=arms(("s@v1", 0), ("s@v2", 3))))
    )
    assert [a.weight for a in ok.ab_split.arms] == [0, 3]


def test_bandit_defaults_and_ranges() -> None:
    ok = normalize_traffic(
        pb.TrafficConfig(bandit=pb.BanditTraffic(arms=arms(("s@v2", 0), ("s@v3", 2))))
    )
    assert [a.weight for a in ok.bandit.arms] == [1.0, 2.0]
    with pytest.raises(InvalidArgument) as info:
        normalize_traffic(
            pb.TrafficConfig(bandit=pb.BanditTraffic(max_exploration=1.5, reward_window_hours=-1))
        )
    assert fields_of(info.value) == {
        "traffic.bandit.arms",
        "traffic.bandit.max_exploration",
        "traffic.bandit.reward_window_hours",
    }


def test_shadow_sample_rate_default_and_overlap_with_live_traffic() -> None:
    ok = normalize_traffic(pb.TrafficConfig(shadow=pb.ShadowTraffic(policy_ids=["s@v2"])))
    assert ok.shadow.sample_rate == 1.0
    with pytest.raises(InvalidArgument) as info:
        normalize_traffic(
            pb.TrafficConfig(
                shadow=pb.ShadowTraffic(policy_ids=["s@v2", "s@v2"], sample_rate=2),
                canary=pb.CanaryTraffic(policy_id="s@v2", percent=5),
            )
        )
    assert fields_of(info.value) == {
        "traffic.shadow.policy_ids[1]",
        "traffic.shadow.sample_rate",
        "traffic.shadow.policy_ids",
    }


POLICIES = {
    "s@v1": PolicyInfo("s", ACTIVE),
    "s@v2": PolicyInfo("s", CANDIDATE),
    "s@v3": PolicyInfo("s", RETIRED),
    "t@v1": PolicyInfo("t", CANDIDATE),
}


def canary(pid: str) -> pb.TrafficConfig:
    return pb.TrafficConfig(canary=pb.CanaryTraffic(policy_id=pid, percent=10))


def test_traffic_policies_must_exist_belong_to_the_skill_and_be_live() -> None:
    check = dict(skill_id="s", baseline="s@v1", policies=POLICIES)
    check_traffic_policies(canary("s@v2"), **check)  # type: ignore[arg-type]
    with pytest.raises(NotFound):
        check_traffic_policies(canary("s@v9"), **check)  # type: ignore[arg-type]
    with pytest.raises(FailedPrecondition) as other:
        check_traffic_policies(canary("t@v1"), **check)  # type: ignore[arg-type]
    assert other.value.reason == "POLICY_OF_OTHER_SKILL"
    with pytest.raises(FailedPrecondition) as retired:
        check_traffic_policies(canary("s@v3"), **check)  # type: ignore[arg-type]
    assert retired.value.reason == "POLICY_RETIRED"
    with pytest.raises(InvalidArgument):
        check_traffic_policies(canary("s@v1"), **check)  # type: ignore[arg-type]


def test_no_traffic_before_a_baseline() -> None:
    with pytest.raises(FailedPrecondition) as info:
        check_traffic_policies(pb.TrafficConfig(), skill_id="s", baseline=None, policies={})
    assert info.value.reason == "NO_BASELINE"


def test_prune_and_stage() -> None:
    traffic = pb.TrafficConfig(
        shadow=pb.ShadowTraffic(policy_ids=["s@v4"], sample_rate=0.5),
        ab_split=pb.AbSplitTraffic(arms=arms(("s@v1", 1), ("s@v2", 1))),
    )
    assert stage_of(None, traffic) == pb.Deployment.STAGE_EMPTY
    assert stage_of("s@v1", traffic) == pb.Deployment.STAGE_AB_SPLIT
    pruned = prune_traffic(traffic, {"s@v2"})
    assert not pruned.HasField("ab_split")  # one arm left is no split
    assert list(pruned.shadow.policy_ids) == ["s@v4"]
    assert stage_of("s@v1", pruned) == pb.Deployment.STAGE_SHADOW
    assert stage_of("s@v1", prune_traffic(pruned, {"s@v4"})) == pb.Deployment.STAGE_BASELINE
    assert prune_traffic(canary("s@v2"), {"s@v2"}) == pb.TrafficConfig()


# ---- diff ------------------------------------------------------------------------


def test_diff_lists_changed_fields_and_a_unified_prompt_diff() -> None:
    a = good_policy(policy_id="support_email@v1", version=1)
    b = good_policy(
        policy_id="support_email@v2",
        version=2,
        prompt_template=pb.PromptTemplate(
            system_prompt="Be kind.\nSign as Ana.", user_template="Q: {{ input }}\n{{ context }}"
        ),
        adapter=pb.Adapter(artifact_uri="file:///x", sha256=SHA),
        generation_defaults=pb.GenerationConfig(temperature=0.7, top_p=1.0, max_tokens=64),
    )
    changes = {c.field_path: (c.before, c.after) for c in field_changes(a, b)}
    assert changes == {
        "adapter.artifact_uri": (None, "file:///x"),
        "adapter.sha256": (None, SHA),
        "generation_defaults.temperature": (0.0, 0.7),
        "prompt_template.system_prompt": ("Be kind.", "Be kind.\nSign as Ana."),
    }
    text = prompt_diff(a, b)
    assert text.startswith("--- support_email@v1\n+++ support_email@v2\n")
    assert "+Sign as Ana.\n" in text and " Be kind.\n" in text
    assert field_changes(a, a) == [] and prompt_diff(a, a) == ""
