"""Execute a plan step by step with one executor, journal everything, stop at the first failure, triage it.

The orchestration is the same for both executors: record the run, run each step (streaming its log),
stop at the first failed or stopped step (the rest stay ``not run``), triage the failure, finish the
run in the journal and return a :class:`RunReport`. When Semaphore does not answer (or answers 5xx)
while the executor prepares, the run is still recorded: its first step fails with that error and is
triaged like any Semaphore failure, so `ralf history` shows it and `--resume` starts it again later.
:func:`resume_point` finds where a journaled run left off and refuses when the plan has changed since.
A run whose ralf died without finishing it (SIGKILL, power loss) is marked ``interrupted`` by the journal
and resumes from its stopped step; one still running, or owned by another host, is refused.
"""

from __future__ import annotations

import functools
import time
from typing import Any

from ralf.deploy.output import Reporter
from ralf.deploy.results import FAILED, NOT_RUN, STOPPED, SUCCEEDED, RunReport, StepContext, StepOutcome, StepReport
from ralf.errors import UsageError
from ralf.journal import Journal, PlatformId, now_iso, this_host
from ralf.semaphore.errors import SemaphoreServerError, SemaphoreUnreachable
from ralf.states import Result

DEFAULT_TIMEOUT = 3600.0


def execute(plan: Any, executor: Any, journal: Journal, *, catalog: Any = None, reporter: Reporter | None = None,
            timeout: float = DEFAULT_TIMEOUT, probes: Any = None, run_checks: bool = True,
            request_args: dict | None = None, platform_file: str | None = None,
            resume: dict | None = None, clock=time.monotonic) -> RunReport:
    """Run ``plan`` with ``executor``; ``resume`` is the journaled run to continue (see resume_point)."""
    reporter = reporter or Reporter()
    try:
        executor.prepare(plan)
    except (SemaphoreUnreachable, SemaphoreServerError) as e:
        executor = _Unavailable(executor.name, e)
    start_index = resume["start_index"] if resume else 0
    resumed_from = resume["run"]["id"] if resume else None
    platform = PlatformId.of(catalog.platform) if catalog is not None else platform_file
    run_id = journal.start_run(plan, executor=executor.name, request_args=request_args, platform=platform,
                               resumed_from=resumed_from)
    n = len(plan.steps)
    report = RunReport(run_id, plan, executor.name, [StepReport(i, s) for i, s in enumerate(plan.steps)],
                       resumed_from=resumed_from,
                       platform_source=str(catalog.platform.source) if catalog is not None and
                       catalog.platform.source else platform_file)
    reporter.header(plan, run_id, executor.name, start_index, resumed_from)

    if resume:
        old_steps = {s["idx"]: s for s in resume["run"]["steps"]}
        for i in range(start_index):
            old = old_steps.get(i, {})
            sr = report.steps[i]
            sr.result, sr.task_id, sr.task_url = SUCCEEDED, old.get("task_id"), old.get("task_url")
            sr.duration = old.get("duration")
            sr.from_run = old.get("from_run") or resumed_from
            journal.update_step(run_id, i, result=SUCCEEDED, task_id=sr.task_id, task_url=sr.task_url,
                                duration=sr.duration, from_run=sr.from_run, finished_at=old.get("finished_at"))
            reporter.skipped(i, n, plan.steps[i], sr.from_run)

    earlier = _earlier_attempts(journal, resume["run"], start_index) if resume else []
    try:
        result = _run_steps(plan, executor, journal, report, run_id, start_index, catalog, reporter, timeout,
                            probes, run_checks, clock, earlier)
    except BaseException:
        journal.finish_run(run_id, Result.ERROR)  # never leave a run marked "running" behind
        raise
    finally:
        getattr(executor, "close", lambda: None)()
    report.result = result
    journal.finish_run(run_id, result)
    reporter.summary(report)
    return report


class _Unavailable:
    """Stands in for an executor whose server failed while preparing: the first step fails with that error."""

    def __init__(self, name: str, error: Exception) -> None:
        self.name = name
        self.error = error

    def run_step(self, step: Any, ctx: StepContext) -> StepOutcome:
        return StepOutcome(FAILED, message=f"not started: {self.error}", error=str(self.error))


def _run_steps(plan, executor, journal, report, run_id, start_index, catalog, reporter, timeout, probes,
               run_checks, clock, earlier=()) -> Result:
    n = len(plan.steps)
    result = SUCCEEDED
    for i in range(start_index, n):
        step = plan.steps[i]
        sr = report.steps[i]
        reporter.step_start(i, n, step)
        t0 = clock()
        journal.update_step(run_id, i, result=Result.RUNNING, started_at=now_iso())

        def on_task(task_id: int, url: str | None, _i: int = i, _sr: StepReport = sr) -> None:
            _sr.task_id, _sr.task_url = task_id, url
            journal.update_step(run_id, _i, task_id=task_id, task_url=url)  # known even if ralf dies now
            reporter.task(task_id, url)

        ctx = StepContext(index=i, total=n, run_id=run_id, timeout=timeout,
                          on_line=functools.partial(reporter.line, step.template),
                          on_status=reporter.status, on_task=on_task,
                          earlier=list(earlier) if i == start_index else [],
                          wants_log=getattr(reporter, "show_log", True))
        try:
            outcome = executor.run_step(step, ctx)
        except KeyboardInterrupt:
            outcome = StepOutcome(STOPPED, sr.task_id, sr.task_url, "interrupted (Ctrl-C)", interrupted=True)
        sr.duration = clock() - t0
        sr.result = outcome.result
        sr.task_id = outcome.task_id if outcome.task_id is not None else sr.task_id
        sr.task_url = outcome.task_url or sr.task_url
        sr.message = outcome.message
        reporter.step_end(i, n, step, sr.result, sr.duration, sr.message)
        for s in outcome.smoke:
            journal.record_smoke(run_id, i, s["service"], s["status"], failed_layer=s.get("failed_layer"),
                                 diagnosis=s.get("diagnosis"), cert_days_left=s.get("cert_days_left"))
        if sr.result != SUCCEEDED and not outcome.interrupted:
            sr.triage = _triage(outcome, step, catalog, probes, run_checks, run_id, getattr(reporter, "command", "ralf deploy"))
            if sr.triage is not None:
                reporter.triage(sr.triage)
                if step.kind == "smoke" and not outcome.smoke and sr.triage.service:
                    journal.record_smoke(run_id, i, sr.triage.service, "FAIL", failed_layer=sr.triage.layer,
                                         diagnosis=sr.triage.summary)
        journal.update_step(run_id, i, result=sr.result, finished_at=now_iso(), duration=round(sr.duration, 3),
                            task_id=sr.task_id, task_url=sr.task_url, message=sr.message or None,
                            triage=sr.triage.to_dict() if sr.triage is not None else None)
        if sr.result != SUCCEEDED:
            result = Result.INTERRUPTED if outcome.interrupted else (FAILED if sr.result == FAILED else STOPPED)
            break
    return result


