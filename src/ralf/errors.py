"""One documented error hierarchy for everything ralf raises on purpose.

Every error a user can cause (a broken platform file, an unknown target, a dead server, a missing
secret) is a :class:`RalfError`. The CLI turns it into one clear message on stderr and the error's
``exit_code``; anything else is a bug and is reported as such.

    RalfError                      exit 1 unless stated
    ├── UsageError                 exit 2: bad arguments, unknown target/stack/request
    ├── PlatformError              exit 2: the platform file is missing, unreadable or invalid
    ├── SecretError                a secret file or key is missing (never carries the value)
    ├── LockHeldError              another run holds the state directory's lock
    ├── ExternalToolError          a required program (tofu, ansible-playbook, git) is missing or failed
    └── SemaphoreError             talking to Semaphore failed (subclasses live in ralf.semaphore)
"""

from __future__ import annotations


class RalfError(Exception):
    """Base class: a failure with a message meant for the operator."""

    exit_code: int = 1

    def __init__(self, message: str, *, exit_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if exit_code is not None:
            self.exit_code = exit_code

    def __str__(self) -> str:
        return self.message


class UsageError(RalfError):
    """The request itself is wrong (unknown target, bad flag value)."""

    exit_code = 2


class PlatformError(RalfError):
    """The platform file cannot be used. ``problems`` holds one line per problem."""

    exit_code = 2

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class SecretError(RalfError):
    """A secret is missing or unreadable. The message names the file and key, never a value."""


class LockHeldError(RalfError):
    """Another run holds the lock on the state directory."""


class ExternalToolError(RalfError):
    """A program ralf drives is missing or failed to start."""


class SemaphoreError(RalfError):
    """Base for errors talking to a Semaphore server."""
