"""Run a child program with its output streamed live, logged, redacted, and stoppable with Ctrl-C.

The child runs in its own process group, so a terminal Ctrl-C (or Semaphore stopping the task with
SIGTERM) reaches ralf first; ralf forwards SIGINT to the child's group (OpenTofu and Ansible both
stop cleanly on it and release their locks), escalates to SIGTERM and then SIGKILL if the child
does not stop in time, and records the interruption instead of dying half-way.

An interrupt that arrives before the child's pid is known is forwarded as soon as it is. One that
reaches a child still starting up can be lost (Python raises KeyboardInterrupt inside import
machinery or code that swallows it, and the child carries on), so a SIGINT sent within ``startup``
seconds of the spawn is sent once more after ``resend`` seconds if the child still runs; a later one
is not, and OpenTofu never gets the repeat (``resend_on_startup=False``): a second SIGINT makes it
exit at once instead of cleanly, which can leave its state lock behind.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TextIO

from ralf import process
from ralf.errors import ExternalToolError
from ralf.stacks.lock import held_fds


class Redactor:
    """Replaces known secret values in a line with ``***`` (values shorter than 4 characters are ignored)."""

    def __init__(self, values: Iterable[str] = ()) -> None:
        self.values = sorted({v for v in values if v and len(v) >= 4}, key=len, reverse=True)

    def __call__(self, line: str) -> str:
        for v in self.values:
            if v in line:
                line = line.replace(v, "***")
        return line


class InterruptGuard:
    """Turns SIGINT/SIGTERM into a request to stop the current child (installed only in the main thread).

    The handler runs on the main thread, possibly while :meth:`attach` holds the lock, hence a
    re-entrant lock; each child gets the interrupt forwarded once (no accidental second SIGINT).
    """

    def __init__(self, grace: float = 30.0, *, resend: float = 3.0, startup: float = 3.0) -> None:
        self.grace = grace
        self.resend = resend
        self.startup = startup
        self.requested = False
        self.signum: int | None = None
        self._child: subprocess.Popen | None = None
        self._spawned = 0.0
        self._resend = True
        self._forwarded: subprocess.Popen | None = None
        self._old: dict[int, object] = {}
        self._lock = threading.RLock()
        self._timers: list[threading.Timer] = []

    def __enter__(self) -> InterruptGuard:
        if threading.current_thread() is threading.main_thread():
            for s in (signal.SIGINT, signal.SIGTERM):
                self._old[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for s, old in self._old.items():
            signal.signal(s, old)  # type: ignore[arg-type]
        for t in self._timers:
            t.cancel()

    def _handle(self, signum: int, frame) -> None:
        again = self.requested
        self.requested = True
        self.signum = self.signum or signum
        with self._lock:
            child = self._child
            if child is None or child.poll() is not None:
                return  # forwarded by attach() as soon as the next child's pid is known
            if again and self._forwarded is child:  # a second Ctrl-C: no more patience
                _kill_group(child, signal.SIGKILL)
                return
            self._forward(child)

    def _forward(self, child: subprocess.Popen) -> None:
        """SIGINT to the child's group, once; then (startup only) SIGINT again, SIGTERM, SIGKILL."""
        if self._forwarded is child:
            return
        self._forwarded = child
        _kill_group(child, signal.SIGINT)
        if self._resend and time.monotonic() - self._spawned < self.startup:
            self._escalate(child, signal.SIGINT, self.resend)
        self._escalate(child, signal.SIGTERM, self.grace)
        self._escalate(child, signal.SIGKILL, self.grace + 5)

    def _escalate(self, child: subprocess.Popen, sig: int, after: float) -> None:
        def fire() -> None:
            if child.poll() is None:
                _kill_group(child, sig)

        t = threading.Timer(after, fire)
        t.daemon = True
        t.start()
        self._timers.append(t)

    def sleep(self, seconds: float) -> bool:
        """Pause between retries; True as soon as a stop was requested (the caller then gives up)."""
        end = time.monotonic() + seconds
        while time.monotonic() < end and not self.requested:
            time.sleep(min(0.1, max(0.0, end - time.monotonic())))
        return self.requested

    def attach(self, child: subprocess.Popen | None, *, resend_on_startup: bool = True) -> None:
        """The child now running (None: none); a stop requested before its pid was known is forwarded now."""
        with self._lock:
            self._child = child
            if child is not None:
                self._spawned = time.monotonic()
                self._resend = resend_on_startup
                if self.requested:
                    self._forward(child)


def _kill_group(child: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(child.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


@dataclass
class ProcResult:
    argv: list[str]
    returncode: int
    lines: list[str] = field(default_factory=list)
    interrupted: bool = False

    @property
    def output(self) -> str:
        return "\n".join(self.lines)


def run_streamed(
    argv: list[str],
    *,
    cwd: str | os.PathLike,
    env: dict[str, str],
    log: TextIO,
    on_line: Callable[[str], None] | None = None,
    redact: Redactor | None = None,
    guard: InterruptGuard | None = None,
    resend_on_startup: bool = True,
    show: Callable[[str], str | None] | None = None,
) -> ProcResult:
    """Run ``argv``; every output line (stdout and stderr merged) is redacted, logged and passed on.

    ``resend_on_startup=False`` for programs that must get exactly one SIGINT (OpenTofu).
    ``show`` turns a line into what is logged and passed on (None: neither); the result keeps the raw
    lines (a machine-readable stream stays readable for a person, and parseable for ralf)."""
    redact = redact or Redactor()
    process.started(argv, cwd)
    try:
        child = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            encoding="utf-8",
            errors="replace",
            bufsize=1,
            start_new_session=True,
            pass_fds=held_fds(),  # the stack lock stays held while the child lives, even if ralf is killed
        )
    except FileNotFoundError:
        raise ExternalToolError(f"{argv[0]} not found") from None
    except OSError as e:
        raise ExternalToolError(f"cannot start {argv[0]}: {e.strerror}") from None
    if guard is not None:
        guard.attach(child, resend_on_startup=resend_on_startup)
    lines: list[str] = []
    try:
        assert child.stdout is not None
        for raw in child.stdout:
            line = redact(raw.rstrip("\n"))
            lines.append(line)
            shown = show(line) if show is not None else line
            if shown is None:
                continue
            log.write(shown + "\n")
            log.flush()
            if on_line is not None:
                on_line(shown)
        rc = child.wait()
    finally:
        if child.poll() is None:  # an exception while streaming: do not leave the child behind
            _kill_group(child, signal.SIGKILL)
            child.wait()
        if guard is not None:
            guard.attach(None)
    return ProcResult(list(argv), rc, lines, interrupted=bool(guard and guard.requested))
