"""API key material.

A key reads ``rlaas_<key id>_<secret>``: the id is public (it names the key in lists
and logs), the secret is 256 random bits. Only sha256(secret) is stored: with that much
entropy a slow password hash buys nothing and would cost milliseconds on every RPC.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from services.errors import Unauthenticated

PREFIX = "rlaas"
_ID_BYTES = 8
_SECRET_BYTES = 32


@dataclass(frozen=True, slots=True)
class IssuedKey:
    api_key_id: str
    secret: str  # the full token the client sends; shown once, never stored

    @property
    def secret_hash(self) -> bytes:
        return hash_secret(self.secret)


def new_key_id() -> str:
    return secrets.token_hex(_ID_BYTES)


def issue(api_key_id: str | None = None) -> IssuedKey:
    key_id = api_key_id or new_key_id()
    return IssuedKey(key_id, f"{PREFIX}_{key_id}_{secrets.token_urlsafe(_SECRET_BYTES)}")


def hash_secret(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def parse_key_id(token: str) -> str:
    """The key id of a presented token, or Unauthenticated for anything malformed."""
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] != PREFIX or len(parts[1]) != 2 * _ID_BYTES or not parts[2]:
        raise Unauthenticated("malformed API key", reason="API_KEY_INVALID")
    return parts[1]


def matches(token: str, stored_hash: bytes) -> bool:
    return hmac.compare_digest(hash_secret(token), stored_hash)
