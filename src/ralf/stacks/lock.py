"""One stack run at a time per state directory: an ``fcntl`` lock on ``<state_dir>/stacks.lock``.

The holder writes who it is (pid, host, command, start time) into the lock file, so a second run can
say who is in the way. The lock's file descriptor is handed to every child the run starts (see
:func:`held_fds`), so the kernel drops the lock only when the run *and all its children* are gone: a
``kill -9`` of ralf leaves no stale lock, and no window in which a second run overlaps a playbook or
OpenTofu process the first one left behind.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from ralf.errors import LockHeldError, RalfError

LOCK_NAME = "stacks.lock"
_HELD: set[int] = set()  # descriptors of the locks this process holds


def held_fds() -> tuple[int, ...]:
    """Lock descriptors a child process must inherit (``Popen(pass_fds=...)``) to keep the lock held."""
    return tuple(sorted(_HELD))


def _alive(pid: object) -> bool:
    try:
        os.kill(int(str(pid)), 0)
    except (ProcessLookupError, ValueError, TypeError):
        return False
    except PermissionError:
        return True
    return True


def describe_holder(info: dict) -> str:
    if not info:
        return "another run (holder unknown)"
    gone = info.get("host") == socket.gethostname() and not _alive(info.get("pid"))
    return (
        f"pid {info.get('pid', '?')} on {info.get('host', '?')} "
        f"(`{info.get('command', '?')}`, since {info.get('started', '?')})"
        + ("; that ralf is gone but a program it started (ansible-playbook, tofu) still runs" if gone else "")
    )


class StackLock:
    """``with StackLock(state_dir, wait=False):`` — raises :class:`LockHeldError` when another run holds it."""

    def __init__(
        self,
        state_dir: Path,
        *,
        wait: bool = False,
        timeout: float | None = None,
        command: str | None = None,
        on_wait: Callable[[str], None] | None = None,
    ) -> None:
        self.path = Path(state_dir) / LOCK_NAME
        self.wait = wait
        self.timeout = timeout
        self.command = command or " ".join(["ralf", *sys.argv[1:]])
        self.on_wait = on_wait
        self._fd: int | None = None

    def read_holder(self) -> dict:
        try:
            text = self.path.read_text(encoding="utf-8").strip()
            return json.loads(text) if text else {}
        except (OSError, ValueError):
            return {}

    def acquire(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as e:
            raise RalfError(
                f"cannot use the state directory {self.path.parent}: {e.strerror or e} "
                "(set RALF_STATE_DIR or --state-dir to a writable directory)"
            ) from None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = describe_holder(self.read_holder())
                if not self.wait:
                    raise LockHeldError(
                        f"another stack run holds {self.path}: {holder}; wait for it to finish, "
                        "or run with --wait"
                    ) from None
                if self.on_wait:
                    self.on_wait(f"waiting for the lock {self.path}, held by {holder}")
                self._blocking(fd)
        except BaseException:
            os.close(fd)
            raise
        info = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "command": self.command,
            "started": datetime.now(UTC).astimezone().isoformat(timespec="seconds"),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)
        self._fd = fd
        _HELD.add(fd)

    def _blocking(self, fd: int) -> None:
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        while True:  # poll instead of a blocking flock so Ctrl-C and the timeout stay responsive
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if deadline is not None and time.monotonic() > deadline:
                    raise LockHeldError(
                        f"gave up waiting for {self.path} after {self.timeout:g}s: "
                        f"{describe_holder(self.read_holder())}"
                    ) from None
                time.sleep(0.2)

    def release(self) -> None:
        if self._fd is None:
            return
        _HELD.discard(self._fd)
        try:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> StackLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()
