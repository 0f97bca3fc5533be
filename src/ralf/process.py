"""The one way ralf runs a short program and reads its output: captured, time-limited, its group killed on timeout.

Long-running programs whose output is streamed live (OpenTofu, Ansible) go through
:func:`ralf.stacks.process.run_streamed`; lab services through :mod:`ralf.lab.supervisor`. Each start is
logged (``-v``) with its command line, never its environment.
"""

from __future__ import annotations

import logging
import os
import shlex
import signal
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

TIMED_OUT = 124  # the return code of a program stopped for its time limit (as timeout(1) reports it)


@dataclass
class Completed:
    argv: list[str]
    returncode: int
    stdout: str
    stderr: str
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out

    def last_line(self, *, stdout_too: bool = False) -> str:
        """The last non-empty line of stderr (then stdout, with ``stdout_too``): what a failure says."""
        text = self.stderr + (self.stdout if stdout_too else "")
        lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
        return lines[-1] if lines else ""


def started(argv: list[str], cwd: str | os.PathLike | None = None) -> None:
    """Log that a program starts (its command line; the environment may hold secrets and is never logged)."""
    if log.isEnabledFor(logging.INFO):
        log.info("run %s%s", shlex.join(str(a) for a in argv), f" (in {cwd})" if cwd else "")


def run(
    argv: list[str],
    *,
    timeout: float | None = None,
    cwd: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    input_text: str | None = None,
) -> Completed:
    """Run ``argv`` in its own process group with stdout and stderr captured as text.

    On timeout the whole group is killed (a shell leaves children) and the result says ``timed_out`` with
    return code 124. A program that cannot be started raises :class:`OSError` (``FileNotFoundError``
    when it is not installed): callers word that for their users.
    """
    started(argv, cwd)
    proc = subprocess.Popen(
        argv,
        cwd=cwd,
        env=None if env is None else dict(env),
        stdin=subprocess.PIPE if input_text is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(input_text, timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        out, err = proc.communicate()
        log.info("%s stopped after its time limit of %s s", argv[0], timeout)
        return Completed(list(argv), TIMED_OUT, out or "", err or "", timed_out=True)
    except BaseException:  # Ctrl-C while waiting: do not leave the child behind
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
        raise
    log.debug("%s exited %d", argv[0], proc.returncode)
    return Completed(list(argv), proc.returncode, out or "", err or "")
