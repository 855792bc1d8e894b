"""structlog configuration: JSON lines in production, a console renderer on a TTY.

Tracebacks are where request data leaks into logs: exception messages quote values (a
database driver's "invalid input for query argument $3: 'jane@example.com ...'", a
validator's repr of a field). So every exception this process logs, through structlog or
the standard library, is rendered with its messages bounded and passed through the PII
scrubber, and so is any ``error=`` field; the frames (code, not data) are kept as they
are. No locals are ever rendered.
"""

from __future__ import annotations

import logging
import sys
import traceback
from collections.abc import Mapping, MutableMapping
from functools import cache
from types import TracebackType
from typing import Any

import structlog

from services.config import LogFormat, Settings

MAX_EXCEPTION_MESSAGE = 2000

ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]


@cache
def _scrubber() -> Any:
    # Imported lazily: the CLI configures logging before anything else is loaded.
    from services.telemetry.pii import Scrubber

    return Scrubber()


def scrub(text: str) -> str:
    """Free text fit for a log line: PII replaced by placeholders, bounded in length."""
    if len(text) > MAX_EXCEPTION_MESSAGE:
        text = f"{text[:MAX_EXCEPTION_MESSAGE]}...[{len(text)} characters, truncated]"
    return str(_scrubber().scrub(text).text)


def _message(exc: BaseException) -> str:
    try:
        text = str(exc)
    except Exception:  # a broken __str__ must not lose the traceback
        text = "<unprintable>"
    name = type(exc).__qualname__
    module = type(exc).__module__
    if module not in ("builtins", "__main__"):
        name = f"{module}.{name}"
    lines = [f"{name}: {scrub(text)}" if text else name]
    lines += [scrub(str(note)) for note in getattr(exc, "__notes__", None) or ()]
    return "\n".join(lines) + "\n"


def _chain(exc: BaseException, seen: set[int]) -> list[str]:
    # The layout of traceback.format_exception (cause/context first), minus the data.
    seen.add(id(exc))
    out: list[str] = []
    cause, context = exc.__cause__, exc.__context__
    if cause is not None and id(cause) not in seen:
        out += _chain(cause, seen)
        out.append("\nThe above exception was the direct cause of the following exception:\n\n")
    elif context is not None and not exc.__suppress_context__ and id(context) not in seen:
        out += _chain(context, seen)
        out.append("\nDuring handling of the above exception, another exception occurred:\n\n")
    if exc.__traceback__ is not None:
        out.append("Traceback (most recent call last):\n")
        out += traceback.format_tb(exc.__traceback__)
    out.append(_message(exc))
    for i, sub in enumerate(getattr(exc, "exceptions", None) or (), 1):  # ExceptionGroup
        if isinstance(sub, BaseException) and id(sub) not in seen:
            out.append(f"\n+---------------- {i} ----------------\n")
            out += _chain(sub, seen)
    return out


def scrubbed_traceback(exc_info: ExcInfo) -> str:
    """A traceback whose exception messages (and notes) went through ``scrub``."""
    return "".join(_chain(exc_info[1], set())).rstrip("\n")


def _scrub_errors(logger: Any, name: str, event: MutableMapping[str, Any]) -> Mapping[str, Any]:
    """``error=repr(exc)`` fields carry exception text too."""
    error = event.get("error")
    if isinstance(error, str):
        event["error"] = scrub(error)
    return event


class _ScrubbingFormatter(logging.Formatter):
    """The standard library's logs (asyncio's "Task exception was never retrieved",
    grpc's servicer errors, SQLAlchemy's pool) render tracebacks the same way."""

    def formatException(self, ei: Any) -> str:
        if ei and ei[1] is not None:
            return scrubbed_traceback(ei)
        return super().formatException(ei)


def configure_logging(settings: Settings) -> None:
    level = logging.getLevelName(settings.log_level.upper())
    use_json = settings.log_format == LogFormat.JSON or (
        settings.log_format == LogFormat.AUTO and not sys.stderr.isatty()
    )
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if use_json else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _scrub_errors,
            structlog.processors.ExceptionRenderer(scrubbed_traceback),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_ScrubbingFormatter("%(levelname)s %(name)s %(message)s"))
    logging.basicConfig(level=level, handlers=[handler])
    # Chatty at INFO about their own plumbing (plugin setup, socket handles).
    for name in ("pgserver", "alembic"):
        logging.getLogger(name).setLevel(max(level, logging.WARNING))
