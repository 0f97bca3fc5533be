"""Run steps in-process (``--executor local``): apply steps through the stack runner, smoke steps through
the smoke engine. Break-glass when Semaphore is down, and the way the local lab is deployed.

The output, journal and summary are the same as with Semaphore; there is no task id or URL.

A step's timeout works like Ctrl-C: at the deadline ralf's main thread gets a SIGINT (only ralf's
own thread; a real signal, so a blocking read or sleep is interrupted too), which the stack runner
turns into a clean stop of its child (OpenTofu and Ansible release their locks) and the smoke engine
into an interruption. The step then ends ``stopped`` ("timed out"), is triaged, and the run stops like
after any failed step. Only a step run in the main thread, with Python handling SIGINT, can be
interrupted this way; elsewhere the timeout is not enforced.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable
from typing import Any

from ralf.deploy.results import FAILED, STOPPED, SUCCEEDED, StepContext, StepOutcome
from ralf.errors import RalfError
from ralf.states import Result


class _Deadline:
    """Interrupts the main thread once ``seconds`` have passed, unless disarmed first."""

    def __init__(self, seconds: float) -> None:
        self.fired = False
        self._lock = threading.Lock()
        self._done = False
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True

    def __enter__(self) -> _Deadline:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._done = True
        self._timer.cancel()

    def _fire(self) -> None:
        with self._lock:
            if self._done:
                return
            if not callable(signal.getsignal(signal.SIGINT)):
                return  # SIGINT ignored or left to the OS: a signal would be lost or kill the process
            self.fired = True
            signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)


class LocalExecutor:
    name = "local"

    def __init__(self, platform: Any, *, run_stacks: Callable[..., Any] | None = None,
                 run_smoke: Callable[..., Any] | None = None, state_dir=None) -> None:
        self.platform = platform
        self._run_stacks = run_stacks
        self._run_smoke = run_smoke
        self.state_dir = state_dir

    def prepare(self, plan: Any) -> None:
        for s in plan.steps:
            if s.kind == "apply" and not s.stacks:
                raise RalfError(f"step {s.template} has no stacks to run locally")

    def run_step(self, step: Any, ctx: StepContext) -> StepOutcome:
        deadline = _Deadline(ctx.timeout) if threading.current_thread() is threading.main_thread() else None
        try:
            with deadline or contextlib.nullcontext():
                outcome = self._apply(step, ctx) if step.kind == "apply" else self._smoke(step, ctx)
            if deadline is not None and deadline.fired:
                # the interruption may still be pending; let it arrive here rather than in the next step
                threading.Event().wait(0.05)
        except KeyboardInterrupt:
            outcome = StepOutcome(STOPPED, message="interrupted (Ctrl-C)", interrupted=True)
        if deadline is not None and deadline.fired and outcome.result != SUCCEEDED:
            outcome.interrupted = False
            outcome.message = f"timed out after {ctx.timeout:g} s" + (
                f"; {outcome.message}" if outcome.message and "interrupted" not in outcome.message else "")
            outcome.result = STOPPED
        return outcome

    def _apply(self, step: Any, ctx: StepContext) -> StepOutcome:
        run = self._run_stacks
        if run is None:
            from ralf.stacks import run_stacks
            run = run_stacks
        lines: list[str] = []

        def out(line: str) -> None:
            lines.append(line)
            ctx.on_line(line)

        ctx.on_status("running")
        try:
            kwargs: dict = {"apply": True, "on_output": out, "command": f"ralf deploy (run {ctx.run_id})"}
            if self.state_dir is not None:
                kwargs["state_dir"] = self.state_dir
            result = run(self.platform, list(step.stacks), **kwargs)
        except RalfError as e:
            out(f"[ralf] error: {e}")
            return StepOutcome(FAILED, message=str(e), error=str(e), log=lines)
        if getattr(result, "interrupted", False):
            return StepOutcome(STOPPED, message="interrupted (Ctrl-C)", log=lines, interrupted=True)
        if result.ok:
            changed = getattr(result, "changed", None)
            counted = "" if changed is None else f"changed={changed}; "
            return StepOutcome(SUCCEEDED, message=f"{counted}logs: {result.run_dir}", log=lines)
        bad = next((r for r in result.results if r.result != Result.SUCCEEDED), None)
        msg = f"{bad.name}: {bad.result}" + (f" — {bad.note}" if bad and bad.note else "") if bad else "failed"
        return StepOutcome(FAILED, message=f"{msg}; logs: {result.run_dir}", log=lines)

    def _smoke(self, step: Any, ctx: StepContext) -> StepOutcome:
        run = self._run_smoke
        if run is None:
            from ralf.smoke import run_smoke
            run = run_smoke
        ctx.on_status("running")
        try:
            report = run(step.target, self.platform)
        except RalfError as e:
            ctx.on_line(f"[smoke] error: {e}")
            return StepOutcome(FAILED, message=str(e), error=str(e), log=[f"[smoke] error: {e}"])
        try:
            from ralf.smoke.report import human_lines

            lines = human_lines(report)
        except Exception:  # noqa: BLE001 - a report from a stub may not render; fall back to plain lines
            lines = [f"[smoke] {s.name}: {s.status}" + (f" — {s.diagnosis}" if s.diagnosis else "")
                     for s in report.services]
        for line in lines:
            ctx.on_line(line)
        smoke = report.journal_rows()
        if report.ok:
            return StepOutcome(SUCCEEDED, log=lines, smoke=smoke)
        failed = ", ".join(s.name for s in report.failed) or "?"
        return StepOutcome(FAILED, message=f"smoke failed: {failed}", log=lines, smoke=smoke)
