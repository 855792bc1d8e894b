"""Opaque keyset page tokens shared by every List RPC."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from services.errors import InvalidArgument

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000


@dataclass(frozen=True, slots=True)
class PageRequest:
    size: int
    after: list[Any] | None  # sort key of the last item already returned


def page_request(page_size: int, page_token: str) -> PageRequest:
    if page_size < 0:
        raise InvalidArgument.field("page_size", "must not be negative")
    size = min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
    if not page_token:
        return PageRequest(size, None)
    try:
        after = json.loads(base64.urlsafe_b64decode(page_token.encode()))
        if not isinstance(after, list):
            raise ValueError(after)
    except ValueError as exc:  # binascii.Error and JSONDecodeError are ValueErrors
        raise InvalidArgument.field("page_token", "is not a token this server issued") from exc
    return PageRequest(size, after)


def next_page_token(items: Sequence[Any], size: int, sort_key: Any) -> str:
    """Token for the page after ``items`` (fetched with ``limit size + 1``), or ``""``."""
    if len(items) <= size:
        return ""
    last = items[size - 1]
    raw = json.dumps(sort_key(last), default=str).encode()
    return base64.urlsafe_b64encode(raw).decode()
