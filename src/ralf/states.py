"""The states ralf reports, one vocabulary each: how a step, stack or run ended; a smoke check's status; a
preflight check's status.

They are :class:`~enum.StrEnum`: a member *is* its string, so JSON output, the journal (SQLite) and every
comparison with a string read from an older journal stay exactly as they were.
"""

from __future__ import annotations

from enum import StrEnum


class Result(StrEnum):
    """How a deploy step, a stack or a whole run ended — or that it has not (yet)."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    STOPPED = "stopped"  # the task or program was stopped (a timeout, Semaphore's stop button)
    INTERRUPTED = "interrupted"  # Ctrl-C or SIGTERM: the whole run ends
    NOT_RUN = "not run"
    RUNNING = "running"
    ERROR = "error"  # the run itself broke (not one of its steps)


class CheckStatus(StrEnum):
    """A smoke check's status; a service and a target take the worst of their checks'."""

    OK = "OK"
    WARN = "WARN"
    FAIL = "FAIL"
    SKIPPED = "SKIPPED"  # an earlier layer failed
    NOT_CHECKED = "NOT CHECKED"  # its transport is not configured; never counted as passed


class PreflightStatus(StrEnum):
    """A bootstrap preflight check's status."""

    OK = "ok"
    WARN = "warn"
    FAIL = "fail"
    WOULD = "would"  # a dry run: what the preflight would change
    INFO = "info"
