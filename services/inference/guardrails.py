"""Guardrails around a model call, as a policy configures them: input PII redaction,
blocked terms, a prompt-injection screen and an input token limit before; PII
redaction of the answer after."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from rlaas.registry.v1 import registry_pb2 as reg
from services.errors import InvalidArgument
from services.telemetry.pii import Scrubber

DEFAULT_REFUSAL = "I can't help with that request."

# A screen, not a proof: phrasings that try to override the system prompt or exfiltrate
# it. Hand-written because no maintained Python library ships such a list offline.
_INJECTION = re.compile(
    r"(ignore|disregard|forget|override)\s+(all\s+|any\s+)?(the\s+|your\s+|my\s+)?"
    r"(previous|prior|above|earlier|preceding|system)\s+(instructions|prompts?|rules|messages)"
    r"|(reveal|print|show|repeat|leak)\s+(me\s+)?(your|the)\s+(system\s+prompt|instructions|"
    r"hidden\s+prompt)"
    r"|\byou\s+are\s+now\s+(dan|in\s+developer\s+mode|an?\s+unrestricted)"
    r"|\b(jailbreak|developer\s+mode\s+enabled|do\s+anything\s+now)\b"
    r"|pretend\s+(that\s+)?you\s+(have\s+no|are\s+not\s+bound\s+by)\s+(rules|restrictions|guidelines)",
    re.IGNORECASE,
)


def approx_tokens(text: str) -> int:
    """A tokenizer-free estimate (~4 characters a token for English), used only for the
    configured input limit; the backend reports exact counts."""
    return (len(text) + 3) // 4


@dataclass
class Screened:
    messages: list[dict[str, str]]
    flags: list[str] = field(default_factory=list)
    refusal: str | None = None  # set: answer this instead of calling the model


def screen_input(
    messages: list[dict[str, str]], cfg: reg.GuardrailConfig, scrubber: Scrubber
) -> Screened:
    flags: list[str] = []
    out = [dict(m) for m in messages]
    if cfg.max_input_tokens:
        total = sum(approx_tokens(m["content"]) for m in out)
        if total > cfg.max_input_tokens:
            raise InvalidArgument.field(
                "messages", f"about {total} tokens; this policy accepts {cfg.max_input_tokens}"
            )
    if cfg.redact_input_pii:
        for m in out:
            if m["role"] == "user":
                result = scrubber.scrub(m["content"])
                if result.counts:
                    m["content"] = result.text
                    flags.append("input_pii_redacted")
    user_text = "\n".join(m["content"] for m in out if m["role"] == "user").lower()
    refusal_text = cfg.refusal_message or DEFAULT_REFUSAL
    for term in cfg.blocked_terms:
        if term and term.lower() in user_text:
            return Screened(out, [*flags, "blocked_term"], refusal_text)
    if cfg.block_prompt_injection and _INJECTION.search(user_text):
        return Screened(out, [*flags, "prompt_injection"], refusal_text)
    return Screened(out, sorted(set(flags)))


def screen_output(text: str, cfg: reg.GuardrailConfig, scrubber: Scrubber) -> tuple[str, list[str]]:
    if not cfg.redact_output_pii:
        return text, []
    result = scrubber.scrub(text)
    return (result.text, ["output_pii_redacted"]) if result.counts else (text, [])
