"""Pure checks of registry input: skill ids, policies (prompt template, adapter,
generation defaults, guardrails, retrieval) and traffic configurations. No I/O here,
so all of it is unit-tested directly."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import jinja2

from rlaas.registry.v1 import registry_pb2 as pb
from rlaas.retrieval.v1 import retrieval_pb2 as rpb
from services import templating
from services.errors import FailedPrecondition, FieldViolation, InvalidArgument, NotFound

# \Z, not $: `$` also matches before a final newline, so "skill\n" passed `.match`.
SKILL_ID = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*\Z")
MAX_SKILL_ID = 63
POLICY_ID = re.compile(r"^([a-z][a-z0-9_]{0,62})@v([1-9][0-9]{0,8})\Z")
SHA256_HEX = re.compile(r"^[0-9a-f]{64}\Z")

MAX_NAME = 200
MAX_DESCRIPTION = 2000
MAX_LABELS = 64
MAX_LABEL_KEY = 63
MAX_LABEL_VALUE = 256
MAX_PROMPT_CHARS = 100_000
MAX_EXAMPLES = 32
MAX_TOKENS = 32_768
MAX_STOP = 8
MAX_STOP_CHARS = 200
MAX_BLOCKED_TERMS = 1000
MAX_TERM_CHARS = 200
MAX_REFUSAL_CHARS = 2000
MAX_RETRIEVAL_TOP_K = 100
# RetrievalService's index ids (retrieval.proto, Index.index_id).
INDEX_ID = re.compile(r"^[a-z][a-z0-9_-]{0,62}\Z")
MAX_FILTER_ITEMS = 1000
MAX_CACHE_TTL_S = 30 * 24 * 3600
MAX_REASON = 2000
TEMPLATE_VARIABLES = frozenset({"input", "context"})
# The gateway renders the system prompt with these (services.inference.prompting).
SYSTEM_PROMPT_VARIABLES = frozenset({"input", "context", "user_id", "skill"})

# Policy states, as stored.
CANDIDATE = "candidate"
ACTIVE = "active"
RETIRED = "retired"


class _Violations:
    def __init__(self) -> None:
        self.items: list[FieldViolation] = []

    def add(self, field: str, description: str) -> None:
        self.items.append(FieldViolation(field, description))

    def raise_if_any(self) -> None:
        if self.items:
            raise InvalidArgument(self.items)


# ---- ids ---------------------------------------------------------------------------


def skill_id_problem(skill_id: str) -> str | None:
    if not skill_id:
        return "is required"
    if len(skill_id) > MAX_SKILL_ID or not SKILL_ID.match(skill_id):
        return f"{skill_id!r} must be lower_snake_case, 1-{MAX_SKILL_ID} characters"
    return None


def require_skill_id(skill_id: str, field: str = "skill_id") -> str:
    problem = skill_id_problem(skill_id)
    if problem:
        raise InvalidArgument.field(field, problem)
    return skill_id


def parse_policy_id(policy_id: str, field: str = "policy_id") -> tuple[str, int]:
    """``skill@vN`` -> (skill, N); INVALID_ARGUMENT naming ``field`` otherwise."""
    match = POLICY_ID.match(policy_id)
    if not policy_id:
        raise InvalidArgument.field(field, "is required")
    if match is None or skill_id_problem(match.group(1)):
        raise InvalidArgument.field(field, f"{policy_id!r} is not of the form skill@vN")
    return match.group(1), int(match.group(2))


def policy_id_of(skill_id: str, version: int) -> str:
    return f"{skill_id}@v{version}"


def require_reason(reason: str, *, optional: bool = False) -> str:
    """The reason of a traffic change, stripped; ``optional``: it may be empty."""
    reason = reason.strip()
    if not reason and not optional:
        raise InvalidArgument.field("reason", "is required (it is recorded in the audit log)")
    if len(reason) > MAX_REASON:
        raise InvalidArgument.field("reason", f"must be at most {MAX_REASON} characters")
    return reason


def _labels(labels: Mapping[str, str], field: str, out: _Violations) -> None:
    if len(labels) > MAX_LABELS:
        out.add(field, f"at most {MAX_LABELS} labels")
    for key, value in labels.items():
        if not key or len(key) > MAX_LABEL_KEY:
            out.add(f"{field}[{key!r}]", f"label keys must be 1-{MAX_LABEL_KEY} characters")
        if len(value) > MAX_LABEL_VALUE:
            out.add(f"{field}[{key!r}]", f"label values must be at most {MAX_LABEL_VALUE} chars")


def validate_skill(skill: pb.Skill) -> None:
    out = _Violations()
    problem = skill_id_problem(skill.skill_id)
    if problem:
        out.add("skill.skill_id", problem)
    if len(skill.display_name) > MAX_NAME:
        out.add("skill.display_name", f"must be at most {MAX_NAME} characters")
    if len(skill.description) > MAX_DESCRIPTION:
        out.add("skill.description", f"must be at most {MAX_DESCRIPTION} characters")
    _labels(skill.labels, "skill.labels", out)
    out.raise_if_any()


# ---- prompt templates --------------------------------------------------------------


def compile_template(source: str) -> jinja2.Template:
    """Compile a user template in the bounded sandbox (cached: policies are immutable)."""
    return templating.compile_template(source)


def template_problem(source: str, variables: frozenset[str] = TEMPLATE_VARIABLES) -> str | None:
    """Why a template cannot be registered (size, syntax, unknown variables, filters
    or constructs the sandbox refuses), or None."""
    return templating.problem(source, variables)


def render_user_message(policy: pb.Policy, text: str, context: str = "") -> str:
    """The last user message as the policy's template shapes it (the text itself when
    the policy has no template). Raises templating.RenderError."""
    source = policy.prompt_template.user_template
    if not source:
        return text
    return templating.render(source, {"input": text, "context": context})


def _prompt(prompt: pb.PromptTemplate, out: _Violations) -> None:
    field = "policy.prompt_template"
    total = len(prompt.system_prompt) + len(prompt.user_template)
    total += sum(len(e.input) + len(e.output) for e in prompt.examples)
    if total > MAX_PROMPT_CHARS:
        out.add(field, f"system prompt, template and examples exceed {MAX_PROMPT_CHARS} chars")
    if len(prompt.template_version) > MAX_NAME:
        out.add(f"{field}.template_version", f"must be at most {MAX_NAME} characters")
    # Both are templates (the gateway renders the system prompt too, with the same
    # limits): refused here, a hostile template never reaches a render at all.
    if prompt.system_prompt:
        problem = template_problem(prompt.system_prompt, SYSTEM_PROMPT_VARIABLES)
        if problem:
            out.add(f"{field}.system_prompt", problem)
    if prompt.user_template:
        problem = template_problem(prompt.user_template)
        if problem:
            out.add(f"{field}.user_template", problem)
    if len(prompt.examples) > MAX_EXAMPLES:
        out.add(f"{field}.examples", f"at most {MAX_EXAMPLES} examples")
    for i, example in enumerate(prompt.examples):
        if not example.input.strip():
            out.add(f"{field}.examples[{i}].input", "is required")
        if not example.output.strip():
            out.add(f"{field}.examples[{i}].output", "is required")


# ---- policies ----------------------------------------------------------------------


def _number(
    out: _Violations,
    field: str,
    value: float,
    ok: Callable[[float], bool],
    expected: str,
) -> None:
    if not math.isfinite(value) or not ok(value):
        out.add(field, f"{value} is out of range: must be {expected}")


def generation_violations(
    gen: pb.GenerationConfig, field: str, *, max_tokens: int = MAX_TOKENS
) -> list[FieldViolation]:
    """A GenerationConfig's problems, for a policy's defaults and Infer's overrides
    alike (NaN and infinities fail every range)."""
    out = _Violations()
    _generation(gen, out, field, max_tokens)
    return out.items


def _generation(
    gen: pb.GenerationConfig,
    out: _Violations,
    f: str = "policy.generation_defaults",
    max_tokens: int = MAX_TOKENS,
) -> None:
    if gen.HasField("temperature"):
        _number(out, f"{f}.temperature", gen.temperature, lambda v: 0 <= v <= 2, "in [0, 2]")
    if gen.HasField("top_p"):
        _number(out, f"{f}.top_p", gen.top_p, lambda v: 0 < v <= 1, "in (0, 1]")
    if gen.HasField("top_k") and gen.top_k < 0:
        out.add(f"{f}.top_k", f"{gen.top_k} is out of range: must be >= 0")
    if gen.HasField("max_tokens") and not 1 <= gen.max_tokens <= max_tokens:
        out.add(
            f"{f}.max_tokens", f"{gen.max_tokens} is out of range: must be in [1, {max_tokens}]"
        )
    if len(gen.stop) > MAX_STOP:
        out.add(f"{f}.stop", f"at most {MAX_STOP} stop sequences")
    for i, stop in enumerate(gen.stop):
        if not stop or len(stop) > MAX_STOP_CHARS:
            out.add(f"{f}.stop[{i}]", f"stop sequences must be 1-{MAX_STOP_CHARS} characters")
    if gen.HasField("repetition_penalty"):
        _number(out, f"{f}.repetition_penalty", gen.repetition_penalty, lambda v: v > 0, "> 0")
    for name in ("presence_penalty", "frequency_penalty"):
        if gen.HasField(name):
            _number(out, f"{f}.{name}", getattr(gen, name), lambda v: -2 <= v <= 2, "in [-2, 2]")


def _adapter(policy: pb.Policy, out: _Violations) -> None:
    f = "policy.adapter"
    adapter = policy.adapter
    if not adapter.artifact_uri and not adapter.sha256:
        if adapter.size_bytes or adapter.rank or adapter.training_run_id:
            out.add(f"{f}.artifact_uri", "is required when an adapter is given")
        return
    if not adapter.artifact_uri:
        out.add(f"{f}.artifact_uri", "is required with adapter.sha256")
    elif len(adapter.artifact_uri) > 1000:
        out.add(f"{f}.artifact_uri", "must be at most 1000 characters")
    if not adapter.sha256:
        out.add(f"{f}.sha256", "is required with adapter.artifact_uri (64 lowercase hex digits)")
    elif not SHA256_HEX.match(adapter.sha256):
        out.add(f"{f}.sha256", f"{adapter.sha256!r} is not 64 lowercase hex digits")
    if adapter.size_bytes < 0:
        out.add(f"{f}.size_bytes", "must not be negative")
    if adapter.rank < 0:
        out.add(f"{f}.rank", "must not be negative")


def _guardrails(g: pb.GuardrailConfig, out: _Violations) -> None:
    f = "policy.guardrails"
    if len(g.blocked_terms) > MAX_BLOCKED_TERMS:
        out.add(f"{f}.blocked_terms", f"at most {MAX_BLOCKED_TERMS} terms")
    seen: set[str] = set()
    for i, term in enumerate(g.blocked_terms):
        if not term.strip() or len(term) > MAX_TERM_CHARS:
            out.add(f"{f}.blocked_terms[{i}]", f"terms must be 1-{MAX_TERM_CHARS} characters")
        elif term.casefold() in seen:
            out.add(f"{f}.blocked_terms[{i}]", f"{term!r} is listed twice")
        seen.add(term.casefold())
    if g.max_input_tokens < 0:
        out.add(f"{f}.max_input_tokens", "must be >= 0 (0: no limit)")
    if len(g.refusal_message) > MAX_REFUSAL_CHARS:
        out.add(f"{f}.refusal_message", f"must be at most {MAX_REFUSAL_CHARS} characters")


def _retrieval(r: pb.RetrievalConfig, out: _Violations) -> None:
    f = "policy.retrieval"
    if r.top_k < 0 or r.top_k > MAX_RETRIEVAL_TOP_K:
        out.add(f"{f}.top_k", f"{r.top_k} is out of range: must be in [0, {MAX_RETRIEVAL_TOP_K}]")
    if not math.isfinite(r.min_score):
        out.add(f"{f}.min_score", "must be a finite number")
    if r.enabled:
        if not r.collection:
            out.add(f"{f}.collection", "is required when retrieval is enabled")
        if r.top_k == 0:
            out.add(f"{f}.top_k", "must be >= 1 when retrieval is enabled")
    if len(r.embedding_model) > MAX_NAME:
        out.add(f"{f}.embedding_model", f"must be at most {MAX_NAME} characters")
    if r.collection and not INDEX_ID.match(r.collection):
        out.add(
            f"{f}.collection",
            f"{r.collection[:100]!r} is not an index id (lower-case letters, digits, - and _, "
            "1-63 characters, starting with a letter)",
        )
    if r.mode not in rpb.SearchMode.values():
        out.add(f"{f}.mode", f"{r.mode} is not a SearchMode")
    if not math.isfinite(r.min_groundedness) or not 0 <= r.min_groundedness <= 1:
        out.add(f"{f}.min_groundedness", "must be in [0, 1] (0: the default 0.5)")
    for name in ("access_tags", "document_ids"):
        values = getattr(r.filter, name)
        if len(values) > MAX_FILTER_ITEMS:
            out.add(f"{f}.filter.{name}", f"at most {MAX_FILTER_ITEMS} values")
        for i, value in enumerate(values):
            if not value.strip() or len(value) > MAX_NAME:
                out.add(f"{f}.filter.{name}[{i}]", f"must be 1-{MAX_NAME} characters")
    for key, value in r.filter.metadata_equals.fields.items():
        if value.WhichOneof("kind") not in ("string_value", "number_value", "bool_value"):
            out.add(f"{f}.filter.metadata_equals[{key!r}]", "must be a string, number or bool")


def _cache(c: pb.CacheConfig, out: _Violations) -> None:
    f = "policy.cache"
    t = c.similarity_threshold
    if not math.isfinite(t) or not 0 <= t <= 1:
        out.add(f"{f}.similarity_threshold", "must be in (0, 1] (0: the default 0.95)")
    if c.HasField("ttl"):
        seconds = c.ttl.seconds + c.ttl.nanos / 1e9
        if not 0 < seconds <= MAX_CACHE_TTL_S or abs(c.ttl.nanos) >= 1_000_000_000:
            out.add(f"{f}.ttl", f"must be in (0, {MAX_CACHE_TTL_S}] seconds (unset: 1 hour)")


def validate_policy(policy: pb.Policy) -> None:
    """Every problem of a CreatePolicy input at once (INVALID_ARGUMENT)."""
    out = _Violations()
    problem = skill_id_problem(policy.skill_id)
    if problem:
        out.add("policy.skill_id", problem)
    if not policy.base_model.strip():
        out.add("policy.base_model", "is required")
    elif len(policy.base_model) > MAX_NAME:
        out.add("policy.base_model", f"must be at most {MAX_NAME} characters")
    if len(policy.description) > MAX_DESCRIPTION:
        out.add("policy.description", f"must be at most {MAX_DESCRIPTION} characters")
    if policy.parent_policy_id and not POLICY_ID.match(policy.parent_policy_id):
        out.add("policy.parent_policy_id", f"{policy.parent_policy_id!r} is not skill@vN")
    _prompt(policy.prompt_template, out)
    _adapter(policy, out)
    _generation(policy.generation_defaults, out)
    _guardrails(policy.guardrails, out)
    _retrieval(policy.retrieval, out)
    _cache(policy.cache, out)
    _labels(policy.labels, "policy.labels", out)
    out.raise_if_any()


OUTPUT_ONLY_POLICY_FIELDS = (
    "policy_id",
    "version",
    "tenant_id",
    "state",
    "content_sha256",
    "creator_api_key_id",
    "create_time",
    "state_change_time",
)


def policy_content(policy: pb.Policy) -> pb.Policy:
    """The caller-settable (immutable) part of a policy: output-only fields cleared,
    an all-empty adapter dropped."""
    content = pb.Policy()
    content.CopyFrom(policy)
    for name in OUTPUT_ONLY_POLICY_FIELDS:
        content.ClearField(name)
    if content.HasField("adapter") and content.adapter == pb.Adapter():
        content.ClearField("adapter")
    return content


# ---- traffic -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PolicyInfo:
    skill_id: str
    state: str


def traffic_policy_ids(traffic: pb.TrafficConfig) -> list[str]:
    """Every policy a traffic configuration names, in order, shadow first."""
    ids = list(traffic.shadow.policy_ids)
    strategy = traffic.WhichOneof("strategy")
    if strategy == "canary":
        ids.append(traffic.canary.policy_id)
    elif strategy == "ab_split":
        ids.extend(a.policy_id for a in traffic.ab_split.arms)
    elif strategy == "bandit":
        ids.extend(a.policy_id for a in traffic.bandit.arms)
    return ids


def _policy_ref(out: _Violations, field: str, policy_id: str) -> bool:
    if not policy_id:
        out.add(field, "is required")
        return False
    if not POLICY_ID.match(policy_id):
        out.add(field, f"{policy_id!r} is not of the form skill@vN")
        return False
    return True


def _arms(
    out: _Violations, field: str, arms: Iterable[pb.TrafficArm], *, minimum: int
) -> list[str]:
    arms = list(arms)
    ids: list[str] = []
    if len(arms) < minimum:
        out.add(field, f"needs at least {minimum} arm{'s' if minimum > 1 else ''}")
    for i, arm in enumerate(arms):
        if _policy_ref(out, f"{field}[{i}].policy_id", arm.policy_id):
            if arm.policy_id in ids:
                out.add(f"{field}[{i}].policy_id", f"{arm.policy_id} is listed twice")
            ids.append(arm.policy_id)
        if not math.isfinite(arm.weight) or arm.weight < 0:
            out.add(f"{field}[{i}].weight", f"{arm.weight} is out of range: must be >= 0")
    return ids


def normalize_traffic(traffic: pb.TrafficConfig, field: str = "traffic") -> pb.TrafficConfig:
    """Check a traffic configuration's shape (INVALID_ARGUMENT listing every problem)
    and return it with defaults made explicit (shadow sample rate 1, bandit prior 1)."""
    out = _Violations()
    result = pb.TrafficConfig()
    result.CopyFrom(traffic)
    shadow_ids: list[str] = []
    if traffic.HasField("shadow"):
        shadow = traffic.shadow
        if not shadow.policy_ids:
            out.add(f"{field}.shadow.policy_ids", "needs at least one policy (or omit shadow)")
        for i, pid in enumerate(shadow.policy_ids):
            if _policy_ref(out, f"{field}.shadow.policy_ids[{i}]", pid):
                if pid in shadow_ids:
                    out.add(f"{field}.shadow.policy_ids[{i}]", f"{pid} is listed twice")
                shadow_ids.append(pid)
        rate = shadow.sample_rate
        if not math.isfinite(rate) or not 0 <= rate <= 1:
            out.add(f"{field}.shadow.sample_rate", f"{rate} is out of range: must be in (0, 1]")
        elif rate == 0:
            result.shadow.sample_rate = 1.0
    strategy = traffic.WhichOneof("strategy")
    live: list[str] = []
    if strategy == "canary":
        canary = traffic.canary
        if _policy_ref(out, f"{field}.canary.policy_id", canary.policy_id):
            live.append(canary.policy_id)
        pct = canary.percent
        if not math.isfinite(pct) or not 0 <= pct <= 100:
            out.add(f"{field}.canary.percent", f"{pct} is out of range: must be in [0, 100]")
    elif strategy == "ab_split":
        arms = traffic.ab_split.arms
        live = _arms(out, f"{field}.ab_split.arms", arms, minimum=2)
        if arms and all(a.weight == 0 for a in arms):
            out.add(f"{field}.ab_split.arms", "weights are all zero")
    elif strategy == "bandit":
        bandit = traffic.bandit
        live = _arms(out, f"{field}.bandit.arms", bandit.arms, minimum=1)
        for arm in result.bandit.arms:
            if arm.weight == 0:
                arm.weight = 1.0  # the prior pseudo-count's default
        cap = bandit.max_exploration
        if not math.isfinite(cap) or not 0 <= cap <= 1:
            out.add(f"{field}.bandit.max_exploration", f"{cap} is out of range: must be in [0, 1]")
        if bandit.reward_window_hours < 0:
            out.add(f"{field}.bandit.reward_window_hours", "must be >= 0 (0: all rewards)")
    for pid in sorted(set(shadow_ids) & set(live)):
        out.add(f"{field}.shadow.policy_ids", f"{pid} is listed twice (shadow and live traffic)")
    out.raise_if_any()
    return result


def check_traffic_policies(
    traffic: pb.TrafficConfig,
    *,
    skill_id: str,
    baseline: str | None,
    policies: Mapping[str, PolicyInfo],
) -> None:
    """The semantic checks of a (normalised) traffic configuration against the stored
    policies: NOT_FOUND for an unknown policy, FAILED_PRECONDITION for one of another
    skill or a RETIRED one, INVALID_ARGUMENT where the baseline is misused."""
    if not baseline:
        raise FailedPrecondition(
            f"skill {skill_id!r} has no baseline yet; promote a policy first",
            reason="NO_BASELINE",
        )
    for pid in traffic_policy_ids(traffic):
        info = policies.get(pid)
        if info is None:
            raise NotFound("policy", pid)
        if info.skill_id != skill_id:
            raise FailedPrecondition(
                f"policy {pid} belongs to skill {info.skill_id!r}, not {skill_id!r}",
                reason="POLICY_OF_OTHER_SKILL",
            )
        if info.state == RETIRED:
            raise FailedPrecondition(
                f"policy {pid} is RETIRED and may not receive traffic", reason="POLICY_RETIRED"
            )
    if baseline in traffic.shadow.policy_ids:
        raise InvalidArgument.field(
            "traffic.shadow.policy_ids", f"{baseline} is the baseline; it already serves"
        )
    if traffic.WhichOneof("strategy") == "canary" and traffic.canary.policy_id == baseline:
        raise InvalidArgument.field(
            "traffic.canary.policy_id", f"{baseline} is the baseline; a canary needs a candidate"
        )


def prune_traffic(traffic: pb.TrafficConfig, removed: set[str]) -> pb.TrafficConfig:
    """``traffic`` without the policies in ``removed``; a shadow set or strategy that is
    left empty (or an A/B split left with one arm) is dropped."""
    result = pb.TrafficConfig()
    if traffic.HasField("shadow"):
        kept = [p for p in traffic.shadow.policy_ids if p not in removed]
        if kept:
            result.shadow.policy_ids.extend(kept)
            result.shadow.sample_rate = traffic.shadow.sample_rate
    strategy = traffic.WhichOneof("strategy")
    if strategy == "canary" and traffic.canary.policy_id not in removed:
        result.canary.CopyFrom(traffic.canary)
    elif strategy == "ab_split":
        arms = [a for a in traffic.ab_split.arms if a.policy_id not in removed]
        if len(arms) >= 2 and any(a.weight > 0 for a in arms):
            result.ab_split.arms.extend(arms)
    elif strategy == "bandit":
        arms = [a for a in traffic.bandit.arms if a.policy_id not in removed]
        if arms:
            result.bandit.CopyFrom(traffic.bandit)
            del result.bandit.arms[:]
            result.bandit.arms.extend(arms)
    return result


def stage_of(baseline: str | None, traffic: pb.TrafficConfig) -> int:
    if not baseline:
        return pb.Deployment.STAGE_EMPTY
    strategy = traffic.WhichOneof("strategy")
    if strategy == "canary":
        return pb.Deployment.STAGE_CANARY
    if strategy == "ab_split":
        return pb.Deployment.STAGE_AB_SPLIT
    if strategy == "bandit":
        return pb.Deployment.STAGE_BANDIT
    if traffic.shadow.policy_ids:
        return pb.Deployment.STAGE_SHADOW
    return pb.Deployment.STAGE_BASELINE
