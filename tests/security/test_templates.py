"""Issue 12, item 2: one tenant's prompt template must not stall every tenant.

Templates render in ``services.templating``: a sandbox whose loops, calls, operators,
filters and output are charged to a per-render budget (steps, characters, wall time),
on a small thread pool where each tenant holds at most a share. These tests play the
hostile tenant: the render limits alone (unit), the event loop while hostile renders run
(unit), and the real server, whose health check and other tenants' RPCs must stay fast
while a tenant's hostile policies are being served (integration).

On the code before this change every one of them fails: the renders below never end or
allocate gigabytes (there was no budget), and the gateway rendered on the event loop, so
a three-deep loop of ``range(100000)`` held the server for good.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import given, settings
from hypothesis import strategies as st
from jinja2 import StrictUndefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

from rlaas.inference.v1 import inference_pb2 as inf
from rlaas.inference.v1 import inference_pb2_grpc
from rlaas.registry.v1 import registry_pb2 as reg
from rlaas.registry.v1 import registry_pb2_grpc
from rlaas.telemetry.v1 import telemetry_pb2 as tel
from services import templating
from services.errors import InvalidArgument
from services.inference.prompting import build_messages, build_messages_off_loop
from services.registry.validation import validate_policy
from tests.conftest import RunningStack
from tests.helpers import md, new_tenant, rich_error

VARIABLES = {"input": "hello there", "context": "[1] a source", "user_id": "u", "skill": "s"}
LOOP = "{% for a in range(100000) %}"
NESTED_LOOPS = LOOP * 3 + "{% endfor %}" * 3  # 10**15 iterations: never ends unbounded
DOUBLING = "{% set a = input ~ input %}" + "{% set a = a ~ a %}" * 60 + "{{ a }}"

# Each of these ran for ever, or allocated gigabytes, in the plain sandbox.
HOSTILE = {
    "three nested loops": NESTED_LOOPS,
    "two nested loops with output": LOOP * 2 + "{{ input }}" + "{% endfor %}" * 2,
    "string multiplication": "{{ 'x' * 10**9 }}",
    "doubling concatenation": DOUBLING,
    "namespace growth": (
        "{% set ns = namespace(s=input) %}" + LOOP + "{% set ns.s = ns.s ~ ns.s %}{% endfor %}"
    ),
    "exponential macro": (
        "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(60) }}"
    ),
    "str method width": "{{ input.center(10**9) }}",
    "filter width": "{{ input|center(10**9) }}",
    "indent per line": "{{ ('\\n' * 100000)|indent(100000) }}",
    "join separator": "{{ range(100000)|join(input * 10000) }}",
    "list repetition": "{{ [input] * 10**8 }}",
    "integer power": "{{ 10 ** (10 ** 10) }}",
    "block buffer": "{% set b %}" + LOOP * 2 + "{{ input }}" + "{% endfor %}" * 2 + "{% endset %}",
}


def render(source: str) -> str:
    return templating.render(source, VARIABLES)


@pytest.mark.unit
@pytest.mark.parametrize("source", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_templates_hit_a_limit_quickly(source: str) -> None:
    started = time.monotonic()
    with pytest.raises(templating.RenderError) as info:
        render(source)
    assert info.value.limit, info.value.message
    # The render deadline is 0.5 s; a noisy 2-core box gets ten times that.
    assert time.monotonic() - started < 5.0


@pytest.mark.unit
@pytest.mark.parametrize(
    ("source", "needle"),
    [
        ("{{ '%999999999d' % 1 }}", "% operator"),
        ("{{ '{:>999999999}'.format(1) }}", "'format' is not allowed"),
        ("{{ input.__class__.__mro__ }}", "unsafe"),
        ("{{ lipsum(10**6) }}", "undefined"),
    ],
)
def test_unsafe_calls_fail_as_ordinary_render_errors(source: str, needle: str) -> None:
    with pytest.raises(templating.RenderError, match=needle) as info:
        render(source)
    assert not info.value.limit


ORDINARY = [
    "Q: {{ input }}\n{{ context }}",
    "{% for w in input.split() %}{{ loop.index }}={{ w|upper }} {% endfor %}",
    "{{ input|replace('e', 'E')|title }} ({{ input|length }}) {{ input[:5] }}",
    "{% macro q(x) %}<{{ x }}>{% endmacro %}{{ q(skill) ~ q(user_id) }}",
    "{{ range(3)|map('string')|join(', ') }} {{ [3, 1, 2]|sort|list }} {{ dict(a=1) }}",
    "{% set ns = namespace(n=0) %}{% for i in range(4) %}{% set ns.n = ns.n + i %}"
    "{% endfor %}{{ ns.n }} {{ 2 ** 10 }} {{ 7 % 3 }} {{ 'ab' * 3 }}",
    "{% if context %}Sources:\n{{ context|indent(2) }}{% else %}none{% endif %}\n",
]


@pytest.mark.unit
@pytest.mark.parametrize("source", ORDINARY)
def test_ordinary_templates_render_as_in_the_plain_sandbox(source: str) -> None:
    plain = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False)
    assert render(source) == plain.from_string(source).render(**VARIABLES)


@pytest.mark.unit
def test_a_large_context_is_not_a_limit() -> None:
    # The text budget grows with the request's own variables: placing a long retrieved
    # context is what templates are for.
    context = "c" * 3_000_000
    assert templating.render("{{ context }}", {**VARIABLES, "context": context}) == context


@pytest.mark.unit
def test_no_render_outside_the_budget() -> None:
    # A code path that renders without templating.render gets no budget, and the guards
    # refuse to run rather than render unbounded.
    with pytest.raises(templating.TemplateLimitExceeded):
        templating.compile_template(NESTED_LOOPS).render(**VARIABLES)


def _policy(**template: str) -> reg.Policy:
    return reg.Policy(
        skill_id="support", base_model="tiny-llama", prompt_template=reg.PromptTemplate(**template)
    )


@pytest.mark.unit
@pytest.mark.parametrize(
    ("field", "source", "needle"),
    [
        ("user_template", "{{ input }}" + " " * templating.MAX_TEMPLATE_CHARS, "at most"),
        ("user_template", "{% for x in [input] recursive %}{{ loop([x]) }}{% endfor %}",
         "recursive"),
        ("user_template", "{% include 'other' %}", "include"),
        ("user_template", "{{ input|format(1) }}", "format"),
        ("user_template", "{{ input|wordwrap(10**9) }}", "wordwrap"),
        ("system_prompt", "{% for x in %}", "does not compile"),
        ("system_prompt", "{{ secret }}", "undefined variable"),
        ("system_prompt", "(" * 5000 + "{{ " + "(" * 5000 + "1" + ")" * 5000 + " }}",
         "does not compile"),
    ],
)  # fmt: skip
def test_create_policy_refuses_templates_it_can_judge_statically(
    field: str, source: str, needle: str
) -> None:
    with pytest.raises(InvalidArgument) as info:
        validate_policy(_policy(**{field: source}))
    [violation] = info.value.violations
    assert violation.field == f"policy.prompt_template.{field}"
    assert needle in violation.description


@pytest.mark.unit
def test_system_prompts_may_use_the_variables_the_gateway_gives() -> None:
    validate_policy(_policy(system_prompt="Hi {{ user_id }}, about {{ skill }}: {{ input }}"))
    validate_policy(_policy(system_prompt=NESTED_LOOPS))  # legal syntax: bounded at render


async def _max_loop_lag(until: asyncio.Future[Any]) -> float:
    """The worst lateness of a 10 ms timer on this event loop while ``until`` runs."""
    worst = 0.0
    while not until.done():
        started = time.monotonic()
        await asyncio.sleep(0.01)
        worst = max(worst, time.monotonic() - started - 0.01)
    return worst


@pytest.mark.unit
async def test_renders_run_off_the_event_loop_within_a_tenant_share() -> None:
    def hostile() -> str:
        return render(NESTED_LOOPS)

    async def attempt(tenant: str, job: object) -> BaseException | str:
        try:
            return await templating.run_off_loop(tenant, job)  # type: ignore[arg-type]
        except (templating.RenderError, Exception) as err:
            return err

    attack = asyncio.gather(*(attempt("hostile", hostile) for _ in range(6)))
    lag = asyncio.ensure_future(_max_loop_lag(attack))
    await asyncio.sleep(0.05)  # the hostile renders hold the tenant's share now
    started = time.monotonic()
    other = await templating.run_off_loop("other", lambda: render("Q: {{ input }}"))
    other_s = time.monotonic() - started
    outcomes = await attack
    worst_lag = await lag
    assert other == "Q: hello there"
    # The other tenant never queued behind the hostile one's renders (each takes up to
    # the 0.5 s deadline, six of them on a share of two threads take over a second).
    assert other_s < 1.0, other_s
    assert worst_lag < 0.5, worst_lag
    limits = [o for o in outcomes if isinstance(o, templating.RenderError) and o.limit]
    assert len(limits) == len(outcomes), outcomes


@pytest.mark.unit
@given(st.text(alphabet=st.sampled_from("ab \t\r\n}%#é"), max_size=40) | st.text(max_size=40))
@settings(max_examples=300, deadline=None)
def test_static_text_renders_as_jinja_renders_it(source: str) -> None:
    source = source.replace("{", "")
    jinja = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False)
    assert templating.is_static(source)
    assert templating.render(source, VARIABLES) == jinja.from_string(source).render()


@pytest.mark.unit
@pytest.mark.parametrize(
    ("system_prompt", "user_template", "off_loop"),
    [
        ("Be brief.\n", "", False),  # plain text: rendered in place
        ("", "", False),
        ("Be brief.", "Q: {{ input }}", True),  # anything of Jinja's: the pool
        ("{# a comment #}Be brief.", "", True),
    ],
)
async def test_only_templates_that_run_something_go_to_the_render_pool(
    monkeypatch: pytest.MonkeyPatch, system_prompt: str, user_template: str, off_loop: bool
) -> None:
    pooled: list[str] = []
    real = templating.run_off_loop

    async def spy(key: str, func: Any) -> Any:
        pooled.append(key)
        return await real(key, func)

    monkeypatch.setattr(templating, "run_off_loop", spy)
    policy = reg.Policy(
        prompt_template=reg.PromptTemplate(system_prompt=system_prompt, user_template=user_template)
    )
    messages = [{"role": "user", "content": "hello there"}]
    built = await build_messages_off_loop(
        "t-1", policy, messages, context=[], user_id="u", skill="s"
    )
    assert pooled == (["t-1"] if off_loop else [])
    # The same messages either way.
    assert built == build_messages(policy, messages, context=[], user_id="u", skill="s")
    if system_prompt.startswith("Be brief"):
        assert built[0] == {"role": "system", "content": "Be brief."}


# ---- the real server ---------------------------------------------------------------


def _rid() -> str:
    return str(uuid.uuid4())


async def _hostile_policies(channel: grpc.aio.Channel, admin: str) -> list[str]:
    stub = registry_pb2_grpc.RegistryServiceStub(channel)
    await stub.CreateSkill(
        reg.CreateSkillRequest(skill=reg.Skill(skill_id="hostile"), request_id=_rid()),
        metadata=md(admin),
    )
    templates = [
        reg.PromptTemplate(system_prompt=NESTED_LOOPS),
        reg.PromptTemplate(user_template="{{ input * 10**9 }}"),
        reg.PromptTemplate(user_template=DOUBLING),
    ]
    made = []
    for template in templates:
        policy = reg.Policy(skill_id="hostile", base_model="tiny-llama", prompt_template=template)
        created = await stub.CreatePolicy(
            reg.CreatePolicyRequest(policy=policy, request_id=_rid()), metadata=md(admin)
        )
        made.append(created.policy.policy_id)
    # Pinning a policy needs a deployment of the skill: the first one is its baseline.
    await stub.PromotePolicy(
        reg.PromotePolicyRequest(
            skill_id="hostile", policy_id=made[0], reason="attack", request_id=_rid()
        ),
        metadata=md(admin),
    )
    return made


@pytest.mark.integration
async def test_create_policy_names_the_template_field(
    stack: RunningStack, channel: grpc.aio.Channel
) -> None:
    _, admin = await new_tenant(channel, stack.admin_key, "template-static")
    stub = registry_pb2_grpc.RegistryServiceStub(channel)
    await stub.CreateSkill(
        reg.CreateSkillRequest(skill=reg.Skill(skill_id="static"), request_id=_rid()),
        metadata=md(admin),
    )
    template = reg.PromptTemplate(user_template="{% for x in [input] recursive %}{% endfor %}")
    policy = reg.Policy(skill_id="static", base_model="tiny-llama", prompt_template=template)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.CreatePolicy(
            reg.CreatePolicyRequest(policy=policy, request_id=_rid()), metadata=md(admin)
        )
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    [(field, _)] = rich_error(info.value).field_violations
    assert field == "policy.prompt_template.user_template"


@pytest.mark.integration
async def test_hostile_templates_fail_alone_and_never_stall_other_tenants(
    stack: RunningStack, channel: grpc.aio.Channel
) -> None:
    _, hostile_admin = await new_tenant(channel, stack.admin_key, "template-hostile")
    _, other_admin = await new_tenant(channel, stack.admin_key, "template-bystander")
    policies = await _hostile_policies(channel, hostile_admin)
    gateway = inference_pb2_grpc.InferenceServiceStub(channel)
    health = health_pb2_grpc.HealthStub(channel)
    registry = registry_pb2_grpc.RegistryServiceStub(channel)

    async def attack(policy_id: str) -> grpc.aio.AioRpcError | None:
        request = inf.InferRequest(
            skill="hostile",
            policy_id=policy_id,
            messages=[tel.ChatMessage(role=tel.ChatMessage.ROLE_USER, content="hi")],
            request_id=_rid(),
        )
        try:
            await gateway.Infer(request, metadata=md(hostile_admin), timeout=30)
        except grpc.aio.AioRpcError as err:
            return err
        return None

    async def attack_for(seconds: float) -> list[grpc.aio.AioRpcError | None]:
        results: list[grpc.aio.AioRpcError | None] = []
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            # Several at once, every policy: more than the tenant's share of the pool.
            results += await asyncio.gather(*(attack(p) for p in policies * 2))
        return results

    health_s: list[float] = []
    other_s: list[float] = []

    async def bystander(until: asyncio.Future[Any]) -> None:
        while not until.done():
            started = time.monotonic()
            reply = await health.Check(health_pb2.HealthCheckRequest(), timeout=10)
            health_s.append(time.monotonic() - started)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
            started = time.monotonic()
            await registry.ListSkills(reg.ListSkillsRequest(), metadata=md(other_admin), timeout=10)
            other_s.append(time.monotonic() - started)
            await asyncio.sleep(0.02)

    hostile = asyncio.ensure_future(attack_for(4.0))
    await bystander(hostile)
    outcomes = await hostile

    assert outcomes and all(err is not None for err in outcomes)
    for err in outcomes:
        assert err is not None
        reason = rich_error(err).reason
        # The template's own limit, or (past the tenant's share of the render pool) a
        # busy renderer: never INTERNAL, never a hang.
        assert (err.code(), reason) in {
            (grpc.StatusCode.FAILED_PRECONDITION, templating.REASON_LIMIT),
            (grpc.StatusCode.RESOURCE_EXHAUSTED, templating.REASON_BUSY),
        }, (err.code(), err.details())
    assert any(rich_error(e).reason == templating.REASON_LIMIT for e in outcomes if e)
    assert len(health_s) >= 10
    # Generous bounds for a noisy 2-core machine; the stalled loop took minutes.
    assert max(health_s) < 0.5, sorted(health_s)[-5:]
    assert max(other_s) < 1.0, sorted(other_s)[-5:]
