"""structlog configuration: JSON lines in production, a console renderer on a TTY."""

from __future__ import annotations

import logging
import sys

import structlog

from services.config import LogFormat, Settings


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
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    logging.basicConfig(level=level, stream=sys.stderr, format="%(levelname)s %(name)s %(message)s")
    # Chatty at INFO about their own plumbing (plugin setup, socket handles).
    for name in ("pgserver", "alembic"):
        logging.getLogger(name).setLevel(max(level, logging.WARNING))
