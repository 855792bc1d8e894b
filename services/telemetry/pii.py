"""PII scrubber: every free-text field (chat input and output, retrieved context, feedback
comments, edited text) passes through `Scrubber.scrub` before it is persisted.

Each detected entity is replaced by a typed placeholder (``[EMAIL]``, ``[PHONE]``, ...) and
counted. Pure domain code: no gRPC, no I/O, no per-call allocation of heavy objects.

It runs on the ingest hot path, so the shape is "cheap pre-check, then a compiled regex,
then a real validator on the few candidates":

- Checksums come from python-stdnum (`stdnum.luhn` for cards, `stdnum.iban` for IBAN
  mod-97 plus the per-country BBAN format); IP addresses are validated by `ipaddress`.
- Phones are hand-written (a regex per numbering style + a 7-15 digit count) rather than
  `phonenumbers.PhoneNumberMatcher`: measured here the matcher alone costs ~240 us per 1 KB
  of text (134 us for 575 characters), more than the whole 200 us/KB budget. The regex
  does not know per-country number plans, so it accepts some numbers phonenumbers would
  call invalid; for redaction that errs on the safe side.
- Candidate regexes, the SSA's SSN rules, the secret shapes, the overlap resolution and the
  pre-checks are hand-written: no maintained library covers them at this speed.

The classification of a span does not depend on the configuration: every detector runs, the
overlaps are resolved, and only then does the configuration decide which kinds are replaced.
So turning CARD off never turns a card number into a ``[PHONE]``.
"""

from __future__ import annotations

import bisect
import ipaddress
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from stdnum import iban as stdnum_iban
from stdnum import luhn


class Entity(StrEnum):
    EMAIL = "email"
    PHONE = "phone"
    CARD = "card"
    IBAN = "iban"
    SSN = "ssn"
    IP = "ip"
    SECRET = "secret"

    @property
    def placeholder(self) -> str:
        return f"[{self.name}]"


@dataclass(frozen=True)
class ScrubConfig:
    enabled: bool = field(default=True, metadata={"help": "False: text passes unchanged."})
    entities: frozenset[Entity] = field(
        default=frozenset(Entity), metadata={"help": "The entity kinds that are replaced."}
    )

    def __post_init__(self) -> None:
        try:
            # Accept plain strings ("email") as well as members; reject anything else.
            entities = frozenset(Entity(e) for e in self.entities)
        except ValueError as exc:
            raise ValueError(f"unknown PII entity in {sorted(map(str, self.entities))}") from exc
        object.__setattr__(self, "entities", entities)


@dataclass(frozen=True)
class ScrubResult:
    text: str
    counts: Mapping[Entity, int]  # only the entities found (and replaced)


def merge_counts(*counts: Mapping[Entity, int]) -> dict[Entity, int]:
    """Sum per-entity counts, e.g. over the fields of one event."""
    merged: dict[Entity, int] = {}
    for c in counts:
        for entity, n in c.items():
            if n:
                merged[entity] = merged.get(entity, 0) + n
    return merged


# When two detections overlap: secrets first (they come from explicit context such as
# `password=` or a vendor prefix), then the longer span, then this order.
_PRIORITY = {
    Entity.SECRET: 0,
    Entity.IBAN: 1,
    Entity.CARD: 2,
    Entity.SSN: 3,
    Entity.EMAIL: 4,
    Entity.IP: 5,
    Entity.PHONE: 6,
}
_PLACEHOLDER = re.compile(r"\[(?:" + "|".join(e.name for e in Entity) + r")\]")

# --- numbers -------------------------------------------------------------------------------
# One scan finds every run of >= 7 digits and number punctuation (starting at a digit lets
# `re` skip ahead by charset); the number detectors then only look inside those runs, with
# lookbehinds that still see the text before the run.
_NUM_CLUSTER = re.compile(r"\d[\d().+/ -]{6,}")
_CLUSTER_PUNCT = "().+/ -"

