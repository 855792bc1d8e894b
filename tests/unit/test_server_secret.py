"""The server secret: where it comes from, and that a server without one does not start."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from pydantic import SecretStr

from services import server_secret
from services.config import Settings
from tests.helpers import rlaas

pytestmark = pytest.mark.unit

GOOD = "s" * 40


def test_the_setting_wins_and_a_short_one_is_refused_without_echoing_it(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path, server_secret=SecretStr(GOOD))
    assert server_secret.resolve(settings) == GOOD.encode()
    assert server_secret.embedded_secret(settings) == GOOD
    assert not (tmp_path / "server-secret").exists()
    short = Settings(state_dir=tmp_path, server_secret=SecretStr("hunter2-typo"))
    with pytest.raises(server_secret.ServerSecretMissing) as info:
        server_secret.resolve(short)
    assert "hunter2" not in str(info.value)


def test_embedded_state_keeps_one_private_secret(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path / "state")
    first = server_secret.resolve(settings)
    path = tmp_path / "state" / "server-secret"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(first) >= server_secret.MIN_CHARS
    assert server_secret.resolve(settings) == first  # a restart keeps it
    assert server_secret.embedded_secret(settings).encode() == first
    path.write_text("short\n")
    with pytest.raises(server_secret.ServerSecretMissing):
        server_secret.resolve(settings)


def test_an_external_database_needs_the_setting(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path, database_url="postgresql+asyncpg://db.invalid/x")
    with pytest.raises(server_secret.ServerSecretMissing, match="RLAAS_SERVER_SECRET"):
        server_secret.resolve(settings)
    assert not (tmp_path / "server-secret").exists()  # nothing made up on the side
    # A server started by hand beside `rlaas up` (its database, its state dir) shares
    # the secret the stack made.
    made = server_secret.embedded_secret(Settings(state_dir=tmp_path))
    assert server_secret.resolve(settings) == made.encode()


def test_subkeys_differ_by_purpose() -> None:
    a = server_secret.derive_key(GOOD.encode(), "page-token/v1")
    assert a != server_secret.derive_key(GOOD.encode(), "api-key/v1")
    assert a != server_secret.derive_key(b"t" * 40, "page-token/v1")


def test_rlaas_serve_refuses_to_start_without_it(tmp_path: Path) -> None:
    env = {
        "RLAAS_STATE_DIR": str(tmp_path),
        "RLAAS_DATABASE_URL": "postgresql+asyncpg://db.invalid/x",
        "RLAAS_METRICS_PORT": "0",
        "RLAAS_REST_PORT": "0",
        "PATH": "/usr/bin:/bin",
    }
    served = rlaas("serve", env=env, timeout=60)
    assert served.returncode == 2, served.stderr
    assert "RLAAS_SERVER_SECRET is required" in served.stderr
