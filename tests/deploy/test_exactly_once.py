"""Exactly one task per step, and a journal that matches the server's task list, under each fault the
fault-injecting fake server reproduces: a late start answer, a start committed then an outage, the token
expiring while following, a stop that is never confirmed, ralf killed with SIGKILL, a poll answered 200 with
something that is not a task."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time

from ralf.deploy import Reporter, SemaphoreExecutor, execute, resume_point
from ralf.planner import build_plan
from ralf.semaphore.client import SemaphoreClient

from .conftest import PROJECT

PORTAL = ("<!DOCTYPE html>\n<html>\n<head>\n<title>Sign in to the guest network</title>\n</head>\n"
          "<body>\n<h1>Welcome</h1>\n<p>Accept the terms</p>\n</body>\n</html>\n")


def run(plan, client, journal, catalog, *, timeout=10.0, resume=None, **kw):
    ex = SemaphoreExecutor(client, PROJECT, stop_grace=kw.pop("stop_grace", 1.0), **kw)
    out = io.StringIO()
    report = execute(plan, ex, journal, catalog=catalog, reporter=Reporter(out), timeout=timeout,
                     run_checks=False, request_args={"request": plan.request}, resume=resume)
    return report, out.getvalue()


def resume(journal, catalog, client, **kw):
    old, plan, start = resume_point(journal, None, lambda args: build_plan(catalog, args.get("request")))
    return run(plan, client, journal, catalog, resume={"run": old, "start_index": start}, **kw)


def journaled_tasks(journal) -> list[int]:
    return sorted(s["task_id"] for r in journal.recent_runs(100) for s in journal.run(r["id"])["steps"]
                  if s["task_id"] is not None)


def assert_exactly_once(fake, journal, n_steps):
    """One task per step on the server, each known to the journal, none unknown to it."""
    per_template: dict[int, int] = {}
    for t in fake.tasks.values():
        per_template[t["template_id"]] = per_template.get(t["template_id"], 0) + 1
    assert len(fake.tasks) == n_steps and set(per_template.values()) == {1}, fake.tasks
    assert set(journaled_tasks(journal)) == set(fake.tasks)


def starts(fake):
    return [r for r in fake.requests if r.method == "POST" and r.path.endswith("/tasks")]


def test_late_start_answer_committed_after_the_client_gave_up_is_found_not_posted_again(fake, journal,
                                                                                       default_catalog):
    plan = build_plan(default_catalog, "vault")
    # the server takes 1.5 s to even create the task; the client waits 0.5 s, so its first look finds nothing
    fake.slow_next(1, 1.5, work="after", method="POST", path="/tasks")
    with SemaphoreClient(fake.url, token=fake.token, timeout=0.5, backoff=0.02) as c:
        report, out = run(plan, c, journal, default_catalog)
    assert report.exit_code == 0, out
    assert len(starts(fake)) == 2  # one per step: the slow one was never sent twice
    assert_exactly_once(fake, journal, 2)


def test_late_start_answer_for_a_task_already_running_is_adopted(fake, journal, default_catalog):
    plan = build_plan(default_catalog, "vault")
    fake.slow_next(1, 1.0, work="before", method="POST", path="/tasks")
    with SemaphoreClient(fake.url, token=fake.token, timeout=0.4, backoff=0.02) as c:
        report, out = run(plan, c, journal, default_catalog)
    assert report.exit_code == 0, out
    assert_exactly_once(fake, journal, 2)


def test_start_committed_then_outage_waits_for_the_server_and_adopts_the_task(fake, client, journal,
                                                                             default_catalog):
    plan = build_plan(default_catalog, "vault")
    fake.lose_next_start_response()
    orig = client.start_task

    def start_then_outage(pid, tid, **kw):
        try:
            return orig(pid, tid, **kw)
        finally:
            fake.outage(1.0, status=502, body=PORTAL)

    client.start_task = start_then_outage
    report, out = run(plan, client, journal, default_catalog)
    assert report.exit_code == 0, out
    assert_exactly_once(fake, journal, 2)


def test_token_expired_while_following_then_resume_adopts_the_task(fake, client, journal, default_catalog):
    plan = build_plan(default_catalog, "vault")
    fake.script("RALF Vault Apply", "success", 1.0)
    orig, n = client.get_task, {"polls": 0}

    def get_task(pid, tid):
        n["polls"] += 1
        if n["polls"] == 2:
            fake.expire_token()
        return orig(pid, tid)

    client.get_task = get_task
    report, out = run(plan, client, journal, default_catalog, live=False)  # polling: each poll is asked
    s = report.steps[0]
    assert report.exit_code == 1 and "cannot follow task" in s.message and "may still be running" in s.message
    assert fake.tasks[s.task_id]["status"] in ("running", "success")  # the stop could not be sent either

    with SemaphoreClient(fake.url, token=fake.new_token(), backoff=0.02) as fresh:  # the user renews the token
        report2, out2 = resume(journal, default_catalog, fresh)
    assert report2.exit_code == 0, out2
    assert report2.steps[0].task_id == s.task_id and f"of run {report.run_id}" in report2.steps[0].message
    assert_exactly_once(fake, journal, 2)


def test_stop_not_confirmed_then_resume_follows_the_task_that_went_on(fake, client, journal, default_catalog):
    plan = build_plan(default_catalog, "vault")
    fake.script("RALF Vault Apply", "success", 2.0)
    orig = client.get_task

    def get_task(pid, tid):  # Semaphore becomes unreachable just before the timeout's stop request
        if time.monotonic() > t0 + 0.2:
            fake.outage(1.5)
        return orig(pid, tid)

    client.get_task = get_task
    fast = SemaphoreClient(fake.url, token=fake.token, retries=0, timeout=0.3)
    client.stop_task = fast.stop_task
    t0 = time.monotonic()
    report, out = run(plan, client, journal, default_catalog, timeout=0.4, stop_grace=0.3, live=False)
    fast.close()
    s = report.steps[0]
    assert s.result == "stopped" and "stop not confirmed" in s.message, s.message
    client.get_task = orig
    time.sleep(1.6)  # the outage ends; the task was never stopped
    report2, out2 = resume(journal, default_catalog, client)
    assert report2.exit_code == 0, out2
    assert report2.steps[0].task_id == s.task_id
    assert_exactly_once(fake, journal, 2)


def test_poll_answered_200_with_a_non_object_is_survived_then_ends_as_a_semaphore_problem(fake, client, journal,
                                                                                       default_catalog):
    plan = build_plan(default_catalog, "vault")
    fake.script("RALF Vault Apply", "success", 0.6)
    fake.garble_next(1, "null", method="GET", path=f"/project/{fake.project_id}/tasks/")
    fake.garble_next(1, PORTAL, ctype="text/html", method="GET", path=f"/project/{fake.project_id}/tasks/")
    report, out = run(plan, client, journal, default_catalog, live=False)
    assert report.exit_code == 0, out
    assert "an HTML page (Sign in to the guest network)" in out
    assert_exactly_once(fake, journal, 2)

    fake.tasks.clear()
    fake.script("RALF Vault Apply", "hang", 0.05)
    fake.garble_next(50, PORTAL, ctype="text/html", method="GET", path=f"/project/{fake.project_id}/tasks/")
    report, out = run(plan, client, journal, default_catalog, live=False)
    s = report.steps[0]
    assert s.result == "failed" and s.message.count("\n") == 0
    assert "cannot follow task" in s.message and "answered 200 with an HTML page" in s.message
    assert "was asked to stop" in s.message and s.triage.category == "semaphore"
    assert journal.run(report.run_id)["steps"][0]["result"] == "failed"  # never left running


def test_sigkill_of_ralf_then_resume_adopts_the_running_task(fake, journal, default_catalog, repo_root, tmp_path,
                                                            run_cli):
    fake.script("RALF Vault Apply", "success", 2.5)
    env = {**os.environ, "RALF_STATE_DIR": str(tmp_path / "state"), "SEMAPHORE_URL": fake.url,
           "SEMAPHORE_TOKEN": fake.token}
    args = ["--platform", str(repo_root / "platform.yaml")]
    proc = subprocess.Popen([sys.executable, "-m", "ralf", *args, "deploy", "vault", "--no-checks"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while not any(t["status"] == "running" for t in fake.tasks.values()):
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.05)
    time.sleep(0.3)  # ralf has journaled the task id by now (or not: the tag finds it either way)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    [first] = fake.tasks
    code, out, err = run_cli(*args, "deploy", "--resume", "--no-checks",
                             env={k: env[k] for k in ("RALF_STATE_DIR", "SEMAPHORE_URL", "SEMAPHORE_TOKEN")})
    assert code == 0, out + err
    assert f"task {first} of run 1 is still running" in out
    from ralf.journal import Journal

    with Journal(tmp_path / "state" / "journal.sqlite3") as j:
        assert_exactly_once(fake, j, 2)


def test_live_follow_gives_up_after_bad_status_answers_and_asks_semaphore_to_stop_the_task(fake, client, journal,
                                                                                          default_catalog):
    plan = build_plan(default_catalog, "vault")
    fake.script("RALF Vault Apply", "hang", 0.05)
    fake.garble_next(50, PORTAL, ctype="text/html", method="GET", path=f"/project/{fake.project_id}/tasks/")
    report, out = run(plan, client, journal, default_catalog, status_check=0.2)  # over the websocket
    s = report.steps[0]
    assert s.result == "failed" and s.message.count("\n") == 0, s.message
    assert "cannot follow task" in s.message and "was asked to stop" in s.message
    assert any(r.method == "POST" and r.path.endswith(f"/tasks/{s.task_id}/stop") for r in fake.requests)
    assert journal.run(report.run_id)["steps"][0]["result"] == "failed"  # never left running
    assert "Traceback" not in out


def test_live_follow_stops_the_task_when_the_token_is_lost(fake, client, journal, default_catalog):
    plan = build_plan(default_catalog, "vault")
    fake.script("RALF Vault Apply", "hang", 0.05)
    orig = client.get_task

    def get_task(pid, tid):  # the first status check finds the token revoked
        fake.expire_token()
        return orig(pid, tid)

    client.get_task = get_task
    report, out = run(plan, client, journal, default_catalog, status_check=0.2)
    s = report.steps[0]
    assert s.result == "failed" and "cannot follow task" in s.message
    assert "may still be running" in s.message  # the stop request is refused too: said so, not hidden
    assert journal.run(report.run_id)["steps"][0]["result"] == "failed"
