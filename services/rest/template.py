"""Path templates of ``google.api.http`` (the grammar in google/api/http.proto).

    Template = "/" Segments [ Verb ] ;
    Segments = Segment { "/" Segment } ;
    Segment  = "*" | "**" | LITERAL | Variable ;
    Variable = "{" FieldPath [ "=" Segments ] "}" ;
    FieldPath = IDENT { "." IDENT } ;
    Verb     = ":" LITERAL ;

A template compiles to one regular expression over the *raw* (still percent-encoded)
request path, as grpc-gateway matches before unescaping: ``%2F`` inside a value never
splits a segment. Captured values are unescaped afterwards.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_LITERAL = re.compile(r"[^/{}*:=]+$")
_ONE_SEGMENT = "[^/]+"
_ESCAPED_SLASH = re.compile("%2F", re.IGNORECASE)


class TemplateError(ValueError):
    """A ``google.api.http`` path that does not follow the grammar."""


@dataclass(frozen=True, slots=True)
class Variable:
    field_path: str  # "skill" or "a.b"
    segments: tuple[str, ...]  # the sub-pattern: ("*",) unless "{name=shelves/*}"

    @property
    def single_segment(self) -> bool:
        return self.segments == ("*",)


Segment = str | Variable  # a literal, "*", "**", or a variable


@dataclass(frozen=True)
class PathTemplate:
    text: str
    segments: tuple[Segment, ...]
    verb: str | None

    @property
    def variables(self) -> tuple[Variable, ...]:
        return tuple(s for s in self.segments if isinstance(s, Variable))

    @property
    def specificity(self) -> tuple[int, int]:
        """Literal segments first, then a verb: the most specific template wins a tie."""
        literals = sum(1 for s in self.segments if isinstance(s, str) and s not in ("*", "**"))
        return literals, int(self.verb is not None)

    def openapi_path(self) -> str:
        """The path as OpenAPI writes it: each variable a ``{field.path}`` parameter."""
        parts = [f"{{{s.field_path}}}" if isinstance(s, Variable) else s for s in self.segments]
        return "/" + "/".join(parts) + (f":{self.verb}" if self.verb else "")

    def match(self, raw_path: str) -> dict[str, str] | None:
        """Variable values (unescaped) when ``raw_path`` matches, else None."""
        found = _compiled(self).fullmatch(raw_path)
        if found is None:
            return None
        values = {}
        for i, var in enumerate(self.variables):
            raw = found.group(f"v{i}")
            # A multi-segment value keeps an escaped "/" escaped (grpc-gateway's default
            # "all except reserved" unescaping), so it cannot forge a segment boundary.
            values[var.field_path] = (
                unquote(raw) if var.single_segment else unquote(_ESCAPED_SLASH.sub("%252F", raw))
            )
        return values


def parse(text: str) -> PathTemplate:
    if not text.startswith("/"):
        raise TemplateError(f"{text!r}: a path template starts with '/'")
    body, verb = text[1:], None
    # The verb is what follows the last ':' outside braces.
    depth, cut = 0, -1
    for i, ch in enumerate(body):
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        elif ch == ":" and depth == 0:
            cut = i
    if cut >= 0:
        body, verb = body[:cut], body[cut + 1 :]
        if not _LITERAL.match(verb):
            raise TemplateError(f"{text!r}: bad verb {verb!r}")
    segments = tuple(_segments(text, body, allow_variables=True))
    if sum(1 for s in segments if s == "**") > 1:
        raise TemplateError(f"{text!r}: at most one '**'")
    return PathTemplate(text, segments, verb)


def _split(body: str) -> list[str]:
    """Split on '/' outside braces."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(body):
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        elif ch == "/" and depth == 0:
            parts.append(body[start:i])
            start = i + 1
    parts.append(body[start:])
    return parts


def _segments(text: str, body: str, *, allow_variables: bool) -> list[Segment]:
    out: list[Segment] = []
    for part in _split(body):
        if part in ("*", "**"):
            out.append(part)
        elif part.startswith("{") and part.endswith("}") and allow_variables:
            name, _, sub = part[1:-1].partition("=")
            if not _IDENT.match(name):
                raise TemplateError(f"{text!r}: bad field path {name!r}")
            inner = _segments(text, sub, allow_variables=False) if sub else ["*"]
            out.append(Variable(name, tuple(str(s) for s in inner)))
        elif _LITERAL.match(part):
            out.append(part)
        else:
            raise TemplateError(f"{text!r}: bad segment {part!r}")
    return out


def _pattern(segments: tuple[str, ...] | tuple[Segment, ...], groups: list[int]) -> str:
    pieces = []
    for seg in segments:
        if isinstance(seg, Variable):
            index = len(groups)
            groups.append(index)
            pieces.append(f"(?P<v{index}>{_pattern(seg.segments, groups)})")
        elif seg == "*":
            pieces.append(_ONE_SEGMENT)
        elif seg == "**":
            pieces.append("[^/]*(?:/[^/]*)*")
        else:
            pieces.append(re.escape(seg))
    return "/".join(pieces)


_CACHE: dict[str, re.Pattern[str]] = {}


def _compiled(template: PathTemplate) -> re.Pattern[str]:
    found = _CACHE.get(template.text)
    if found is None:
        verb = re.escape(f":{template.verb}") if template.verb else ""
        found = re.compile("/" + _pattern(template.segments, []) + verb)
        _CACHE[template.text] = found
    return found
