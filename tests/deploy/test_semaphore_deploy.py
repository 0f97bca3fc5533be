"""`ralf deploy` through Semaphore against the fake server with scripted task outcomes."""

from __future__ import annotations

import io
import time

import pytest

from ralf.deploy import Reporter, SemaphoreExecutor, execute, resume_point
from ralf.errors import RalfError, UsageError
from ralf.planner import build_plan

from .conftest import PROJECT

N8N_FAIL = ["[ralf] === 045-n8n-config (ansible, apply) [2/2] ===", "TASK [n8n : Start n8n] ***",
            'fatal: [n8n]: FAILED! => {"changed": false, "msg": "Unable to start service n8n"}']


def run(plan, client, journal, catalog, probes=None, *, timeout=10.0, resume=None, executor=None, **kw):
    out = io.StringIO()
    ex = executor or SemaphoreExecutor(client, PROJECT, stop_grace=kw.pop("stop_grace", 2.0))
    report = execute(plan, ex, journal, catalog=catalog, reporter=Reporter(out), timeout=timeout, probes=probes,
                     request_args={"request": plan.request}, resume=resume, **kw)
    return report, out.getvalue()


def starts(fake):
    return [r for r in fake.requests if r.method == "POST" and r.path.endswith("/tasks")]


def test_standard_order_succeeds_end_to_end(fake, client, journal, default_catalog, probes):
    plan = build_plan(default_catalog)
    assert len(plan.steps) == 8
    report, out = run(plan, client, journal, default_catalog, probes)
    assert report.exit_code == 0 and report.result == "succeeded"
    assert [s.result for s in report.steps] == ["succeeded"] * 8
    assert len(fake.tasks) == 8
    # every start is POST /api/project/<pid>/tasks with the template id, never the per-template endpoint
    assert all(r.path == f"/api/project/{fake.project_id}/tasks" for r in starts(fake))
    assert not any(r.method == "POST" and "/templates/" in r.path for r in fake.requests)
    started = [fake.tasks[s.task_id]["template_id"] for s in report.steps]
    names = [fake.objects["templates"][tid]["name"] for tid in started]
    assert names == [s.template for s in plan.steps]
    # live log lines prefixed with the template name, progress lines, summary with task URLs
    assert "  [RALF Vault Apply] working on RALF Vault Apply" in out
    assert "step 3/8 RALF Automation Apply" in out
    assert f"/project/{fake.project_id}/templates/" in out and "?t=" in out
    assert "deploy succeeded: 8/8 steps" in out
    run_row = journal.run(report.run_id)
    assert run_row["result"] == "succeeded" and run_row["steps_succeeded"] == 8
    assert all(s["task_id"] for s in run_row["steps"])
    assert probes.calls == []


def test_failure_in_step_3_stops_triage_and_resume(fake, client, journal, default_catalog, probes):
    plan = build_plan(default_catalog)
    fake.script("RALF Automation Apply", "error", 0.1, log=N8N_FAIL)
    report, out = run(plan, client, journal, default_catalog, probes)
    assert report.exit_code == 1 and report.result == "failed"
    assert [s.result for s in report.steps] == ["succeeded", "succeeded", "failed"] + ["not run"] * 5
    assert len(fake.tasks) == 3
    t = report.steps[2].triage
    assert (t.category, t.cause, t.service) == ("ansible", "failed task", "n8n")
    assert "`ralf deploy n8n` reruns RALF N8N Apply" in t.next_action
    assert probes.calls == [("smoke", "n8n")]
    assert "triage: ansible" in out and "not run" in out
    stored = journal.run(report.run_id)
    assert stored["result"] == "failed" and stored["failed_step"] == "RALF Automation Apply"
    assert stored["steps"][2]["triage"]["service"] == "n8n"

    # fixed: resume continues from step 3, steps 1-2 are not rerun
    fake.script("RALF Automation Apply", "success", 0.1)
    old, plan2, start = resume_point(journal, None, lambda args: build_plan(default_catalog, args.get("request")))
    assert (old["id"], start) == (report.run_id, 2)
    report2, out2 = run(plan2, client, journal, default_catalog, probes, resume={"run": old, "start_index": start})
    assert report2.exit_code == 0
    assert len(fake.tasks) == 3 + 6
    assert [s.from_run for s in report2.steps[:2]] == [report.run_id] * 2
    assert report2.steps[0].task_id == report.steps[0].task_id
    assert "succeeded in run" in out2
    assert journal.run(report2.run_id)["resumed_from"] == report.run_id
    with pytest.raises(UsageError, match="nothing to resume"):
        resume_point(journal, str(report2.run_id), lambda args: plan2)


