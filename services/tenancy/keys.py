"""API key material.

A key reads ``rlaas_<key id>_<secret>``: the id is public (it names the key in lists
and logs), the secret is 256 bits, random (:func:`issue`) or derived from the server
secret (:func:`derive`). Only sha256(secret) is stored: with that much entropy a slow
password hash buys nothing and would cost milliseconds on every RPC.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
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


def derive(key: bytes, api_key_id: str, *context: str) -> IssuedKey:
    """The key ``api_key_id`` whose secret is HMAC-SHA256(``key``, id and ``context``):
    the same inputs give the same token, so a create that is retried can hand back the
    secret it issued without anything but its hash being stored. ``key`` must be a
    subkey of the server secret: whoever holds it and the context can recompute the
    token."""
    message = json.dumps([api_key_id, *context]).encode()  # unambiguous framing
    mac = hmac.new(key, message, hashlib.sha256).digest()
    secret = base64.urlsafe_b64encode(mac).rstrip(b"=").decode()  # 43 chars, like issue()
    return IssuedKey(api_key_id, f"{PREFIX}_{api_key_id}_{secret}")


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
