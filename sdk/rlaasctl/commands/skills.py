"""`skills create/get/list/erase-text`: skills, the tasks of the tenant's app."""

from __future__ import annotations

import argparse
from typing import Any

from rlaas.registry.v1 import registry_pb2 as reg
from rlaasctl.client import Ctl, Shown, request_id
from rlaasctl.output import fields, table, timestamp
from rlaasctl.parsing import command, group, key_value, paging

_HEADERS = ["skill", "name", "baseline", "latest", "created"]


def _skill_row(s: reg.Skill) -> list[object]:
    return [s.skill_id, s.display_name, s.baseline_policy_id or "-", s.latest_version,
            timestamp(s.create_time)]  # fmt: skip


def _create(c: Ctl, a: argparse.Namespace) -> Shown:
    skill = reg.Skill(skill_id=a.skill, display_name=a.display_name,
                      description=a.description, labels=dict(a.label))  # fmt: skip
    req = reg.CreateSkillRequest(skill=skill, request_id=request_id(a))
    return c.call(c.registry.CreateSkill, req), lambda r: table(_HEADERS, [_skill_row(r.skill)])


def _get(c: Ctl, a: argparse.Namespace) -> Shown:
    return c.call(c.registry.GetSkill, reg.GetSkillRequest(skill_id=a.skill)), fields


def _list(c: Ctl, a: argparse.Namespace) -> Shown:
    req = reg.ListSkillsRequest(page_size=a.page_size, page_token=a.page_token)
    return c.call(c.registry.ListSkills, req), lambda r: table(
        _HEADERS, [_skill_row(s) for s in r.skills], r.next_page_token
    )


def _erase_text(c: Ctl, a: argparse.Namespace) -> Shown:
    req = reg.EraseSkillTextRequest(skill_id=a.skill, request_id=request_id(a))
    return c.call(c.registry.EraseSkillText, req), fields


def register(sub: Any) -> None:
    skills = group(sub, "skills", "skills: the tasks of the tenant's app")
    x = command(skills, "create", "create a skill and its empty deployment", _create)
    x.add_argument("skill", help="lower_snake_case id, 1-63 characters")
    x.add_argument("--display-name", default="", help="human-readable name")
    x.add_argument("--description", default="", help="what the skill does")
    x.add_argument("--label", type=key_value, action="append", default=[],
                   help="KEY=VALUE label; repeatable")  # fmt: skip
    x = command(skills, "get", "one skill", _get)
    x.add_argument("skill", help="the skill's id")
    paging(command(skills, "list", "the tenant's skills", _list))
    x = command(skills, "erase-text", "erase the free text kept about a skill, its policies, "
                "deployment and audit entries (names, descriptions, labels, reasons)",
                _erase_text)  # fmt: skip
    x.add_argument("skill", help="the skill's id")
