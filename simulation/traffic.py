"""The support team's application, as a client of the public gRPC API: it asks the
gateway for a draft of each email's reply, lets the simulated user review it, and sends
the user's edit, send/discard, time to send and (sometimes) rating back as feedback."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import grpc

from rlaas.inference.v1 import inference_pb2 as inf
from rlaas.inference.v1 import inference_pb2_grpc
from rlaas.telemetry.v1 import telemetry_pb2 as tel
from rlaas.telemetry.v1 import telemetry_pb2_grpc
from simulation.report import LiveRequest
from simulation.simulated_user import Review, SimulatedUser
from simulation.workload import SupportEmail

AGENT_PROMPT = (
    "You are a customer support agent for Northwind Goods, an online store. "
    "Write a reply to the customer's email."
)
"""The application's own system message. It says nothing of the user's taste: the
platform has to learn that from the edits."""


def bearer(key: str) -> tuple[tuple[str, str], ...]:
    """gRPC metadata carrying an API key."""
    return (("authorization", f"Bearer {key}"),)


@dataclass(frozen=True)
class Answered:
    email: SupportEmail
    policy_id: str
    text: str
    review: Review


async def submit_review(
    telemetry: telemetry_pb2_grpc.TelemetryServiceStub,
    metadata: tuple[tuple[str, str], ...],
    answer: inf.InferResponse,
    review: Review,
) -> None:
    """A user's review of one answer as feedback: the edit, send/discard, time to send
    and the rating if they gave one. Keyed by the interaction, so a retry counts once."""
    explicit = tel.ExplicitFeedback()
    if review.rating is not None:
        explicit.rating = review.rating
    await telemetry.SubmitFeedback(
        tel.SubmitFeedbackRequest(
            interaction_id=answer.interaction_id,
            request_id=f"feedback-{answer.interaction_id}",
            feedback=tel.Feedback(
                explicit=explicit if review.rating is not None else None,
                implicit=tel.ImplicitFeedback(
                    edited_text=review.edited,
                    sent=review.sent,
                    time_to_send_ms=int(review.seconds_to_send * 1000),
                ),
            ),
        ),
        metadata=metadata,
        timeout=30,
    )


class SupportApp:
    def __init__(
        self,
        channel: grpc.aio.Channel,
        api_key: str,
        skill_id: str,
        user: SimulatedUser,
        *,
        concurrency: int = 8,
        timeout_s: float = 600.0,
    ) -> None:
        self._inference = inference_pb2_grpc.InferenceServiceStub(channel)
        self._telemetry = telemetry_pb2_grpc.TelemetryServiceStub(channel)
        self._md = bearer(api_key)
        self._skill = skill_id
        self._user = user
        self._gate = asyncio.Semaphore(concurrency)
        self._timeout = timeout_s
        self.live: list[LiveRequest] = []
        """Every live (not held-out) request so far, in completion order."""

    async def _draft(
        self, email: SupportEmail, *, policy_id: str = "", held_out: bool = False
    ) -> inf.InferResponse:
        return await self._inference.Infer(
            inf.InferRequest(
                skill=self._skill,
                messages=[
                    tel.ChatMessage(role=tel.ChatMessage.ROLE_SYSTEM, content=AGENT_PROMPT),
                    tel.ChatMessage(role=tel.ChatMessage.ROLE_USER, content=email.text),
                ],
                # The customer is the sticky key: one customer sees one arm of a canary.
                user_id=f"customer-{email.order_number}",
                thread_id=f"email-{email.email_id}",
                policy_id=policy_id,
                training_opt_out=held_out,
                labels={"workload": "held_out" if held_out else "live"},
                request_id=str(uuid.uuid4()),
            ),
            metadata=self._md,
            timeout=self._timeout,
        )

    async def handle(self, email: SupportEmail, phase: str) -> Answered:
        """One live email: draft, review, feedback."""
        async with self._gate:
            answer = await self._draft(email)
            review = self._user.review(email, answer.text)
            await submit_review(self._telemetry, self._md, answer, review)
        self.live.append(
            LiveRequest(
                len(self.live),
                phase,
                answer.policy_id,
                review.similarity,
                review.sent,
                review.rating,
            )
        )
        return Answered(email, answer.policy_id, answer.text, review)

    async def measure(
        self,
        emails: Sequence[SupportEmail],
        policy_id: str,
        progress: Callable[[], None] = lambda: None,
    ) -> list[Answered]:
        """Held-out drafts from one pinned policy, opted out of training, no feedback:
        the user's review is only measured."""

        async def one(email: SupportEmail) -> Answered:
            async with self._gate:
                answer = await self._draft(email, policy_id=policy_id, held_out=True)
            progress()
            return Answered(
                email, answer.policy_id, answer.text, self._user.review(email, answer.text)
            )

        return list(await asyncio.gather(*(one(e) for e in emails)))

    async def run(
        self,
        emails: Sequence[SupportEmail],
        phase: str,
        progress: Callable[[], None] = lambda: None,
    ) -> list[Answered]:
        async def one(email: SupportEmail) -> Answered:
            answered = await self.handle(email, phase)
            progress()
            return answered

        return list(await asyncio.gather(*(one(e) for e in emails)))
