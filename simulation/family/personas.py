"""The family of simulated users, each marked ``tuning`` or ``held_out``.

A learning recipe (prompts, reward weights, hyper-parameters) may be tuned on the
``tuning`` users only; the ``held_out`` users exist to judge the tuned recipe on tastes it
never saw. Tuning code must get its users from :func:`tuning_users` and never touch
:func:`held_out_users`, :data:`FAMILY` as a whole, or a held-out persona's class:
otherwise a recipe could overfit the very users that are meant to be unseen. The held-out
users span both skills, so "unseen" holds for each task.

No persona shares code with the platform's reward engines or training (nothing here
imports ``services``): they are the ground truth the platform must discover.
"""

from __future__ import annotations

from typing import Any

from simulation.family.reviewer import Persona
from simulation.family.support_personas import AcmeAgent, BriskLead, FormalClerk
from simulation.family.triage_personas import BulletTriager, CalmTriager, FieldTriager

FAMILY: tuple[Persona[Any], ...] = (
    AcmeAgent(split="tuning"),
    BriskLead(split="tuning"),
    FormalClerk(split="held_out"),
    FieldTriager(split="tuning"),
    BulletTriager(split="tuning"),
    CalmTriager(split="held_out"),
)


def tuning_users() -> tuple[Persona[Any], ...]:
    """The users a recipe may be tuned on."""
    return tuple(p for p in FAMILY if p.split == "tuning")


def held_out_users() -> tuple[Persona[Any], ...]:
    """The users a tuned recipe is judged on: never to be used while tuning."""
    return tuple(p for p in FAMILY if p.split == "held_out")


def persona_named(name: str) -> Persona[Any]:
    for persona in FAMILY:
        if persona.name == name:
            return persona
    raise KeyError(f"no persona named {name!r}; known: {[p.name for p in FAMILY]}")