_PHONE = re.compile(
    r"(?<![\w+#$€£/.-])(?<!\d )"  # not glued to a word, a longer number, a path, a price
    r"(?:"
    r"\+\d{1,3}(?:[ .-]?\(\d{1,4}\))?(?:[ .-]?\d){6,14}"  # +CC ..., +1 (415) 555-0132
    r"|(?:1[ .-]?)?(?:\(\d{3}\) ?|\d{3}[ .-])\d{3}[ .-]\d{4}"  # NANP: 415.555.0132
    r"|0\d(?:[ .]\d\d){4}"  # FR: 01 23 45 67 89
    r"|0\d{1,4}[ -]\d{3,4}[ -]?\d{3,4}"  # trunk 0: 020 7946 0958, 030 1234567
    r"|\(0\d{1,4}\) ?\d{3,4}[ -]?\d{3,4}"  # (020) 7946 0958
    r")"
    r"(?!\w|[ .-]\d)"
)
# Bare digit strings are phones (10-11 digits) or SSNs (9) only right after a word that
# says so; otherwise they are order, customer and tracking numbers.
_PHONE_CONTEXT = re.compile(
    r"(?i)\b(?:phone|call|tel|mobile|cell|text|whatsapp|sms|fax|reach me)\b[^\d\n]{0,16}$"
)
_SSN_CONTEXT = re.compile(r"(?i)\b(?:ssn|social security(?: number| no\.?)?)\W{0,4}(?:is\W{0,3})?$")
_CARD = re.compile(r"(?<![\w-])(?<!\d[ -])\d(?:[ -]?\d){12,18}(?![ -]?\d|\w)")
# Issuer prefix and length per network: a Luhn-valid number that no network issues (one in
# ten random digit strings passes Luhn) is an order, tracking or snowflake id.
_CARD_BRANDS = re.compile(
    r"4(?:\d{12}|\d{15}|\d{18})"  # Visa
    r"|5[1-5]\d{14}|2[2-7]\d{14}"  # Mastercard
    r"|3[47]\d{13}"  # Amex
    r"|3(?:0[0-5]|[689]\d)\d{11,16}"  # Diners
    r"|35\d{14,17}"  # JCB
    r"|6\d{15,18}"  # Discover, UnionPay, RuPay
    r"|(?:50|5[6-9]|6\d)\d{10,17}"  # Maestro
)
_SSN_VALID = re.compile(r"(?!000|666|9\d\d)\d{3}(?!00)\d\d(?!0000)\d{4}")
_IPV4 = re.compile(r"(?<![\w.])\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}(?!\w|\.\d)")
# Phones, SSNs and IPv4 addresses never share a shape, so one pass over a run finds all three.
_NUMBER_SHAPES = re.compile(
    rf"(?P<phone>{_PHONE.pattern})"
    r"|(?P<ssn>(?<![\w-])(?!000|666|9\d\d)\d{3}(?P<sep>[- ])(?!00)\d\d(?P=sep)(?!0000)\d{4}"
    r"(?![\w-]))"
    rf"|(?P<ip>{_IPV4.pattern})"
)
_VERSION_CONTEXT = re.compile(r"(?i)\b(?:version|ver\.?|release|build|firmware)\s*[:#]?\s*$")

# --- letters and numbers -------------------------------------------------------------------
# The lookbehind sits after the first character so that `re` can still skip by charset.
_IBAN = re.compile(r"[A-Z](?<![A-Za-z0-9][A-Z])[A-Z]\d\d(?: ?[A-Z0-9]){11,30}(?![A-Za-z0-9])")
_IPV6_CHARS = frozenset("0123456789abcdefABCDEF:.")
_EMAIL_LOCAL = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._%+-")
_EMAIL_DOMAIN = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}\b")

