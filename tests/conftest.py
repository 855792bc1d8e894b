"""Session fixtures: one real embedded stack (pgserver, Temporal dev server, milvus-lite,
`rlaas serve`, both workers) started through the real CLI on free ports."""

from __future__ import annotations

import warnings
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from services.config import Settings
from tests.helpers import KEY_LINE, rlaas, stack_env

warnings.filterwarnings("ignore", module="platformdirs")


@dataclass
class RunningStack:
    env: dict[str, str]
    settings: Settings
    admin_key: str
    up_output: str

    @property
    def grpc_target(self) -> str:
        return self.settings.grpc_target

    @property
    def database_url(self) -> str:
        from infra.stack import embedded_postgres_url

        return embedded_postgres_url(self.settings)


def settings_from_env(env: dict[str, str]) -> Settings:
    values = {k.removeprefix("RLAAS_").lower(): v for k, v in env.items() if k.startswith("RLAAS_")}
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    state_dir: Path = tmp_path_factory.mktemp("stack")
    env = stack_env(state_dir)
    up = rlaas("up", env=env)
    if up.returncode != 0:
        rlaas("down", env=env)
        pytest.fail(f"rlaas up failed:\n{up.stdout}\n{up.stderr}")
    match = KEY_LINE.search(up.stdout)
    assert match, f"rlaas up printed no admin key:\n{up.stdout}"
    try:
        yield RunningStack(env, settings_from_env(env), match.group(1), up.stdout)
    finally:
        down = rlaas("down", env=env)
        assert down.returncode == 0, down.stderr


@pytest.fixture(scope="session")
async def channel(stack: RunningStack) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(stack.grpc_target) as ch:
        yield ch
