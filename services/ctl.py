"""``rlaasctl``: the operator's CLI over the public gRPC API.

Every command is one RPC of the five services (tenants, API keys, skills, policies,
deployments, promotions, rollbacks, traffic, the audit log, inference, telemetry,
preference datasets, training runs, evaluations, learning loops, rollouts, retrieval
indexes, documents and search); the CLI
builds the request, makes the call and prints the response. It holds no domain logic:
what the server refuses, the CLI reports.

Auth: ``--api-key`` or ``RLAAS_API_KEY``; server: ``--target`` or ``RLAAS_TARGET``.
``--output json`` (before or after the command) prints the API's own proto3 JSON
(``json_format``, the JSON names the REST bridge uses); ``--output text`` (the default)
prints tables and ``field: value`` lines.

Exit codes:
  0  ok
  1  any other error (INTERNAL, UNKNOWN, UNIMPLEMENTED, ...)
  2  bad usage, or the server said INVALID_ARGUMENT
  3  NOT_FOUND
  4  UNAUTHENTICATED or PERMISSION_DENIED (bad, revoked or under-scoped key)
  5  FAILED_PRECONDITION, ABORTED or ALREADY_EXISTS (state or revision conflict)
  6  UNAVAILABLE, DEADLINE_EXCEEDED or RESOURCE_EXHAUSTED (try again later)
On an error the gRPC code, its message and the google.rpc.Status details (ErrorInfo
reason, BadRequest field violations) go to stderr, as JSON with ``--output json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Any

import grpc
from google.protobuf import json_format
from google.protobuf.message import Message
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from rlaas.inference.v1 import inference_pb2 as inf
from rlaas.inference.v1 import inference_pb2_grpc
from rlaas.options.v1 import options_pb2
from rlaas.registry.v1 import registry_pb2 as reg
from rlaas.registry.v1 import registry_pb2_grpc
from rlaas.retrieval.v1 import retrieval_pb2 as ret
from rlaas.retrieval.v1 import retrieval_pb2_grpc
from rlaas.telemetry.v1 import telemetry_pb2 as tel
from rlaas.telemetry.v1 import telemetry_pb2_grpc
from rlaas.training.v1 import training_pb2 as trn
from rlaas.training.v1 import training_pb2_grpc
from rlaas_sdk.adapters import upload_requests

# ---- exit codes -----------------------------------------------------------------------

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_NOT_FOUND = 3
EXIT_AUTH = 4
EXIT_CONFLICT = 5
EXIT_UNAVAILABLE = 6

_EXIT_BY_CODE = {
    grpc.StatusCode.OK: EXIT_OK,
    grpc.StatusCode.INVALID_ARGUMENT: EXIT_USAGE,
    grpc.StatusCode.NOT_FOUND: EXIT_NOT_FOUND,
    grpc.StatusCode.UNAUTHENTICATED: EXIT_AUTH,
    grpc.StatusCode.PERMISSION_DENIED: EXIT_AUTH,
    grpc.StatusCode.FAILED_PRECONDITION: EXIT_CONFLICT,
    grpc.StatusCode.ABORTED: EXIT_CONFLICT,
    grpc.StatusCode.ALREADY_EXISTS: EXIT_CONFLICT,
    grpc.StatusCode.UNAVAILABLE: EXIT_UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED: EXIT_UNAVAILABLE,
    grpc.StatusCode.RESOURCE_EXHAUSTED: EXIT_UNAVAILABLE,
}

EXIT_CODES_HELP = """\
exit codes:
  0  ok
  1  any other error (INTERNAL, UNKNOWN, UNIMPLEMENTED, ...)
  2  bad usage, or the server said INVALID_ARGUMENT
  3  NOT_FOUND
  4  UNAUTHENTICATED or PERMISSION_DENIED (bad, revoked or under-scoped key)
  5  FAILED_PRECONDITION, ABORTED or ALREADY_EXISTS (state or revision conflict)
  6  UNAVAILABLE, DEADLINE_EXCEEDED or RESOURCE_EXHAUSTED (try again later)
