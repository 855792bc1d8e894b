"""The PII scrubber: quality on the labelled synthetic set, one targeted case per shape,
look-alikes that must survive, configuration, idempotence and counts. No timing here:
speed is measured by `python -m bench.pii`."""

from __future__ import annotations

import importlib.util
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from services.telemetry.pii import Entity, Scrubber, ScrubConfig, ScrubResult, merge_counts

pytestmark = pytest.mark.unit

DATA_DIR = Path(__file__).resolve().parents[1] / "data"
ROWS: list[dict[str, Any]] = [
    json.loads(line) for line in (DATA_DIR / "pii_labelled.jsonl").read_text().splitlines()
]
POSITIVES = [r for r in ROWS if r["kind"] == "positive"]
NEGATIVES = [r for r in ROWS if r["kind"] == "negative"]
SCRUB = Scrubber()
PLACEHOLDER = re.compile(r"\[([A-Z]+)\]")


def scrub(text: str) -> ScrubResult:
    return SCRUB.scrub(text)


# --- the labelled set ----------------------------------------------------------------------


def test_labelled_set_shape() -> None:
    assert len(ROWS) >= 250
    assert len(NEGATIVES) / len(ROWS) >= 0.40
    assert len({r["id"] for r in ROWS}) == len(ROWS)
    assert {e["type"] for r in POSITIVES for e in r["entities"]} == {str(e) for e in Entity}
    for row in ROWS:
        assert row["kind"] in ("positive", "negative")
        assert bool(row["entities"]) == (row["kind"] == "positive")
        for e in row["entities"]:
            assert e["value"] in row["text"], row["id"]


def test_labelled_set_is_what_the_generator_writes() -> None:
    spec = importlib.util.spec_from_file_location("make_pii_set", DATA_DIR / "make_pii_set.py")
    assert spec is not None and spec.loader is not None
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    text = (DATA_DIR / "pii_labelled.jsonl").read_text()
    assert gen.render(gen.build()) == text
    assert gen.render(gen.build()) == text  # seeded afresh on each call


def test_recall_and_false_positive_rate() -> None:
    found = total = 0
    for row in POSITIVES:
        result = scrub(row["text"])
        for e in row["entities"]:
            total += 1
            placeholder = Entity(e["type"]).placeholder
            found += e["value"] not in result.text and placeholder in result.text
    flagged = sum(1 for row in NEGATIVES if scrub(row["text"]).counts)
    assert found / total >= 0.95
    assert flagged / len(NEGATIVES) <= 0.01


@pytest.mark.parametrize("row", POSITIVES, ids=lambda r: r["id"])
def test_no_original_value_survives(row: dict[str, Any]) -> None:
    result = scrub(row["text"])
    for e in row["entities"]:
        assert e["value"] not in result.text
    assert result.counts == Counter(Entity(e["type"]) for e in row["entities"])


@pytest.mark.parametrize("row", NEGATIVES, ids=lambda r: r["id"])
def test_look_alikes_survive(row: dict[str, Any]) -> None:
    result = scrub(row["text"])
    assert result.text == row["text"]
    assert result.counts == {}


@pytest.mark.parametrize("row", ROWS, ids=lambda r: r["id"])
def test_idempotent(row: dict[str, Any]) -> None:
    once = scrub(row["text"])
    twice = scrub(once.text)
    assert twice.text == once.text
    assert twice.counts == {}


# --- one case per shape --------------------------------------------------------------------

