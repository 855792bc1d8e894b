"""The atexit hook, in a real child process (so not a unit test)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.helpers import ROOT
from tests.sdk.fakes import FakeServer, start_fake_server

pytestmark = pytest.mark.integration


@pytest.fixture
def fake() -> Iterator[FakeServer]:
    server = start_fake_server()
    yield server
    server.server.stop(0)


def test_atexit_hook_flushes_open_clients(fake: FakeServer) -> None:
    """A script that never closes its client still delivers its events at exit."""
    script = (
        "import sys\n"
        "from rlaas_sdk import Client\n"
        "client = Client(sys.argv[1], 'key', flush_interval_s=60)\n"
        "for n in range(3):\n"
        "    client.log('skill', input=f'q{n}')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, fake.target],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert len(fake.telemetry.stored) == 3
