"""Run steps in-process (``--executor local``): apply steps through the stack runner, smoke steps through
the smoke engine. Break-glass when Semaphore is down, and the way the local lab is deployed.

The output, journal and summary are the same as with Semaphore; there is no task id or URL. A step's
timeout is not enforced here (the stack runner's own child processes are interrupted by Ctrl-C).
"""

from __future__ import annotations

from typing import Any, Callable

from ralf.deploy.results import FAILED, STOPPED, SUCCEEDED, StepContext, StepOutcome
from ralf.errors import RalfError


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
        try:
            if step.kind == "apply":
                return self._apply(step, ctx)
            return self._smoke(step, ctx)
        except KeyboardInterrupt:
            return StepOutcome(STOPPED, message="interrupted (Ctrl-C)", interrupted=True)

    def _apply(self, step: Any, ctx: StepContext) -> StepOutcome:
        run = self._run_stacks
        if run is None:
            from ralf.stacks import run_stacks as run
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
            return StepOutcome(SUCCEEDED, message=f"logs: {result.run_dir}", log=lines)
        bad = next((r for r in result.results if r.result != "succeeded"), None)
        msg = f"{bad.name}: {bad.result}" + (f" — {bad.note}" if bad and bad.note else "") if bad else "failed"
        return StepOutcome(FAILED, message=f"{msg}; logs: {result.run_dir}", log=lines)

    def _smoke(self, step: Any, ctx: StepContext) -> StepOutcome:
        run = self._run_smoke
        if run is None:
            from ralf.smoke import run_smoke as run
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
        smoke = [{"service": s.name, "status": s.status, "failed_layer": s.failed_layer, "diagnosis": s.diagnosis,
                  "cert_days_left": s.cert_days_left} for s in report.services]
        if report.ok:
            return StepOutcome(SUCCEEDED, log=lines, smoke=smoke)
        failed = ", ".join(s.name for s in report.failed) or "?"
        return StepOutcome(FAILED, message=f"smoke failed: {failed}", log=lines, smoke=smoke)
