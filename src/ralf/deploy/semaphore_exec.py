"""Run steps as Semaphore tasks: start, follow at the server's own cost, stream the log, stop on timeout.

- start, exactly once: ``POST /api/project/<pid>/tasks {"template_id": id, "message": TAG}``, where the
  tag names ralf's run and step. The template's newest task id is noted before the start. When the
  answer is lost, late, a 5xx or garbage, the request may have been carried out: ralf looks for its tag
  among the template's tasks (``start_wait`` seconds, within the step's deadline) and never posts again;
  only a request that certainly never reached the server (no connection) is sent again. Not found in
  time, the step fails as a Semaphore problem and ``--resume`` looks for the tag once more first;
- adoption on resume: before a resumed step starts, the earlier attempt's task (journaled id, and its
  tag) is looked up: succeeded → the step succeeded; still active → followed; failed or stopped → run
  again, and the step's message says why; the server cannot tell → nothing is started;
- follow, live: where the server offers its websocket (``/api/ws``, both generations), it is opened before
  the first start and each log line and status change is received once, as Semaphore's own UI does;
- follow, polling (no websocket, or it closed): the status is polled at 50 ms at first, then about every 2 %
  of the time the task has run (at most ``poll_cap``); the whole log (the only way the REST API gives it) is
  read only when it may have grown ``log_growth`` times since the last read, and once more when the task
  ends — after a failure until it stops growing, because the server writes log records asynchronously and
  the lines that explain the failure can arrive after the final status. With ``--no-log`` (``wants_log``
  false) no log is read unless the step fails;
- answers of the wrong shape while following are asked again; after ``bad_answers`` in a row, or when
  authentication is lost, ralf asks Semaphore to stop the task and says what became of it;
- 5xx answers and dropped connections while following are survived (one notice, then one every
  ``complain_every`` seconds) until the step's deadline or ``lost_after`` seconds without an answer, when
  the step fails as a Semaphore problem (the task may still be running there);
- stop: at the timeout or on Ctrl-C, ``POST .../stop {"force": false}``, then ``{"force": true}`` when it
  has not stopped within ``stop_grace`` seconds.
"""

from __future__ import annotations

import time
from typing import Any

from ralf import backoff
from ralf.deploy.results import FAILED, STOPPED, SUCCEEDED, StepContext, StepOutcome
from ralf.errors import RalfError, SemaphoreError
from ralf.journal import REAPED
from ralf.semaphore.errors import (
    SemaphoreBadAnswer,
    SemaphoreBadRequest,
    SemaphoreNotFound,
    SemaphoreServerError,
    SemaphoreUnreachable,
)
from ralf.semaphore.live import StreamClosed, TaskEvents

TERMINAL = {"success": SUCCEEDED, "error": FAILED, "stopped": STOPPED}
QUEUED = ("waiting", "starting", "waiting_confirmation", "confirmed")
_TRANSIENT = (SemaphoreServerError, SemaphoreUnreachable)
#: answers after which a start request may or may not have been carried out
_UNSURE = (SemaphoreServerError, SemaphoreUnreachable, SemaphoreBadAnswer)
SEARCH_LIMIT = 50  # a template's latest tasks read when looking for a tag


def step_tag(run_id: int, index: int, total: int) -> str:
    """The message every task of a step carries: how ralf finds its tasks again."""
    return f"ralf deploy: run {run_id}, step {index + 1}/{total}"


#: in the message of a step whose start request may have been carried out without ralf seeing the task
UNCONFIRMED = "start not confirmed"


class StartNotConfirmed(SemaphoreUnreachable):
    """A start request whose outcome is unknown and whose task did not show up while ralf looked."""