# --- secrets -------------------------------------------------------------------------------
# Pre-check: a one-character `in` is a memchr; the multi-character ones only run behind it.
_SECRET_PREFIXES_UNDERSCORE = (
    "k_live_", "k_test_", "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_", "rlaas_",
)  # fmt: skip
_SECRET_PREFIXES_DASH = ("sk-", "xox")
_SECRET_TOKEN = re.compile(
    r"(?:sk-(?:proj-|ant-|svcacct-)?[A-Za-z0-9_-]{20,}"  # OpenAI / Anthropic
    r"|[sr]k_(?:live|test)_[A-Za-z0-9]{10,}"  # Stripe secret / restricted
    r"|A(?:KIA|SIA)[0-9A-Z]{16}(?![0-9A-Za-z])"  # AWS access key id
    r"|gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{22,}"  # GitHub
    r"|xox[bpasr]-[A-Za-z0-9-]{10,}"  # Slack
    r"|eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"  # JWT
    r"|rlaas_[0-9a-f]{16}_[A-Za-z0-9_-]{16,}"  # RLaaS API key
    r")"
)
_AUTH_SCHEMES = ("bearer", "basic", "token")
_AUTH_VALUE = re.compile(r"\s+([A-Za-z0-9._~+/-]{16,}=*)")
_PEM = re.compile(
    r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|\Z)",
    re.DOTALL,
)
# `<name> = value` / `<name>: value` where the name ends with one of these (db_password,
# x-api-key, aws_secret_access_key, client_secret, refresh_token, ...).
_ASSIGN_NAMES = (
    "password", "passwd", "passphrase", "passcode", "pwd", "secret", "secret_key",
    "secretkey", "secret-key", "api_key", "apikey", "api-key", "access_key", "accesskey",
    "access-key", "private_key", "private-key", "token", "credential", "credentials",
)  # fmt: skip
_ASSIGN_HINTS = ("pass", "pwd", "secret", "key", "token", "credential")
_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_-")
_ASSIGN_VALUE = re.compile(r"\s*[\"']?([^\s\"',;<>&]{1,256})")
# Code, not a credential: a call or subscript, a literal, a bare lower-case variable name.
_CODE_VALUE = re.compile(r"[A-Za-z_][\w.]*[(\[]")
_IDENTIFIER = re.compile(r"[a-z_][a-z_.]*")
_LITERALS = frozenset({"none", "null", "nil", "true", "false", "undefined", "''", '""'})
_URL_CREDENTIALS = re.compile(r"://[^/\s:@]+:([^/\s@]+)@")


_Span = tuple[int, int, Entity]


class Scrubber:
    """Replaces PII in free text with typed placeholders. Stateless after construction, so
    one instance per configuration can be shared by every request and thread."""

    def __init__(self, config: ScrubConfig = ScrubConfig()) -> None:
        self.config = config
        self._active = config.entities if config.enabled else frozenset()

    def scrub(self, text: str) -> ScrubResult:
        if not text or not self._active:
            return ScrubResult(text, {})
        spans: list[_Span] = []
        _find_secrets(text, spans)
        if "@" in text:
            _find_emails(text, spans)
        if _find_numbers(text, spans):
            _find_ibans(text, spans)
        if "::" in text or text.count(":") >= 7:
            _find_ipv6(text, spans)
        if not spans:
            return ScrubResult(text, {})
        out: list[str] = []
        counts: dict[Entity, int] = {}
        pos = 0
        for start, end, entity in _resolve(spans):
            if entity not in self._active:
                continue
            out.append(text[pos:start])
            out.append(entity.placeholder)
            counts[entity] = counts.get(entity, 0) + 1
            pos = end
        if not counts:
            return ScrubResult(text, {})
        out.append(text[pos:])
        return ScrubResult("".join(out), counts)


def _resolve(spans: list[_Span]) -> list[_Span]:
    """Non-overlapping winners in text order. Only runs of mutually overlapping spans are
    ranked (secrets, then longest, then `_PRIORITY`), so the cost stays O(k log k) even for
    text built to produce thousands of detections."""
    spans.sort()
    out: list[_Span] = []
    i, n = 0, len(spans)
    while i < n:
        j, end = i + 1, spans[i][1]
        while j < n and spans[j][0] < end:
            end = max(end, spans[j][1])
            j += 1
        if j == i + 1:
            out.append(spans[i])
        else:
            out.extend(_resolve_overlapping(spans[i:j]))
        i = j
    return out


def _resolve_overlapping(group: list[_Span]) -> list[_Span]:
    ranked = sorted(
        group, key=lambda s: (s[2] is not Entity.SECRET, s[0] - s[1], _PRIORITY[s[2]], s[0])
    )
    starts: list[int] = []
    kept: list[_Span] = []  # disjoint, by start: only the neighbours can overlap a newcomer
    for span in ranked:
        idx = bisect.bisect_right(starts, span[0])
        if (idx and kept[idx - 1][1] > span[0]) or (idx < len(kept) and kept[idx][0] < span[1]):
            continue
        starts.insert(idx, span[0])
        kept.insert(idx, span)
    return kept