def test_resume_refused_when_the_plan_changed(fake, client, journal, default_catalog):
    plan = build_plan(default_catalog)
    fake.script("RALF Vault Smoke", "error", 0.05)
    report, _ = run(plan, client, journal, default_catalog, run_checks=False)
    assert report.steps[1].result == "failed"
    changed = build_plan(default_catalog, "vault")
    with pytest.raises(UsageError, match="plan has changed"):
        resume_point(journal, str(report.run_id), lambda args: changed)
    with pytest.raises(UsageError, match="no run 999"):
        resume_point(journal, "999", lambda args: plan)
    with pytest.raises(UsageError, match="run id"):
        resume_point(journal, "abc", lambda args: plan)


def test_hanging_task_is_stopped_at_its_timeout(fake, client, journal, default_catalog, probes):
    plan = build_plan(default_catalog, "vault")
    fake.script("RALF Vault Apply", "hang", 0.05, log=["still going"])
    report, out = run(plan, client, journal, default_catalog, probes, timeout=0.6)
    s = report.steps[0]
    assert s.result == "stopped" and report.result == "stopped" and report.exit_code == 1
    assert "timed out after 0.6 s" in s.message
    assert fake.tasks[s.task_id]["status"] == "stopped"
    stops = [r for r in fake.requests if r.path.endswith(f"/tasks/{s.task_id}/stop")]
    assert len(stops) == 1  # the graceful stop was enough
    assert report.steps[1].result == "not run"
    assert 0.5 < s.duration < 3


class NoGracefulStop:
    """A client whose graceful stop is ignored by the server (a stuck task): only force works."""

    def __init__(self, inner):
        self.inner = inner
        self.stop_calls = []

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def stop_task(self, pid, tid, force=False):
        self.stop_calls.append(force)
        if force:
            self.inner.stop_task(pid, tid, force=True)


def test_stop_falls_back_to_force(fake, client, journal, default_catalog):
    plan = build_plan(default_catalog, "vault")
    fake.script("RALF Vault Apply", "hang", 0.05)
    wrapped = NoGracefulStop(client)
    ex = SemaphoreExecutor(wrapped, PROJECT, stop_grace=0.3)
    report, _ = run(plan, client, journal, default_catalog, timeout=0.3, executor=ex, run_checks=False)
    assert wrapped.stop_calls == [False, True]
    s = report.steps[0]
    assert s.result == "stopped" and "force-stopped" in s.message
    assert fake.tasks[s.task_id]["status"] == "stopped"


def test_5xx_and_dropped_connections_while_polling_are_survived(fake, default_catalog, journal):
    from ralf.semaphore.client import SemaphoreClient

    plan = build_plan(default_catalog, "vault")
    fake.script("RALF Vault Apply", "success", 1.0, log=["a", "b", "c"])
    with SemaphoreClient(fake.url, token=fake.token, retries=0) as c:  # no client retries: ralf must cope
        ex = SemaphoreExecutor(c, PROJECT, live=False)
        ex.prepare(plan)
        orig = c.get_task
        calls = {"n": 0}

        def flaky_get_task(pid, tid):
            calls["n"] += 1
            if calls["n"] == 3:
                fake.fail_next(3, 502, method="GET", path="/tasks/")
                fake.drop_next(2, method="GET", path="/tasks/")
            return orig(pid, tid)

        c.get_task = flaky_get_task
        report, out = run(plan, c, journal, default_catalog, executor=ex, run_checks=False)
    assert report.exit_code == 0, out
    assert "Semaphore did not answer, retrying" in out
    dropped = [r for r in fake.requests if r.status == 0]
    failed = [r for r in fake.requests if r.status == 502]
    assert len(dropped) == 2 and len(failed) == 3
    assert len(fake.tasks) == 2
    assert "  [RALF Vault Apply] c" in out  # the whole log arrived despite the errors