CASES = [
    # email
    ("mail jane.doe@example.com now", "mail [EMAIL] now", Entity.EMAIL),
    ("cc john+billing@mail.example.co.uk.", "cc [EMAIL].", Entity.EMAIL),
    ("<ops-team@sub.domain.io>", "<[EMAIL]>", Entity.EMAIL),
    # phone
    ("call +1 (415) 555-0132 today", "call [PHONE] today", Entity.PHONE),
    ("call 415.555.0132", "call [PHONE]", Entity.PHONE),
    ("ring +44 20 7946 0958", "ring [PHONE]", Entity.PHONE),
    ("Berlin +49 30 1234567.", "Berlin [PHONE].", Entity.PHONE),
    ("Paris 01 23 45 67 89", "Paris [PHONE]", Entity.PHONE),
    ("mobile: 4155550132", "mobile: [PHONE]", Entity.PHONE),
    # card
    ("card 4111 1111 1111 1111 exp", "card [CARD] exp", Entity.CARD),
    ("card 5500-0000-0000-0004.", "card [CARD].", Entity.CARD),
    ("amex 3782 822463 10005", "amex [CARD]", Entity.CARD),
    ("visa 4111111111111111", "visa [CARD]", Entity.CARD),
    # iban
    ("IBAN DE89 3704 0044 0532 0130 00.", "IBAN [IBAN].", Entity.IBAN),
    ("to GB29NWBK60161331926819 please", "to [IBAN] please", Entity.IBAN),
    (
        "IBAN DE89 3704 0044 0532 0130 00 BIC COBADEFFXXX",
        "IBAN [IBAN] BIC COBADEFFXXX",
        Entity.IBAN,
    ),
    # ssn
    ("SSN 078-05-1120.", "SSN [SSN].", Entity.SSN),
    ("ssn is 123 45 6789", "ssn is [SSN]", Entity.SSN),
    ("SSN: 123456789", "SSN: [SSN]", Entity.SSN),
    # ip
    ("from 203.0.113.42.", "from [IP].", Entity.IP),
    ("from 2001:db8::8a2e:370:7334 now", "from [IP] now", Entity.IP),
    ("at [fe80::1ff:fe23:4567:890a]:80", "at [[IP]]:80", Entity.IP),
    ("mapped ::ffff:192.0.2.128", "mapped [IP]", Entity.IP),
    # secret
    ("key sk-proj-abcdefghijklmnopqrstuvwxyz0123", "key [SECRET]", Entity.SECRET),
    ("stripe sk_live_4eC39HqLyjWDarjtT1zdp7dc", "stripe [SECRET]", Entity.SECRET),
    ("aws AKIAIOSFODNN7EXAMPLE here", "aws [SECRET] here", Entity.SECRET),
    ("gh ghp_abcdefghijklmnopqrstuvwxyz0123456789", "gh [SECRET]", Entity.SECRET),
    ("slack xoxb-1234567890-abcdefghij", "slack [SECRET]", Entity.SECRET),
    (
        "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.dBjftJeZ4CVPmB92K27uhbUJU1p1r_wW1gFWFOEjXk",
        "jwt [SECRET]",
        Entity.SECRET,
    ),
    (
        "Authorization: Bearer abcDEF0123456789xyzXYZ",
        "Authorization: Bearer [SECRET]",
        Entity.SECRET,
    ),
    ("use rlaas_0123456789abcdef_" + "A" * 43, "use [SECRET]", Entity.SECRET),
    ("password=hunter2", "password=[SECRET]", Entity.SECRET),
    ('{"api_key": "abc123def456"}', '{"api_key": "[SECRET]"}', Entity.SECRET),
    ("DB_PASSWORD=s3cr3t!", "DB_PASSWORD=[SECRET]", Entity.SECRET),
    ("token=abcd1234&next=/", "token=[SECRET]&next=/", Entity.SECRET),
    ("postgres://app:Pa55word@db:5432/x", "postgres://app:[SECRET]@db:5432/x", Entity.SECRET),
    (
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEabc123\n-----END RSA PRIVATE KEY-----\nthanks",
        "[SECRET]\nthanks",
        Entity.SECRET,
    ),
]


@pytest.mark.parametrize(("text", "expected", "entity"), CASES, ids=[c[0][:32] for c in CASES])
def test_shapes(text: str, expected: str, entity: Entity) -> None:
    result = scrub(text)
    assert result.text == expected
    assert result.counts == {entity: 1}


LOOK_ALIKES = [
    "card 4111 1111 1111 1112 declined",  # Luhn fails
    "ref 4111111111111113",  # Luhn fails
    "ref 1234 5678 9012 3452",  # Luhn passes, no card network starts with 1
    "IBAN DE88 3704 0044 0532 0130 00",  # mod-97 fails
    "IBAN GB28NWBK60161331926819",  # mod-97 fails
    "000-12-3456 666-12-3456 912-34-5678 123-00-4567 123-45-0000",  # never-issued SSNs
    "order 123456789 and 4155550132",  # bare numbers without a telling word
    "version 10.0.0.1 and 999.1.1.1",  # a version; not an address
    "10:30:45 and 00:1A:2B:3C:4D:5E and std::vector",
    "the token: expired, the password: required",
    "max_tokens=512 temperature=0.7",
    "user at example dot com, @handle",
    "[EMAIL] [PHONE] [CARD] [IBAN] [SSN] [IP] [SECRET]",
    "ORD-2024-000123 #48213 2024-03-15 10:30 $1,234.56 v1.2.3 94103",
]


@pytest.mark.parametrize("text", LOOK_ALIKES)
def test_look_alike_cases(text: str) -> None:
    assert scrub(text) == ScrubResult(text, {})


# --- overlaps ------------------------------------------------------------------------------