def _find_secrets(text: str, spans: list[_Span]) -> None:
    if "-----BEGIN" in text:
        for m in _PEM.finditer(text):
            spans.append((m.start(), m.end(), Entity.SECRET))
    if _maybe_token(text):
        for m in _SECRET_TOKEN.finditer(text):
            start = m.start()
            if start == 0 or not text[start - 1].isalnum():
                spans.append((start, m.end(), Entity.SECRET))
    if "://" in text and "@" in text:
        for m in _URL_CREDENTIALS.finditer(text):
            if not _PLACEHOLDER.fullmatch(m.group(1)):
                spans.append((m.start(1), m.end(1), Entity.SECRET))
    low = text.lower()
    if len(low) != len(text):  # a few non-ASCII letters lengthen: keep indexes aligned
        low = text.translate(_ASCII_LOWER)
    for scheme in _AUTH_SCHEMES:
        i = low.find(scheme)
        while i != -1:
            if i == 0 or not low[i - 1].isalnum():
                auth = _AUTH_VALUE.match(text, i + len(scheme))
                if auth and _looks_random(auth.group(1)):
                    spans.append((auth.start(1), auth.end(1), Entity.SECRET))
            i = low.find(scheme, i + len(scheme))
    if ("=" in text or ":" in text) and any(h in low for h in _ASSIGN_HINTS):
        _find_assignments(text, low, spans)


def _looks_random(value: str) -> bool:
    """Tokens mix letters with digits (or both cases, base64); "Basic troubleshooting-tips"
    does not."""
    if not any(c.isalpha() for c in value):
        return False
    if any(c.isdigit() for c in value):
        return True
    return "-" not in value and not value.islower() and not value.isupper()


def _maybe_token(text: str) -> bool:
    return (
        ("_" in text and any(p in text for p in _SECRET_PREFIXES_UNDERSCORE))
        or ("-" in text and any(p in text for p in _SECRET_PREFIXES_DASH))
        or ("J" in text and "eyJ" in text)
        or ("K" in text and "AKIA" in text)
        or ("ASIA" in text)
    )


def _find_assignments(text: str, low: str, spans: list[_Span]) -> None:
    """`password=...`, `"api_key": "..."`: found from each '=' / ':' backwards, which is far
    cheaper than a case-insensitive keyword regex over the whole text."""
    n = len(text)
    for sep in "=:":
        i = text.find(sep)
        while i != -1:
            j = i
            if j > 0 and text[j - 1] in "\"'":
                j -= 1
            while j > 0 and text[j - 1] == " ":
                j -= 1
            k = j
            while k > 0 and j - k < 64 and low[k - 1] in _NAME_CHARS:
                k -= 1
            name = low[k:j]
            if name.endswith(_ASSIGN_NAMES) and i + 1 < n:
                m = _ASSIGN_VALUE.match(text, i + 1)
                if m:
                    value = m.group(1).rstrip(".)")
                    start = m.start(1)
                    quoted = text[start - 1] in "\"'"
                    spaced = text[i - 1] == " " or text[i + 1] == " "
                    if _is_credential(name, sep, value, quoted, spaced):
                        spans.append((start, start + len(value), Entity.SECRET))
            i = text.find(sep, i + 1)


def _is_credential(name: str, sep: str, value: str, quoted: bool, spaced: bool) -> bool:
    if not value or _PLACEHOLDER.match(value):
        return False
    # `name: value` is also how prose reads ("the token: it expired"), so a colon needs a
    # value that looks like a credential; `name=value` is explicit enough.
    if sep == ":":
        ok = len(value) >= 12 or (len(value) >= 6 and not value.isalpha())
    else:
        ok = len(value) >= 4
    if value.isdigit() and "pass" not in name and "pwd" not in name:
        return False  # max_token=4096 is a setting; a numeric password is still a password
    if not quoted and (
        _CODE_VALUE.match(value)  # password = get_password(), key = os.environ["KEY"]
        or value.lower() in _LITERALS
        or (spaced and _IDENTIFIER.fullmatch(value))  # self.token = token
    ):
        return False
    return ok


def _find_emails(text: str, spans: list[_Span]) -> None:
    # Anchored on each '@' rather than trying every word as a possible local part.
    at = text.find("@")
    while at != -1:
        start = at
        while start > 0 and at - start < 64 and text[start - 1] in _EMAIL_LOCAL:
            start -= 1
        while start < at and text[start] in ".-":
            start += 1
        if start < at:
            m = _EMAIL_DOMAIN.match(text, at + 1)
            if m:
                spans.append((start, m.end(), Entity.EMAIL))
                at = text.find("@", m.end())
                continue
        at = text.find("@", at + 1)


