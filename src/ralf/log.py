"""ralf's own diagnostics: Python ``logging`` under the ``ralf`` logger, shown on stderr with ``-v`` / ``-vv``.

What a command prints for its user (progress, results, errors) is output, not logging; logging is for
the one who wonders what ralf did: which file it loaded, which request it sent, which program it started.
Nothing is shown without ``-v``. Every record passes the redactor first: any value registered with
:func:`redact` (secret variables as :mod:`ralf.settings` reads them, credentials as they are loaded)
is replaced by ``***``, whatever logged it.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

MASK = "***"
_secrets: set[str] = set()
_HANDLER_NAME = "ralf-cli"


def redact(value: str | None) -> None:
    """Never show ``value`` in a log record (values shorter than 4 characters would mask ordinary text)."""
    if value and len(value) >= 4:
        _secrets.add(value)


def scrub(text: str) -> str:
    for s in sorted(_secrets, key=len, reverse=True):
        if s in text:
            text = text.replace(s, MASK)
    return text


class RedactingFilter(logging.Filter):
    """Renders each record's message once and masks every registered secret in it."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = scrub(record.getMessage())
        record.msg, record.args = message, None
        if record.exc_info:
            record.exc_text = scrub(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


def level_for(verbosity: int) -> int:
    """0: warnings only; 1 (``-v``): what ralf does; 2+ (``-vv``): every request and program in detail."""
    return logging.WARNING if verbosity <= 0 else logging.INFO if verbosity == 1 else logging.DEBUG


def reset() -> None:
    """Back to a library's default: no handler of ralf's own, records propagate to whatever the host set up."""
    logger = logging.getLogger("ralf")
    for h in [h for h in logger.handlers if h.get_name() == _HANDLER_NAME]:
        logger.removeHandler(h)
    logger.setLevel(logging.NOTSET)
    logger.propagate = True


def configure(verbosity: int, stream: TextIO | None = None) -> None:
    """Send the ``ralf`` logger's records at the level ``verbosity`` asks for to ``stream`` (stderr)."""
    reset()
    logger = logging.getLogger("ralf")
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.addFilter(RedactingFilter())
    handler.setFormatter(logging.Formatter("ralf: %(levelname)s %(name)s: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(level_for(verbosity))
    logger.propagate = False

