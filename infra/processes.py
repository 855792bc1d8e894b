"""Background processes of the embedded stack, tracked by pid files under
``<state_dir>/run``. Each runs in its own session (process group), so stopping it
stops everything it forked, and it outlives the ``rlaas up`` that started it."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Managed:
    name: str
    pid: int
    started: int | None


class ProcessTable:
    def __init__(self, run_dir: Path, logs_dir: Path) -> None:
        self.run_dir = run_dir
        self.logs_dir = logs_dir

    def _pidfile(self, name: str) -> Path:
        return self.run_dir / f"{name}.json"

    def log_path(self, name: str) -> Path:
        return self.logs_dir / f"{name}.log"

    def spawn(self, name: str, argv: list[str], env: dict[str, str]) -> Managed:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path(name), "ab") as log:
            proc = subprocess.Popen(
                argv,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        managed = Managed(name, proc.pid, start_time(proc.pid))
        self._pidfile(name).write_text(
            json.dumps({"pid": proc.pid, "started": managed.started, "argv": argv})
        )
        return managed

    def get(self, name: str) -> Managed | None:
        try:
            data = json.loads(self._pidfile(name).read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None
        return Managed(name, int(data["pid"]), data.get("started"))

    def running(self, name: str) -> Managed | None:
        managed = self.get(name)
        if managed is None or not alive(managed.pid, managed.started):
            return None
        return managed

    def names(self) -> list[str]:
        if not self.run_dir.exists():
            return []
        return sorted(p.stem for p in self.run_dir.glob("*.json"))

    def stop(self, name: str, timeout: float = 15.0) -> bool:
        """SIGTERM the process group, SIGKILL it after ``timeout``. True if it was up."""
        managed = self.get(name)
        was_up = False
        if managed is not None and alive(managed.pid, managed.started):
            was_up = True
            _signal_group(managed.pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while alive(managed.pid, managed.started) and time.monotonic() < deadline:
                time.sleep(0.1)
            if alive(managed.pid, managed.started):
                _signal_group(managed.pid, signal.SIGKILL)
                while alive(managed.pid, managed.started):
                    time.sleep(0.05)
            # Children that ignored the group signal (none should) go with a KILL.
            _signal_group(managed.pid, signal.SIGKILL)
        self._pidfile(name).unlink(missing_ok=True)
        return was_up


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def _stat_fields(pid: int) -> list[str] | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # Fields after the "(comm)" one, which may itself contain spaces.
    return stat.rsplit(")", 1)[1].split()


def start_time(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return int(fields[19]) if fields else None  # field 22 of proc(5): starttime


def alive(pid: int, started: int | None = None) -> bool:
    """True if ``pid`` is a live (non-zombie) process that started at ``started`` when
    given, so a recycled pid never counts as ours."""
    # Reap it if it is our own exited child (tests start the stack in-process).
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)
    fields = _stat_fields(pid)
    if fields is None or fields[0] in ("Z", "X"):
        return False
    return started is None or int(fields[19]) == started


def group_members(pgid: int) -> list[int]:
    """Live pids in process group ``pgid`` (for tests: nothing left behind)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        if fields is not None and int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            members.append(int(entry.name))
    return members