def _find_numbers(text: str, spans: list[_Span]) -> bool:
    """Cards, phones, SSNs and IPv4 addresses; True when the text has a run of digits long
    enough to be part of an IBAN."""
    n = len(text)
    iban_possible = False
    for cluster in _NUM_CLUSTER.finditer(text):
        cs, ce = cluster.span()
        run = cluster.group()
        if cs and text[cs - 1] in "+(":  # +1 (415) ..., (415) 555-0132
            cs -= 1
            if cs and text[cs - 1] == "+":
                cs -= 1
        # The IBAN scan runs only when the text has a numeric run of >= 7 characters: bank
        # codes and account numbers give real IBANs one (NL, the shortest, has 10 digits).
        iban_possible = True
        end = min(n, ce + 1)  # lookaheads see one character past the run
        for m in _NUMBER_SHAPES.finditer(text, cs, end):
            kind = m.lastgroup
            if kind == "phone":
                if 7 <= _digit_count(m.group()) <= 15:
                    spans.append((m.start(), m.end(), Entity.PHONE))
            elif kind == "ssn":
                spans.append((m.start(), m.end(), Entity.SSN))
            elif not _VERSION_CONTEXT.search(text, max(0, m.start() - 16), m.start()):
                try:
                    ipaddress.IPv4Address(m.group())
                except ValueError:
                    continue
                spans.append((m.start(), m.end(), Entity.IP))
        if len(run) >= 13 and _digit_count(run) >= 13:
            for m in _CARD.finditer(text, cs, end):
                number = m.group().replace(" ", "").replace("-", "")
                if _CARD_BRANDS.fullmatch(number) and luhn.is_valid(number):
                    spans.append((m.start(), m.end(), Entity.CARD))
        bare = run.rstrip(_CLUSTER_PUNCT)
        if 9 <= len(bare) <= 11 and bare.isdigit():
            _bare_number(text, cluster.start(), bare, spans)
    return iban_possible


def _digit_count(run: str) -> int:
    return len(run) - sum(map(run.count, _CLUSTER_PUNCT))


def _bare_number(text: str, start: int, number: str, spans: list[_Span]) -> None:
    before = text[start - 1] if start else " "
    if before.isalnum() or before in "+#$€£/.-_":
        return
    window = max(0, start - 32)
    if len(number) == 9:
        if _SSN_VALID.fullmatch(number) and _SSN_CONTEXT.search(text, window, start):
            spans.append((start, start + 9, Entity.SSN))
    elif _PHONE_CONTEXT.search(text, window, start):
        spans.append((start, start + len(number), Entity.PHONE))


def _find_ibans(text: str, spans: list[_Span]) -> None:
    for m in _IBAN.finditer(text):
        # Greedy over spaces it may swallow a following code word ("... 00 BIC COBADEFF"):
        # try the whole run, then drop trailing groups until mod-97 and the format agree.
        groups = m.group().split(" ")
        length = len(m.group())
        for k in range(len(groups), 0, -1):
            compact = "".join(groups[:k])
            if len(compact) < 15:
                break
            if len(compact) <= 34 and stdnum_iban.is_valid(compact):
                spans.append((m.start(), m.start() + length, Entity.IBAN))
                break
            length -= len(groups[k - 1]) + 1


def _find_ipv6(text: str, spans: list[_Span]) -> None:
    # From each ':' expand over hex digits, ':' and '.'; validate with `ipaddress`.
    n = len(text)
    i = text.find(":")
    while i != -1:
        if text[i + 1 : i + 2] != ":" and text.find(":", i + 1, i + 6) == -1:
            i = text.find(":", i + 1)  # "10:30", "Note:": no second colon within a group
            continue
        s = i
        while s > 0 and text[s - 1] in _IPV6_CHARS:
            s -= 1
        e = i
        while e < n and text[e] in _IPV6_CHARS:
            e += 1
        cand_end = e
        while cand_end > s and text[cand_end - 1] == ".":
            cand_end -= 1  # a sentence's full stop
        candidate = text[s:cand_end]
        glued = (s > 0 and (text[s - 1].isalnum() or text[s - 1] == "_")) or (
            e < n and (text[e].isalnum() or text[e] == "_")
        )
        if (
            not glued
            and 2 <= candidate.count(":") <= 7
            and ("::" in candidate or candidate.count(":") == 7)
            and sum(1 for g in candidate.split(":") if g) >= 2
            and any(c.isdigit() for c in candidate)
        ):
            try:
                ipaddress.IPv6Address(candidate)
            except ValueError:
                pass
            else:
                spans.append((s, cand_end, Entity.IP))
        i = text.find(":", e + 1) if e >= i else text.find(":", i + 1)