def _earlier_attempts(journal: Journal, run: dict, index: int) -> list[dict]:
    """Step ``index``'s attempts in ``run`` and the runs it resumed, newest first, back to one that succeeded.

    Any of their tasks may have gone on after ralf lost sight of it (a lost answer, an unconfirmed stop,
    a killed ralf), so the executor looks at them before starting the step again.
    """
    out: list[dict] = []
    seen: set[int] = set()
    current: dict | None = run
    while current is not None and current["id"] not in seen:
        run = current
        seen.add(run["id"])
        step = next((s for s in run["steps"] if s["idx"] == index), None)
        if step is not None and step["result"] == SUCCEEDED:
            break  # a step that succeeded and is run again on purpose (the plan restarts there)
        if step is not None and step["result"] != NOT_RUN:
            out.append({"run_id": run["id"], "task_id": step.get("task_id"), "result": step["result"],
                        "message": step.get("message") or ""})
        current = journal.run(run["resumed_from"]) if run.get("resumed_from") else None
    return out


def _triage(outcome: Any, step: Any, catalog: Any, probes: Any, run_checks: bool, run_id: int,
            command: str = "ralf deploy") -> Any:
    from ralf.hints import complete
    from ralf.triage import triage

    try:
        t = triage(outcome.log, step, catalog, rerun=f"{command} --resume {run_id}", error=outcome.error,
                   probes=probes, run_checks=run_checks)
    except Exception as e:  # noqa: BLE001 - triage must never hide the failure it explains
        from ralf.triage import Triage

        t = Triage("unknown", "triage failed", f"triage itself failed: {e}", f"`{command} --resume {run_id}`")
    # the advice is pasted as it is: its commands must name the platform this run was for
    t.next_action = complete(t.next_action, catalog.platform.source if catalog is not None else None)
    return t


def running_note(run: dict) -> str:
    """Why a run still marked ``running`` cannot be resumed from here (see :meth:`Journal.reap_stale`)."""
    pid, host = run.get("owner_pid"), run.get("owner_host")
    if pid is None or not host:
        return ("is still marked running (another ralf, or one that died before the journal recorded its "
                "process); start a new deploy instead")
    if host != this_host():
        return (f"is running on host {host} (ralf pid {pid}); only that host can tell whether it still runs — "
                f"resume it there once it has ended")
    return f"is still running (ralf pid {pid} on this host); wait for it to end, or stop it, then resume"


def resume_point(journal: Journal, run_ref: str | None, build_plan) -> tuple[dict, Any, int]:
    """The run to resume, its plan rebuilt from the stored request, and the first step to run.

    ``run_ref``: a run id, or None / "last" for the newest run that did not succeed. ``build_plan``
    takes the stored request arguments and returns the plan as it would be built now.
    """
    if run_ref in (None, "", "last", "latest"):
        run = journal.latest_run(unfinished_only=True)
        if run is None:
            raise UsageError("no failed or stopped run in the journal to resume")
    else:
        try:
            rid = int(str(run_ref))
        except ValueError:
            raise UsageError(f"--resume expects a run id (see `ralf history`), not {run_ref!r}") from None
        run = journal.run(rid)
        if run is None:
            raise UsageError(f"no run {rid} in the journal (see `ralf history`)")
    first = run["id"]
    while (later := journal.resumed_by(run["id"])) is not None:  # follow the chain of resumes
        run = journal.run(later)
    if run["id"] != first:
        if run["result"] == SUCCEEDED:
            raise UsageError(f"run {first} was resumed by run {run['id']}, which succeeded; nothing to resume")
    if run["result"] == SUCCEEDED:
        raise UsageError(f"run {run['id']} succeeded; there is nothing to resume")
    if run["result"] == Result.RUNNING:
        raise UsageError(f"run {run['id']} {running_note(run)}")
    plan = build_plan(run["request_args"])
    if plan.fingerprint() != run["fingerprint"]:
        raise UsageError(
            f"the plan has changed since run {run['id']} (its steps differ now); resuming would skip or repeat "
            "the wrong steps — start a new run with `ralf deploy` instead"
        )
    start = next((s["idx"] for s in run["steps"] if s["result"] != SUCCEEDED), None)
    if start is None:
        raise UsageError(f"run {run['id']} has no step left to run")
    return run, plan, start


__all__ = ["execute", "resume_point", "running_note", "DEFAULT_TIMEOUT", "NOT_RUN"]