class SemaphoreExecutor:
    name = "semaphore"

    def __init__(self, client: Any, project: str, *, poll_min: float = 0.05, poll_max: float = 0.2,
                 output_every: float = 1.0, stop_grace: float = 10.0, start_attempts: int = 3,
                 log_settle: float = 0.3, lost_after: float = 300.0, complain_every: float = 30.0,
                 start_wait: float = 60.0, interrupt_wait: float = 3.0, bad_answers: int = 3,
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
        self.start_wait = start_wait
        self.interrupt_wait = interrupt_wait
        self.bad_answers = bad_answers
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
        message = step_tag(ctx.run_id, ctx.index, ctx.total)
        before: int | None = None  # known once asked: only then can a start have been sent
        note = ""
        try:
            recent = self.client.last_tasks(self.project_id, tid, limit=SEARCH_LIMIT)
            before = max((int(t["id"]) for t in recent), default=0)
            if ctx.earlier:
                earlier = self._earlier_task(tid, recent, ctx, deadline)
                if earlier is not None:
                    adopted, note = self._adopt(tid, earlier, ctx, deadline)
                    if adopted is not None:
                        return adopted
            task = self._start(tid, message, before, deadline)
        except KeyboardInterrupt:
            return self._interrupted_start(tid, message, before, ctx)
        except SemaphoreError as e:
            text = f"could not start the task: {_first_line(str(e))}"
            if before is None:
                text = f"could not look for the step's tasks before starting, so nothing was started: {_first_line(str(e))}"
            return StepOutcome(FAILED, message=_join(note, text), error=str(e))
        task_id = int(task["id"])
        url = self.task_url(tid, task_id)
        ctx.on_task(task_id, url)
        outcome = self._follow(task_id, url, str(task.get("status") or "waiting"), ctx, deadline)
        outcome.message = _join(note, outcome.message)
        return outcome

    # ------------------------------------------------------------------ exactly once

    def _earlier_task(self, template_id: int, recent: list[dict], ctx: StepContext,
                      deadline: float) -> tuple[dict, int] | None:
        """The task the step's earlier attempts left that matters most (a success, else an active one, else the
        newest), with the run that started it; found by journaled id or by each attempt's tag."""
        tags = {step_tag(int(a["run_id"]), ctx.index, ctx.total): int(a["run_id"]) for a in ctx.earlier}
        found: dict[int, tuple[dict, int]] = {}

        def collect(tasks: list[dict]) -> None:
            for t in tasks:
                if t.get("message") in tags:
                    found[int(t["id"])] = (t, tags[t["message"]])

        collect(recent)
        for a in ctx.earlier:
            known = a.get("task_id")
            if known is not None and int(known) not in found:
                try:
                    found[int(known)] = (self.client.get_task(self.project_id, int(known)), int(a["run_id"]))
                except (SemaphoreNotFound, SemaphoreBadRequest):  # deleted since (the server answers 400 for those)
                    pass
        unsure = [a for a in ctx.earlier if a.get("task_id") is None
                  and (UNCONFIRMED in a.get("message", "") or REAPED in a.get("message", ""))]
        if not found and unsure:
            # a start request may still be on its way (a slow server, a proxy): give it time to show up
            wait = min(self.start_wait, max(0.0, deadline - self.clock()) / 2)  # half the time left for the task
            ctx.on_line(f"(ralf: run {unsure[0]['run_id']} may have started this step without seeing its task; "
                        f"looking for it up to {wait:.0f} s before starting)")
            end = self.clock() + wait
            while not found and self.clock() < end:
                self.sleep(0.5)
                try:
                    collect(self.client.last_tasks(self.project_id, template_id, limit=SEARCH_LIMIT))
                except _UNSURE:
                    continue
        if not found:
            return None
        by_rank = sorted(found.values(), key=lambda tr: (str(tr[0].get("status")) == "success",
                                                         str(tr[0].get("status")) not in TERMINAL, int(tr[0]["id"])))
        return by_rank[-1]

    def _adopt(self, template_id: int, earlier: tuple[dict, int], ctx: StepContext,
               deadline: float) -> tuple[StepOutcome | None, str]:
        """Make an earlier attempt's task this step's when it succeeded or still runs; else say why it reruns."""
        task, prev_run = earlier
        task_id, status = int(task["id"]), str(task.get("status") or "")
        url = self.task_url(template_id, task_id)
        if status == "success":
            ctx.on_task(task_id, url)
            ctx.on_status(status)
            return StepOutcome(SUCCEEDED, task_id, url, f"task {task_id} of run {prev_run} had succeeded meanwhile; "
                                                        "adopted, not started again"), ""
        if status in ("error", "stopped"):
            return None, f"task {task_id} of run {prev_run} ended {status}, so the step ran again"
        ctx.on_task(task_id, url)
        ctx.on_line(f"(ralf: task {task_id} of run {prev_run} is still {status or 'active'} in Semaphore; "
                    "following it instead of starting another)")
        outcome = self._follow(task_id, url, status or "waiting", ctx, deadline)
        outcome.message = _join(f"followed task {task_id} of run {prev_run}", outcome.message)
        return outcome, ""

    def _mine(self, template_id: int, message: str, before: int) -> list[dict]:
        """Tasks of the template newer than ``before`` that carry our message (any newer one if none has one)."""
        newer = [t for t in self.client.last_tasks(self.project_id, template_id, limit=SEARCH_LIMIT)
                 if int(t["id"]) > before]
        return [t for t in newer if t.get("message") == message] or [t for t in newer if "message" not in t]

    def _look_for_start(self, template_id: int, message: str, before: int, until: float) -> list[dict]:
        """Look for our tag until ``until`` (at least once); [] when it did not show up."""
        pause = 0.2
        while True:
            try:
                mine = self._mine(template_id, message, before)
                if mine:
                    return mine
            except _UNSURE:
                pass
            if self.clock() >= until:
                return []
            self.sleep(max(0.0, min(pause, until - self.clock())))
            pause = min(pause * 1.5, 2.0)

    def _interrupted_start(self, template_id: int, message: str, before: int | None,
                           ctx: StepContext) -> StepOutcome:
        """Ctrl-C while starting: the start may have gone through (even late), so look a moment and stop it."""
        found: list[dict] = []
        if before is not None:
            try:
                found = self._look_for_start(template_id, message, before, self.clock() + self.interrupt_wait)
                for t in found:
                    self.client.stop_task(self.project_id, int(t["id"]), force=False)
            except (SemaphoreError, KeyboardInterrupt):
                pass
        if before is None:
            return StepOutcome(STOPPED, message="interrupted (Ctrl-C) before the task was started", interrupted=True)
        if not found:
            return StepOutcome(STOPPED, message=f"interrupted (Ctrl-C) while starting, {UNCONFIRMED}: if Semaphore "
                                                "still starts the task, `ralf deploy --resume` finds it before "
                                                "starting another", interrupted=True)
        task_id = int(found[0]["id"])
        url = self.task_url(template_id, task_id)
        ctx.on_task(task_id, url)
        return StepOutcome(STOPPED, task_id, url, f"interrupted (Ctrl-C) while starting; task {task_id} stopped",
                           interrupted=True)

    def _start(self, template_id: int, message: str, before: int, deadline: float) -> dict:
        for attempt in range(self.start_attempts):
            if attempt:
                self.sleep(backoff.delay(attempt, 0.4, 2.0))
            try:
                return self.client.start_task(self.project_id, template_id, message=message)
            except SemaphoreUnreachable as e:
                if e.sent:
                    return self._confirm_start(template_id, message, before, deadline, e)
                if attempt + 1 >= self.start_attempts or self.clock() >= deadline:
                    raise  # it never reached the server: nothing was started
            except _UNSURE as e:
                return self._confirm_start(template_id, message, before, deadline, e)
        raise AssertionError("unreachable")  # pragma: no cover

    def _confirm_start(self, template_id: int, message: str, before: int, deadline: float, error: Exception) -> dict:
        """The start's answer was lost or wrong: find the task by its tag; never post a second time."""
        wait = min(self.start_wait, max(0.0, deadline - self.clock()))
        mine = self._look_for_start(template_id, message, before, self.clock() + wait)
        if mine:
            return min(mine, key=lambda t: int(t["id"]))
        raise StartNotConfirmed(
            f"{UNCONFIRMED}: {_first_line(str(error))}; no task tagged {message!r} appeared within {wait:.0f} s, so none was "
            "started again (`ralf deploy --resume` looks for it once more before starting)")

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

    def _finished(self, task_id: int, url: str, status: str, log: _TaskLog) -> StepOutcome:
        msg = {"success": "", "error": "the task failed", "stopped": "the task was stopped in Semaphore"}
        return StepOutcome(TERMINAL[status], task_id, url, msg[status], log=log.lines)

    def _follow_live(self, task_id: int, url: str, status: str, ctx: StepContext, deadline: float,
                     log: _TaskLog) -> StepOutcome:
        """Each log line and status change as the server pushes it; one status GET per ``status_check`` seconds
        of silence, in case the stream does not carry this task (then, and when the stream closes: polling)."""
        events = self.events
        assert events is not None  # only followed live when the stream is up
        heard = False
        bad = 0  # status answers in a row of the wrong shape
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
            except SemaphoreBadAnswer as e:
                bad += 1
                if bad >= self.bad_answers:
                    return self._give_up(task_id, url, log, e)
                ctx.on_line(f"(ralf: {_first_line(str(e))}; asking again)")
                last_check -= self.status_check  # ask again at the next quiet second
                continue
            except _TRANSIENT:
                continue
            except SemaphoreError as e:  # auth lost, task gone: following cannot go on
                return self._give_up(task_id, url, log, e)
            bad = 0
            if not heard and seen not in QUEUED:  # the stream does not carry this task's events
                log.live = False
                return self._follow_poll(task_id, url, seen, ctx, deadline, log)
            status = seen

    def _follow_poll(self, task_id: int, url: str, status: str, ctx: StepContext, deadline: float,
                     log: _TaskLog) -> StepOutcome:
        """Poll the status (often at first, then about every 2 % of the time it has run, at most
        ``poll_cap``); read the whole log only when it may have grown ``log_growth`` times since the last read."""
        pid = self.project_id
        interval = self.poll_min
        begun = self.clock()
        running_since: float | None = None
        last_read: float | None = None
        silent_since: float | None = None  # since when Semaphore has not answered
        last_notice = float("-inf")
        bad = 0  # answers in a row of the wrong shape
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
            except SemaphoreBadAnswer as e:
                bad += 1
                if bad >= self.bad_answers:
                    return self._give_up(task_id, url, log, e)
                ctx.on_line(f"(ralf: {_first_line(str(e))}; asking again)")
                interval = max(interval, 0.5)
                continue
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
                return self._give_up(task_id, url, log, e)
            bad = 0
            if silent_since is not None:
                ctx.on_line(f"(ralf: Semaphore answers again after {self.clock() - silent_since:.0f} s)")
                silent_since, last_notice = None, float("-inf")

    def _give_up(self, task_id: int, url: str, log: _TaskLog, error: Exception) -> StepOutcome:
        """Following cannot go on: ask the server to stop the task, and say what became of it."""
        try:
            self.client.stop_task(self.project_id, task_id, force=False)
            fate = f"task {task_id} was asked to stop"
        except (SemaphoreError, KeyboardInterrupt):
            fate = (f"task {task_id} may still be running there; `ralf deploy --resume` adopts it instead of "
                    "starting another")
        return StepOutcome(FAILED, task_id, url, f"cannot follow task {task_id}: {_first_line(str(error))}; {fate}",
                           error=str(error), log=log.lines)

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

    def _stop(self, task_id: int, url: str, log: _TaskLog, ctx: StepContext, status: str, *,
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


def _join(*parts: str) -> str:
    return "; ".join(p for p in parts if p)


def _first_line(text: str) -> str:
    return (text.splitlines() or [""])[0][:200]
