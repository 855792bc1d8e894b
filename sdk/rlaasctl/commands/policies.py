"""`policies create/list/get/diff`: policies `skill@vN` (adapter, prompt, generation
defaults, guardrails)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from google.protobuf import json_format

from rlaas.registry.v1 import registry_pb2 as reg
from rlaas_sdk.adapters import upload_requests
from rlaasctl.client import Ctl, Shown, request_id
from rlaasctl.output import enum_name, fields, table, timestamp
from rlaasctl.parsing import command, group, key_value, paging

_STATES = {"": 0} | {
    s: reg.Policy.State.Value(f"STATE_{s.upper()}") for s in ("candidate", "active", "retired")
}
_HEADERS = ["policy", "state", "base model", "adapter", "parent", "created"]


def _policy_row(p: reg.Policy) -> list[object]:
    return [p.policy_id, enum_name(reg.Policy.State.Name(p.state)), p.base_model,
            p.adapter.artifact_uri or "(no adapter)", p.parent_policy_id or "-",
            timestamp(p.create_time)]  # fmt: skip


def _new_policy(a: argparse.Namespace) -> reg.Policy:
    policy = reg.Policy(
        skill_id=a.skill, base_model=a.base_model, description=a.description,
        parent_policy_id=a.parent, labels=dict(a.label),
    )  # fmt: skip
    prompt = reg.PromptTemplate(
        template_version=a.template_version, system_prompt=a.system_prompt,
        user_template=a.user_template,
        examples=[reg.FewShotExample(input=i, output=o) for i, o in a.example],
    )  # fmt: skip
    if prompt.ByteSize():
        policy.prompt_template.CopyFrom(prompt)
    if a.adapter_uri or a.adapter_sha256:
        policy.adapter.CopyFrom(reg.Adapter(artifact_uri=a.adapter_uri, sha256=a.adapter_sha256,
                                            rank=a.adapter_rank))  # fmt: skip
    generation = reg.GenerationConfig(stop=a.stop)
    for name in ("temperature", "top_p", "top_k", "max_tokens", "seed", "repetition_penalty"):
        if getattr(a, name) is not None:  # unset stays unset: the backend's default applies
            setattr(generation, name, getattr(a, name))
    if generation.ByteSize():
        policy.generation_defaults.CopyFrom(generation)
    guardrails = reg.GuardrailConfig(
        redact_input_pii=a.redact_input_pii, redact_output_pii=a.redact_output_pii,
        blocked_terms=a.blocked_term, block_prompt_injection=a.block_prompt_injection,
        max_input_tokens=a.max_input_tokens, refusal_message=a.refusal_message,
    )  # fmt: skip
    if guardrails.ByteSize():
        policy.guardrails.CopyFrom(guardrails)
    return policy


def _create(c: Ctl, a: argparse.Namespace) -> Shown:
    policy = _new_policy(a)
    if a.adapter_dir:
        # Policies name only the tenant's own artifacts: upload the directory first.
        uploaded = c.call(c.registry.UploadAdapter, upload_requests(a.adapter_dir))
        policy.adapter.CopyFrom(uploaded.adapter)
        if a.adapter_rank:
            policy.adapter.rank = a.adapter_rank
    req = reg.CreatePolicyRequest(policy=policy, request_id=request_id(a))
    return c.call(c.registry.CreatePolicy, req), lambda r: table(_HEADERS, [_policy_row(r.policy)])


def _get(c: Ctl, a: argparse.Namespace) -> Shown:
    return c.call(c.registry.GetPolicy, reg.GetPolicyRequest(policy_id=a.policy_id)), fields


def _list(c: Ctl, a: argparse.Namespace) -> Shown:
    req = reg.ListPoliciesRequest(skill_id=a.skill or "", state=_STATES[a.state],
                                  page_size=a.page_size, page_token=a.page_token)  # fmt: skip
    return c.call(c.registry.ListPolicies, req), lambda r: table(
        _HEADERS, [_policy_row(p) for p in r.policies], r.next_page_token
    )


def _diff(c: Ctl, a: argparse.Namespace) -> Shown:
    req = reg.DiffPoliciesRequest(
        base_policy_id=a.base_policy_id, target_policy_id=a.target_policy_id
    )

    def text(r: reg.DiffPoliciesResponse) -> str:
        if r.identical:
            return "identical"
        rows = [[ch.field_path, json.dumps(json_format.MessageToDict(ch.before)),
                 json.dumps(json_format.MessageToDict(ch.after))] for ch in r.changes]  # fmt: skip
        return table(["field", "before", "after"], rows) + (
            f"\n\n{r.prompt_diff}" if r.prompt_diff else ""
        )

    return c.call(c.registry.DiffPolicies, req), text


def register(sub: Any) -> None:
    pol = group(sub, "policies", "policies skill@vN: create, list, show, diff")
    x = command(pol, "create", "register the next CANDIDATE version of a skill", _create)
    x.add_argument("skill", help="the skill the policy belongs to")
    x.add_argument("--base-model", required=True, help="base model name, e.g. the served one")
    x.add_argument("--description", default="", help="what this version is about")
    x.add_argument("--parent", default="", help="policy it derives from (lineage)")
    x.add_argument("--label", type=key_value, action="append", default=[],
                   help="KEY=VALUE label; repeatable")  # fmt: skip
    x.add_argument("--system-prompt", default="", help="system message")
    x.add_argument("--user-template", default="",
                   help="Jinja2 template of the user message ({{input}}, {{context}})")  # fmt: skip
    x.add_argument("--template-version", default="", help="the prompt's version label")
    x.add_argument("--example", nargs=2, action="append", default=[], metavar=("IN", "OUT"),
                   help="a few-shot example; repeatable")  # fmt: skip
    x.add_argument("--adapter-dir", default="",
                   help="a local LoRA adapter directory (PEFT): uploaded, then named")  # fmt: skip
    x.add_argument(
        "--adapter-uri",
        default="",
        help="an adapter artifact of this tenant (from an upload or a training run)",
    )
    x.add_argument("--adapter-sha256", default="", help="the adapter's hex SHA-256")
    x.add_argument("--adapter-rank", type=int, default=0, help="LoRA rank (informational)")
    for name, kind in (("temperature", float), ("top-p", float), ("top-k", int),
                       ("max-tokens", int), ("seed", int),
                       ("repetition-penalty", float)):  # fmt: skip
        x.add_argument(f"--{name}", type=kind, default=None,
                       help="generation default (unset: the backend's)")  # fmt: skip
    x.add_argument("--stop", action="append", default=[], help="stop sequence; repeatable")
    x.add_argument("--redact-input-pii", action="store_true", help="guardrail")
    x.add_argument("--redact-output-pii", action="store_true", help="guardrail")
    x.add_argument("--block-prompt-injection", action="store_true", help="guardrail")
    x.add_argument("--blocked-term", action="append", default=[],
                   help="guardrail: term that blocks an answer; repeatable")  # fmt: skip
    x.add_argument("--max-input-tokens", type=int, default=0, help="guardrail (0: no limit)")
    x.add_argument("--refusal-message", default="", help="text returned when blocked")
    x = command(pol, "list", "policies, newest version first", _list)
    x.add_argument("skill", nargs="?", default="", help="only this skill's (default: all)")
    x.add_argument("--state", choices=[s for s in _STATES if s], default="",
                   help="only policies in this state")  # fmt: skip
    paging(x)
    x = command(pol, "get", "one policy, every field", _get)
    x.add_argument("policy_id", help="skill@vN")
    x = command(pol, "diff", "what changed between two policies", _diff)
    # Not `target`: that dest is the global --target (the server's address).
    x.add_argument("base_policy_id", help="the 'before' policy, skill@vN")
    x.add_argument("target_policy_id", help="the 'after' policy, skill@vM")
