"""Run steps as Semaphore tasks: start, follow at the server's own cost, stream the log, stop on timeout.

- start: ``POST /api/project/<pid>/tasks {"template_id": id}``. A task is never started twice: the
  template's newest task id is noted before the start, and when the answer to the start is lost
  (dropped connection, 5xx) the template's latest tasks are read before trying again;
- follow, live: where the server offers its websocket (``/api/ws``, both generations), it is opened before
  the first start and each log line and status change is received once, as Semaphore's own UI does;
- follow, polling (no websocket, or it closed): the status is polled at 50 ms at first, then about every 2 %
  of the time the task has run (at most ``poll_cap``); the whole log (the only way the REST API gives it) is
  read only when it may have grown ``log_growth`` times since the last read, and once more when the task
  ends — after a failure until it stops growing, because the server writes log records asynchronously and
  the lines that explain the failure can arrive after the final status. With ``--no-log`` (``wants_log``
  false) no log is read unless the step fails;
- 5xx answers and dropped connections while following are survived (one notice, then one every
  ``complain_every`` seconds) until the step's deadline or ``lost_after`` seconds without an answer, when
  the step fails as a Semaphore problem (the task may still be running there);
- stop: at the timeout or on Ctrl-C, ``POST .../stop {"force": false}``, then ``{"force": true}`` when it
  has not stopped within ``stop_grace`` seconds.
"""

from __future__ import annotations

import time
from typing import Any

from ralf.deploy.results import FAILED, STOPPED, SUCCEEDED, StepContext, StepOutcome
from ralf.errors import RalfError, SemaphoreError
from ralf.semaphore.errors import SemaphoreServerError, SemaphoreUnreachable
from ralf.semaphore.live import StreamClosed, TaskEvents

TERMINAL = {"success": SUCCEEDED, "error": FAILED, "stopped": STOPPED}
QUEUED = ("waiting", "starting", "waiting_confirmation", "confirmed")
_TRANSIENT = (SemaphoreServerError, SemaphoreUnreachable)


