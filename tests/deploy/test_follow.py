"""Following a Semaphore task: live over the websocket, polling within a bytes budget, ``--no-log``."""

from __future__ import annotations

import io
import re
import threading
import time

from ralf.deploy import Reporter, SemaphoreExecutor, execute
from ralf.planner import build_plan

from .conftest import PROJECT

LINES = [f"ok: [vaultwarden] => (item=/etc/vaultwarden/config-{i:04d}.env) changed=false" for i in range(120)]


def run(plan, client, journal, catalog, executor, *, show_log=True, probes=None):
    out = io.StringIO()
    report = execute(plan, executor, journal, catalog=catalog, reporter=Reporter(out, show_log=show_log),
                     timeout=20, probes=probes, run_checks=False, request_args={"request": plan.request})
    return report, out.getvalue()


def output_reads(fake):
    return [r for r in fake.requests if r.method == "GET" and r.path.endswith("/output")]


def status_reads(fake):
    return [r for r in fake.requests if r.method == "GET" and re.search(r"/tasks/\d+$", r.path)]


def shown(out, template, line):
    return out.count(f"  [{template}] {line}\n")


def test_live_follow_gets_each_line_once_from_the_stream_and_reads_no_log(fake, client, journal, default_catalog):
    plan = build_plan(default_catalog, "vault")
    fake.script("RALF Vault Apply", "success", 0.6, log=LINES)
    report, out = run(plan, client, journal, default_catalog, SemaphoreExecutor(client, PROJECT))
    assert report.exit_code == 0, out
    assert [r.path for r in fake.requests if r.path == "/api/ws"] == ["/api/ws"]  # one stream for the whole run
    assert all(shown(out, "RALF Vault Apply", line) == 1 for line in LINES)
    assert report.steps[0].result == "succeeded"
    assert output_reads(fake) == [] and status_reads(fake) == []  # status and lines both came from the stream
    streamed = fake.ws_bytes()
    for step in report.steps:
        client.task_output(fake.project_id, step.task_id)
    assert streamed < 1.5 * sum(r.size for r in output_reads(fake))  # about one read of each log: lines once


def test_stream_closing_mid_task_falls_back_to_polling_without_repeating_lines(fake, client, journal,
                                                                               default_catalog):
    plan = build_plan(default_catalog, "RALF Vault Apply")
    fake.script("RALF Vault Apply", "success", 1.5, log=LINES)

    def drop_when_under_way():
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and len(fake.outputs.get(1, [])) < 30:
            time.sleep(0.01)
        fake.drop_websockets()

    threading.Thread(target=drop_when_under_way, daemon=True).start()
    report, out = run(plan, client, journal, default_catalog, SemaphoreExecutor(client, PROJECT))
    assert report.exit_code == 0, out
    assert all(shown(out, "RALF Vault Apply", line) == 1 for line in LINES)
    assert output_reads(fake)  # the rest came from /output


def test_a_stream_that_does_not_carry_the_task_is_noticed_and_polling_takes_over(fake, client, journal,
                                                                                 default_catalog):
    plan = build_plan(default_catalog, "RALF Vault Apply")
    fake.script("RALF Vault Apply", "success", 1.0, log=LINES[:5])
    fake._push = lambda event: None  # e.g. a user who is neither in the project nor an admin gets no events
    ex = SemaphoreExecutor(client, PROJECT, status_check=0.2)
    report, out = run(plan, client, journal, default_catalog, ex)
    assert report.exit_code == 0, out
    assert all(shown(out, "RALF Vault Apply", line) == 1 for line in LINES[:5])
    assert output_reads(fake)