"""


def exit_code(code: grpc.StatusCode) -> int:
    """The process exit code for a gRPC status code: the one place they are mapped."""
    return _EXIT_BY_CODE.get(code, EXIT_ERROR)


def error_report(err: grpc.RpcError) -> dict[str, Any]:
    """The failed call as JSON: code name, message, and the google.rpc.Status details."""
    code = err.code() if isinstance(err, grpc.Call) else grpc.StatusCode.UNKNOWN
    message = err.details() if isinstance(err, grpc.Call) else str(err)
    report: dict[str, Any] = {"code": code.name, "message": message or ""}
    status = rpc_status.from_call(err) if isinstance(err, grpc.Call) else None
    if status is not None:
        report["details"] = [json_format.MessageToDict(d) for d in status.details]
    return report


def _error_text(report: dict[str, Any]) -> str:
    lines = [f"rlaasctl: {report['code']}: {report['message']}"]
    for detail in report.get("details", []):
        kind = detail.get("@type", "").rsplit("/", 1)[-1]
        if kind == error_details_pb2.ErrorInfo.DESCRIPTOR.full_name:
            lines.append(f"  reason: {detail.get('reason', '')}")
        elif kind == error_details_pb2.BadRequest.DESCRIPTOR.full_name:
            for v in detail.get("fieldViolations", []):
                lines.append(f"  field {v.get('field', '')}: {v.get('description', '')}")
    return "\n".join(lines)


# ---- the client -----------------------------------------------------------------------


class Ctl:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.channel = grpc.insecure_channel(args.target)
        self.registry = registry_pb2_grpc.RegistryServiceStub(self.channel)
        self.training = training_pb2_grpc.TrainingServiceStub(self.channel)
        self.telemetry = telemetry_pb2_grpc.TelemetryServiceStub(self.channel)
        self.inference = inference_pb2_grpc.InferenceServiceStub(self.channel)
        self.retrieval = retrieval_pb2_grpc.RetrievalServiceStub(self.channel)
        self.metadata = (("authorization", f"Bearer {args.api_key}"),)

    def call(self, rpc: Callable[..., Any], request: Message | Iterator[Message]) -> Any:
        return rpc(request, metadata=self.metadata, timeout=self.args.timeout)


Shown = tuple[Message, Callable[[Any], str]]
Handler = Callable[[Ctl, argparse.Namespace], Shown]


def _rid(args: argparse.Namespace) -> str:
    return args.request_id or str(uuid.uuid4())


# ---- text output ----------------------------------------------------------------------


def _enum(name: str, prefix: str = "STATE_") -> str:
    return name.removeprefix(prefix).lower()


def _table(headers: Sequence[str], rows: Sequence[Sequence[object]], next_token: str = "") -> str:
    cells = [[str(h).upper() for h in headers]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
             for row in cells]  # fmt: skip
    if not rows:
        lines.append("(none)")
    if next_token:
        lines.append(f"(more: --page-token {next_token})")
    return "\n".join(lines)


def _flatten(value: Any, prefix: str = "") -> list[tuple[str, str]]:
    if isinstance(value, dict):
        out: list[tuple[str, str]] = []
        for key, item in value.items():
            out += _flatten(item, f"{prefix}.{key}" if prefix else key)
        return out
    if isinstance(value, list):
        if all(not isinstance(v, dict | list) for v in value):
            return [(prefix, ", ".join(str(v) for v in value))]
        return [pair for i, v in enumerate(value) for pair in _flatten(v, f"{prefix}[{i}]")]
    return [(prefix, str(value))]


def _fields(message: Message) -> str:
    """Any message as aligned `field: value` lines (proto3 JSON names, dotted paths)."""
    pairs = _flatten(json_format.MessageToDict(message))
    width = max((len(k) for k, _ in pairs), default=0)
    return "\n".join(f"{k + ':':<{width + 1}} {v}" for k, v in pairs) or "(empty)"


def _deployment_text(d: reg.Deployment) -> str:
    strategy = d.traffic.WhichOneof("strategy") or "baseline only"
    detail = ""
    if strategy == "canary":
        detail = f" {d.traffic.canary.policy_id} at {d.traffic.canary.percent:g}%"
    elif strategy == "ab_split":
        detail = " " + ",".join(f"{a.policy_id}={a.weight:g}" for a in d.traffic.ab_split.arms)
    elif strategy == "bandit":
        detail = " " + ",".join(a.policy_id for a in d.traffic.bandit.arms)
    shadow = list(d.traffic.shadow.policy_ids)
    return (
        f"{d.skill_id}: baseline {d.baseline_policy_id or '-'} | {strategy}{detail}"
        f"{' | shadow ' + ','.join(shadow) if shadow else ''} | revision {d.revision}"
    )


def _loop_text(x: trn.LearningLoop) -> str:
    state = _enum(trn.LearningLoop.State.Name(x.state))
    phase = _enum(trn.LearningLoop.Phase.Name(x.phase), "PHASE_")
    return f"{x.learning_loop_id}  skill={x.skill_id}  {state}/{phase}  iteration={x.iteration}"


def _rollout_text(x: trn.Rollout) -> str:
    stage = _enum(trn.Rollout.Stage.Name(x.stage), "STAGE_")
    state = _enum(trn.Rollout.State.Name(x.state))
    at = f" {x.canary_percent:g}%" if x.stage == trn.Rollout.STAGE_CANARY else ""
    why = f"  ({x.rollback_reason})" if x.rollback_reason else ""
    auto = " automatic" if x.automatic_rollback else ""
    return (
        f"{x.rollout_id}  {x.candidate_policy_id} vs {x.baseline_policy_id}  "
        f"{state}/{stage}{at}{auto}{why}"
    )


def _dataset_text(x: trn.PreferenceDataset) -> str:
    state = _enum(trn.PreferenceDataset.State.Name(x.state))
    if x.state == trn.PreferenceDataset.STATE_FAILED:
        detail = f"({x.error.message})"
    else:
        detail = (
            f"pairs={x.pair_count} (train {x.train_pair_count}, eval {x.eval_pair_count})  "
            f"sha256={x.content_sha256[:12]}"
        )
    return f"{x.dataset_id}  {x.skill_id} v{x.version}  {state}  {detail}"


def _run_text(x: trn.TrainingRun) -> str:
    state = _enum(trn.TrainingRun.State.Name(x.state))
    if x.state == trn.TrainingRun.STATE_FAILED:
        detail = f"({x.error.message})"
    else:
        total = x.progress.total_steps or "?"
        detail = f"step {x.progress.step}/{total}  loss={x.progress.loss:.4f}"
    produced = x.lineage.produced_policy_id
    return (
        f"{x.training_run_id}  {x.skill_id}  {state}  {detail}  "
        f"{x.parent_policy_id} -> {produced or '-'}"
    )


def _eval_text(x: trn.Evaluation) -> str:
    state = _enum(trn.Evaluation.State.Name(x.state))
    head = f"{x.evaluation_id}  {x.candidate_policy_id} vs {x.baseline_policy_id}  {state}"
    if x.state == trn.Evaluation.STATE_FAILED:
        return f"{head}  ({x.error.message})"
    if x.state != trn.Evaluation.STATE_SUCCEEDED:
        return head
    r = x.result
    verdict = "passed" if r.passed else "failed: " + "; ".join(r.failure_reasons)
    return (
        f"{head}  win-rate {r.win_rate:.3f} [{r.win_rate_ci_lower:.3f}, "
        f"{r.win_rate_ci_upper:.3f}] ({r.confidence_level:.0%})  p={r.p_value:.4f}  {verdict}"
    )


def _lines(texts: Sequence[str], next_token: str = "") -> str:
    out = "\n".join(texts) or "(none)"
    return out + (f"\n(more: --page-token {next_token})" if next_token else "")


def _time(ts: Any) -> str:
    return ts.ToDatetime().strftime("%Y-%m-%d %H:%M:%S") if ts.seconds or ts.nanos else "-"


# ---- argument types -------------------------------------------------------------------


def _iso_time(value: str) -> datetime:
    """An ISO 8601 time; without a zone it is UTC (protobuf reads naive times so)."""
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not an ISO 8601 time") from None


def _key_value(value: str) -> tuple[str, str]:
    key, sep, item = value.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"{value!r} is not KEY=VALUE")
    return key, item


def _arm(value: str) -> reg.TrafficArm:
    policy, sep, weight = value.partition("=")
    try:
        return reg.TrafficArm(policy_id=policy, weight=float(weight) if sep else 1.0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not POLICY[=WEIGHT]") from None


def _canary_arg(value: str) -> reg.CanaryTraffic:
    policy, sep, percent = value.partition("=")
    try:
        return reg.CanaryTraffic(policy_id=policy, percent=float(percent) if sep else "")
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"{value!r} is not POLICY=PERCENT") from None


_SCOPES = {
    _enum(n, "SCOPE_"): v for n, v in options_pb2.Scope.items() if v and n != "SCOPE_AUTHENTICATED"
}


# ---- identity, tenants, keys ----------------------------------------------------------


def _whoami(c: Ctl, a: argparse.Namespace) -> Shown:
    return c.call(c.registry.GetCallerIdentity, reg.GetCallerIdentityRequest()), _fields


def _tenant_row(t: reg.Tenant) -> list[object]:
    state = _enum(reg.Tenant.State.Name(t.state))
    return [t.tenant_id, t.display_name, state, "yes" if t.operator else "", _time(t.create_time)]


def _tenants_create(c: Ctl, a: argparse.Namespace) -> Shown:
    req = reg.CreateTenantRequest(tenant=reg.Tenant(display_name=a.display_name),
                                  request_id=_rid(a))  # fmt: skip
    return (
        c.call(c.registry.CreateTenant, req),
        lambda r: (
            f"tenant {r.tenant.tenant_id} ({r.tenant.display_name})\n"
            f"admin key {r.admin_api_key.api_key_id}: {r.admin_api_key_secret or '(shown before)'}"
        ),
    )


def _tenants_get(c: Ctl, a: argparse.Namespace) -> Shown:
    return c.call(c.registry.GetTenant, reg.GetTenantRequest(tenant_id=a.tenant_id)), _fields


def _tenants_list(c: Ctl, a: argparse.Namespace) -> Shown:
    req = reg.ListTenantsRequest(page_size=a.page_size, page_token=a.page_token)
    return c.call(c.registry.ListTenants, req), lambda r: _table(
        ["tenant", "name", "state", "operator", "created"],
        [_tenant_row(t) for t in r.tenants], r.next_page_token,
    )  # fmt: skip


def _key_row(k: reg.ApiKey) -> list[object]:
    scopes = ",".join(_enum(options_pb2.Scope.Name(s), "SCOPE_") for s in k.scopes)
    state = _enum(reg.ApiKey.State.Name(k.state))
    return [k.api_key_id, k.display_name, scopes, state, _time(k.expire_time)]


_KEY_HEADERS = ["key", "name", "scopes", "state", "expires"]


def _keys_create(c: Ctl, a: argparse.Namespace) -> Shown:
    key = reg.ApiKey(display_name=a.display_name, scopes=[_SCOPES[s] for s in a.scope])
    if a.expire_time is not None:
        key.expire_time.FromDatetime(a.expire_time)
    req = reg.CreateApiKeyRequest(api_key=key, request_id=_rid(a))
    return (
        c.call(c.registry.CreateApiKey, req),
        lambda r: (
            _table(_KEY_HEADERS, [_key_row(r.api_key)])
            + f"\nsecret (shown once): {r.secret or '(shown before)'}"
        ),
    )


def _keys_get(c: Ctl, a: argparse.Namespace) -> Shown:
    return c.call(c.registry.GetApiKey, reg.GetApiKeyRequest(api_key_id=a.api_key_id)), _fields


def _keys_list(c: Ctl, a: argparse.Namespace) -> Shown:
    req = reg.ListApiKeysRequest(page_size=a.page_size, page_token=a.page_token,
                                 show_revoked=a.show_revoked)  # fmt: skip
    return c.call(c.registry.ListApiKeys, req), lambda r: _table(
        _KEY_HEADERS, [_key_row(k) for k in r.api_keys], r.next_page_token
    )


def _keys_revoke(c: Ctl, a: argparse.Namespace) -> Shown:
    req = reg.RevokeApiKeyRequest(api_key_id=a.api_key_id, request_id=_rid(a))
    return c.call(c.registry.RevokeApiKey, req), lambda r: _table(
        _KEY_HEADERS, [_key_row(r.api_key)]
    )


# ---- skills and policies --------------------------------------------------------------


def _skill_row(s: reg.Skill) -> list[object]:
    return [s.skill_id, s.display_name, s.baseline_policy_id or "-", s.latest_version,
            _time(s.create_time)]  # fmt: skip


_SKILL_HEADERS = ["skill", "name", "baseline", "latest", "created"]


def _skills_create(c: Ctl, a: argparse.Namespace) -> Shown:
    skill = reg.Skill(skill_id=a.skill, display_name=a.display_name,
                      description=a.description, labels=dict(a.label))  # fmt: skip
    req = reg.CreateSkillRequest(skill=skill, request_id=_rid(a))
    return c.call(c.registry.CreateSkill, req), lambda r: _table(
        _SKILL_HEADERS, [_skill_row(r.skill)]
    )


def _skills_get(c: Ctl, a: argparse.Namespace) -> Shown:
    return c.call(c.registry.GetSkill, reg.GetSkillRequest(skill_id=a.skill)), _fields


def _skills_list(c: Ctl, a: argparse.Namespace) -> Shown:
    req = reg.ListSkillsRequest(page_size=a.page_size, page_token=a.page_token)
    return c.call(c.registry.ListSkills, req), lambda r: _table(
        _SKILL_HEADERS, [_skill_row(s) for s in r.skills], r.next_page_token
    )


_POLICY_STATES = {"": 0} | {
    s: reg.Policy.State.Value(f"STATE_{s.upper()}") for s in ("candidate", "active", "retired")
}
_POLICY_HEADERS = ["policy", "state", "base model", "adapter", "parent", "created"]


def _policy_row(p: reg.Policy) -> list[object]:
    return [p.policy_id, _enum(reg.Policy.State.Name(p.state)), p.base_model,
            p.adapter.artifact_uri or "(no adapter)", p.parent_policy_id or "-",
            _time(p.create_time)]  # fmt: skip


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


def _policies_create(c: Ctl, a: argparse.Namespace) -> Shown:
    policy = _new_policy(a)
    if a.adapter_dir:
        # Policies name only the tenant's own artifacts: upload the directory first.
        uploaded = c.call(c.registry.UploadAdapter, upload_requests(a.adapter_dir))
        policy.adapter.CopyFrom(uploaded.adapter)
        if a.adapter_rank:
            policy.adapter.rank = a.adapter_rank
    req = reg.CreatePolicyRequest(policy=policy, request_id=_rid(a))
    return c.call(c.registry.CreatePolicy, req), lambda r: _table(
        _POLICY_HEADERS, [_policy_row(r.policy)]
    )


def _policies_get(c: Ctl, a: argparse.Namespace) -> Shown:
    return c.call(c.registry.GetPolicy, reg.GetPolicyRequest(policy_id=a.policy_id)), _fields


def _policies_list(c: Ctl, a: argparse.Namespace) -> Shown:
    req = reg.ListPoliciesRequest(skill_id=a.skill or "", state=_POLICY_STATES[a.state],
                                  page_size=a.page_size, page_token=a.page_token)  # fmt: skip
    return c.call(c.registry.ListPolicies, req), lambda r: _table(
        _POLICY_HEADERS, [_policy_row(p) for p in r.policies], r.next_page_token
    )


def _policies_diff(c: Ctl, a: argparse.Namespace) -> Shown:
    req = reg.DiffPoliciesRequest(
        base_policy_id=a.base_policy_id, target_policy_id=a.target_policy_id
    )

    def text(r: reg.DiffPoliciesResponse) -> str:
        if r.identical:
            return "identical"
        rows = [[ch.field_path, json.dumps(json_format.MessageToDict(ch.before)),
                 json.dumps(json_format.MessageToDict(ch.after))] for ch in r.changes]  # fmt: skip
        return _table(["field", "before", "after"], rows) + (
            f"\n\n{r.prompt_diff}" if r.prompt_diff else ""
        )

    return c.call(c.registry.DiffPolicies, req), text


# ---- deployments ----------------------------------------------------------------------


def _status(c: Ctl, a: argparse.Namespace) -> Shown:
    resp = c.call(c.registry.GetDeployment, reg.GetDeploymentRequest(skill_id=a.skill))
    return resp, lambda r: _deployment_text(r.deployment)


def _deployments_list(c: Ctl, a: argparse.Namespace) -> Shown:
    req = reg.ListDeploymentsRequest(page_size=a.page_size, page_token=a.page_token)
    return c.call(c.registry.ListDeployments, req), lambda r: _lines(
        [_deployment_text(d) for d in r.deployments], r.next_page_token
    )


def _promote(c: Ctl, a: argparse.Namespace) -> Shown:
    req = reg.PromotePolicyRequest(skill_id=a.skill, policy_id=a.policy_id, reason=a.reason,
                                   expected_revision=a.expected_revision,
                                   request_id=_rid(a))  # fmt: skip
    resp = c.call(c.registry.PromotePolicy, req)
    return resp, lambda r: "promoted: " + _deployment_text(r.deployment)


def _rollback(c: Ctl, a: argparse.Namespace) -> Shown:
    req = reg.RollbackDeploymentRequest(skill_id=a.skill, to_revision=a.to_revision,
                                        reason=a.reason, expected_revision=a.expected_revision,
                                        request_id=_rid(a))  # fmt: skip
    resp = c.call(c.registry.RollbackDeployment, req)
    return resp, lambda r: "rolled back: " + _deployment_text(r.deployment)


def _set_traffic(c: Ctl, a: argparse.Namespace, traffic: reg.TrafficConfig) -> Shown:
    req = reg.SetTrafficRequest(skill_id=a.skill, traffic=traffic, reason=a.reason,
                                expected_revision=a.expected_revision,
                                request_id=_rid(a))  # fmt: skip
    return c.call(c.registry.SetTraffic, req), lambda r: _deployment_text(r.deployment)


def _canary(c: Ctl, a: argparse.Namespace) -> Shown:
    canary = reg.CanaryTraffic(policy_id=a.policy_id, percent=a.percent)
    return _set_traffic(c, a, reg.TrafficConfig(canary=canary))


def _traffic(c: Ctl, a: argparse.Namespace) -> Shown:
    traffic = reg.TrafficConfig()
    if a.shadow:
        traffic.shadow.CopyFrom(reg.ShadowTraffic(policy_ids=a.shadow, sample_rate=a.shadow_rate))
    if a.canary is not None:
        traffic.canary.CopyFrom(a.canary)
    elif a.ab:
        traffic.ab_split.CopyFrom(reg.AbSplitTraffic(arms=a.ab))
    elif a.bandit:
        traffic.bandit.CopyFrom(reg.BanditTraffic(
            arms=a.bandit, max_exploration=a.max_exploration,
            reward_window_hours=a.reward_window_hours,
        ))  # fmt: skip
    return _set_traffic(c, a, traffic)


# ---- audit log ------------------------------------------------------------------------


def _audit_verify(c: Ctl, a: argparse.Namespace) -> Shown:
    req = reg.VerifyAuditLogRequest(from_sequence=a.from_sequence, to_sequence=a.to_sequence)
    return (
        c.call(c.registry.VerifyAuditLog, req),
        lambda r: (
            f"audit log intact: {r.checked_count} entries, head {r.head_hash[:16]}"
            if r.valid
            else f"audit log BROKEN at sequence {r.first_invalid_sequence}: {r.detail}"
        ),
    )


def _audit_erase(c: Ctl, a: argparse.Namespace) -> Shown:
    req = reg.EraseAuditEventsRequest(audit_event_ids=a.audit_event_id, request_id=_rid(a))
    return c.call(c.registry.EraseAuditEvents, req), lambda r: _table(
        ["seq", "audit event", "erased"],
        [[e.sequence, e.audit_event_id, _time(e.erase_time)] for e in r.audit_events],
    )


def _audit_list(c: Ctl, a: argparse.Namespace) -> Shown:
    req = reg.ListAuditEventsRequest(
        page_size=a.page_size, page_token=a.page_token, resource_type=a.resource_type,
        resource_id=a.resource_id, action=a.action_name, actor_api_key_id=a.actor,
    )  # fmt: skip
    return c.call(c.registry.ListAuditEvents, req), lambda r: _table(
        ["seq", "time", "actor", "action", "resource", "reason"],
        [[e.sequence, _time(e.event_time), e.actor_display_name or e.actor_api_key_id,
          e.action.rsplit("/", 1)[-1], f"{e.resource_type} {e.resource_id}", e.reason]
         for e in r.audit_events], r.next_page_token,
    )  # fmt: skip


# ---- inference and telemetry ----------------------------------------------------------


def _infer(c: Ctl, a: argparse.Namespace) -> Shown:
    messages = []
    if a.system:
        messages.append(tel.ChatMessage(role=tel.ChatMessage.ROLE_SYSTEM, content=a.system))
    messages.append(tel.ChatMessage(role=tel.ChatMessage.ROLE_USER, content=a.message))
    generation = reg.GenerationConfig()
    for name in ("temperature", "max_tokens", "seed"):
        if getattr(a, name) is not None:
            setattr(generation, name, getattr(a, name))
    req = inf.InferRequest(
        skill=a.skill, messages=messages, user_id=a.user_id, thread_id=a.thread_id,
        policy_id=a.policy, request_id=_rid(a),
    )  # fmt: skip
    if generation.ByteSize():
        req.generation.CopyFrom(generation)
    return (
        c.call(c.inference.Infer, req),
        lambda r: (
            f"{r.text}\n\n[policy {r.policy_id}  interaction {r.interaction_id}  "
            f"routing {_enum(tel.RoutingDecision.Reason.Name(r.routing.reason), 'REASON_')}]"
        ),
    )


_THUMBS = {"up": tel.ExplicitFeedback.THUMB_UP, "down": tel.ExplicitFeedback.THUMB_DOWN}


def _feedback(c: Ctl, a: argparse.Namespace) -> Shown:
    feedback = tel.Feedback(interaction_id=a.interaction_id, output_id=a.output_id,
                            user_id=a.user_id)  # fmt: skip
    explicit = tel.ExplicitFeedback(thumb=_THUMBS.get(a.thumb, 0), comment=a.comment)
    if a.rating is not None:
        explicit.rating = a.rating
    if explicit.ByteSize():
        feedback.explicit.CopyFrom(explicit)
    implicit = tel.ImplicitFeedback()
    if a.edited_text is not None:
        implicit.edited_text = a.edited_text
    if a.sent is not None:
        implicit.sent = a.sent
    if a.escalated:
        implicit.escalated = True
    if implicit.ListFields():
        feedback.implicit.CopyFrom(implicit)
    req = tel.SubmitFeedbackRequest(interaction_id=a.interaction_id, feedback=feedback,
                                    request_id=_rid(a))  # fmt: skip
    return c.call(
        c.telemetry.SubmitFeedback, req
    ), lambda r: f"feedback {r.feedback.feedback_id} on {r.feedback.interaction_id}"


def _interaction_row(x: tel.Interaction) -> list[object]:
    return [x.interaction_id, x.skill, x.policy_id or "-", x.user_id or "-",
            x.output_count, x.feedback_count, _time(x.create_time)]  # fmt: skip


def _telemetry_get(c: Ctl, a: argparse.Namespace) -> Shown:
    req = tel.GetInteractionRequest(interaction_id=a.interaction_id)
    return c.call(c.telemetry.GetInteraction, req), _fields


def _telemetry_list(c: Ctl, a: argparse.Namespace) -> Shown:
    req = tel.ListInteractionsRequest(
        page_size=a.page_size, page_token=a.page_token, skill=a.skill, user_id=a.user_id,
        thread_id=a.thread_id, policy_id=a.policy, has_feedback=a.has_feedback,
        include_shadow=a.include_shadow,
    )  # fmt: skip
    if a.start is not None:
        req.start_time.FromDatetime(a.start)
    if a.end is not None:
        req.end_time.FromDatetime(a.end)
    return c.call(c.telemetry.ListInteractions, req), lambda r: _table(
        ["interaction", "skill", "policy", "user", "outputs", "feedback", "created"],
        [_interaction_row(x) for x in r.interactions], r.next_page_token,
    )  # fmt: skip


_EVENT_TYPES = {_enum(n, "EVENT_TYPE_"): v for n, v in tel.EventType.items() if v}


def _files_text(files: Sequence[tel.ExportedFile]) -> str:
    return _table(["uri", "type", "date", "rows", "bytes"],
                  [[f.uri, _enum(tel.EventType.Name(f.event_type), "EVENT_TYPE_"),
                    f.partition_date, f.row_count, f.size_bytes] for f in files])  # fmt: skip


def _telemetry_export(c: Ctl, a: argparse.Namespace) -> Shown:
    req = tel.ExportEventsRequest(event_types=[_EVENT_TYPES[t] for t in a.event_type],
                                  skill=a.skill, redact_pii=a.redact_pii,
                                  request_id=_rid(a))  # fmt: skip
    req.start_time.FromDatetime(a.start)
    req.end_time.FromDatetime(a.end)
    return (
        c.call(c.telemetry.ExportEvents, req),
        lambda r: (
            _files_text(r.files) + f"\ninteractions={r.interaction_count} outputs={r.output_count}"
            f" feedback={r.feedback_count} task_results={r.task_result_count}"
        ),
    )


def _telemetry_compact(c: Ctl, a: argparse.Namespace) -> Shown:
    req = tel.CompactExportsRequest(event_types=[_EVENT_TYPES[t] for t in a.event_type],
                                    request_id=_rid(a))  # fmt: skip
    req.start_time.FromDatetime(a.start)
    req.end_time.FromDatetime(a.end)
    return (
        c.call(c.telemetry.CompactExports, req),
        lambda r: (
            _files_text(r.files) + f"\ninputs={r.input_file_count} partitions={r.partition_count}"
            f" rows={r.row_count}"
        ),
    )


def _telemetry_settings(c: Ctl, a: argparse.Namespace) -> Shown:
    req = tel.GetTelemetrySettingsRequest()
    return c.call(c.telemetry.GetTelemetrySettings, req), _fields


# ---- learning loops and rollouts ------------------------------------------------------

_LOOP_STATES = {"": 0} | {
    s: trn.LearningLoop.State.Value(f"STATE_{s.upper()}")
    for s in ("running", "paused", "completed", "failed")
}
_ROLLOUT_STATES = {"": 0} | {
    s: trn.Rollout.State.Value(f"STATE_{s.upper()}") for s in ("running", "paused", "completed")
}


def _loops_start(c: Ctl, a: argparse.Namespace) -> Shown:
    config = trn.LearningLoopConfig(min_new_feedback=a.min_new_feedback,
                                    max_iterations=a.max_iterations,
                                    min_pairs=a.min_pairs)  # fmt: skip
    if a.interval is not None:
        config.interval.FromSeconds(a.interval)
    if a.data_window is not None:
        config.data_window.FromSeconds(a.data_window)
    loop = trn.LearningLoop(skill_id=a.skill, display_name=a.display_name, config=config)
    req = trn.StartLearningLoopRequest(learning_loop=loop, request_id=_rid(a))
    return c.call(c.training.StartLearningLoop, req), lambda r: _loop_text(r.learning_loop)


def _loops_list(c: Ctl, a: argparse.Namespace) -> Shown:
    req = trn.ListLearningLoopsRequest(skill_id=a.skill, state=_LOOP_STATES[a.state],
                                       page_size=a.page_size, page_token=a.page_token)  # fmt: skip
    return c.call(c.training.ListLearningLoops, req), lambda r: _lines(
        [_loop_text(x) for x in r.learning_loops], r.next_page_token
    )


def _loops_get(c: Ctl, a: argparse.Namespace) -> Shown:
    req = trn.GetLearningLoopRequest(learning_loop_id=a.loop_id)
    return c.call(c.training.GetLearningLoop, req), lambda r: _loop_text(r.learning_loop)


def _loops_pause(c: Ctl, a: argparse.Namespace) -> Shown:
    req = trn.PauseLearningLoopRequest(learning_loop_id=a.loop_id, request_id=_rid(a))
    return c.call(c.training.PauseLearningLoop, req), lambda r: _loop_text(r.learning_loop)


def _loops_resume(c: Ctl, a: argparse.Namespace) -> Shown:
    req = trn.ResumeLearningLoopRequest(learning_loop_id=a.loop_id, request_id=_rid(a))
    return c.call(c.training.ResumeLearningLoop, req), lambda r: _loop_text(r.learning_loop)


def _one_rollout(r: Any) -> str:
    return _rollout_text(r.rollout)


def _rollouts_start(c: Ctl, a: argparse.Namespace) -> Shown:
    plan = trn.RolloutPlan(auto_advance=not a.manual)
    if a.skip_shadow:
        plan.shadow_duration.FromSeconds(0)
    plan.canary_steps.extend(trn.CanaryStep(percent=p) for p in a.canary)
    if a.min_samples:
        plan.guard.min_samples = a.min_samples
    rollout = trn.Rollout(candidate_policy_id=a.policy_id, evaluation_id=a.evaluation, plan=plan)
    req = trn.CreateRolloutRequest(rollout=rollout, request_id=_rid(a))
    return c.call(c.training.CreateRollout, req), _one_rollout


def _rollouts_list(c: Ctl, a: argparse.Namespace) -> Shown:
    req = trn.ListRolloutsRequest(skill_id=a.skill, state=_ROLLOUT_STATES[a.state],
                                  page_size=a.page_size, page_token=a.page_token)  # fmt: skip
    return c.call(c.training.ListRollouts, req), lambda r: _lines(
        [_rollout_text(x) for x in r.rollouts], r.next_page_token
    )


def _rollouts_get(c: Ctl, a: argparse.Namespace) -> Shown:
    req = trn.GetRolloutRequest(rollout_id=a.rollout_id)
    return c.call(c.training.GetRollout, req), _one_rollout


_STAGES = {"next": trn.Rollout.STAGE_UNSPECIFIED, "canary": trn.Rollout.STAGE_CANARY,
           "full": trn.Rollout.STAGE_FULL}  # fmt: skip


def _rollouts_promote(c: Ctl, a: argparse.Namespace) -> Shown:
    req = trn.PromoteRolloutRequest(rollout_id=a.rollout_id, target_stage=_STAGES[a.to],
                                    reason=a.reason, request_id=_rid(a))  # fmt: skip
    return c.call(c.training.PromoteRollout, req), _one_rollout


def _rollouts_rollback(c: Ctl, a: argparse.Namespace) -> Shown:
    req = trn.RollbackRolloutRequest(rollout_id=a.rollout_id, reason=a.reason,
                                     request_id=_rid(a))  # fmt: skip
    return c.call(c.training.RollbackRollout, req), _one_rollout


def _rollouts_pause(c: Ctl, a: argparse.Namespace) -> Shown:
    req = trn.PauseRolloutRequest(rollout_id=a.rollout_id, request_id=_rid(a))
    return c.call(c.training.PauseRollout, req), _one_rollout


def _rollouts_resume(c: Ctl, a: argparse.Namespace) -> Shown:
    req = trn.ResumeRolloutRequest(rollout_id=a.rollout_id, request_id=_rid(a))
    return c.call(c.training.ResumeRollout, req), _one_rollout


# ---- datasets, runs, evaluations ------------------------------------------------------

_FORMATS = {"dpo": trn.DATASET_FORMAT_DPO_JSONL, "openai": trn.DATASET_FORMAT_OPENAI_CHAT_JSONL,
            "anthropic": trn.DATASET_FORMAT_ANTHROPIC_JSONL,
            "parquet": trn.DATASET_FORMAT_PARQUET}  # fmt: skip
_SPLITS = {"all": trn.DATASET_SPLIT_UNSPECIFIED, "train": trn.DATASET_SPLIT_TRAIN,
           "eval": trn.DATASET_SPLIT_EVAL}  # fmt: skip
_DATASET_STATES = {"": trn.PreferenceDataset.STATE_UNSPECIFIED,
                   "ready": trn.PreferenceDataset.STATE_READY,
                   "failed": trn.PreferenceDataset.STATE_FAILED,
                   "building": trn.PreferenceDataset.STATE_BUILDING}  # fmt: skip


def _new_dataset(a: argparse.Namespace) -> trn.PreferenceDataset:
    config = trn.DatasetBuildConfig(
        min_reward_margin=a.min_reward_margin, max_pairs=a.max_pairs,
        eval_fraction=a.eval_fraction, seed=a.seed, policy_ids=a.policy,
        pair_sources=[trn.PairSource.Value(f"PAIR_SOURCE_{s.upper()}") for s in a.source],
    )  # fmt: skip
    dataset = trn.PreferenceDataset(
        skill_id=a.skill, display_name=a.display_name, build_config=config
    )
    if a.start is not None:
        dataset.start_time.FromDatetime(a.start)
    if a.end is not None:
        dataset.end_time.FromDatetime(a.end)
    return dataset


def _datasets_create(c: Ctl, a: argparse.Namespace) -> Shown:
    req = trn.CreatePreferenceDatasetRequest(preference_dataset=_new_dataset(a),
                                             request_id=_rid(a))  # fmt: skip
    resp = c.call(c.training.CreatePreferenceDataset, req)
    return resp, lambda r: _dataset_text(r.preference_dataset)


def _datasets_get(c: Ctl, a: argparse.Namespace) -> Shown:
    req = trn.GetPreferenceDatasetRequest(dataset_id=a.dataset_id)
    resp = c.call(c.training.GetPreferenceDataset, req)
    return resp, lambda r: _dataset_text(r.preference_dataset)


def _datasets_list(c: Ctl, a: argparse.Namespace) -> Shown:
    req = trn.ListPreferenceDatasetsRequest(skill_id=a.skill, state=_DATASET_STATES[a.state],
                                            page_size=a.page_size,
                                            page_token=a.page_token)  # fmt: skip
    return c.call(c.training.ListPreferenceDatasets, req), lambda r: _lines(
        [_dataset_text(x) for x in r.preference_datasets], r.next_page_token
    )


def _datasets_export(c: Ctl, a: argparse.Namespace) -> Shown:
    req = trn.ExportDatasetRequest(dataset_id=a.dataset_id, format=_FORMATS[a.format],
                                   split=_SPLITS[a.split], request_id=_rid(a))  # fmt: skip
    return c.call(
        c.training.ExportDataset, req
    ), lambda r: f"{r.uri}  rows={r.row_count}  bytes={r.size_bytes}  sha256={r.sha256}"


_METHODS = {"dpo": trn.TRAINING_METHOD_DPO, "ipo": trn.TRAINING_METHOD_IPO,
            "sft": trn.TRAINING_METHOD_SFT}  # fmt: skip
_ACCELERATORS = {"auto": trn.ACCELERATOR_UNSPECIFIED, "cpu": trn.ACCELERATOR_CPU,
                 "gpu": trn.ACCELERATOR_GPU}  # fmt: skip
_RUN_STATES = {"": 0} | {
    s: trn.TrainingRun.State.Value(f"STATE_{s.upper()}")
    for s in ("queued", "running", "succeeded", "failed", "cancelled")
}
_EVAL_STATES = {"": 0} | {
    s: trn.Evaluation.State.Value(f"STATE_{s.upper()}")
    for s in ("queued", "running", "succeeded", "failed")
}
_HYPERPARAMETERS = ("learning_rate", "num_epochs", "max_steps", "batch_size", "beta",
                    "max_length", "seed")  # fmt: skip


def _new_run(a: argparse.Namespace) -> trn.TrainingRun:
    lora = trn.LoraConfig(rank=a.rank, alpha=a.alpha, dropout=a.dropout,
                          target_modules=a.target_module, qlora=a.qlora)  # fmt: skip
    hyper = trn.TrainingHyperparameters()
    for name in _HYPERPARAMETERS:  # unset stays unset: the server's defaults apply
        if getattr(a, name) is not None:
            setattr(hyper, name, getattr(a, name))
    config = trn.TrainingConfig(method=_METHODS[a.method], lora=lora, hyperparameters=hyper,
                                accelerator=_ACCELERATORS[a.accelerator])  # fmt: skip
    return trn.TrainingRun(
        skill_id=a.skill, dataset_id=a.dataset, config=config, parent_policy_id=a.parent,
        base_model=a.base_model, display_name=a.display_name,
    )  # fmt: skip


def _one_run(r: Any) -> str:
    return _run_text(r.training_run)


def _runs_create(c: Ctl, a: argparse.Namespace) -> Shown:
    req = trn.CreateTrainingRunRequest(training_run=_new_run(a), request_id=_rid(a))
    return c.call(c.training.CreateTrainingRun, req), _one_run


def _runs_list(c: Ctl, a: argparse.Namespace) -> Shown:
    req = trn.ListTrainingRunsRequest(skill_id=a.skill, state=_RUN_STATES[a.state],
                                      page_size=a.page_size, page_token=a.page_token)  # fmt: skip
    return c.call(c.training.ListTrainingRuns, req), lambda r: _lines(
        [_run_text(x) for x in r.training_runs], r.next_page_token
    )


def _runs_get(c: Ctl, a: argparse.Namespace) -> Shown:
    req = trn.GetTrainingRunRequest(training_run_id=a.training_run_id)
    return c.call(c.training.GetTrainingRun, req), _one_run


def _runs_cancel(c: Ctl, a: argparse.Namespace) -> Shown:
    req = trn.CancelTrainingRunRequest(training_run_id=a.training_run_id, request_id=_rid(a))
    return c.call(c.training.CancelTrainingRun, req), _one_run


def _new_eval(a: argparse.Namespace) -> trn.Evaluation:
    config = trn.EvaluationConfig(dataset_id=a.dataset, max_examples=a.max_examples,
                                  safety_suites=a.safety_suite,
                                  confidence_level=a.confidence_level)  # fmt: skip
    if a.min_win_rate is not None or a.max_p_value is not None or a.require_ci_above_half:
        config.gate.CopyFrom(trn.EvaluationGate(
            min_win_rate=a.min_win_rate or 0.0, max_p_value=a.max_p_value or 0.0,
            require_ci_above_half=a.require_ci_above_half,
        ))  # fmt: skip
    return trn.Evaluation(
        candidate_policy_id=a.policy_id, baseline_policy_id=a.baseline,
        training_run_id=a.training_run, display_name=a.display_name, config=config,
    )  # fmt: skip


def _one_eval(r: Any) -> str:
    return _eval_text(r.evaluation)


def _evals_create(c: Ctl, a: argparse.Namespace) -> Shown:
    req = trn.CreateEvaluationRequest(evaluation=_new_eval(a), request_id=_rid(a))
    return c.call(c.training.CreateEvaluation, req), _one_eval


def _evals_list(c: Ctl, a: argparse.Namespace) -> Shown:
    req = trn.ListEvaluationsRequest(
        skill_id=a.skill, candidate_policy_id=a.candidate, state=_EVAL_STATES[a.state],
        page_size=a.page_size, page_token=a.page_token,
    )  # fmt: skip
    return c.call(c.training.ListEvaluations, req), lambda r: _lines(
        [_eval_text(x) for x in r.evaluations], r.next_page_token
    )


def _evals_get(c: Ctl, a: argparse.Namespace) -> Shown:
    req = trn.GetEvaluationRequest(evaluation_id=a.evaluation_id)
    return c.call(c.training.GetEvaluation, req), _one_eval


# ---- retrieval: indexes, documents, search --------------------------------------------


def _scalar(value: str) -> Any:
    """A metadata value: JSON numbers and booleans as such, anything else a string."""
    try:
        parsed = json.loads(value)
    except ValueError:
        return value
    return parsed if isinstance(parsed, bool | int | float) else value


def _index_text(x: ret.Index) -> str:
    c = x.chunking
    parents = f" parents {c.parent_chunk_size}" if c.parent_chunk_size else ""
    return (
        f"{x.index_id}  docs={x.document_count} chunks={x.chunk_count} "
        f"version={x.content_version}  chunking {c.chunk_size}/{c.chunk_overlap}{parents}  "
        f"{x.embedding_model}"
    )


def _indexes_create(c: Ctl, a: argparse.Namespace) -> Shown:
    chunking = ret.ChunkingConfig(
        chunk_size=a.chunk_size,
        chunk_overlap=a.chunk_overlap,
        parent_chunk_size=a.parent_chunk_size,
    )
    index = ret.Index(index_id=a.index_id, description=a.description, chunking=chunking)
    req = ret.CreateIndexRequest(index=index, request_id=_rid(a))
    return c.call(c.retrieval.CreateIndex, req), lambda r: _index_text(r.index)


def _indexes_get(c: Ctl, a: argparse.Namespace) -> Shown:
    return c.call(c.retrieval.GetIndex, ret.GetIndexRequest(index_id=a.index_id)), _fields


def _indexes_list(c: Ctl, a: argparse.Namespace) -> Shown:
    req = ret.ListIndexesRequest(page_size=a.page_size, page_token=a.page_token)
    return c.call(c.retrieval.ListIndexes, req), lambda r: _lines(
        [_index_text(x) for x in r.indexes], r.next_page_token
    )


def _indexes_delete(c: Ctl, a: argparse.Namespace) -> Shown:
    req = ret.DeleteIndexRequest(index_id=a.index_id, request_id=_rid(a))
    return (
        c.call(c.retrieval.DeleteIndex, req),
        lambda r: (
            f"deleted {a.index_id}: {r.deleted_document_count} documents, "
            f"{r.deleted_chunk_count} chunks"
        ),
    )


def _documents_from(a: argparse.Namespace) -> list[ret.Document]:
    if a.jsonl:
        with open(a.jsonl, encoding="utf-8") as f:
            return [json_format.Parse(line, ret.Document()) for line in f if line.strip()]
    if not a.document_id:
        raise SystemExit("rlaasctl: docs upsert needs DOCUMENT_ID with --text/--file, or --jsonl")
    if a.file:
        with open(a.file, encoding="utf-8") as f:
            text = f.read()
    else:
        text = a.text
    doc = ret.Document(document_id=a.document_id, text=text, title=a.title,
                       source_uri=a.source_uri, access_tag=a.access_tag)  # fmt: skip
    doc.metadata.update({k: _scalar(v) for k, v in a.metadata})
    return [doc]


def _docs_upsert(c: Ctl, a: argparse.Namespace) -> Shown:
    req = ret.UpsertDocumentsRequest(index_id=a.index_id, documents=_documents_from(a),
                                     request_id=_rid(a))  # fmt: skip
    outcome = ret.DocumentResult.Outcome.Name
    return c.call(c.retrieval.UpsertDocuments, req), lambda r: "\n".join(
        [f"{x.document_id}  {_enum(outcome(x.outcome), 'OUTCOME_')}  chunks={x.chunk_count}"
         for x in r.results] + [_index_text(r.index)]
    )  # fmt: skip


def _docs_get(c: Ctl, a: argparse.Namespace) -> Shown:
    req = ret.GetDocumentRequest(index_id=a.index_id, document_id=a.document_id)
    return c.call(c.retrieval.GetDocument, req), _fields


def _docs_list(c: Ctl, a: argparse.Namespace) -> Shown:
    req = ret.ListDocumentsRequest(index_id=a.index_id, page_size=a.page_size,
                                   page_token=a.page_token)  # fmt: skip
    return c.call(c.retrieval.ListDocuments, req), lambda r: _table(
        ["document", "chunks", "title", "sha256", "updated"],
        [[d.document_id, d.chunk_count, d.title, d.content_sha256[:12], _time(d.update_time)]
         for d in r.documents],
        r.next_page_token,
    )  # fmt: skip


def _docs_delete(c: Ctl, a: argparse.Namespace) -> Shown:
    req = ret.DeleteDocumentRequest(index_id=a.index_id, document_id=a.document_id,
                                    request_id=_rid(a))  # fmt: skip
    return c.call(
        c.retrieval.DeleteDocument, req
    ), lambda r: f"deleted {a.document_id}: {r.deleted_chunk_count} chunks"


_SEARCH_MODES = {"dense": ret.SEARCH_MODE_DENSE, "sparse": ret.SEARCH_MODE_SPARSE,
                 "hybrid": ret.SEARCH_MODE_HYBRID}  # fmt: skip


def _search(c: Ctl, a: argparse.Namespace) -> Shown:
    flt = ret.SearchFilter(access_tags=a.access_tag, document_ids=a.document)
    flt.metadata_equals.update({k: _scalar(v) for k, v in a.metadata})
    req = ret.SearchRequest(index_id=a.index_id, query=a.query, top_k=a.top_k,
                            mode=_SEARCH_MODES[a.mode], filter=flt, rerank=a.rerank,
                            min_score=a.min_score)  # fmt: skip

    def show(r: ret.SearchResponse) -> str:
        rows = [[h.rank, f"{h.score:.4f}", h.chunk.document_id,
                 f"{h.chunk.start_offset}-{h.chunk.end_offset}",
                 " ".join(h.chunk.text.split())[:80]] for h in r.hits]  # fmt: skip
        head = f"mode {_enum(ret.SearchMode.Name(r.mode), 'SEARCH_MODE_')}"
        head += f"  reranker {r.reranker}" if r.reranker else ""
        return (
            head
            + f"  version {r.content_version}\n"
            + _table(["rank", "score", "document", "span", "text"], rows)
        )

    return c.call(c.retrieval.Search, req), show


def _retrieval_parsers(sub: Any) -> None:
    idx = _group(sub, "indexes", "retrieval indexes of the tenant")
    x = _command(idx, "create", "create an index (admin scope)", _indexes_create)
    x.add_argument("index_id", help="lower-case id, 1-63 characters")
    x.add_argument("--description", default="", help="what it holds")
    x.add_argument("--chunk-size", type=int, default=0, help="characters (default 800)")
    x.add_argument("--chunk-overlap", type=int, default=0, help="characters (default 100)")
    x.add_argument("--parent-chunk-size", type=int, default=0,
                   help="characters of the parent chunks (default 0: none)")  # fmt: skip
    x = _command(idx, "get", "one index with its counts", _indexes_get)
    x.add_argument("index_id", help="the index")
    _paging(_command(idx, "list", "the tenant's indexes", _indexes_list))
    x = _command(idx, "delete", "delete an index with its documents", _indexes_delete)
    x.add_argument("index_id", help="the index")

    docs = _group(sub, "docs", "documents of a retrieval index")
    x = _command(docs, "upsert", "insert or replace documents (unchanged ones stay)",
                 _docs_upsert)  # fmt: skip
    x.add_argument("index_id", help="the index")
    x.add_argument("document_id", nargs="?", default="", help="the document's id")
    src = x.add_mutually_exclusive_group()
    src.add_argument("--text", default="", help="the document's text")
    src.add_argument("--file", help="read the text from this file")
    src.add_argument("--jsonl", help="documents as proto3 JSON, one per line (up to 256)")
    x.add_argument("--title", default="", help="title, cited in answers")
    x.add_argument("--source-uri", default="", help="where it lives, cited in answers")
    x.add_argument("--access-tag", default="", help="searches must name this tag to see it")
    x.add_argument("--metadata", type=_key_value, action="append", default=[],
                   help="KEY=VALUE filterable metadata; repeatable")  # fmt: skip
    for name, handler, help in (
        ("get", _docs_get, "one document with its chunks"),
        ("delete", _docs_delete, "delete a document and its chunks"),
    ):
        x = _command(docs, name, help, handler)
        x.add_argument("index_id", help="the index")
        x.add_argument("document_id", help="the document")
    x = _command(docs, "list", "an index's documents, by id", _docs_list)
    x.add_argument("index_id", help="the index")
    _paging(x)

    x = _command(sub, "search", "search an index", _search)
    x.add_argument("index_id", help="the index")
    x.add_argument("query", help="the query text")
    x.add_argument("--top-k", type=int, default=5, help="hits, 1-100 (default 5)")
    x.add_argument("--mode", choices=list(_SEARCH_MODES), default="hybrid",
                   help="dense, sparse (BM25) or hybrid (default)")  # fmt: skip
    x.add_argument("--rerank", action="store_true", help="re-rank the candidates")
    x.add_argument("--min-score", type=float, default=0.0, help="drop hits below this")
    x.add_argument("--metadata", type=_key_value, action="append", default=[],
                   help="filter: KEY=VALUE the metadata must hold; repeatable")  # fmt: skip
    x.add_argument("--access-tag", action="append", default=[],
                   help="filter: an access tag the caller holds; repeatable")  # fmt: skip
    x.add_argument("--document", action="append", default=[],
                   help="filter: only this document; repeatable")  # fmt: skip


# ---- the parser -----------------------------------------------------------------------

_OUTPUT_HELP = "text (tables; the default) or json (the API's proto3 JSON)"


def _command(sub: Any, name: str, help: str, handler: Handler) -> argparse.ArgumentParser:
    """A leaf command: one RPC. `--output` is accepted here too (after the command)."""
    x: argparse.ArgumentParser = sub.add_parser(name, help=help, description=help)
    # SUPPRESS: when not given here, the top-level --output (or its default) stands.
    x.add_argument("--output", choices=["text", "json"], default=argparse.SUPPRESS,
                   help=_OUTPUT_HELP)  # fmt: skip
    x.set_defaults(handler=handler)
    return x


def _group(sub: Any, name: str, help: str) -> Any:
    group = sub.add_parser(name, help=help, description=help)
    return group.add_subparsers(dest="action", required=True, metavar="ACTION")


def _paging(x: argparse.ArgumentParser) -> None:
    x.add_argument("--page-size", type=int, default=1000,
                   help="results per page (default and server maximum 1000)")  # fmt: skip
    x.add_argument("--page-token", default="", help="next_page_token of a previous page")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="rlaasctl", description=__doc__.split("\n\nExit codes:")[0],
        epilog=EXIT_CODES_HELP, formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    p.add_argument("--target", default=os.environ.get("RLAAS_TARGET", "127.0.0.1:50051"),
                   help="gRPC address host:port (env RLAAS_TARGET)")  # fmt: skip
    p.add_argument("--api-key", default=os.environ.get("RLAAS_API_KEY", ""),
                   help="API key sent as the bearer token (env RLAAS_API_KEY)")  # fmt: skip
    p.add_argument("--output", choices=["text", "json"], default="text", help=_OUTPUT_HELP)
    p.add_argument("--timeout", type=float, default=30.0, help="seconds per call")
    p.add_argument("--request-id", default="",
                   help="idempotency key of a mutation (default: a new UUID)")  # fmt: skip
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _identity_parsers(sub)
    _registry_parsers(sub)
    _deployment_parsers(sub)
    _telemetry_parsers(sub)
    _loop_parsers(sub)
    _rollout_parsers(sub)
    _dataset_parsers(sub)
    _run_parsers(sub)
    _eval_parsers(sub)
    _retrieval_parsers(sub)
    return p


def _identity_parsers(sub: Any) -> None:
    _command(sub, "whoami", "the caller's tenant, key and scopes", _whoami)

    tenants = _group(sub, "tenants", "tenants (operator key only)")
    x = _command(tenants, "create", "create a tenant and its first admin key", _tenants_create)
    x.add_argument("display_name", help="the tenant's name")
    x = _command(tenants, "get", "one tenant", _tenants_get)
    x.add_argument("tenant_id", help="the tenant's id")
    _paging(_command(tenants, "list", "all tenants, oldest first", _tenants_list))

    keys = _group(sub, "keys", "API keys of the caller's tenant (admin scope)")
    x = _command(keys, "create", "create a key; its secret is printed once", _keys_create)
    x.add_argument("display_name", help="the key's name")
    x.add_argument("--scope", action="append", required=True, choices=list(_SCOPES),
                   help="what the key may do; repeatable")  # fmt: skip
    x.add_argument("--expire-time", type=_iso_time, help="ISO time it stops working")
    x = _command(keys, "get", "one key (never its secret)", _keys_get)
    x.add_argument("api_key_id", help="the key's id (not its secret)")
    x = _command(keys, "list", "the tenant's keys, oldest first", _keys_list)
    x.add_argument("--show-revoked", action="store_true", help="include revoked keys")
    _paging(x)
    x = _command(keys, "revoke", "revoke a key; it is refused from then on", _keys_revoke)
    x.add_argument("api_key_id", help="the key's id")


def _registry_parsers(sub: Any) -> None:
    skills = _group(sub, "skills", "skills: the tasks of the tenant's app")
    x = _command(skills, "create", "create a skill and its empty deployment", _skills_create)
    x.add_argument("skill", help="lower_snake_case id, 1-63 characters")
    x.add_argument("--display-name", default="", help="human-readable name")
    x.add_argument("--description", default="", help="what the skill does")
    x.add_argument("--label", type=_key_value, action="append", default=[],
                   help="KEY=VALUE label; repeatable")  # fmt: skip
    x = _command(skills, "get", "one skill", _skills_get)
    x.add_argument("skill", help="the skill's id")
    _paging(_command(skills, "list", "the tenant's skills", _skills_list))

    pol = _group(sub, "policies", "policies skill@vN: create, list, show, diff")
    x = _command(pol, "create", "register the next CANDIDATE version of a skill",
                 _policies_create)  # fmt: skip
    x.add_argument("skill", help="the skill the policy belongs to")
    x.add_argument("--base-model", required=True, help="base model name, e.g. the served one")
    x.add_argument("--description", default="", help="what this version is about")
    x.add_argument("--parent", default="", help="policy it derives from (lineage)")
    x.add_argument("--label", type=_key_value, action="append", default=[],
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
    x = _command(pol, "list", "policies, newest version first", _policies_list)
    x.add_argument("skill", nargs="?", default="", help="only this skill's (default: all)")
    x.add_argument("--state", choices=[s for s in _POLICY_STATES if s], default="",
                   help="only policies in this state")  # fmt: skip
    _paging(x)
    x = _command(pol, "get", "one policy, every field", _policies_get)
    x.add_argument("policy_id", help="skill@vN")
    x = _command(pol, "diff", "what changed between two policies", _policies_diff)
    # Not `target`: that dest is the global --target (the server's address).
    x.add_argument("base_policy_id", help="the 'before' policy, skill@vN")
    x.add_argument("target_policy_id", help="the 'after' policy, skill@vM")


def _deployment_parsers(sub: Any) -> None:
    x = _command(sub, "status", "a skill's deployment: baseline, traffic, revision", _status)
    x.add_argument("skill", help="the skill")
    deployments = _group(sub, "deployments", "deployments of all skills")
    _paging(_command(deployments, "list", "every skill's deployment", _deployments_list))

    def revision(x: argparse.ArgumentParser) -> None:
        x.add_argument("--expected-revision", type=int, default=0,
                       help="apply only at this deployment revision (0: any)")  # fmt: skip

    x = _command(sub, "promote", "make a CANDIDATE the skill's baseline (all traffic)",
                 _promote)  # fmt: skip
    x.add_argument("skill", help="the skill")
    x.add_argument("policy_id", help="the candidate, skill@vN")
    x.add_argument("--reason", required=True, help="why (audit log)")
    revision(x)
    x = _command(sub, "rollback", "restore the skill's previous deployment revision", _rollback)
    x.add_argument("skill", help="the skill")
    x.add_argument("--reason", required=True, help="why (audit log)")
    x.add_argument("--to-revision", type=int, default=0,
                   help="the revision to restore (0: the one before the current)")  # fmt: skip
    revision(x)
    x = _command(sub, "canary", "send a percentage of traffic to a candidate", _canary)
    x.add_argument("skill", help="the skill")
    x.add_argument("policy_id", help="the candidate, skill@vN")
    x.add_argument("--percent", type=float, required=True, help="[0, 100]")
    x.add_argument("--reason", required=True, help="why (audit log)")
    revision(x)
    x = _command(sub, "traffic", "replace a skill's non-baseline traffic (no strategy: "
                 "all to the baseline)", _traffic)  # fmt: skip
    x.add_argument("skill", help="the skill")
    x.add_argument("--reason", required=True, help="why (audit log)")
    strategy = x.add_mutually_exclusive_group()
    strategy.add_argument("--canary", type=_canary_arg, metavar="POLICY=PERCENT",
                          help="canary: PERCENT of users to POLICY")  # fmt: skip
    strategy.add_argument("--ab", type=_arm, nargs="+", default=[], metavar="POLICY=W",
                          help="sticky A/B split over these arms")  # fmt: skip
    strategy.add_argument("--bandit", type=_arm, nargs="+", default=[], metavar="POLICY=W",
                          help="Thompson-sampling bandit over these arms")  # fmt: skip
    x.add_argument("--max-exploration", type=float, default=0.0,
                   help="bandit: max share off the baseline (0: server default)")  # fmt: skip
    x.add_argument("--reward-window-hours", type=int, default=0,
                   help="bandit: only rewards this recent (0: all)")  # fmt: skip
    x.add_argument("--shadow", nargs="+", default=[], metavar="POLICY",
                   help="policies dual-run in shadow")  # fmt: skip
    x.add_argument("--shadow-rate", type=float, default=0.0,
                   help="fraction of requests dual-run (0: server default 1)")  # fmt: skip
    revision(x)

    audit = _group(sub, "audit", "the tenant's hash-chained audit log")
    x = _command(audit, "verify", "recompute the hash chain and report breaks", _audit_verify)
    x.add_argument("--from-sequence", type=int, default=0, help="first entry (0: the start)")
    x.add_argument("--to-sequence", type=int, default=0, help="last entry (0: the end)")
    x = _command(audit, "list", "audit events, newest first", _audit_list)
    x.add_argument("--resource-type", default="", help="e.g. Deployment, Policy, ApiKey")
    x.add_argument("--resource-id", default="", help="e.g. a skill id or skill@vN")
    x.add_argument("--action", dest="action_name", default="",
                   help="e.g. rlaas.registry.v1.RegistryService/PromotePolicy")  # fmt: skip
    x.add_argument("--actor", default="", help="only events by this API key id")
    _paging(x)
    x = _command(audit, "erase", "erase entries' free text (the chain still verifies)",
                 _audit_erase)  # fmt: skip
    x.add_argument("audit_event_id", nargs="+", help="ae-... ids (from `audit list`)")


def _telemetry_parsers(sub: Any) -> None:
    x = _command(sub, "infer", "ask a skill; prints the answer and the policy that served it",
                 _infer)  # fmt: skip
    x.add_argument("skill", help="the skill")
    x.add_argument("message", help="the user message")
    x.add_argument("--system", default="", help="a system message before it")
    x.add_argument("--user-id", default="", help="end user (sticky canary/A-B routing)")
    x.add_argument("--thread-id", default="", help="conversation thread")
    x.add_argument("--policy", default="", help="pin a policy skill@vN (skips the router)")
    x.add_argument("--max-tokens", type=int, default=None, help="override the policy's")
    x.add_argument("--temperature", type=float, default=None, help="override the policy's")
    x.add_argument("--seed", type=int, default=None, help="sampling seed")

    x = _command(sub, "feedback", "send a user's reaction to an answer", _feedback)
    x.add_argument("interaction_id", help="the answer's interaction id")
    x.add_argument("--output-id", default="", help="which output (default: the first)")
    x.add_argument("--user-id", default="", help="who reacted")
    x.add_argument("--thumb", choices=list(_THUMBS), help="explicit thumb")
    x.add_argument("--rating", type=int, help="explicit rating 1-5")
    x.add_argument("--comment", default="", help="explicit comment")
    x.add_argument("--edited-text", help="implicit: what the user sent after editing")
    sent = x.add_mutually_exclusive_group()
    sent.add_argument("--sent", dest="sent", action="store_const", const=True,
                      help="implicit: the answer was sent")  # fmt: skip
    sent.add_argument("--discarded", dest="sent", action="store_const", const=False,
                      help="implicit: the answer was discarded")  # fmt: skip
    x.add_argument("--escalated", action="store_true", help="implicit: escalated to a human")

    t = _group(sub, "telemetry", "logged interactions, exports, ingest settings")
    x = _command(t, "get", "one interaction with its outputs, feedback and task results",
                 _telemetry_get)  # fmt: skip
    x.add_argument("interaction_id", help="the interaction id")
    x = _command(t, "list", "interactions, newest first", _telemetry_list)
    x.add_argument("--skill", default="", help="only this skill's")
    x.add_argument("--user-id", default="", help="only this user's")
    x.add_argument("--thread-id", default="", help="only this thread's")
    x.add_argument("--policy", default="", help="only those this policy served")
    x.add_argument("--has-feedback", action="store_true", help="only those with feedback")
    x.add_argument("--include-shadow", action="store_true", help="include shadow runs")
    x.add_argument("--start", type=_iso_time, help="ISO time; from then")
    x.add_argument("--end", type=_iso_time, help="ISO time; before then")
    _paging(x)
    for name, help, handler in (
        ("export", "export events in a time range to Parquet", _telemetry_export),
        ("compact", "compact exported partitions in a time range", _telemetry_compact),
    ):
        x = _command(t, name, help, handler)
        x.add_argument("--start", type=_iso_time, required=True, help="ISO time; from then")
        x.add_argument("--end", type=_iso_time, required=True, help="ISO time; before then")
        x.add_argument("--event-type", action="append", default=[], choices=list(_EVENT_TYPES),
                       help="repeatable (default: all)")  # fmt: skip
        if name == "export":
            x.add_argument("--skill", default="", help="only this skill's events")
            x.add_argument("--redact-pii", action="store_true", help="scrub PII once more")
    _command(t, "settings", "PII scrubbing settings and ingest counters", _telemetry_settings)


def _loop_parsers(sub: Any) -> None:
    loops = _group(sub, "loops", "learning loops: collect, train, evaluate, roll out, repeat")
    x = _command(loops, "start", "start a learning loop for a skill", _loops_start)
    x.add_argument("skill", help="the skill (it needs a baseline)")
    x.add_argument("--display-name", default="", help="human-readable name")
    x.add_argument("--min-new-feedback", type=int, default=0,
                   help="new feedback events an iteration also waits for (0: the "
                        "schedule alone)")  # fmt: skip
    x.add_argument("--max-iterations", type=int, default=0, help="0: forever")
    x.add_argument("--min-pairs", type=int, default=0,
                   help="preference pairs needed to train (0: server default)")  # fmt: skip
    x.add_argument("--interval", type=int, default=None,
                   help="least seconds between iteration starts (default 86400)")  # fmt: skip
    x.add_argument("--data-window", type=int, default=None,
                   help="seconds of telemetry an iteration reads")  # fmt: skip
    x = _command(loops, "list", "the tenant's loops, newest first", _loops_list)
    x.add_argument("--skill", default="", help="only this skill's")
    x.add_argument("--state", choices=[s for s in _LOOP_STATES if s], default="",
                   help="only loops in this state")  # fmt: skip
    _paging(x)
    for name, help, handler in (
        ("get", "one loop: state, phase, iteration", _loops_get),
        ("pause", "pause a RUNNING loop after its current step", _loops_pause),
        ("resume", "resume a PAUSED loop where it stopped", _loops_resume),
    ):
        x = _command(loops, name, help, handler)
        x.add_argument("loop_id", help="the learning loop id")


def _rollout_parsers(sub: Any) -> None:
    rollouts = _group(sub, "rollouts", "staged rollouts: shadow, canary, full")
    x = _command(rollouts, "start", "roll out a CANDIDATE policy", _rollouts_start)
    x.add_argument("policy_id", help="the candidate, skill@vN")
    x.add_argument("--canary", type=float, nargs="+", default=[],
                   help="canary percentages, increasing (default 5 25 50)")  # fmt: skip
    x.add_argument("--skip-shadow", action="store_true", help="go straight to the canary")
    x.add_argument("--manual", action="store_true",
                   help="wait for `rollouts promote` at each stage")  # fmt: skip
    x.add_argument("--min-samples", type=int, default=0,
                   help="rewarded requests per arm before the guard judges")  # fmt: skip
    x.add_argument("--evaluation", default="", help="a passed evaluation of the candidate")
    x = _command(rollouts, "list", "the tenant's rollouts, newest first", _rollouts_list)
    x.add_argument("--skill", default="", help="only this skill's")
    x.add_argument("--state", choices=[s for s in _ROLLOUT_STATES if s], default="",
                   help="only rollouts in this state")  # fmt: skip
    _paging(x)
    x = _command(rollouts, "get", "one rollout: stage, state, arm metrics", _rollouts_get)
    x.add_argument("rollout_id", help="the rollout id")
    x = _command(rollouts, "promote", "advance a rollout now", _rollouts_promote)
    x.add_argument("rollout_id", help="the rollout id")
    x.add_argument("--to", choices=list(_STAGES), default="next",
                   help="the next canary step (default), canary or full")  # fmt: skip
    x.add_argument("--reason", required=True, help="why (audit log)")
    x = _command(rollouts, "rollback", "return the traffic to the baseline now",
                 _rollouts_rollback)  # fmt: skip
    x.add_argument("rollout_id", help="the rollout id")
    x.add_argument("--reason", required=True, help="why (audit log)")
    for name, help, handler in (
        ("pause", "hold a rollout at its stage (the guard still rolls back)", _rollouts_pause),
        ("resume", "resume a paused rollout", _rollouts_resume),
    ):
        x = _command(rollouts, name, help, handler)
        x.add_argument("rollout_id", help="the rollout id")


def _dataset_parsers(sub: Any) -> None:
    datasets = _group(sub, "datasets", "preference datasets: build, inspect, export")
    x = _command(datasets, "create", "build a dataset version from a skill's telemetry",
                 _datasets_create)  # fmt: skip
    x.add_argument("skill", help="the skill")
    x.add_argument("--display-name", default="", help="human-readable name")
    x.add_argument(
        "--start", type=_iso_time, help="ISO time; interactions from then (default: all)"
    )
    x.add_argument(
        "--end", type=_iso_time, help="ISO time; interactions before then (default: now)"
    )
    x.add_argument("--source", nargs="+", default=[],
                   choices=["edit", "correction", "reward_ranked"],
                   help="pair sources (default: all)")  # fmt: skip
    x.add_argument("--policy", nargs="+", default=[], help="only these policies' interactions")
    x.add_argument("--eval-fraction", type=float, default=0.0, help="[0, 0.5] (default 0.1)")
    x.add_argument("--min-reward-margin", type=float, default=0.0,
                   help="chosen must beat rejected by this much")  # fmt: skip
    x.add_argument("--max-pairs", type=int, default=0, help="0: no limit")
    x.add_argument("--seed", type=int, default=0, help="split seed")
    x = _command(datasets, "get", "one dataset", _datasets_get)
    x.add_argument("dataset_id", help="the dataset id")
    x = _command(datasets, "list", "the tenant's datasets, newest first", _datasets_list)
    x.add_argument("--skill", default="", help="only this skill's")
    x.add_argument("--state", choices=["ready", "failed", "building"], default="",
                   help="only datasets in this state")  # fmt: skip
    _paging(x)
    x = _command(datasets, "export", "write a READY dataset to the object store",
                 _datasets_export)  # fmt: skip
    x.add_argument("dataset_id", help="the dataset id")
    x.add_argument("--format", choices=list(_FORMATS), required=True, help="file format")
    x.add_argument("--split", choices=list(_SPLITS), default="all", help="which pairs")


def _run_parsers(sub: Any) -> None:
    runs = _group(sub, "runs", "training runs: train a LoRA adapter on a dataset")
    x = _command(runs, "create", "queue a run; on success it registers a CANDIDATE",
                 _runs_create)  # fmt: skip
    x.add_argument("skill", help="the skill")
    x.add_argument("dataset", help="a READY dataset's id (or its object-store URI)")
    x.add_argument("--method", choices=list(_METHODS), default="dpo", help="training method")
    x.add_argument("--parent", default="", help="policy to start from (default: the baseline)")
    x.add_argument("--base-model", default="", help="default: the parent's")
    x.add_argument("--accelerator", choices=list(_ACCELERATORS), default="auto",
                   help="where to train")  # fmt: skip
    x.add_argument("--display-name", default="", help="human-readable name")
    x.add_argument("--rank", type=int, default=0, help="LoRA rank (default 8)")
    x.add_argument("--alpha", type=float, default=0.0, help="LoRA alpha (default 2 x rank)")
    x.add_argument("--dropout", type=float, default=0.0, help="LoRA dropout (default 0.05)")
    x.add_argument("--target-module", action="append", default=[],
                   help="module to adapt, repeatable (default q_proj, v_proj)")  # fmt: skip
    x.add_argument("--qlora", action="store_true", help="4-bit base; needs a GPU worker")
    for name, kind in (("learning-rate", float), ("num-epochs", float), ("max-steps", int),
                       ("batch-size", int), ("beta", float), ("max-length", int),
                       ("seed", int)):  # fmt: skip
        x.add_argument(f"--{name}", type=kind, default=None,
                       help="hyperparameter (unset: the server's default)")  # fmt: skip
    x = _command(runs, "list", "the tenant's runs, newest first", _runs_list)
    x.add_argument("--skill", default="", help="only this skill's")
    x.add_argument("--state", choices=[s for s in _RUN_STATES if s], default="",
                   help="only runs in this state")  # fmt: skip
    _paging(x)
    for name, help, handler in (
        ("get", "one run, with progress and lineage", _runs_get),
        ("cancel", "cancel a QUEUED or RUNNING run", _runs_cancel),
    ):
        x = _command(runs, name, help, handler)
        x.add_argument("training_run_id", help="the training run id")


def _eval_parsers(sub: Any) -> None:
    evals = _group(sub, "evals", "evaluations: a candidate against the baseline")
    x = _command(evals, "create", "queue an evaluation of a policy", _evals_create)
    x.add_argument("policy_id", help="the candidate, skill@vN")
    x.add_argument("--baseline", default="", help="default: the skill's baseline")
    x.add_argument("--training-run", default="", help="the run that produced the candidate")
    x.add_argument("--display-name", default="", help="human-readable name")
    x.add_argument("--dataset", default="",
                   help="a READY dataset whose eval split gives the prompts")  # fmt: skip
    x.add_argument("--max-examples", type=int, default=0, help="prompts to use (0: all)")
    x.add_argument("--safety-suite", action="append", default=[],
                   help="jailbreak, pii_leak or red_team; repeatable (default: all)")  # fmt: skip
    x.add_argument("--confidence-level", type=float, default=0.0, help="(0, 1), default 0.95")
    x.add_argument("--min-win-rate", type=float, default=None, help="gate, default 0.5")
    x.add_argument("--max-p-value", type=float, default=None, help="gate, default 0.05")
    x.add_argument("--require-ci-above-half", action="store_true", help="gate")
    x = _command(evals, "list", "the tenant's evaluations, newest first", _evals_list)
    x.add_argument("--skill", default="", help="only this skill's")
    x.add_argument("--candidate", default="", help="only of this candidate policy")
    x.add_argument("--state", choices=[s for s in _EVAL_STATES if s], default="",
                   help="only evaluations in this state")  # fmt: skip
    _paging(x)
    x = _command(evals, "get", "one evaluation, with its result", _evals_get)
    x.add_argument("evaluation_id", help="the evaluation id")


# ---- main -----------------------------------------------------------------------------


def run(args: argparse.Namespace) -> int:
    """Make the command's one call and print its response."""
    ctl = Ctl(args)
    try:
        response, text = args.handler(ctl, args)
    finally:
        ctl.channel.close()
    if args.output == "json":
        print(json_format.MessageToJson(response, indent=2))
    else:
        print(text(response))
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.api_key:
        parser.error("set --api-key or RLAAS_API_KEY")  # exits with EXIT_USAGE
    try:
        return run(args)
    except grpc.RpcError as err:
        report = error_report(err)
        print(json.dumps(report) if args.output == "json" else _error_text(report),
              file=sys.stderr)  # fmt: skip
        return exit_code(grpc.StatusCode[report["code"]])


if __name__ == "__main__":
    sys.exit(main())