class SemaphoreExecutor:
    name = "semaphore"

    def __init__(self, client: Any, project: str, *, poll_min: float = 0.05, poll_max: float = 0.2,
                 output_every: float = 1.0, stop_grace: float = 10.0, start_attempts: int = 3,
                 log_settle: float = 0.3, lost_after: float = 300.0, complain_every: float = 30.0,
                 live: bool = True, log_growth: float = 2.5, poll_cap: float = 2.0, status_check: float = 10.0,
                 sleep=time.sleep, clock=time.monotonic) -> None:
        self.client = client
        self.project = project
        self.poll_min = poll_min
        self.poll_max = poll_max
        self.output_every = output_every
        self.stop_grace = stop_grace
        self.start_attempts = start_attempts
        self.log_settle = log_settle
        self.lost_after = lost_after
        self.complain_every = complain_every
        self.live = live
        self.log_growth = log_growth
        self.poll_cap = poll_cap
        self.status_check = status_check
        self.sleep = sleep
        self.clock = clock
        self.events: TaskEvents | None = None
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
        if self.live and self.events is None:  # before any start: the stream replays nothing
            self.events = TaskEvents.open(self.client, self.project_id)

    def task_url(self, template_id: int, task_id: int) -> str:
        return f"{self.client.base_url}/project/{self.project_id}/templates/{template_id}?t={task_id}"

    # ------------------------------------------------------------------ one step

    def run_step(self, step: Any, ctx: StepContext) -> StepOutcome:
        tid = self.templates[step.template]
        started = self.clock()
        deadline = started + ctx.timeout
        message = f"ralf deploy: run {ctx.run_id}, step {ctx.index + 1}/{ctx.total}"
        before: int | None = None  # known once asked: only then can a start have been sent
        try:
            before = self._newest_task_id(tid)
            task = self._start(tid, message, before, deadline)
        except KeyboardInterrupt:
            return self._interrupted_start(tid, message, before, ctx)
        except SemaphoreError as e:
            return StepOutcome(FAILED, message=f"could not start the task: {e}", error=str(e))
        task_id = int(task["id"])
        url = self.task_url(tid, task_id)
        ctx.on_task(task_id, url)
        return self._follow(task_id, url, task.get("status") or "waiting", ctx, deadline)

    def _newest_task_id(self, template_id: int) -> int:
        tasks = self.client.last_tasks(self.project_id, template_id, limit=5)
        return max((int(t["id"]) for t in tasks if t.get("id") is not None), default=0)

    def _mine(self, template_id: int, message: str, before: int) -> list[dict]:
        """Tasks of the template newer than ``before`` that carry our message (any newer one if none has one)."""
        newer = [t for t in self.client.last_tasks(self.project_id, template_id, limit=5)
                 if int(t.get("id") or 0) > before]
        return [t for t in newer if t.get("message") == message] or [t for t in newer if "message" not in t]

    def _interrupted_start(self, template_id: int, message: str, before: int | None,
                           ctx: StepContext) -> StepOutcome:
        """Ctrl-C while starting: the start request may have gone through, so look and stop what was started."""
        found: list[dict] = []
        if before is not None:
            try:
                found = self._mine(template_id, message, before)
                for t in found:
                    self.client.stop_task(self.project_id, int(t["id"]), force=False)
            except (SemaphoreError, KeyboardInterrupt):
                pass
        if not found:
            return StepOutcome(STOPPED, message="interrupted (Ctrl-C) before the task started", interrupted=True)
        task_id = int(found[0]["id"])
        url = self.task_url(template_id, task_id)
        ctx.on_task(task_id, url)
        return StepOutcome(STOPPED, task_id, url, f"interrupted (Ctrl-C) while starting; task {task_id} stopped",
                           interrupted=True)

    def _start(self, template_id: int, message: str, before: int, deadline: float) -> dict:
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
                    # Ours carries our message; a server that lists no message cannot tell, so any newer one counts.
                    mine = self._mine(template_id, message, before)
                    break
                except _TRANSIENT:
                    if self.clock() >= deadline:
                        raise
                    self.sleep(0.2)
            else:
                raise last
            if mine:
                return min(mine, key=lambda t: int(t["id"]))
        assert last is not None
        raise last

    def _follow(self, task_id: int, url: str, status: str, ctx: StepContext, deadline: float) -> StepOutcome:
        log = _TaskLog(self.client, self.project_id, task_id, ctx)
        log.live = self.events is not None and not self.events.closed
        try:
            if log.live:
                return self._follow_live(task_id, url, status, ctx, deadline, log)
            return self._follow_poll(task_id, url, status, ctx, deadline, log)
        except KeyboardInterrupt:
            return self._stop(task_id, url, log, ctx, log.status or status, reason="interrupted (Ctrl-C)",
                              interrupted=True)
        finally:
            if self.events is not None:
                self.events.forget(task_id)

    def _finished(self, task_id: int, url: str, status: str, log: "_TaskLog") -> StepOutcome:
        msg = {"success": "", "error": "the task failed", "stopped": "the task was stopped in Semaphore"}
        return StepOutcome(TERMINAL[status], task_id, url, msg[status], log=log.lines)

    def _follow_live(self, task_id: int, url: str, status: str, ctx: StepContext, deadline: float,
                     log: "_TaskLog") -> StepOutcome:
        """Each log line and status change as the server pushes it; one status GET per ``status_check`` seconds
        of silence, in case the stream does not carry this task (then, and when the stream closes: polling)."""
        events = self.events
        heard = False
        last_check = self.clock()
        while True:
            log.status = status
            ctx.on_status(status)
            if status in TERMINAL:
                log.settle_live(events, self.log_settle if status != "success" else 0.0, self.clock)
                return self._finished(task_id, url, status, log)
            now = self.clock()
            if now >= deadline:
                return self._stop(task_id, url, log, ctx, status, reason=f"timed out after {ctx.timeout:g} s")
            try:
                ev = events.next(task_id, min(1.0, deadline - now))
            except StreamClosed:
                log.live = False
                return self._follow_poll(task_id, url, status, ctx, deadline, log)
            if ev is not None:
                heard = True
                if ev.get("type") == "log":
                    log.add(str(ev.get("output", "")))
                elif ev.get("type") == "update" and ev.get("status"):
                    status = str(ev["status"])
                continue
            if self.clock() - last_check < self.status_check:
                continue
            last_check = self.clock()
            try:
                seen = str(self.client.get_task(self.project_id, task_id).get("status") or status)
            except _TRANSIENT:
                continue
            except SemaphoreError as e:
                return StepOutcome(FAILED, task_id, url, f"cannot follow task {task_id}: {_first_line(str(e))}",
                                   error=str(e), log=log.lines)
            if not heard and seen not in QUEUED:  # the stream does not carry this task's events
                log.live = False
                return self._follow_poll(task_id, url, seen, ctx, deadline, log)
            status = seen

    def _follow_poll(self, task_id: int, url: str, status: str, ctx: StepContext, deadline: float,
                     log: "_TaskLog") -> StepOutcome:
        """Poll the status (often at first, then about every 2 % of the time it has run, at most
        ``poll_cap``); read the whole log only when it may have grown ``log_growth`` times since the last read."""
        pid = self.project_id
        interval = self.poll_min
        begun = self.clock()
        running_since: float | None = None
        last_read: float | None = None
        silent_since: float | None = None  # since when Semaphore has not answered
        last_notice = float("-inf")
        while True:
            log.status = status
            ctx.on_status(status)  # every poll: the reporter prints changes and a heartbeat
            if status in TERMINAL:
                if status != "success" or ctx.wants_log:
                    log.final(settle=status != "success", sleep=self.sleep, pause=self.log_settle)
                return self._finished(task_id, url, status, log)
            now = self.clock()
            if now >= deadline:
                return self._stop(task_id, url, log, ctx, status, reason=f"timed out after {ctx.timeout:g} s")
            self.sleep(min(interval, max(0.0, deadline - now)))
            interval = min(interval * 1.5, max(self.poll_max, min(self.poll_cap, 0.02 * (self.clock() - begun))))
            try:
                status = str(self.client.get_task(pid, task_id).get("status") or status)
                now = self.clock()
                if status not in QUEUED and status not in TERMINAL:
                    running_since = now if running_since is None else running_since
                    if ctx.wants_log and self._log_due(now, running_since, last_read):
                        log.read()
                        last_read = self.clock()
            except _TRANSIENT as e:
                now = self.clock()
                silent_since = now if silent_since is None else silent_since
                if now - silent_since >= self.lost_after:
                    return StepOutcome(
                        FAILED, task_id, url,
                        f"Semaphore has not answered for {now - silent_since:.0f} s while following task "
                        f"{task_id}; the task may still be running there ({url})", error=str(e), log=log.lines)
                if now - last_notice >= self.complain_every:
                    ctx.on_line(f"(ralf: Semaphore did not answer, retrying: {_first_line(str(e))})")
                    last_notice = now
                interval = max(interval, 0.5)
                continue
            except SemaphoreError as e:  # auth lost, task gone: following cannot go on
                return StepOutcome(FAILED, task_id, url, f"cannot follow task {task_id}: {_first_line(str(e))}",
                                   error=str(e), log=log.lines)
            if silent_since is not None:
                ctx.on_line(f"(ralf: Semaphore answers again after {self.clock() - silent_since:.0f} s)")
                silent_since, last_notice = None, float("-inf")

    def _log_due(self, now: float, running_since: float, last_read: float | None) -> bool:
        """The output endpoint answers the whole log each time: read it when it may have grown ``log_growth``
        times (the log is taken to grow with the running time), so all reads together stay within about
        ``log_growth / (log_growth - 1)`` times the log plus the final read, however long the task runs."""
        if now - running_since < self.output_every:
            return False
        if last_read is None:
            return True
        return (now - last_read >= self.output_every
                and now - running_since >= self.log_growth * (last_read - running_since))

    def _stop(self, task_id: int, url: str, log: "_TaskLog", ctx: StepContext, status: str, *,
              reason: str, interrupted: bool = False) -> StepOutcome:
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
        if log.live and self.events is not None and not self.events.closed:
            log.settle_live(self.events, 0.0 if interrupted else self.log_settle, self.clock)
        else:
            log.final(settle=not interrupted, sleep=self.sleep, pause=self.log_settle)
        error = None
        if status in QUEUED:
            error = f"task never left the queue (status {status}): no runner picked it up"
        return StepOutcome(STOPPED, task_id, url, f"{reason}; task {task_id} {how}", error=error, log=log.lines,
                           interrupted=interrupted)

    def close(self) -> None:
        if self.events is not None:
            self.events.close()
            self.events = None


