"""Run steps as Semaphore tasks: start, follow with short adaptive polling, stream the log, stop on timeout.

- start: ``POST /api/project/<pid>/tasks {"template_id": id}``. A task is never started twice: the
  template's newest task id is noted before the start, and when the answer to the start is lost
  (dropped connection, 5xx) the template's latest tasks are read before trying again;
- follow: the task's status is polled at 50 ms at first, then less often (up to ``poll_max``, 0.2 s); the
  log is read at most every ``output_every`` seconds (less often for long logs) while the task runs and
  once more when it ends; 5xx answers and dropped connections while following are survived until the
  step's deadline;
- stop: at the timeout or on Ctrl-C, ``POST .../stop {"force": false}``, then ``{"force": true}`` when it
  has not stopped within ``stop_grace`` seconds.
"""

from __future__ import annotations

import time
from typing import Any

from ralf.deploy.results import FAILED, STOPPED, SUCCEEDED, StepContext, StepOutcome
from ralf.errors import RalfError, SemaphoreError
from ralf.semaphore.errors import SemaphoreServerError, SemaphoreUnreachable

TERMINAL = {"success": SUCCEEDED, "error": FAILED, "stopped": STOPPED}
QUEUED = ("waiting", "starting", "waiting_confirmation", "confirmed")
_TRANSIENT = (SemaphoreServerError, SemaphoreUnreachable)


