"""``rlaas``: run the platform (serve, worker) and the embedded stack (up, down)."""

from __future__ import annotations

import argparse
import asyncio
import sys
import warnings
from pathlib import Path

from services.config import SERVICE_NAMES, Settings, get_settings
from services.logs import configure_logging


def _settings(args: argparse.Namespace) -> Settings:
    settings = get_settings()
    if getattr(args, "state_dir", None):
        settings = settings.model_copy(update={"state_dir": args.state_dir})
    return settings


def cmd_serve(args: argparse.Namespace) -> int:
    from infra import migrate
    from infra.stack import database_url
    from services import server_secret
    from services.app import serve
    from services.server_secret import ServerSecretMissing

    settings = _settings(args)
    updates: dict[str, object] = {}
    if args.services:
        updates["services"] = [s.strip() for s in args.services.split(",") if s.strip()]
    if args.port is not None:
        updates["grpc_port"] = args.port
    if args.rest_port is not None:
        updates["rest_port"] = args.rest_port
    settings = settings.model_copy(update=updates)
    url = database_url(settings)

    async def migrate_then_serve() -> None:
        server_secret.resolve(settings)  # refuse to start before touching anything
        await migrate.upgrade_async(url)
        await serve(settings, url)

    try:
        asyncio.run(migrate_then_serve())
    except ServerSecretMissing as err:
        print(f"rlaas serve: {err}", file=sys.stderr)
        return 2
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from infra.stack import database_url
    from workers.worker import run_worker

    settings = _settings(args)
    asyncio.run(run_worker(settings, args.queue, database_url(settings)))
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    from infra.stack import Stack, StackError

    settings = _settings(args)
    stack = Stack(settings)
    try:
        endpoints = asyncio.run(stack.up())
    except StackError as err:
        print(f"rlaas up failed: {err}", file=sys.stderr)
        return 1
    print()
    print(f"RLaaS stack is up (state in {settings.state_dir.resolve()})")
    print(f"  gRPC, all five services   {endpoints.grpc_target}")
    if endpoints.rest_url:
        print(f"  REST bridge (HTTP/JSON)   {endpoints.rest_url}  (spec: /openapi.json)")
    print(f"  Temporal frontend         {endpoints.temporal_address}")
    if endpoints.temporal_ui_url:
        print(f"  Temporal Web UI           {endpoints.temporal_ui_url}")
    print(f"  Milvus                    {endpoints.milvus_uri}")
    print(f"  Objects                   {endpoints.objects}")
    print(f"  Logs                      {settings.logs_dir}")
    if stack.admin_key is not None:
        print()
        print("Operator tenant 'operator' created. Its admin API key is shown ONLY NOW;")
        print("only its hash is stored. Keep it somewhere safe:")
        print(f"  RLAAS_API_KEY={stack.admin_key.secret}")
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    from infra.stack import Stack

    Stack(_settings(args)).down()
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from infra.stack import Stack

    for name, state in Stack(_settings(args)).status().items():
        print(f"{name:12} {state}")
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    from infra import migrate
    from infra.stack import database_url

    url = database_url(_settings(args))
    if args.new:
        migrate.upgrade(url)  # autogenerate compares the models to a database at head
        migrate.new_revision(url, args.new)
    elif args.downgrade:
        migrate.downgrade(url, args.downgrade)
    else:
        migrate.upgrade(url, args.revision)
    return 0


def cmd_smoke(args: argparse.Namespace) -> int:
    import os

    from infra.smoke import run_smoke

    return asyncio.run(run_smoke(_settings(args), args.api_key or os.environ.get("RLAAS_API_KEY")))


def cmd_demo(args: argparse.Namespace) -> int:
    import os

    return asyncio.run(_demo(_settings(args), args.api_key or os.environ.get("RLAAS_API_KEY")))


async def _demo(settings: Settings, api_key: str | None) -> int:
    """The main job (simulation.job) against the running stack, with a temporary
    operator key unless one is given."""
    from infra.operator_key import temporary_operator_key
    from simulation.job import JobConfig, app_channel, run_job

    cleanup = None
    if api_key is None:
        api_key, cleanup = await temporary_operator_key(settings, minutes=90, purpose="main job")
    try:
        async with app_channel(settings.grpc_target) as channel:
            return await run_job(channel, api_key, JobConfig(out_dir=settings.state_dir / "demo"))
    finally:
        if cleanup is not None:
            await cleanup()


def cmd_model_server(args: argparse.Namespace) -> int:
    from services.inference.model_server import main as model_server_main

    # argparse keeps the `--` that separates the model server's own options.
    rest = args.rest[1:] if args.rest[:1] == ["--"] else args.rest
    model_server_main(rest)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rlaas", description=__doc__)
    parser.add_argument("--state-dir", type=Path, help="override RLAAS_STATE_DIR")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("serve", help="run the gRPC services (all five by default)")
    p.add_argument("--services", help=f"comma-separated subset of {','.join(SERVICE_NAMES)}")
    p.add_argument("--port", type=int, help="override RLAAS_GRPC_PORT")
    p.add_argument(
        "--rest-port", type=int, help="override RLAAS_REST_PORT (the REST bridge; 0: off)"
    )
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("worker", help="run a Temporal worker")
    p.add_argument("--queue", choices=["cpu", "gpu"], required=True)
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser("up", help="start the embedded stack in the background")
    p.set_defaults(func=cmd_up)
    p = sub.add_parser("down", help="stop every process `rlaas up` started")
    p.set_defaults(func=cmd_down)
    p = sub.add_parser("status", help="show which stack processes are running")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("migrate", help="run database migrations")
    p.add_argument("--revision", default="head", help="upgrade to this revision")
    p.add_argument("--downgrade", metavar="REV", help="downgrade to REV instead")
    p.add_argument("--new", metavar="MESSAGE", help="autogenerate a new migration from the models")
    p.set_defaults(func=cmd_migrate)

    p = sub.add_parser(
        "model-server",
        help="serve the local model and its adapters over an OpenAI-compatible HTTP API; "
        "`rlaas model-server -- --help`",
    )
    p.add_argument("rest", nargs=argparse.REMAINDER, help="model server options")
    p.set_defaults(func=cmd_model_server)

    p = sub.add_parser("smoke", help="check the running stack end to end")
    p.add_argument("--api-key", help="admin key to use (default: RLAAS_API_KEY, else mint one)")
    p.set_defaults(func=cmd_smoke)

    p = sub.add_parser(
        "demo",
        help="the main job: a simulated support team teaches the platform its taste; one "
        "learning-loop iteration, rollout and promotion, then a bad candidate rolled back",
    )
    p.add_argument("--api-key", help="operator key (default: RLAAS_API_KEY, else mint one)")
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    # pgserver warns when XDG_RUNTIME_DIR is unset; harmless here.
    warnings.filterwarnings("ignore", module="platformdirs")
    args = build_parser().parse_args(argv)
    configure_logging(_settings(args))
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