class _TaskLog:
    """One task's log lines as received, streamed to the step's reporter; reads ``/output`` when not live."""

    def __init__(self, client: Any, project_id: int | None, task_id: int, ctx: StepContext) -> None:
        self.client = client
        self.project_id = project_id
        self.task_id = task_id
        self.ctx = ctx
        self.lines: list[str] = []
        self.live = False  # lines come from the event stream (until it closes)
        self.status: str | None = None  # the task's last known status (what a Ctrl-C stop reports)

    def add(self, text: str) -> None:
        self.lines.append(text)
        self.ctx.on_line(text)

    def read(self) -> int:
        """Read the whole log; the records past those already known are new (in the same order)."""
        out = self.client.task_output(self.project_id, self.task_id)
        new = out[len(self.lines):]
        for rec in new:
            self.add(str(rec.get("output", "")))
        return len(new)

    def final(self, *, settle: bool, sleep: Any, pause: float) -> None:
        """Read the log once more; with ``settle`` again until a read brings nothing new (at most 5 times):
        the server writes records asynchronously, so the lines explaining a failure can follow the status."""
        try:
            self.read()
            for _ in range(5 if settle else 0):
                sleep(pause)
                if not self.read():
                    break
        except (SemaphoreError, KeyboardInterrupt):
            pass

    def settle_live(self, events: Any, quiet: float, clock: Any) -> None:
        """Take the lines still arriving after the final status, until ``quiet`` seconds bring none (≤ 2 s)."""
        end = clock() + 2.0
        try:
            while True:
                ev = events.next(self.task_id, max(0.0, min(quiet, end - clock())))
                if ev is None:
                    return
                if ev.get("type") == "log":
                    self.add(str(ev.get("output", "")))
        except (StreamClosed, KeyboardInterrupt):
            pass


def _first_line(text: str) -> str:
    return (text.splitlines() or [""])[0][:200]
