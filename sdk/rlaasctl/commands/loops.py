"""`loops start/list/get/pause/resume/stop`: learning loops (collect, train, evaluate, roll
out, repeat)."""

from __future__ import annotations

import argparse
from typing import Any

from rlaas.training.v1 import training_pb2 as trn
from rlaasctl.client import Ctl, Shown, request_id
from rlaasctl.output import enum_name, lines
from rlaasctl.parsing import command, group, paging

_STATES = {"": 0} | {
    s: trn.LearningLoop.State.Value(f"STATE_{s.upper()}")
    for s in ("running", "paused", "completed", "failed", "stopped")
}


def _loop_text(x: trn.LearningLoop) -> str:
    state = enum_name(trn.LearningLoop.State.Name(x.state))
    phase = enum_name(trn.LearningLoop.Phase.Name(x.phase), "PHASE_")
    return f"{x.learning_loop_id}  skill={x.skill_id}  {state}/{phase}  iteration={x.iteration}"


def _start(c: Ctl, a: argparse.Namespace) -> Shown:
    config = trn.LearningLoopConfig(min_new_feedback=a.min_new_feedback,
                                    max_iterations=a.max_iterations,
                                    min_pairs=a.min_pairs)  # fmt: skip
    if a.interval is not None:
        config.interval.FromSeconds(a.interval)
    if a.data_window is not None:
        config.data_window.FromSeconds(a.data_window)
    loop = trn.LearningLoop(skill_id=a.skill, display_name=a.display_name, config=config)
    req = trn.StartLearningLoopRequest(learning_loop=loop, request_id=request_id(a))
    return c.call(c.training.StartLearningLoop, req), lambda r: _loop_text(r.learning_loop)


def _list(c: Ctl, a: argparse.Namespace) -> Shown:
    req = trn.ListLearningLoopsRequest(skill_id=a.skill, state=_STATES[a.state],
                                       page_size=a.page_size, page_token=a.page_token)  # fmt: skip
    return c.call(c.training.ListLearningLoops, req), lambda r: lines(
        [_loop_text(x) for x in r.learning_loops], r.next_page_token
    )


def _get(c: Ctl, a: argparse.Namespace) -> Shown:
    req = trn.GetLearningLoopRequest(learning_loop_id=a.loop_id)
    return c.call(c.training.GetLearningLoop, req), lambda r: _loop_text(r.learning_loop)


def _pause(c: Ctl, a: argparse.Namespace) -> Shown:
    req = trn.PauseLearningLoopRequest(learning_loop_id=a.loop_id, request_id=request_id(a))
    return c.call(c.training.PauseLearningLoop, req), lambda r: _loop_text(r.learning_loop)


def _resume(c: Ctl, a: argparse.Namespace) -> Shown:
    req = trn.ResumeLearningLoopRequest(learning_loop_id=a.loop_id, request_id=request_id(a))
    return c.call(c.training.ResumeLearningLoop, req), lambda r: _loop_text(r.learning_loop)


def _stop(c: Ctl, a: argparse.Namespace) -> Shown:
    req = trn.StopLearningLoopRequest(
        learning_loop_id=a.loop_id, reason=a.reason, request_id=request_id(a)
    )
    return c.call(c.training.StopLearningLoop, req), lambda r: _loop_text(r.learning_loop)


def register(sub: Any) -> None:
    loops = group(sub, "loops", "learning loops: collect, train, evaluate, roll out, repeat")
    x = command(loops, "start", "start a learning loop for a skill", _start)
    x.add_argument("skill", help="the skill (it needs a baseline)")
    x.add_argument("--display-name", default="", help="human-readable name")
    x.add_argument("--min-new-feedback", type=int, default=0,
                   help="new feedback events an iteration also waits for (0: the "
                        "schedule alone)")  # fmt: skip
    x.add_argument("--max-iterations", type=int, default=0, help="0: forever")
    x.add_argument("--min-pairs", type=int, default=0,
                   help="preference pairs needed to train (0: server default)")  # fmt: skip
    x.add_argument("--interval", type=int, default=None,
                   help="least seconds between iteration starts (default 86400)")  # fmt: skip
    x.add_argument("--data-window", type=int, default=None,
                   help="seconds of telemetry an iteration reads")  # fmt: skip
    x = command(loops, "list", "the tenant's loops, newest first", _list)
    x.add_argument("--skill", default="", help="only this skill's")
    x.add_argument("--state", choices=[s for s in _STATES if s], default="",
                   help="only loops in this state")  # fmt: skip
    paging(x)
    for name, help, handler in (
        ("get", "one loop: state, phase, iteration", _get),
        ("pause", "pause a RUNNING loop after its current step", _pause),
        ("resume", "resume a PAUSED loop where it stopped", _resume),
    ):
        x = command(loops, name, help, handler)
        x.add_argument("loop_id", help="the learning loop id")
    x = command(loops, "stop", "stop a loop for good (a rollout in progress is rolled back)",
                _stop)  # fmt: skip
    x.add_argument("loop_id", help="the learning loop id")
    x.add_argument("--reason", default="", help="why (the reason of a rollback it causes)")
