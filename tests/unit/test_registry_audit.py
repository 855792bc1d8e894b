"""The audit log's hash chain, without a database."""

from __future__ import annotations

import dataclasses
import itertools
from datetime import UTC, datetime, timedelta

import pytest

from services.db.models import AuditEventRow
from services.registry.audit import (
    GENESIS_HASH,
    Actor,
    entry_hash,
    erase_text,
    new_entry,
    payload_digest,
    verify_rows,
)

pytestmark = pytest.mark.unit

T0 = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)


def chain(n: int) -> list[AuditEventRow]:
    rows: list[AuditEventRow] = []
    prev = GENESIS_HASH
    for i in range(1, n + 1):
        row = new_entry(
            tenant_id="t-1",
            sequence=i,
            prev_hash=prev,
            actor=Actor("t-1", "key1", "admin"),
            action="rlaas.registry.v1.RegistryService/SetTraffic",
            resource_type="Deployment",
            resource_id="support_email",
            before={"revision": str(i), "traffic": {"canary": {"percent": 0.1 * i}}},
            after={"revision": str(i + 1), "note": "naïve ✓", "big": 1e16},
            reason=f"step {i}",
            request_id=f"r{i}",
            event_time=T0 + timedelta(seconds=i),
        )
        rows.append(row)
        prev = row.hash
    return rows


def copy(row: AuditEventRow, **changes: object) -> AuditEventRow:
    fields = {c.name: getattr(row, c.name) for c in AuditEventRow.__table__.columns}
    fields.update(changes)
    return AuditEventRow(**fields)


def test_an_untouched_chain_verifies() -> None:
    rows = chain(5)
    assert rows[0].prev_hash == GENESIS_HASH
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(rows))
    verdict = verify_rows(rows, head_sequence=5)
    assert dataclasses.astuple(verdict) == (True, 5, 0, rows[-1].hash, "")


def test_hash_covers_every_field() -> None:
    """Structure directly; the free text through its salted digest (version 2)."""
    row = chain(1)[0]
    assert row.hash_version == 2 and row.payload_salt
    for name, value in [
        ("actor_api_key_id", "key2"), ("action", "x"), ("request_id", "r9"),
        ("event_time", T0), ("sequence", 7), ("prev_hash", "f" * 64),
        ("tenant_id", "t-2"), ("audit_event_id", "ae-x"), ("resource_id", "y"),
        ("payload_sha256", "e" * 64), ("hash_version", 3), ("actor_tenant_id", "t-9"),
    ]:  # fmt: skip
        assert entry_hash(copy(row, **{name: value})) != row.hash, name
    for name, value in [
        ("reason", "other"), ("before", '{"revision":"0"}'), ("after", "null"),
        ("actor_display_name", "someone"), ("payload_salt", "0" * 32),
    ]:  # fmt: skip
        assert payload_digest(copy(row, **{name: value})) != row.payload_sha256, name


@pytest.mark.parametrize("field", ["reason", "after"])
def test_an_edited_entry_is_the_first_invalid(field: str) -> None:
    rows = chain(6)
    rows[3] = copy(rows[3], **{field: '"edited"'})
    verdict = verify_rows(rows, head_sequence=6)
    assert (verdict.valid, verdict.first_invalid_sequence) == (False, 4)
    assert "edited" in verdict.detail


def test_an_edited_entry_with_a_recomputed_hash_breaks_the_next_link() -> None:
    rows = chain(6)
    forged = copy(rows[2], reason="forged")
    forged.payload_sha256 = payload_digest(forged)
    forged.hash = entry_hash(forged)
    rows[2] = forged
    verdict = verify_rows(rows, head_sequence=6)
    assert (verdict.valid, verdict.first_invalid_sequence) == (False, 4)


def test_a_deleted_entry_is_a_gap() -> None:
    rows = chain(6)
    del rows[2]
    verdict = verify_rows(rows, head_sequence=6)
    assert (verdict.valid, verdict.first_invalid_sequence) == (False, 3)
    assert "missing" in verdict.detail


def test_a_deleted_and_renumbered_entry_breaks_the_link() -> None:
    rows = chain(6)
    del rows[2]
    rows = [copy(r, sequence=i) for i, r in enumerate(rows, start=1)]
    verdict = verify_rows(rows, head_sequence=5)
    assert (verdict.valid, verdict.first_invalid_sequence) == (False, 3)


def test_reordered_entries_are_detected() -> None:
    rows = chain(6)
    a, b = rows[1], rows[2]
    rows[1], rows[2] = copy(b, sequence=2), copy(a, sequence=3)
    verdict = verify_rows(rows, head_sequence=6)
    assert (verdict.valid, verdict.first_invalid_sequence) == (False, 2)


def test_a_deleted_tail_is_caught_by_the_head() -> None:
    rows = chain(6)[:4]
    assert verify_rows(rows).valid  # without the head nothing says it was longer
    verdict = verify_rows(rows, head_sequence=6)
    assert (verdict.valid, verdict.first_invalid_sequence) == (False, 5)


def test_erased_text_keeps_the_chain_valid_and_hides_nothing_else() -> None:
    rows = chain(6)
    digest = rows[3].payload_sha256
    assert erase_text(rows[3], T0) and not erase_text(rows[3], T0)
    assert (rows[3].reason, rows[3].before, rows[3].actor_display_name) == ("", "null", "")
    assert rows[3].payload_salt is None and rows[3].payload_sha256 == digest
    assert verify_rows(rows, head_sequence=6).valid
    # Text written back into an erased entry is caught: the chain vouches for no text.
    rows[3] = copy(rows[3], reason="step 4")
    verdict = verify_rows(rows, head_sequence=6)
    assert (verdict.valid, verdict.first_invalid_sequence) == (False, 4)


def test_version_1_entries_still_verify() -> None:
    """Entries written before erasable text hash the text itself."""
    rows = chain(3)
    for i, row in enumerate(rows):
        row.hash_version, row.payload_sha256, row.payload_salt = 1, None, None
        row.prev_hash = rows[i - 1].hash if i else GENESIS_HASH
        row.hash = entry_hash(row)
    assert verify_rows(rows, head_sequence=3).valid
    rows[1] = copy(rows[1], reason="edited")
    assert verify_rows(rows, head_sequence=3).first_invalid_sequence == 2
