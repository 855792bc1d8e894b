"""The `rlaas` command's argument handling (the commands themselves run against the real
stack in the integration tests)."""

from __future__ import annotations

import pytest

from infra.cli import main

pytestmark = pytest.mark.unit


def test_model_server_takes_its_own_options_after_a_double_dash(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["model-server", "--", "--help"])
    assert exit_info.value.code == 0
    assert "--http-port" in capsys.readouterr().out
