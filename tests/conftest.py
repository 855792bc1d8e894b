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


@dataclass(frozen=True)
class TinyModel:
    """A tiny random Llama the stack serves (fast), and two LoRA adapters for it."""

    model_dir: Path
    adapters: dict[str, tuple[str, str]]  # name -> (file:// URI, sha256)


@dataclass
class RunningStack:
    env: dict[str, str]
    settings: Settings
    admin_key: str
    up_output: str
    tiny: TinyModel

    @property
    def grpc_target(self) -> str:
        return self.settings.grpc_target

    @property
    def rest_url(self) -> str:
        url = self.settings.rest_url
        assert url is not None, "the test stack runs the REST bridge"
        return url

    @property
    def database_url(self) -> str:
        from infra.stack import embedded_postgres_url

        return embedded_postgres_url(self.settings)


def settings_from_env(env: dict[str, str]) -> Settings:
    values = {k.removeprefix("RLAAS_").lower(): v for k, v in env.items() if k.startswith("RLAAS_")}
    return Settings(**values)  # type: ignore[arg-type]


def build_tiny(root: Path) -> TinyModel:
    from tests.backends.tiny import build_lora_adapter, build_tiny_model

    model_dir = build_tiny_model(root / "tiny-model")
    adapters = {}
    for name, seed in (("a", 1), ("b", 2)):
        directory = root / f"adapter-{name}"
        sha = build_lora_adapter(model_dir, directory, seed=seed)
        adapters[name] = (directory.resolve().as_uri(), sha)
    return TinyModel(model_dir, adapters)


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    state_dir: Path = tmp_path_factory.mktemp("stack")
    tiny = build_tiny(tmp_path_factory.mktemp("tiny"))
    env = stack_env(state_dir, RLAAS_MODEL_DIR=str(tiny.model_dir))
    up = rlaas("up", env=env)
    if up.returncode != 0:
        rlaas("down", env=env)
        pytest.fail(f"rlaas up failed:\n{up.stdout}\n{up.stderr}")
    match = KEY_LINE.search(up.stdout)
    assert match, f"rlaas up printed no admin key:\n{up.stdout}"
    try:
        yield RunningStack(env, settings_from_env(env), match.group(1), up.stdout, tiny)
    finally:
        down = rlaas("down", env=env)
        assert down.returncode == 0, down.stderr


@pytest.fixture(scope="session")
async def channel(stack: RunningStack) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(stack.grpc_target) as ch:
        yield ch