def test_lost_start_answer_does_not_start_a_second_task(fake, client, journal, default_catalog):
    plan = build_plan(default_catalog, "RALF Vault Apply")
    fake.lose_next_start_response()
    report, out = run(plan, client, journal, default_catalog, run_checks=False)
    assert report.exit_code == 0, out
    assert len(fake.tasks) == 1
    assert report.steps[0].task_id == next(iter(fake.tasks))
    assert len(starts(fake)) == 1  # it looked instead of starting again


def test_start_answered_5xx_is_never_posted_again_and_resume_starts_it_once(fake, client, journal,
                                                                            default_catalog):
    """A 503 to the start may or may not have started the task: ralf looks for its tag instead of posting again."""
    plan = build_plan(default_catalog, "RALF Vault Apply")
    fake.fail_next(1, 503, method="POST", path="/tasks")
    ex = SemaphoreExecutor(client, PROJECT, start_wait=0.5)
    report, _ = run(plan, client, journal, default_catalog, run_checks=False, executor=ex)
    s = report.steps[0]
    assert report.exit_code == 1 and fake.tasks == {} and len(starts(fake)) == 1
    assert "answered 503" in s.message and "none was started again" in s.message and "--resume" in s.message
    old, plan2, start = resume_point(journal, None, lambda args: build_plan(default_catalog, args.get("request")))
    report2, out = run(plan2, client, journal, default_catalog, run_checks=False, resume={"run": old, "start_index": start},
                       executor=SemaphoreExecutor(client, PROJECT, start_wait=0.5))
    assert report2.exit_code == 0 and len(fake.tasks) == 1 and len(starts(fake)) == 2
    assert "may have started this step without seeing its task" in out


def test_start_that_never_reached_the_server_is_sent_again(fake, client, journal, default_catalog):
    from ralf.semaphore.errors import SemaphoreUnreachable

    plan = build_plan(default_catalog, "RALF Vault Apply")
    orig, calls = client.start_task, []

    def start_task(pid, tid, **kw):  # the first connection attempt is refused: nothing was sent
        calls.append(kw)
        if len(calls) == 1:
            raise SemaphoreUnreachable("connection refused", sent=False)
        return orig(pid, tid, **kw)

    client.start_task = start_task
    report, _ = run(plan, client, journal, default_catalog, run_checks=False)
    assert report.exit_code == 0 and len(calls) == 2 and len(fake.tasks) == 1


def test_task_never_leaving_the_queue_is_triaged_as_no_runner(default_catalog, journal, probes):
    from doubles.semaphore import FakeSemaphore

    from ralf.semaphore.client import SemaphoreClient

    plan = build_plan(default_catalog, "RALF Vault Apply")
    with FakeSemaphore(start_latency=30) as srv:
        pid = srv.add_project(PROJECT)
        srv.insert("templates", pid, name="RALF Vault Apply", app="bash", playbook="x")
        with SemaphoreClient(srv.url, token=srv.token) as c:
            report, out = run(plan, c, journal, default_catalog, probes, timeout=0.4)
    t = report.steps[0].triage
    assert report.steps[0].result == "stopped"
    assert (t.category, t.cause) == ("semaphore", "no runner")
    assert probes.calls == [("semaphore", None)] or probes.calls[0][0] == "semaphore"


class InterruptAfter:
    def __init__(self, inner, n):
        self.inner, self.n, self.stop_calls = inner, n, []

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def get_task(self, pid, tid):
        self.n -= 1
        if self.n == 0:
            raise KeyboardInterrupt
        return self.inner.get_task(pid, tid)

    def stop_task(self, pid, tid, force=False):
        self.stop_calls.append(force)
        self.inner.stop_task(pid, tid, force=force)


