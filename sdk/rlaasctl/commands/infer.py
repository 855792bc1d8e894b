"""`infer`: ask a skill; prints the answer and the policy that served it."""

from __future__ import annotations

import argparse
from typing import Any

from rlaas.inference.v1 import inference_pb2 as inf
from rlaas.registry.v1 import registry_pb2 as reg
from rlaas.telemetry.v1 import telemetry_pb2 as tel
from rlaasctl.client import Ctl, Shown, request_id
from rlaasctl.output import enum_name
from rlaasctl.parsing import command


def _infer(c: Ctl, a: argparse.Namespace) -> Shown:
    messages = []
    if a.system:
        messages.append(tel.ChatMessage(role=tel.ChatMessage.ROLE_SYSTEM, content=a.system))
    messages.append(tel.ChatMessage(role=tel.ChatMessage.ROLE_USER, content=a.message))
    generation = reg.GenerationConfig()
    for name in ("temperature", "max_tokens", "seed"):
        if getattr(a, name) is not None:
            setattr(generation, name, getattr(a, name))
    req = inf.InferRequest(
        skill=a.skill, messages=messages, user_id=a.user_id, thread_id=a.thread_id,
        policy_id=a.policy, request_id=request_id(a),
    )  # fmt: skip
    if generation.ByteSize():
        req.generation.CopyFrom(generation)
    return (
        c.call(c.inference.Infer, req),
        lambda r: (
            f"{r.text}\n\n[policy {r.policy_id}  interaction {r.interaction_id}  "
            f"routing {enum_name(tel.RoutingDecision.Reason.Name(r.routing.reason), 'REASON_')}]"
        ),
    )


def register(sub: Any) -> None:
    x = command(sub, "infer", "ask a skill; prints the answer and the policy that served it",
                _infer)  # fmt: skip
    x.add_argument("skill", help="the skill")
    x.add_argument("message", help="the user message")
    x.add_argument("--system", default="", help="a system message before it")
    x.add_argument("--user-id", default="", help="end user (sticky canary/A-B routing)")
    x.add_argument("--thread-id", default="", help="conversation thread")
    x.add_argument("--policy", default="", help="pin a policy skill@vN (skips the router)")
    x.add_argument("--max-tokens", type=int, default=None, help="override the policy's")
    x.add_argument("--temperature", type=float, default=None, help="override the policy's")
    x.add_argument("--seed", type=int, default=None, help="sampling seed")
