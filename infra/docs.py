"""Regenerate the README's configuration table from ``services/config.py``
(``make docs``); a test fails when the README is out of date."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from services.config import Settings

README = Path(__file__).resolve().parent.parent / "README.md"
BEGIN, END = "<!-- settings:begin -->", "<!-- settings:end -->"


def settings_table() -> str:
    lines = ["| variable | default | meaning |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        default = field.default if field.default_factory is None else field.default_factory()  # type: ignore[call-arg]
        if default is None:
            shown = "unset"
        elif isinstance(default, list):
            shown = ", ".join(default)
        else:
            shown = str(default)
        text = " ".join((field.description or "").split()).replace("``", "`")
        lines.append(f"| `RLAAS_{name.upper()}` | `{shown}` | {text} |")
    return "\n".join(lines)


def render(readme: str) -> str:
    block = f"{BEGIN}\n{settings_table()}\n{END}"
    return re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), block, readme, flags=re.S)


def main() -> int:
    text = README.read_text()
    if BEGIN not in text:
        print("README.md has no settings markers", file=sys.stderr)
        return 1
    README.write_text(render(text))
    return 0


if __name__ == "__main__":
    sys.exit(main())
