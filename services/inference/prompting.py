"""A policy's prompt template -> the chat messages the model sees. Templates are
rendered in Jinja2's sandbox: tenants write them, so they must not reach Python."""

from __future__ import annotations

from functools import lru_cache

from jinja2 import StrictUndefined, Template, TemplateError, meta
from jinja2.sandbox import ImmutableSandboxedEnvironment

from rlaas.registry.v1 import registry_pb2 as reg
from rlaas.telemetry.v1 import telemetry_pb2 as tel
from services.errors import FailedPrecondition

_ENV = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False)


@lru_cache(maxsize=512)
def _compile(source: str) -> Template:
    return _ENV.from_string(source)


def _render(source: str, variables: dict[str, object], what: str) -> str:
    try:
        return str(_compile(source).render(**variables))
    except TemplateError as err:
        # The registry validated the template; a render error means the template needs a
        # variable this request did not give: the policy's fault, not the caller's.
        raise FailedPrecondition(
            f"the policy's {what} failed to render: {err}", reason="TEMPLATE_RENDER_FAILED"
        ) from err


CONTEXT_INSTRUCTION = (
    "Answer from the numbered sources below and cite the ones you use as [n]. "
    "If they do not contain the answer, say so.\nSources:"
)


def format_context(context: list[tel.RetrievedChunk]) -> str:
    """Numbered sources, ``[n] (title) text``, n from 1 in context order."""
    parts = []
    for i, c in enumerate(context):
        title = c.metadata.fields["title"].string_value if "title" in c.metadata.fields else ""
        parts.append(f"[{i + 1}] ({title}) {c.text}" if title else f"[{i + 1}] {c.text}")
    return "\n\n".join(parts)


@lru_cache(maxsize=512)
def _variables(source: str) -> frozenset[str]:
    try:
        return frozenset(meta.find_undeclared_variables(_ENV.parse(source)))
    except TemplateError:
        return frozenset()


def uses_variable(tpl: reg.PromptTemplate, name: str) -> bool:
    """Whether the system prompt or the user template reads the variable ``name``."""
    return any(name in _variables(src) for src in (tpl.system_prompt, tpl.user_template))


def build_messages(
    policy: reg.Policy,
    messages: list[dict[str, str]],
    *,
    context: list[tel.RetrievedChunk],
    user_id: str,
    skill: str,
) -> list[dict[str, str]]:
    tpl = policy.prompt_template
    context_text = format_context(context)
    last_user = next((m["content"] for m in reversed(messages) if m["role"] == "user"), "")
    variables: dict[str, object] = {
        "input": last_user,
        "context": context_text,
        "user_id": user_id,
        "skill": skill,
    }
    out: list[dict[str, str]] = []
    system = _render(tpl.system_prompt, variables, "system prompt") if tpl.system_prompt else ""
    if context_text and not uses_variable(tpl, "context"):
        # A template that does not place the context gets the default block, with the
        # numbering the gateway reads citations ([n]) back by.
        system = f"{system}\n\n{CONTEXT_INSTRUCTION}\n{context_text}".strip()
    caller_system = [m["content"] for m in messages if m["role"] == "system"]
    system = "\n\n".join(x for x in [system, *caller_system] if x)
    if system:
        out.append({"role": "system", "content": system})
    for example in tpl.examples:
        out.append({"role": "user", "content": example.input})
        out.append({"role": "assistant", "content": example.output})
    turns = [m for m in messages if m["role"] != "system"]
    last_user_index = max((i for i, t in enumerate(turns) if t["role"] == "user"), default=-1)
    for i, m in enumerate(turns):
        if i == last_user_index and tpl.user_template:
            content = _render(tpl.user_template, variables, "user template")
            out.append({"role": "user", "content": content})
        else:
            out.append(dict(m))
    return out
