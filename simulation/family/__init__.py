"""A family of simulated users over two skills, so a learning recipe can be tuned on
some users and judged on unseen ones (see ``personas`` for the tuning/held-out rule)."""

from simulation.family.personas import FAMILY, held_out_users, persona_named, tuning_users
from simulation.family.reviewer import Persona, Split
from simulation.family.tasks import (
    SKILL_PROMPTS,
    SKILLS,
    Case,
    Skill,
    SupportTicket,
    TriageMessage,
    held_out_cases,
    training_cases,
    triage_correct,
)

__all__ = [
    "FAMILY",
    "SKILLS",
    "SKILL_PROMPTS",
    "Case",
    "Persona",
    "Skill",
    "Split",
    "SupportTicket",
    "TriageMessage",
    "held_out_cases",
    "held_out_users",
    "persona_named",
    "training_cases",
    "triage_correct",
    "tuning_users",
]
