"""The standard-library logger handed to slack_bolt and slack_sdk.

Both libraries log request details at DEBUG (oauth.v2.access response bodies hold bot
tokens) and Bolt logs a failed OAuth code exchange with the code. This logger never goes
below INFO, so the DEBUG lines are not even built, and a filter masks the Slack credentials
and anything token- or code-shaped in what remains. Bolt copies the level and filters to
every logger it derives from this one.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable

LOGGER_NAME = "answerdesk.slack"
_TOKEN = re.compile(r"\bx(?:ox[a-z]|app)-[A-Za-z0-9-]+")
_CODE = re.compile(r"(\bcode[\"']?\s*[:=]\s*\[?\s*[\"']?)[^\s\"'&,}\]]+", re.IGNORECASE)
REDACTED = "(redacted)"
_FORMATTER = logging.Formatter()


class RedactSecrets(logging.Filter):
    def __init__(self) -> None:
        super().__init__()
        self._secrets: set[str] = set()
        self._lock = threading.Lock()

    def add(self, secrets: Iterable[str]) -> None:
        with self._lock:
            self._secrets.update(s for s in secrets if len(s) >= 4)

    def redact(self, text: str) -> str:
        with self._lock:
            secrets = sorted(self._secrets, key=len, reverse=True)
        for secret in secrets:
            text = text.replace(secret, REDACTED)
        text = _TOKEN.sub(REDACTED, text)
        return _CODE.sub(lambda m: m.group(1) + REDACTED, text)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = self.redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and not record.exc_text:
            # Handlers format the traceback only when exc_text is empty: format it here,
            # masked, so the exception's message cannot carry a secret out.
            record.exc_text = self.redact(_FORMATTER.formatException(record.exc_info))
        return True


_REDACTOR = RedactSecrets()


def slack_library_logger(secrets: Iterable[str]) -> logging.Logger:
    """The logger for Bolt and slack_sdk, masking ``secrets`` (added to those of any other
    Slack app built in this process)."""
    _REDACTOR.add(secrets)
    logger = logging.getLogger(LOGGER_NAME)
    if logger.level == logging.NOTSET or logger.level < logging.INFO:
        logger.setLevel(logging.INFO)
    if _REDACTOR not in logger.filters:
        logger.addFilter(_REDACTOR)
    return logger