def test_ctrl_c_stops_the_task_and_records_it(fake, client, journal, default_catalog, probes):
    plan = build_plan(default_catalog, "vault")
    fake.script("RALF Vault Apply", "hang", 0.05)
    wrapped = InterruptAfter(client, 3)
    ex = SemaphoreExecutor(wrapped, PROJECT, stop_grace=2, live=False)  # Ctrl-C arrives during a poll
    report, out = run(plan, client, journal, default_catalog, probes, executor=ex)
    s = report.steps[0]
    assert s.result == "stopped" and "interrupted" in s.message
    assert report.result == "interrupted" and report.exit_code == 130
    assert wrapped.stop_calls[0] is False
    assert fake.tasks[s.task_id]["status"] == "stopped"
    assert journal.run(report.run_id)["result"] == "interrupted"
    assert probes.calls == []  # no triage for a deliberate stop


def test_missing_template_fails_before_anything_starts(fake, client, journal, default_catalog):
    plan = build_plan(default_catalog, "vault")
    for tid, t in list(fake.objects["templates"].items()):
        if t["name"] == "RALF Vault Smoke":
            del fake.objects["templates"][tid]
    with pytest.raises(RalfError, match="lacks the template.*RALF Vault Smoke.*semaphore seed"):
        run(plan, client, journal, default_catalog)
    assert fake.tasks == {}
    assert journal.recent_runs() == []


def test_missing_project_is_a_clear_error(fake, client, journal, default_catalog):
    plan = build_plan(default_catalog, "vault")
    ex = SemaphoreExecutor(client, "No Such Project")
    with pytest.raises(RalfError, match="no project 'No Such Project'"):
        run(plan, client, journal, default_catalog, executor=ex)


def test_lost_start_answer_ignores_someone_elses_new_task(fake, client, journal, default_catalog):
    """A task another user started meanwhile (other message) is not adopted, and ours is not posted again."""
    plan = build_plan(default_catalog, "RALF Vault Apply")
    ex = SemaphoreExecutor(client, PROJECT, start_wait=0.5)
    ex.prepare(plan)
    tid = ex.templates["RALF Vault Apply"]
    fake.fail_next(1, 502, method="POST", path="/tasks")
    orig = client.last_tasks
    state = {"n": 0}

    def last_tasks(pid, template_id, limit=10):
        state["n"] += 1
        if state["n"] == 2:  # right after our failed start: a colleague starts the template in the UI
            client.start_task(pid, tid, message="started by hand")
        return orig(pid, template_id, limit)

    client.last_tasks = last_tasks
    report, _ = run(plan, client, journal, default_catalog, executor=ex, run_checks=False)
    assert report.exit_code == 1 and report.steps[0].task_id is None
    assert [t["message"] for t in fake.tasks.values()] == ["started by hand"]
    assert len(starts(fake)) == 2  # ours (answered 502) and the colleague's


def test_auth_lost_while_following_fails_the_step_clearly(fake, client, journal, default_catalog, probes):
    plan = build_plan(default_catalog, "vault")
    fake.script("RALF Vault Apply", "success", 1.0)
    orig = client.get_task
    state = {"n": 0}

    def get_task(pid, tid):
        state["n"] += 1
        if state["n"] == 2:
            fake.expire_token()
        return orig(pid, tid)

    client.get_task = get_task
    report, out = run(plan, client, journal, default_catalog, probes, executor=SemaphoreExecutor(client, PROJECT,
                                                                                                 live=False))
    s = report.steps[0]
    assert s.result == "failed" and "cannot follow task" in s.message
    assert (s.triage.category, s.triage.cause) == ("semaphore", "auth")


def test_log_lines_written_after_the_final_status_still_reach_triage(fake, client, journal, default_catalog, probes):
    """The real server inserts log records asynchronously: the line that explains a failure can follow 'error'."""
    plan = build_plan(default_catalog, "RALF Automation Apply")
    fake.log_lag = 0.3
    fake.script("RALF Automation Apply", "error", 0.1, log=N8N_FAIL)
    hasty = SemaphoreExecutor(client, PROJECT, log_settle=0.0, live=False)  # reads once more at once, as before
    report, _ = run(plan, client, journal, default_catalog, probes, executor=hasty)
    assert report.steps[0].triage.category == "unknown"  # the fatal line was not there yet
    fake.clear_requests()
    polling = SemaphoreExecutor(client, PROJECT, live=False)
    report, out = run(plan, client, journal, default_catalog, probes, executor=polling)
    t = report.steps[0].triage
    assert (t.category, t.cause, t.service) == ("ansible", "failed task", "n8n")
    assert "  [RALF Automation Apply] Command exited with status 1" in out