def test_without_websocket_the_log_is_read_within_its_bytes_budget(fake, client, journal, default_catalog):
    fake.websocket = False  # /api/ws answers 404, as behind a proxy that passes no upgrades
    plan = build_plan(default_catalog, "RALF Vault Apply")
    lines = [f"line {i:05d} " + "x" * 60 for i in range(600)]
    # 5 s: reads at ~1, ~2 and ~4 s of running, then the final one; with 3 s a busy machine that noticed the
    # start late left only the read at ~1 s before the end
    fake.script("RALF Vault Apply", "success", 5.0, log=lines)
    report, out = run(plan, client, journal, default_catalog, SemaphoreExecutor(client, PROJECT))
    assert report.exit_code == 0, out
    assert all(shown(out, "RALF Vault Apply", line) == 1 for line in lines)
    reads = output_reads(fake)
    assert len(reads) >= 3  # lines showed up while the task ran, not only at its end
    full = reads[-1].size
    assert sum(r.size for r in reads) <= 3 * full


def test_no_log_reads_no_log_of_a_step_that_succeeds(fake, client, journal, default_catalog):
    fake.websocket = False
    plan = build_plan(default_catalog, "vault")
    fake.script("RALF Vault Apply", "success", 1.5, log=LINES)
    report, out = run(plan, client, journal, default_catalog, SemaphoreExecutor(client, PROJECT), show_log=False)
    assert report.exit_code == 0 and output_reads(fake) == []
    assert LINES[0] not in out


def test_no_log_still_reads_the_log_of_a_failed_step_for_triage(fake, client, journal, default_catalog, probes):
    fake.websocket = False
    plan = build_plan(default_catalog, "RALF Automation Apply")
    fake.script("RALF Automation Apply", "error", 0.5,
                log=["TASK [n8n : Start n8n] ***",
                     'fatal: [n8n]: FAILED! => {"changed": false, "msg": "Unable to start service n8n"}'])
    out = io.StringIO()
    report = execute(plan, SemaphoreExecutor(client, PROJECT), journal, catalog=default_catalog,
                     reporter=Reporter(out, show_log=False), timeout=20, probes=probes,
                     request_args={"request": plan.request})
    assert report.exit_code == 1
    assert output_reads(fake)
    t = report.steps[0].triage
    assert (t.category, t.service) == ("ansible", "n8n")
    assert "Unable to start service" not in out.getvalue().split("triage")[0]  # not streamed


def test_live_follow_stops_a_task_at_the_timeout(fake, client, journal, default_catalog):
    plan = build_plan(default_catalog, "RALF Vault Apply")
    fake.script("RALF Vault Apply", "hang", 0.05, log=["waiting for godot"])
    out = io.StringIO()
    report = execute(plan, SemaphoreExecutor(client, PROJECT, stop_grace=2), journal, catalog=default_catalog,
                     reporter=Reporter(out), timeout=0.5, run_checks=False, request_args={"request": plan.request})
    s = report.steps[0]
    assert s.result == "stopped" and "timed out after 0.5 s" in s.message
    assert fake.tasks[s.task_id]["status"] == "stopped"
    assert shown(out.getvalue(), "RALF Vault Apply", "waiting for godot") == 1


def test_ctrl_c_while_following_live_stops_the_running_task(fake, client, default_catalog):
    from ralf.deploy.results import StepContext

    plan = build_plan(default_catalog, "RALF Vault Apply")
    fake.script("RALF Vault Apply", "hang", 0.05, log=["press ctrl-c now"])
    ex = SemaphoreExecutor(client, PROJECT, stop_grace=2)
    ex.prepare(plan)

    def on_line(text):
        if text == "press ctrl-c now":
            raise KeyboardInterrupt

    try:
        outcome = ex.run_step(plan.steps[0], StepContext(index=0, total=1, run_id=1, timeout=20, on_line=on_line))
    finally:
        ex.close()
    assert outcome.result == "stopped" and outcome.interrupted and "interrupted" in outcome.message
    assert outcome.error is None  # it was running: not "never left the queue"
    assert fake.tasks[outcome.task_id]["status"] in ("stopping", "stopped")
    assert output_reads(fake) == []
