"""rlaasctl's command tree, help, output option and exit codes, without a server.

The round trips against the real stack are in tests/integration/test_ctl.py."""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import subprocess
import sys
from collections.abc import Iterator

import grpc
import pytest

from rlaasctl import errors, main
from rlaasctl.commands import GROUPS
from tests.helpers import ROOT, free_port

pytestmark = pytest.mark.unit


def walk(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser, str]]:
    """Every (sub)command: its path, its parser and the help shown in its parent's list."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help or "" for choice in action._choices_actions}
            for name, child in action.choices.items():
                yield (*path, name), child, helps.get(name, "")
                yield from walk(child, (*path, name))


def leaves() -> list[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    return [(path, p) for path, p, _ in walk(main.build_parser()) if not _has_subcommands(p)]


def _has_subcommands(parser: argparse.ArgumentParser) -> bool:
    return any(isinstance(a, argparse._SubParsersAction) for a in parser._actions)


# Every leaf command, so the integration tests can check they exercised all of them.
LEAF_COMMANDS = sorted(" ".join(path) for path, _ in leaves())


def test_every_command_and_argument_has_help_text() -> None:
    tree = list(walk(main.build_parser()))
    assert len(tree) > 50
    for path, parser, listed_help in tree:
        name = " ".join(path)
        assert listed_help.strip(), f"`{name}` has no help line in its parent's list"
        assert (parser.description or "").strip(), f"`{name} --help` has no description"
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction | argparse._SubParsersAction):
                continue
            assert (action.help or "").strip(), f"`{name}`: {action.dest} has no help"


def test_every_command_takes_output_and_calls_exactly_one_handler() -> None:
    for path, parser in leaves():
        output = [a for a in parser._actions if "--output" in a.option_strings]
        assert output and output[0].choices == ["text", "json"], path
        assert callable(parser.get_default("handler")), path


def test_no_command_argument_shadows_a_global_option() -> None:
    parser = main.build_parser()
    shared = {a.dest for a in parser._actions} | {"command", "action", "handler"}
    for path, leaf in leaves():
        for action in leaf._actions:
            if action.dest != "output" and not isinstance(action, argparse._HelpAction):
                assert action.dest not in shared, (path, action.dest)


def test_output_json_is_accepted_before_and_after_the_command() -> None:
    parser = main.build_parser()
    before = parser.parse_args(["--output", "json", "status", "s"])
    after = parser.parse_args(["status", "s", "--output", "json"])
    default = parser.parse_args(["status", "s"])
    assert (before.output, after.output, default.output) == ("json", "json", "text")


@pytest.mark.parametrize("path", [(), *[p for p, _, _ in walk(main.build_parser())]])
def test_help_exits_zero_for_every_command_in_process(path: tuple[str, ...]) -> None:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as exited:
        main.build_parser().parse_args([*path, "--help"])
    assert exited.value.code == 0
    assert out.getvalue().startswith(f"usage: rlaasctl {' '.join(path)}".rstrip())


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rlaasctl", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


@pytest.mark.parametrize(
    "path", [(), ("promote",), ("policies", "create"), ("rollouts", "promote"), ("traffic",)]
)
def test_help_as_a_real_process(path: tuple[str, ...]) -> None:
    done = cli(*path, "--help")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: rlaasctl") and not done.stderr
    if not path:  # the top-level help documents the exit codes
        assert "exit codes:" in done.stdout
        for code in range(7):
            assert f"\n  {code}  " in done.stdout


def test_exit_codes_are_mapped_in_one_place_and_documented() -> None:
    assert errors.exit_code(grpc.StatusCode.OK) == 0
    assert errors.exit_code(grpc.StatusCode.INVALID_ARGUMENT) == 2
    assert errors.exit_code(grpc.StatusCode.NOT_FOUND) == 3
    assert errors.exit_code(grpc.StatusCode.UNAUTHENTICATED) == 4
    assert errors.exit_code(grpc.StatusCode.PERMISSION_DENIED) == 4
    for code in ("FAILED_PRECONDITION", "ABORTED", "ALREADY_EXISTS"):
        assert errors.exit_code(grpc.StatusCode[code]) == 5
    for code in ("UNAVAILABLE", "DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED"):
        assert errors.exit_code(grpc.StatusCode[code]) == 6
    for code in ("INTERNAL", "UNKNOWN", "UNIMPLEMENTED", "CANCELLED", "DATA_LOSS"):
        assert errors.exit_code(grpc.StatusCode[code]) == 1
    # The module docstring and the --help epilog carry the same table, naming every code.
    assert errors.EXIT_CODES_HELP.split("\n", 1)[1] in (main.__doc__ or "")
    for status in grpc.StatusCode:
        if errors.exit_code(status) > 1:
            assert status.name in errors.EXIT_CODES_HELP, status


def test_usage_errors_exit_2() -> None:
    missing_reason = cli("--api-key", "k", "promote", "s", "s@v1")
    assert missing_reason.returncode == 2 and "--reason" in missing_reason.stderr
    assert cli("--api-key", "k", "no-such-command").returncode == 2
    no_key = subprocess.run(
        [sys.executable, "-m", "rlaasctl", "status", "s"], cwd=ROOT, capture_output=True,
        text=True, timeout=60, check=False, env={"PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert no_key.returncode == 2 and "RLAAS_API_KEY" in no_key.stderr
    bad_canary = cli("--api-key", "k", "traffic", "s", "--reason", "r", "--canary", "s@v2")
    assert bad_canary.returncode == 2 and "POLICY=PERCENT" in bad_canary.stderr


def test_server_down_exits_6_with_the_code_on_stderr() -> None:
    target = f"127.0.0.1:{free_port()}"  # nothing listens there
    text = cli("--target", target, "--api-key", "k", "--timeout", "5", "status", "s")
    assert text.returncode == 6 and not text.stdout
    assert text.stderr.startswith("rlaasctl: UNAVAILABLE: ")
    as_json = cli("--target", target, "--api-key", "k", "status", "s", "--output", "json")
    assert as_json.returncode == 6
    assert json.loads(as_json.stderr)["code"] == "UNAVAILABLE"


def test_every_top_level_command_comes_from_one_registered_group() -> None:
    """`rlaasctl.commands.GROUPS` is the registry: each group module adds the command named
    after it (and maybe more), no two add the same one, and nothing else adds any."""
    registered: list[str] = []
    for name, group in GROUPS.items():
        sub = argparse.ArgumentParser().add_subparsers()
        group.register(sub)
        assert name in sub.choices, name
        registered += sub.choices
    top = [path[0] for path, _, _ in walk(main.build_parser()) if len(path) == 1]
    assert registered == top


def test_the_cli_imports_no_server_code() -> None:
    """rlaasctl is a client of the public API, like the SDK: stubs, grpc, rlaas_sdk only."""
    check = (
        "import sys, rlaasctl.main; "
        "print(sorted({m.split('.')[0] for m in sys.modules} "
        "& {'services', 'workflows', 'workers', 'infra', 'simulation', 'tests'}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", check],
        cwd="/", capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
