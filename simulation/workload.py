"""A simulated support-email workload: customers of an online store writing about their
orders. Deterministic for a seed; the training stream and the held-out set are drawn from
disjoint order-number ranges and seeds, so no held-out email is ever trained on."""

from __future__ import annotations

import random
from dataclasses import dataclass

FIRST_NAMES = (
    "Maria",
    "James",
    "Aisha",
    "Chen",
    "Olivia",
    "Liam",
    "Sofia",
    "Noah",
    "Priya",
    "Lucas",
    "Emma",
    "Mateo",
    "Hana",
    "Omar",
    "Grace",
    "Ivan",
    "Zara",
    "Felix",
    "Nadia",
    "Tom",
    "Elena",
    "Kofi",
    "Mia",
    "Arjun",
    "Lea",
    "Sam",
    "Yuki",
    "Diego",
    "Freya",
    "Ali",
)
LAST_NAMES = (
    "Lopez",
    "Carter",
    "Khan",
    "Wei",
    "Brown",
    "Murphy",
    "Rossi",
    "Schmidt",
    "Patel",
    "Silva",
    "Dubois",
    "Garcia",
    "Sato",
    "Haddad",
    "Kim",
    "Petrov",
    "Ahmed",
    "Weber",
    "Novak",
    "Reed",
)
PRODUCTS = (
    "blender",
    "coffee grinder",
    "desk lamp",
    "rain jacket",
    "yoga mat",
    "kettle",
    "backpack",
    "mug set",
    "bluetooth speaker",
    "desk chair",
    "water bottle",
    "toaster",
)

# (subject, body) templates; {product}, {days}, {order} are filled in.
ISSUES = (
    (
        "Where is my order?",
        "I ordered a {product} {days} days ago and the tracking page has not changed since. "
        "Can you tell me when it will arrive?",
    ),
    ("Damaged item", "The {product} I received is damaged, the box was crushed. What can you do?"),
    ("Charged twice", "I was charged twice for my {product}. Please refund the second payment."),
    (
        "Return request",
        "The {product} is not what I expected. How do I return it and get my money back?",
    ),
    ("Wrong item", "I ordered a {product} but received something else. Please send the right one."),
    ("Change of address", "I just moved. Can you ship my {product} to my new address instead?"),
    ("Cancel my order", "Please cancel my order for the {product}, I no longer need it."),
    (
        "Discount not applied",
        "My discount code was not applied to the {product}. Can you refund the difference?",
    ),
)


@dataclass(frozen=True)
class SupportEmail:
    email_id: str
    first_name: str
    full_name: str
    order_number: str
    product: str
    subject: str
    body: str

    style: int = 0
    """How the customer wrote the subject line (people differ; so must the drafts)."""

    @property
    def text(self) -> str:
        """The email as the agent sees it."""
        subject, body = f"{self.subject} (order {self.order_number})", self.body
        if self.style == 1:
            subject = f"Order {self.order_number}"
        elif self.style == 2:
            subject, body = f"Re: {self.subject}", f"{body} My order number is {self.order_number}."
        return f"From: {self.full_name}\nSubject: {subject}\n\n{body}\n\n{self.first_name}"


def generate_emails(count: int, *, seed: int, order_base: int) -> list[SupportEmail]:
    """``count`` emails; order numbers ``NW-<order_base + i>`` (keep bases disjoint
    between the streams that must not overlap)."""
    rng = random.Random(seed)
    emails = []
    for i in range(count):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        product = rng.choice(PRODUCTS)
        subject, body = rng.choice(ISSUES)
        order = f"NW-{order_base + i}"
        emails.append(
            SupportEmail(
                email_id=f"{seed}-{i}",
                first_name=first,
                full_name=f"{first} {last}",
                order_number=order,
                product=product,
                subject=subject,
                body=body.format(product=product, days=rng.randint(3, 14), order=order),
                style=rng.randrange(3),
            )
        )
    return emails


def training_stream(count: int, seed: int = 7) -> list[SupportEmail]:
    return generate_emails(count, seed=seed, order_base=20000)


def held_out(count: int, seed: int = 1001) -> list[SupportEmail]:
    return generate_emails(count, seed=seed, order_base=90000)
