"""Keyed pseudonyms for identifiers that carry personal data.

``user_id`` and ``thread_id`` join a tenant's events and filter its lists, so they cannot
be scrubbed to ``[EMAIL]`` like free text (every user would become the same one). When
the tenant's scrubber finds personal data in one (an email address as a user id), the
stored value is a pseudonym instead: an HMAC of the tenant and the value under a key
derived from the server secret. The same id always maps to the same pseudonym, so joins,
sticky assignment and list filters keep working (a filter is mapped the same way), but
the stored value cannot be turned back into the address, nor confirmed by hashing a
guess, without the server's key.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from services.server_secret import derive_key
from services.telemetry.pii import Scrubber

PREFIX = "pii_"


class Pseudonyms:
    def __init__(self, server_secret: bytes | None) -> None:
        # Without the server's secret (a core made outside a server, e.g. by a test), a
        # key of this process only: pseudonyms are then stable within the process.
        self._key = derive_key(server_secret or secrets.token_bytes(32), "telemetry-pseudonyms")

    def of(self, tenant_id: str, value: str) -> str:
        mac = hmac.new(self._key, f"{tenant_id}\0{value}".encode(), hashlib.sha256)
        return PREFIX + mac.hexdigest()[:24]

    def identifier(self, tenant_id: str, value: str, scrubber: Scrubber | None) -> str:
        """``value`` as stored: itself, or its pseudonym when the tenant's scrubber
        finds personal data in it (no scrubber: the tenant turned PII scrubbing off)."""
        if not value or scrubber is None or value.startswith(PREFIX):
            return value
        return self.of(tenant_id, value) if scrubber.scrub(value).counts else value
