"""Settings: every RLAAS_* variable is documented, and env vars reach the settings."""

from __future__ import annotations

import pytest

from infra import docs
from services.config import Settings
from tests.helpers import ROOT

pytestmark = pytest.mark.unit


def test_every_setting_is_documented_in_module_and_readme() -> None:
    for name, field in Settings.model_fields.items():
        assert field.description, f"{name} has no docstring in services/config.py"
    readme = (ROOT / "README.md").read_text()
    assert docs.render(readme) == readme, "README settings table is stale: run `make docs`"


def test_env_vars_configure_and_secrets_stay_hidden(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RLAAS_GRPC_PORT", "6000")
    monkeypatch.setenv("RLAAS_SERVICES", '["registry"]')
    monkeypatch.setenv("RLAAS_S3_SECRET_KEY", "hunter2")
    settings = Settings()
    assert settings.grpc_port == 6000 and settings.services == ["registry"]
    assert "hunter2" not in repr(settings) and "hunter2" not in str(settings.model_dump())
