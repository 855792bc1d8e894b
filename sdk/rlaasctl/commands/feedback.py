"""`feedback`: send a user's reaction to an answer (SubmitFeedback)."""

from __future__ import annotations

import argparse
from typing import Any

from rlaas.telemetry.v1 import telemetry_pb2 as tel
from rlaasctl.client import Ctl, Shown, request_id
from rlaasctl.parsing import command

_THUMBS = {"up": tel.ExplicitFeedback.THUMB_UP, "down": tel.ExplicitFeedback.THUMB_DOWN}


def _feedback(c: Ctl, a: argparse.Namespace) -> Shown:
    feedback = tel.Feedback(interaction_id=a.interaction_id, output_id=a.output_id,
                            user_id=a.user_id)  # fmt: skip
    explicit = tel.ExplicitFeedback(thumb=_THUMBS.get(a.thumb, 0), comment=a.comment)
    if a.rating is not None:
        explicit.rating = a.rating
    if explicit.ByteSize():
        feedback.explicit.CopyFrom(explicit)
    implicit = tel.ImplicitFeedback()
    if a.edited_text is not None:
        implicit.edited_text = a.edited_text
    if a.sent is not None:
        implicit.sent = a.sent
    if a.escalated:
        implicit.escalated = True
    if implicit.ListFields():
        feedback.implicit.CopyFrom(implicit)
    req = tel.SubmitFeedbackRequest(interaction_id=a.interaction_id, feedback=feedback,
                                    request_id=request_id(a))  # fmt: skip
    return c.call(
        c.telemetry.SubmitFeedback, req
    ), lambda r: f"feedback {r.feedback.feedback_id} on {r.feedback.interaction_id}"


def register(sub: Any) -> None:
    x = command(sub, "feedback", "send a user's reaction to an answer", _feedback)
    x.add_argument("interaction_id", help="the answer's interaction id")
    x.add_argument("--output-id", default="", help="which output (default: the first)")
    x.add_argument("--user-id", default="", help="who reacted")
    x.add_argument("--thumb", choices=list(_THUMBS), help="explicit thumb")
    x.add_argument("--rating", type=int, help="explicit rating 1-5")
    x.add_argument("--comment", default="", help="explicit comment")
    x.add_argument("--edited-text", help="implicit: what the user sent after editing")
    sent = x.add_mutually_exclusive_group()
    sent.add_argument("--sent", dest="sent", action="store_const", const=True,
                      help="implicit: the answer was sent")  # fmt: skip
    sent.add_argument("--discarded", dest="sent", action="store_const", const=False,
                      help="implicit: the answer was discarded")  # fmt: skip
    x.add_argument("--escalated", action="store_true", help="implicit: escalated to a human")
