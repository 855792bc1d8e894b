"""A policy's prompt template -> the chat messages the model sees. Templates are
tenant-written: they render in the bounded sandbox of ``services.templating`` (no Python
internals, capped steps, text and time), on its thread pool, never on the event loop."""

from __future__ import annotations

import functools
from functools import lru_cache

from rlaas.registry.v1 import registry_pb2 as reg
from rlaas.telemetry.v1 import telemetry_pb2 as tel
from services import templating


def _render(source: str, variables: dict[str, object], what: str) -> str:
    try:
        return templating.render(source, variables)
    except templating.RenderError as err:
        # The registry validated the template; a render error means the template needs a
        # variable this request did not give, or went past its limits: the policy's
        # fault, not the caller's.
        raise templating.domain_error(err, what) from None


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
    return templating.variables_of(source)


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


async def build_messages_off_loop(
    tenant_id: str,
    policy: reg.Policy,
    messages: list[dict[str, str]],
    *,
    context: list[tel.RetrievedChunk],
    user_id: str,
    skill: str,
) -> list[dict[str, str]]:
    """``build_messages`` on the template render pool, within the tenant's share of it:
    a hostile template costs its own tenant a failed request, never the event loop."""
    build = functools.partial(
        build_messages, policy, messages, context=context, user_id=user_id, skill=skill
    )
    tpl = policy.prompt_template
    if templating.is_static(tpl.system_prompt) and templating.is_static(tpl.user_template):
        # Plain text (or none): nothing of the tenant's runs, so no thread hand-off on
        # the request's path.
        return build()
    return await templating.run_off_loop(tenant_id, build)
