"""structlog setup: JSON lines when not on a terminal, readable console output on one.

`request_id` (and anything else bound with structlog.contextvars) rides along on every line.
"""

from __future__ import annotations

import logging
import sys

import structlog

from bot.settings import LoggingSettings


def configure_logging(settings: LoggingSettings) -> None:
    use_console = settings.format == "console" or (
        settings.format == "auto" and sys.stderr.isatty()
    )
    renderer = (
        structlog.dev.ConsoleRenderer() if use_console else structlog.processors.JSONRenderer()
    )
    level = getattr(logging, settings.level)
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
    # Libraries log through the standard library; keep them quiet and on stderr.
    logging.basicConfig(level=max(level, logging.WARNING), stream=sys.stderr, format="%(message)s")
    for noisy in ("chromadb", "httpx", "LiteLLM", "sentence_transformers", "alembic", "pypdf"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
