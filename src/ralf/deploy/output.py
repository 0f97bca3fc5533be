"""What a deploy prints while it runs and at the end: plain lines that read the same in a terminal,
in a pipe and in a log file (no colour, no cursor tricks).

    step 3/8 RALF Automation Apply: started task 42 (http://sem/project/1/templates/7?t=42)
      [RALF Automation Apply] TASK [n8n : install] ...
    step 3/8 RALF Automation Apply failed (12 s)
"""

from __future__ import annotations

import sys
import time
from typing import IO, Any

from ralf.deploy.results import RunReport
from ralf.hints import command as hint_command
from ralf.states import Result
from ralf.tables import plain_table


def fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 120:
        return f"{seconds:.0f} s"
    m, s = divmod(int(round(seconds)), 60)
    return f"{m} min {s:02d} s"


class Reporter:
    """Progress, the live log (each line prefixed with the template name), triage and the summary."""

    def __init__(self, stream: IO[str] | None = None, *, show_log: bool = True, heartbeat: float = 30.0,
                 clock=time.monotonic, command: str = "ralf deploy") -> None:
        self.stream = stream or sys.stdout
        self.command = command  # what `--resume` continues the run with
        self.show_log = show_log
        self.heartbeat = heartbeat
        self.clock = clock
        self._step = ""
        self._status = ""
        self._start = 0.0
        self._last = 0.0

    def _out(self, text: str) -> None:
        try:
            self.stream.write(text + "\n")
            self.stream.flush()
        except (BrokenPipeError, ValueError):
            pass

    def header(self, plan: Any, run_id: int, executor: str, start_index: int = 0, resumed_from: int | None = None) -> None:
        what = f"run {run_id}, {executor}"
        if resumed_from is not None:
            what += f", resuming run {resumed_from} at step {start_index + 1}"
        self._out(f"Deploy ({plan.pattern}): {plan.message} [{what}]")

    def step_start(self, i: int, n: int, step: Any) -> None:
        self._step = f"step {i + 1}/{n} {step.template}"
        self._status = ""
        self._start = self._last = self.clock()
        self._out(f"{self._step} ...")

    def task(self, task_id: int, url: str | None) -> None:
        self._out(f"{self._step}: task {task_id}" + (f" ({url})" if url else ""))

    def status(self, status: str) -> None:
        """Called on every poll: print a change of status, and a heartbeat when nothing was printed for a while."""
        now = self.clock()
        if status != self._status:
            self._status = status
            if status in ("waiting", "running", "stopping"):
                self._out(f"{self._step}: {status} ({fmt_duration(now - self._start)})")
                self._last = now
        elif now - self._last >= self.heartbeat:
            self._out(f"{self._step}: {status} ({fmt_duration(now - self._start)})")
            self._last = now

    def line(self, template: str, text: str) -> None:
        if self.show_log:
            for part in str(text).splitlines() or [""]:
                self._out(f"  [{template}] {part}")
            self._last = self.clock()

    def step_end(self, i: int, n: int, step: Any, result: str, duration: float, message: str = "") -> None:
        if result == Result.SUCCEEDED:  # a local Apply says how much it changed ("changed=N; logs: …")
            tail = f" — {message.split(';')[0]}" if message.startswith("changed=") else ""
        else:
            tail = f" — {message}" if message else ""
        self._out(f"step {i + 1}/{n} {step.template} {result} ({fmt_duration(duration)}){tail}")

    def skipped(self, i: int, n: int, step: Any, from_run: int | None) -> None:
        self._out(f"step {i + 1}/{n} {step.template} succeeded in run {from_run}, not rerun")

    def triage(self, t: Any) -> None:
        for line in t.lines():
            self._out(line)

    def summary(self, report: RunReport) -> None:
        for line in summary_lines(report, self.command):
            self._out(line)


def summary_lines(report: RunReport, command: str = "ralf deploy") -> list[str]:
    rows = []
    for s in report.steps:
        result = s.result + (f" (run {s.from_run})" if s.from_run else "")
        rows.append([str(s.index + 1), s.step.template, result, fmt_duration(s.duration),
                     "" if s.task_id is None else str(s.task_id), s.task_url or ""])
    table = plain_table(["#", "template", "result", "duration", "task", "url"], rows)
    out = ["", "Summary", *("  " + line for line in table.splitlines())]
    n = len(report.steps)
    ok = sum(1 for s in report.steps if s.result == Result.SUCCEEDED)
    if report.ok:
        out.append(f"{command.split()[-1]} succeeded: {ok}/{n} steps (run {report.run_id})")
    else:
        f = report.failed_step
        where = f" at step {f.index + 1}/{n} {f.step.template}" if f else ""
        resume = hint_command(f"{command} --resume {report.run_id}", report.platform_source)
        out.append(f"{command.split()[-1]} {report.result}{where}: {ok}/{n} steps succeeded (run {report.run_id}); "
                   f"after a fix: `{resume}`")
    return out