def test_semaphore_gone_while_following_fails_the_step_as_a_semaphore_problem(fake, default_catalog, journal, probes):
    from ralf.semaphore.client import SemaphoreClient

    plan = build_plan(default_catalog, "vault")
    fake.script("RALF Vault Apply", "hang", 0.05)
    with SemaphoreClient(fake.url, token=fake.token, retries=0) as c:
        orig = c.get_task

        def get_task(pid, tid):
            fake.drop_next(100_000, method="GET")  # from the first poll on, nothing answers
            return orig(pid, tid)

        c.get_task = get_task
        ex = SemaphoreExecutor(c, PROJECT, lost_after=0.8, complain_every=60, live=False)
        report, out = run(plan, c, journal, default_catalog, probes, executor=ex)
    s = report.steps[0]
    assert s.result == "failed" and "has not answered for" in s.message and "may still be running" in s.message
    assert (s.triage.category, s.triage.cause) == ("semaphore", "unreachable")
    assert "041-semaphore-config" in s.triage.next_action
    assert out.count("Semaphore did not answer, retrying") == 1  # one notice, not one per poll
    assert report.steps[1].result == "not run"


def test_semaphore_down_before_the_first_step_is_journaled_triaged_and_resumable(fake, client, journal,
                                                                               default_catalog, probes):
    import socket

    from ralf.semaphore.client import SemaphoreClient

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    plan = build_plan(default_catalog, "vault")
    with SemaphoreClient(f"http://127.0.0.1:{port}", token="t", retries=0) as dead:
        report, out = run(plan, dead, journal, default_catalog, probes, executor=SemaphoreExecutor(dead, PROJECT))
    assert report.exit_code == 1 and [s.result for s in report.steps] == ["failed", "not run"]
    assert report.steps[0].message.startswith("not started: Semaphore at http://127.0.0.1:")
    t = report.steps[0].triage
    assert (t.category, t.cause) == ("semaphore", "unreachable") and [c[0] for c in probes.calls] == ["semaphore"]
    stored = journal.run(report.run_id)
    assert stored["result"] == "failed" and stored["steps"][0]["triage"]["category"] == "semaphore"
    assert fake.tasks == {}

    old, plan2, start = resume_point(journal, None, lambda args: build_plan(default_catalog, args.get("request")))
    assert (old["id"], start) == (report.run_id, 0)
    report2, _ = run(plan2, client, journal, default_catalog, probes, resume={"run": old, "start_index": start})
    assert report2.exit_code == 0 and len(fake.tasks) == 2


class InterruptedStart:
    """Ctrl-C arrives while the start request is on its way: the server started the task, ralf never heard."""

    def __init__(self, inner):
        self.inner, self.stop_calls = inner, []

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def start_task(self, pid, tid, **kw):
        self.inner.start_task(pid, tid, **kw)
        raise KeyboardInterrupt

    def stop_task(self, pid, tid, force=False):
        self.stop_calls.append(tid)
        self.inner.stop_task(pid, tid, force=force)


def test_ctrl_c_during_the_start_stops_the_task_that_was_started(fake, client, journal, default_catalog, probes):
    plan = build_plan(default_catalog, "vault")
    fake.script("RALF Vault Apply", "hang", 0.05)
    wrapped = InterruptedStart(client)
    report, out = run(plan, client, journal, default_catalog, probes, executor=SemaphoreExecutor(wrapped, PROJECT))
    s = report.steps[0]
    [task_id] = fake.tasks
    assert report.exit_code == 130 and s.result == "stopped" and s.task_id == task_id
    assert wrapped.stop_calls == [task_id] and f"task {task_id} stopped" in s.message
    deadline = time.monotonic() + 3
    while fake.tasks[task_id]["status"] != "stopped":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert journal.run(report.run_id)["steps"][0]["task_id"] == task_id
