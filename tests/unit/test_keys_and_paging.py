"""API key material and page tokens."""

from __future__ import annotations

import pytest

from services.errors import InvalidArgument, Unauthenticated
from services.paging import next_page_token, page_request
from services.tenancy import keys
from services.tenancy.principal import Principal, Scope

pytestmark = pytest.mark.unit


def test_issued_keys_are_unique_and_parse_back() -> None:
    a, b = keys.issue(), keys.issue()
    assert a.secret != b.secret and a.api_key_id != b.api_key_id
    assert keys.parse_key_id(a.secret) == a.api_key_id
    assert keys.matches(a.secret, a.secret_hash)
    assert not keys.matches(b.secret, a.secret_hash)
    assert a.secret.encode() not in a.secret_hash


@pytest.mark.parametrize(
    "token", ["", "rlaas", "rlaas_short_x", "other_0123456789abcdef_x", "rlaas_0123456789abcdef_"]
)
def test_malformed_keys_are_unauthenticated(token: str) -> None:
    with pytest.raises(Unauthenticated):
        keys.parse_key_id(token)


def test_admin_scope_implies_the_others() -> None:
    admin = Principal("t", "k", frozenset({Scope.ADMIN}))
    ingest = Principal("t", "k", frozenset({Scope.INGEST}))
    assert all(admin.allows(s) for s in Scope)
    assert ingest.allows(Scope.INGEST) and not ingest.allows(Scope.TRAIN)


def test_page_tokens_round_trip_and_reject_garbage() -> None:
    items = list(range(11))
    token = next_page_token(items, 10, lambda i: [i])
    assert page_request(10, token).after == [9]
    assert next_page_token(items[:10], 10, lambda i: [i]) == ""
    assert page_request(0, "").size == 50
    assert page_request(10**6, "").size == 1000
    for bad_size, bad_token in [(-1, ""), (5, "%%%"), (5, "bm90IGpzb24=")]:
        with pytest.raises(InvalidArgument):
            page_request(bad_size, bad_token)
