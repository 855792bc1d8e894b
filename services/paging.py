"""Keyset paging for every List RPC: cursors inside, sealed page tokens outside.

The domain cores page with *cursors* (:func:`page_request`, :func:`next_page_token`):
base64 JSON of the sort key of the last item returned. A cursor never leaves the
process as is: the servicers hand clients a *page token*, the cursor sealed by
:class:`PageTokens` with an HMAC keyed by the server secret over the caller's tenant,
the List RPC and every other field of its request (AIP-158: change a filter and start
over). A token is checked (size, alphabet, MAC) before anything in it is parsed, so a
forged, edited, truncated or borrowed token (another tenant's, another list's) is
INVALID_ARGUMENT on ``page_token``, and only cursors this server made reach a query.
Tokens carry no expiry and no version: a change of secret or format invalidates the
outstanding ones, and a client starts its listing over.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from google.protobuf.message import Message

from services.errors import InvalidArgument
from services.server_secret import derive_key

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
# Far above any token we issue (a timestamp, an id or two, a filter digest), and small
# enough that a hostile one costs nothing to refuse.
MAX_PAGE_TOKEN_CHARS = 1024
_TAG_BYTES = 16  # 128-bit truncated HMAC-SHA256: forging one is 2^128 work
_TOKEN_ALPHABET = re.compile(r"[A-Za-z0-9_-]+")
_INVALID = "is not a page token this server issued for this list; start over without it"


@dataclass(frozen=True, slots=True)
class PageRequest:
    size: int
    after: list[Any] | None  # sort key of the last item already returned


def page_request(page_size: int, page_token: str) -> PageRequest:
    """The page a core reads: ``page_token`` is a cursor (see the module doc)."""
    if page_size < 0:
        raise InvalidArgument.field("page_size", "must not be negative")
    size = min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
    if not page_token:
        return PageRequest(size, None)
    try:
        after = json.loads(base64.urlsafe_b64decode(page_token.encode()))
        if not isinstance(after, list):
            raise ValueError(after)
    except (ValueError, RecursionError) as exc:  # binascii.Error, JSONDecodeError
        raise InvalidArgument.field("page_token", _INVALID) from exc
    return PageRequest(size, after)


def next_page_token(items: Sequence[Any], size: int, sort_key: Any) -> str:
    """Cursor for the page after ``items`` (fetched with ``limit size + 1``), or ``""``."""
    if len(items) <= size:
        return ""
    last = items[size - 1]
    raw = json.dumps(sort_key(last), default=str).encode()
    return base64.urlsafe_b64encode(raw).decode()


@dataclass(frozen=True, slots=True)
class BoundPage:
    """One List call's page token, opened: ``cursor`` goes to the core, and
    :meth:`seal` turns the core's next cursor into the response's token."""

    cursor: str
    _scope: bytes = field(repr=False)
    _tokens: PageTokens = field(repr=False)

    def seal(self, next_cursor: str) -> str:
        return self._tokens.seal(self._scope, next_cursor) if next_cursor else ""


class PageTokens:
    """Seals cursors into page tokens and opens them (the module doc says why)."""

    def __init__(self, server_secret: bytes) -> None:
        self._key = derive_key(server_secret, "page-token/v1")

    def bind(self, tenant_id: str, request: Message) -> BoundPage:
        """Open ``request.page_token`` for ``tenant_id``'s call of the List RPC that
        takes ``request``; INVALID_ARGUMENT naming ``page_token`` unless this server
        issued it for the same tenant, RPC and request fields (page size aside)."""
        scope = _scope(tenant_id, request)
        token: str = getattr(request, "page_token")  # noqa: B009 (every List request has it)
        return BoundPage(self.open(scope, token) if token else "", scope, self)

    def seal(self, scope: bytes, cursor: str) -> str:
        payload = cursor.encode()
        raw = self._tag(scope, payload) + payload
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    def open(self, scope: bytes, token: str) -> str:
        if len(token) > MAX_PAGE_TOKEN_CHARS or not _TOKEN_ALPHABET.fullmatch(token):
            raise InvalidArgument.field("page_token", _INVALID, reason="PAGE_TOKEN_INVALID")
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except ValueError as exc:  # binascii.Error: a length no encoder makes
            raise InvalidArgument.field(
                "page_token", _INVALID, reason="PAGE_TOKEN_INVALID"
            ) from exc
        tag, payload = raw[:_TAG_BYTES], raw[_TAG_BYTES:]
        if len(tag) < _TAG_BYTES or not hmac.compare_digest(tag, self._tag(scope, payload)):
            raise InvalidArgument.field("page_token", _INVALID, reason="PAGE_TOKEN_INVALID")
        return payload.decode()  # our own cursor: ASCII base64

    def _tag(self, scope: bytes, payload: bytes) -> bytes:
        # The scope is a fixed-size digest, so (scope, payload) splits one way only.
        return hmac.new(self._key, scope + payload, hashlib.sha256).digest()[:_TAG_BYTES]


def _scope(tenant_id: str, request: Message) -> bytes:
    """Digest of what a token is valid for: the tenant, the request type (one per List
    RPC) and the request's other fields. ``page_size`` may change between pages."""
    rest = type(request)()
    rest.CopyFrom(request)
    rest.ClearField("page_token")
    rest.ClearField("page_size")
    head = json.dumps([tenant_id, request.DESCRIPTOR.full_name]).encode()
    return hashlib.sha256(head + b"\n" + rest.SerializeToString(deterministic=True)).digest()
