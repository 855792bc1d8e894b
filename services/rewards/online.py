"""Online reward from explicit feedback, as the bandit consumes it: thumb up = 1, down = 0;
a 1-5 rating maps to [0, 1]; both present: their mean. The learning loop's reward
engines (configurable, with implicit signals) build on the same [0, 1] scale."""

from __future__ import annotations

from rlaas.telemetry.v1 import telemetry_pb2 as tel


def explicit_reward(feedback: tel.Feedback) -> float | None:
    ex = feedback.explicit
    values = []
    if ex.thumb == tel.ExplicitFeedback.THUMB_UP:
        values.append(1.0)
    elif ex.thumb == tel.ExplicitFeedback.THUMB_DOWN:
        values.append(0.0)
    if ex.HasField("rating"):
        values.append((ex.rating - 1) / 4)
    return sum(values) / len(values) if values else None
