"""The server secret: the one key only the server knows (``RLAAS_SERVER_SECRET``).

It signs page tokens and derives the secrets of API keys created with a ``request_id``
(so a retry can return the same secret). Each use gets its own subkey
(:func:`derive_key`), so a value computed for one purpose is useless for another.
Every server process of a deployment must share it; changing it invalidates
outstanding page tokens and the replay of earlier key creations, never a key itself
(keys are checked against their stored hash).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from services.config import Settings

MIN_CHARS = 32
FILE_NAME = "server-secret"


class ServerSecretMissing(RuntimeError):
    """The server cannot start without a usable server secret."""


def derive_key(server_secret: bytes, purpose: str) -> bytes:
    """The subkey of ``server_secret`` for one ``purpose`` (HMAC-SHA256 as a KDF)."""
    return hmac.new(server_secret, b"rlaas/" + purpose.encode(), hashlib.sha256).digest()


def secret_file(settings: Settings) -> Path:
    return settings.state_dir.resolve() / FILE_NAME


def load_or_create(path: Path) -> str:
    """The secret kept in ``path``, made (random, mode 0600) on first use."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # O_EXCL: two processes starting at once cannot both write a different secret.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        value = path.read_text().strip()
        if len(value) < MIN_CHARS:
            raise ServerSecretMissing(
                f"{path} holds no usable server secret; delete it to make a new one"
            ) from None
        return value
    value = secrets.token_urlsafe(48)
    with os.fdopen(fd, "w") as out:
        out.write(value + "\n")
    return value


def embedded_secret(settings: Settings) -> str:
    """What ``rlaas up`` hands its processes: ``RLAAS_SERVER_SECRET`` if set, else the
    one kept in ``<state_dir>/server-secret`` (made on the first ``up``)."""
    if settings.server_secret is not None:
        return _checked(settings.server_secret.get_secret_value())
    return load_or_create(secret_file(settings))


def resolve(settings: Settings) -> bytes:
    """The secret a server process uses.

    ``RLAAS_SERVER_SECRET`` when set, else the state directory's file when there is one
    (``rlaas up`` made it: a server started by hand beside the embedded stack shares
    it). Without either, a process on the embedded database (no ``RLAAS_DATABASE_URL``)
    makes the file, like every other embedded component; with an external database it
    refuses to start: a secret made up per machine would differ between replicas (page
    tokens from one would fail on another) and vanish with the machine.
    """
    if settings.server_secret is not None:
        return _checked(settings.server_secret.get_secret_value()).encode()
    path = secret_file(settings)
    if settings.database_url is not None and not path.exists():
        raise ServerSecretMissing(
            "RLAAS_SERVER_SECRET is required with an external database (RLAAS_DATABASE_URL): "
            f"set it to the same random value (at least {MIN_CHARS} characters) on every "
            "server process"
        )
    return load_or_create(path).encode()


def _checked(value: str) -> str:
    # The value itself never appears in the message: it may be a real secret, mistyped.
    if len(value) < MIN_CHARS:
        raise ServerSecretMissing(f"RLAAS_SERVER_SECRET must be at least {MIN_CHARS} characters")
    return value