class SemaphoreExecutor:
    name = "semaphore"

    def __init__(self, client: Any, project: str, *, poll_min: float = 0.05, poll_max: float = 0.2,
                 output_every: float = 1.0, stop_grace: float = 10.0, start_attempts: int = 3,
                 sleep=time.sleep, clock=time.monotonic) -> None:
        self.client = client
        self.project = project
        self.poll_min = poll_min
        self.poll_max = poll_max
        self.output_every = output_every
        self.stop_grace = stop_grace
        self.start_attempts = start_attempts
        self.sleep = sleep
        self.clock = clock
        self.project_id: int | None = None
        self.templates: dict[str, int] = {}

    # ------------------------------------------------------------------ setup

    def prepare(self, plan: Any) -> None:
        """Find the project and every template the plan needs, before anything starts."""
        proj = self.client.find_project(self.project)
        if proj is None:
            raise RalfError(f"Semaphore has no project {self.project!r}; run `ralf semaphore seed` first")
        self.project_id = int(proj["id"])
        by_name: dict[str, list[int]] = {}
        for t in self.client.list_templates(self.project_id):
            by_name.setdefault(t.get("name"), []).append(int(t["id"]))
        missing = [s.template for s in plan.steps if s.template not in by_name]
        if missing:
            raise RalfError(
                f"Semaphore project {self.project!r} lacks the template(s) {', '.join(missing)}; "
                "run `ralf semaphore seed` to create them"
            )
        dup = [s.template for s in plan.steps if len(by_name[s.template]) > 1]
        if dup:
            raise RalfError(f"several Semaphore templates are named {', '.join(sorted(set(dup)))}; "
                            "`ralf semaphore seed --prune` or delete the extra ones")
        self.templates = {name: ids[0] for name, ids in by_name.items() if name}

    def task_url(self, template_id: int, task_id: int) -> str:
        return f"{self.client.base_url}/project/{self.project_id}/templates/{template_id}?t={task_id}"

    # ------------------------------------------------------------------ one step

    def run_step(self, step: Any, ctx: StepContext) -> StepOutcome:
        tid = self.templates[step.template]
        started = self.clock()
        deadline = started + ctx.timeout
        try:
            task = self._start(tid, ctx, deadline)
        except KeyboardInterrupt:
            return StepOutcome(STOPPED, message="interrupted before the task started", interrupted=True)
        except SemaphoreError as e:
            return StepOutcome(FAILED, message=f"could not start the task: {e}", error=str(e))
        task_id = int(task["id"])
        url = self.task_url(tid, task_id)
        ctx.on_task(task_id, url)
        return self._follow(task_id, url, task.get("status") or "waiting", ctx, deadline)

    def _newest_task_id(self, template_id: int) -> int:
        tasks = self.client.last_tasks(self.project_id, template_id, limit=5)
        return max((int(t["id"]) for t in tasks if t.get("id") is not None), default=0)

    def _start(self, template_id: int, ctx: StepContext, deadline: float) -> dict:
        before = self._newest_task_id(template_id)
        message = f"ralf deploy: run {ctx.run_id}, step {ctx.index + 1}/{ctx.total}"
        last: Exception | None = None
        for attempt in range(self.start_attempts):
            if attempt:
                self.sleep(min(0.2 * 2 ** attempt, 2.0))
            try:
                return self.client.start_task(self.project_id, template_id, message=message)
            except _TRANSIENT as e:
                last = e
            # The answer was lost or the server failed: did it start the task anyway? Look before retrying.
            for _ in range(5):
                try:
                    newer = [t for t in self.client.last_tasks(self.project_id, template_id, limit=5)
                             if int(t.get("id") or 0) > before]
                    break
                except _TRANSIENT:
                    if self.clock() >= deadline:
                        raise
                    self.sleep(0.2)
            else:
                raise last
            # Ours carries our message; a server that lists no message cannot tell, so any newer task counts.
            mine = [t for t in newer if t.get("message") == message] or [t for t in newer if "message" not in t]
            if mine:
                return min(mine, key=lambda t: int(t["id"]))
        assert last is not None
        raise last

    def _follow(self, task_id: int, url: str, status: str, ctx: StepContext, deadline: float) -> StepOutcome:
        pid = self.project_id
        seen = 0
        lines: list[str] = []
        interval = self.poll_min
        last_output = float("-inf")

        def read_output() -> None:
            nonlocal seen
            out = self.client.task_output(pid, task_id)
            for rec in out[seen:]:
                text = str(rec.get("output", ""))
                lines.append(text)
                ctx.on_line(text)
            seen = max(seen, len(out))

        try:
            while True:
                ctx.on_status(status)  # every poll: the reporter prints changes and a heartbeat
                if status in TERMINAL:
                    try:
                        read_output()
                    except _TRANSIENT:
                        pass
                    result = TERMINAL[status]
                    msg = {"success": "", "error": "the task failed", "stopped": "the task was stopped in Semaphore"}
                    return StepOutcome(result, task_id, url, msg[status], log=lines)
                now = self.clock()
                if now >= deadline:
                    return self._stop(task_id, url, lines, ctx, status,
                                      reason=f"timed out after {ctx.timeout:g} s")
                self.sleep(min(interval, max(0.0, deadline - now)))
                interval = min(interval * 1.5, self.poll_max)
                try:
                    status = str(self.client.get_task(pid, task_id).get("status") or status)
                    running = status not in QUEUED and status not in TERMINAL
                    # The output endpoint returns the whole log every time: read a long log less often.
                    every = self.output_every * max(1.0, min(5.0, seen / 1000))
                    if running and self.clock() - last_output >= every:
                        read_output()
                        last_output = self.clock()
                except _TRANSIENT as e:
                    ctx.on_line(f"(ralf: Semaphore did not answer, retrying: {_first_line(str(e))})")
                    interval = max(interval, 0.5)
                except SemaphoreError as e:  # auth lost, task gone: following cannot go on
                    return StepOutcome(FAILED, task_id, url, f"cannot follow task {task_id}: {_first_line(str(e))}",
                                       error=str(e), log=lines)
        except KeyboardInterrupt:
            return self._stop(task_id, url, lines, ctx, status, reason="interrupted (Ctrl-C)", interrupted=True)

    def _stop(self, task_id: int, url: str, lines: list[str], ctx: StepContext, status: str, *, reason: str,
              interrupted: bool = False) -> StepOutcome:
        """Stop gracefully, then by force; the step is ``stopped`` whatever the server says afterwards."""
        pid = self.project_id
        how = "stopped"
        try:
            self.client.stop_task(pid, task_id, force=False)
        except KeyboardInterrupt:
            pass
        except SemaphoreError as e:
            ctx.on_line(f"(ralf: stop request failed: {_first_line(str(e))})")
        end = self.clock() + self.stop_grace
        final = status
        try:
            while self.clock() < end:
                try:
                    final = str(self.client.get_task(pid, task_id).get("status") or final)
                except SemaphoreError:
                    pass
                if final in TERMINAL:
                    break
                self.sleep(0.1)
        except KeyboardInterrupt:
            pass
        if final not in TERMINAL:
            try:
                self.client.stop_task(pid, task_id, force=True)
                how = "force-stopped"
            except (SemaphoreError, KeyboardInterrupt) as e:
                how = f"stop not confirmed ({_first_line(str(e))})"
        try:
            out = self.client.task_output(pid, task_id)
            for rec in out[len(lines):]:
                lines.append(str(rec.get("output", "")))
                ctx.on_line(lines[-1])
        except (SemaphoreError, KeyboardInterrupt):
            pass
        error = None
        if status in QUEUED:
            error = f"task never left the queue (status {status}): no runner picked it up"
        return StepOutcome(STOPPED, task_id, url, f"{reason}; task {task_id} {how}", error=error, log=lines,
                           interrupted=interrupted)


def _first_line(text: str) -> str:
    return (text.splitlines() or [""])[0][:200]
