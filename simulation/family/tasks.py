"""Inputs for the family of simulated users: two skills, each with a training stream and
a held-out stream.

- ``support``: customer tickets to Acme Devices (a first name, a ticket reference such as
  ``TCK-48213``, a product and an issue); the application drafts the reply.
- ``triage``: messages reaching Acme's operations desk; the application drafts a short
  triage note. Each message carries its ground truth (category, priority, owning team,
  a one-line summary and a next step), so a preference can refer to it and a note can be
  graded for being right (:func:`triage_correct`).

Deterministic for a seed. Streams never share an input: every input carries a unique
reference, and the training and held-out streams draw theirs from disjoint ranges, so
even the same seed gives two disjoint streams. The data is independent of
``simulation.workload`` (other names, products and issues), so the family is not the
main job's exact set.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Literal

Skill = Literal["support", "triage"]
Stream = Literal["train", "held_out"]
SKILLS: tuple[Skill, ...] = ("support", "triage")

SKILL_PROMPTS: dict[Skill, str] = {
    "support": "You are a customer support agent for Acme Devices. Reply to the customer's ticket.",
    "triage": "You triage incoming messages for Acme's operations desk. Write a short triage "
    "note for this message.",
}
"""The application's own system message per skill. It says nothing of any user's taste:
that is what the platform has to learn from the edits."""

_REFERENCE_RANGES: dict[Stream, tuple[int, int]] = {
    "train": (10000, 50000),
    "held_out": (50000, 90000),
}

FIRST_NAMES = (
    "Amara",
    "Bruno",
    "Chloe",
    "Dmitri",
    "Esme",
    "Farid",
    "Gwen",
    "Hugo",
    "Ines",
    "Jonas",
    "Keiko",
    "Luca",
    "Marta",
    "Nikhil",
    "Orla",
    "Pablo",
    "Quinn",
    "Rosa",
    "Soren",
    "Talia",
    "Umar",
    "Vera",
    "Wes",
    "Yara",
)
LAST_NAMES = (
    "Abbott",
    "Bianchi",
    "Costa",
    "Dahl",
    "Eriksen",
    "Fontaine",
    "Gupta",
    "Horvat",
    "Ibrahim",
    "Jansen",
    "Kowalski",
    "Lindqvist",
    "Moreau",
    "Nakamura",
    "Okafor",
    "Park",
)
DEVICES = (
    "wireless router",
    "smart thermostat",
    "laptop dock",
    "noise-cancelling headphones",
    "fitness tracker",
    "e-reader",
    "robot vacuum",
    "video doorbell",
    "standing desk",
    "air purifier",
    "espresso machine",
    "portable charger",
)
# (subject, body); {product}, {days}, {hours}, {months} are filled in.
SUPPORT_ISSUES = (
    (
        "Device won't turn on",
        "My {product} won't turn on since yesterday, even after charging it overnight. "
        "What should I do?",
    ),
    (
        "App keeps crashing",
        "The companion app for my {product} crashes every time I open the settings page. "
        "I have already reinstalled it twice.",
    ),
    (
        "Refund not received",
        "I returned my {product} {days} days ago but the refund has not shown up on my card.",
    ),
    (
        "Missing parts",
        "The box for my {product} arrived without the power adapter. Can you send one?",
    ),
    (
        "Cannot sign in",
        "I cannot sign in to my account to register my {product}. The reset email never arrives.",
    ),
    (
        "Battery drains fast",
        "My {product} is out of battery after only {hours} hours. Is this normal?",
    ),
    (
        "Warranty question",
        "My {product} stopped working after {months} months. Is it still under warranty?",
    ),
    (
        "Unexpected charge",
        "I was charged for a premium plan for my {product} that I never signed up for. "
        "Please cancel it.",
    ),
)


@dataclass(frozen=True)
class SupportTicket:
    case_id: str
    first_name: str
    full_name: str
    reference: str
    """The ticket reference, e.g. ``TCK-48213``: unique per input."""
    product: str
    subject: str
    body: str
    style: int = 0
    """Where the customer put the reference (people differ; so must the drafts)."""

    @property
    def text(self) -> str:
        """The ticket as the agent sees it (the user message)."""
        subject, body = f"[{self.reference}] {self.subject}", self.body
        if self.style == 1:
            subject, body = self.subject, f"{body}\n\nTicket: {self.reference}"
        elif self.style == 2:
            subject = f"Re: {self.subject} (ticket {self.reference})"
        return f"From: {self.full_name}\nSubject: {subject}\n\n{body}\n\n{self.first_name}"


CATEGORIES = ("billing", "outage", "account-access", "bug", "feature-request", "security")
TEAMS = {
    "billing": "Billing Ops",
    "outage": "On-call SRE",
    "account-access": "Identity Support",
    "bug": "Product Engineering",
    "feature-request": "Product Management",
    "security": "Security Response",
}
COMPANIES = (
    "Bluefin Logistics",
    "Cedar Health",
    "Driftwood Media",
    "Elmstone Bank",
    "Foxglove Retail",
    "Granite Labs",
    "Harbor Schools",
    "Ironleaf Games",
)
SERVICES = ("dashboard", "mobile app", "reports module", "scheduling tool", "data sync service")
CHANNELS = ("email", "chat", "phone note")
MONTHS = ("January", "February", "March", "April", "May", "June")


@dataclass(frozen=True)
class _Template:
    category: str
    priority: str
    subject: str
    body: str
    summary: str
    next_step: str


# The summaries and next steps are what a careful triager would write: they name no
# category but their own and no alarm words, so the personas can fall back on them.
TRIAGE_TEMPLATES = (
    _Template(
        "billing",
        "P2",
        "Charged twice this month",
        "Our card was charged twice for the {month} invoice, {amount} each time. "
        "Can you refund one of them?",
        "Customer charged twice for the {month} invoice.",
        "Refund the duplicate {month} charge.",
    ),
    _Template(
        "billing",
        "P3",
        "New invoice address",
        "Could you put our new office address on future invoices? We moved last week.",
        "Customer wants a new address on future invoices.",
        "Update the invoice address on the account.",
    ),
    _Template(
        "outage",
        "P1",
        "Nothing loads",
        "URGENT: the {service} has been down for all {users} of our users since 9am. "
        "Nobody can work!",
        "The {service} is down for all {users} users since 9am.",
        "Page the on-call engineer and open an incident.",
    ),
    _Template(
        "outage",
        "P1",
        "API returning 503",
        "Every call to your public API has returned 503 for forty minutes. Our checkout "
        "is blocked.",
        "Public API returns 503 on every call; checkout blocked.",
        "Page the on-call engineer and open an incident.",
    ),
    _Template(
        "account-access",
        "P2",
        "Admin locked out",
        "Our admin is locked out after too many password attempts and the unlock email "
        "never arrives.",
        "Admin locked out; the unlock email does not arrive.",
        "Verify the admin's identity and unlock the account.",
    ),
    _Template(
        "account-access",
        "P3",
        "Adding a colleague",
        "How do I let a new colleague into our workspace in the {service}?",
        "Customer asks how to add a colleague to the workspace.",
        "Send the guide for inviting workspace members.",
    ),
    _Template(
        "bug",
        "P2",
        "Export is broken",
        "When we export to CSV from the {service}, every date column comes out empty.",
        "CSV export from the {service} leaves date columns empty.",
        "Reproduce the export and file it for engineering.",
    ),
    _Template(
        "bug",
        "P3",
        "Typo on a page",
        "Small thing: the settings page of the {service} says 'Notifcations'.",
        "Typo on the settings page of the {service}.",
        "Log it for the next release.",
    ),
    _Template(
        "feature-request",
        "P3",
        "Dark mode?",
        "Would you consider a dark mode for the {service}? Half of our team works at night.",
        "Customer asks for a dark mode in the {service}.",
        "Add the request to the roadmap board.",
    ),
    _Template(
        "feature-request",
        "P3",
        "Bulk edit",
        "It would save us hours if we could edit many records at once in the {service}.",
        "Customer wants bulk editing in the {service}.",
        "Add the request to the roadmap board.",
    ),
    _Template(
        "security",
        "P1",
        "Leaked API key",
        "One of our developers pushed an API key to a public repository an hour ago. "
        "Please help us revoke it!",
        "Customer API key was pushed to a public repository.",
        "Revoke the exposed key and notify the security team.",
    ),
    _Template(
        "security",
        "P2",
        "Suspicious sign-ins",
        "We see sign-ins to our workspace from a country where we have no staff.",
        "Unexpected sign-ins to the workspace from abroad.",
        "Review the sign-in logs with the customer.",
    ),
)


@dataclass(frozen=True)
class TriageMessage:
    case_id: str
    reference: str
    """The message id, e.g. ``MSG-30412``: unique per input."""
    sender: str
    company: str
    channel: str
    subject: str
    body: str
    category: str
    """Ground truth: one of :data:`CATEGORIES`."""
    priority: str
    """Ground truth: ``P1`` (drop everything) to ``P3`` (when there is time)."""
    team: str
    """Ground truth: the team that owns this category."""
    summary: str
    next_step: str

    @property
    def text(self) -> str:
        """The message as the triager sees it (the user message)."""
        return (
            f"Message ID: {self.reference}\nFrom: {self.sender}, {self.company}\n"
            f"Channel: {self.channel}\nSubject: {self.subject}\n\n{self.body}"
        )


Case = SupportTicket | TriageMessage


def _references(rng: random.Random, prefix: str, stream: Stream, count: int) -> list[str]:
    """``count`` distinct references from the stream's own range, in a seeded order (so
    they look like real ids, not a counter)."""
    lo, hi = _REFERENCE_RANGES[stream]
    if not 0 <= count <= hi - lo:
        raise ValueError(f"a {stream} stream holds at most {hi - lo} inputs, asked for {count}")
    return [f"{prefix}-{n}" for n in rng.sample(range(lo, hi), count)]


def support_tickets(count: int, *, seed: int, stream: Stream) -> list[SupportTicket]:
    rng = random.Random(seed)
    tickets = []
    for i, reference in enumerate(_references(rng, "TCK", stream, count)):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        product = rng.choice(DEVICES)
        subject, body = rng.choice(SUPPORT_ISSUES)
        tickets.append(
            SupportTicket(
                case_id=f"support-{stream}-{seed}-{i}",
                first_name=first,
                full_name=f"{first} {last}",
                reference=reference,
                product=product,
                subject=subject,
                body=body.format(
                    product=product,
                    days=rng.randint(5, 30),
                    hours=rng.randint(2, 6),
                    months=rng.randint(3, 23),
                ),
                style=rng.randrange(3),
            )
        )
    return tickets


def triage_messages(count: int, *, seed: int, stream: Stream) -> list[TriageMessage]:
    rng = random.Random(seed)
    messages = []
    for i, reference in enumerate(_references(rng, "MSG", stream, count)):
        template = rng.choice(TRIAGE_TEMPLATES)
        slots = {
            "service": rng.choice(SERVICES),
            "users": rng.choice((40, 120, 350, 900)),
            "month": rng.choice(MONTHS),
            "amount": f"${rng.randint(49, 990)}",
        }
        messages.append(
            TriageMessage(
                case_id=f"triage-{stream}-{seed}-{i}",
                reference=reference,
                sender=f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}",
                company=rng.choice(COMPANIES),
                channel=rng.choice(CHANNELS),
                subject=template.subject,
                body=template.body.format(**slots),
                category=template.category,
                priority=template.priority,
                team=TEAMS[template.category],
                summary=template.summary.format(**slots),
                next_step=template.next_step.format(**slots),
            )
        )
    return messages


def _cases(skill: Skill, count: int, seed: int, stream: Stream) -> list[Case]:
    if skill == "support":
        return list(support_tickets(count, seed=seed, stream=stream))
    return list(triage_messages(count, seed=seed, stream=stream))


def training_cases(skill: Skill, count: int, seed: int = 11) -> list[Case]:
    """Inputs a recipe may be tuned and trained on."""
    return _cases(skill, count, seed, "train")


def held_out_cases(skill: Skill, count: int, seed: int = 2027) -> list[Case]:
    """Inputs only ever used to measure: never trained or tuned on."""
    return _cases(skill, count, seed, "held_out")


def _label(category: str) -> re.Pattern[str]:
    # Hyphens count as part of a label: "account-access" is named, "access" alone is not.
    return re.compile(rf"(?<![\w-]){re.escape(category)}(?![\w-])", re.IGNORECASE)


_LABELS = {category: _label(category) for category in CATEGORIES}


def categories_named(text: str) -> set[str]:
    return {category for category, label in _LABELS.items() if label.search(text)}


def triage_correct(message: TriageMessage, note: str) -> bool:
    """The task result: the note names the message's category and no other (a note that
    lists every category has not triaged anything)."""
    return categories_named(note) == {message.category}