def test_iban_digits_are_not_a_card_or_phone() -> None:
    result = scrub("IBAN DE89 3704 0044 0532 0130 00 and GB29NWBK60161331926819")
    assert result.counts == {Entity.IBAN: 2}


def test_card_is_not_also_a_phone() -> None:
    result = scrub("card 4111 1111 1111 1111 or 4111-1111-1111-1111")
    assert result.counts == {Entity.CARD: 2}


def test_secret_wins_over_what_it_contains() -> None:
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.sig_abcdefgh"
    assert scrub(f"Authorization: Bearer {jwt}").counts == {Entity.SECRET: 1}
    assert scrub("password=jane@example.com").counts == {Entity.SECRET: 1}
    assert scrub("postgres://u:Secret99@db.example.com/x").counts == {Entity.SECRET: 1}


def test_pem_block_is_one_secret() -> None:
    pem = "-----BEGIN PRIVATE KEY-----\n4111111111111111\n10.0.0.1\n-----END PRIVATE KEY-----"
    assert scrub(pem) == ScrubResult("[SECRET]", {Entity.SECRET: 1})


# --- configuration -------------------------------------------------------------------------

MIXED = (
    "Mail jane@example.com or call +1 415 555 0132; card 4111 1111 1111 1111, "
    "IBAN DE89370400440532013000, SSN 123-45-6789, host 10.1.2.3, password=hunter2."
)


def test_counts_every_kind_once() -> None:
    result = scrub(MIXED)
    assert result.counts == {e: 1 for e in Entity}
    assert set(PLACEHOLDER.findall(result.text)) == {e.name for e in Entity}


def test_counts_repeats() -> None:
    result = scrub("a@example.com, b@example.com and c@example.com from 10.0.0.1")
    assert result.counts == {Entity.EMAIL: 3, Entity.IP: 1}


def test_disabled_returns_text_unchanged() -> None:
    scrubber = Scrubber(ScrubConfig(enabled=False))
    assert scrubber.scrub(MIXED) == ScrubResult(MIXED, {})


def test_empty_entity_set_is_a_no_op() -> None:
    assert Scrubber(ScrubConfig(entities=frozenset())).scrub(MIXED) == ScrubResult(MIXED, {})


@pytest.mark.parametrize("entity", list(Entity))
def test_only_configured_entities_are_replaced(entity: Entity) -> None:
    result = Scrubber(ScrubConfig(entities=frozenset({entity}))).scrub(MIXED)
    assert result.counts == {entity: 1}
    assert PLACEHOLDER.findall(result.text) == [entity.name]


def test_a_disabled_kind_is_not_reclassified() -> None:
    # With CARD off the card number stays as it is; it does not become a [PHONE].
    config = ScrubConfig(entities=frozenset(Entity) - {Entity.CARD, Entity.IBAN})
    text = "card 4111 1111 1111 1111, IBAN DE89 3704 0044 0532 0130 00"
    assert Scrubber(config).scrub(text) == ScrubResult(text, {})


def test_config_accepts_names_and_rejects_unknown() -> None:
    config = ScrubConfig(entities=frozenset({"email", "ip"}))  # type: ignore[arg-type]
    assert config.entities == {Entity.EMAIL, Entity.IP}
    with pytest.raises(ValueError, match="unknown PII entity"):
        ScrubConfig(entities=frozenset({"name"}))  # type: ignore[arg-type]


def test_default_config_covers_everything() -> None:
    assert ScrubConfig().enabled and ScrubConfig().entities == frozenset(Entity)


# --- small things --------------------------------------------------------------------------


def test_empty_and_plain_text() -> None:
    assert scrub("") == ScrubResult("", {})
    plain = "Thanks, the export works again after the upgrade."
    assert scrub(plain).text is plain


def test_placeholders_are_fixed_strings() -> None:
    for e in Entity:
        assert e.placeholder == f"[{e.name}]"
    result = scrub(MIXED)
    for value in ("jane@example.com", "4111", "DE89", "123-45-6789", "10.1.2.3", "hunter2"):
        assert value not in result.text


def test_merge_counts() -> None:
    a = {Entity.EMAIL: 2, Entity.IP: 1}
    b = {Entity.EMAIL: 1, Entity.CARD: 3, Entity.SSN: 0}
    assert merge_counts(a, b) == {Entity.EMAIL: 3, Entity.IP: 1, Entity.CARD: 3}
    assert merge_counts() == {}


def test_non_ascii_text_keeps_offsets() -> None:
    # "İ".lower() is two characters; the keyword search must not shift the spans.
    text = "İİİ İstanbul: token=abcd1234efgh and İ mail jane@example.com"
    result = scrub(text)
    assert result.text == "İİİ İstanbul: token=[SECRET] and İ mail [EMAIL]"
