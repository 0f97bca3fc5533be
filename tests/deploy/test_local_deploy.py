"""`--executor local`: the same plan through the stack runner and the smoke engine (both stubbed here)."""

from __future__ import annotations

import io
import signal
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from ralf.deploy import LocalExecutor, Reporter, execute
from ralf.errors import LockHeldError
from ralf.planner import build_plan
from ralf.smoke.results import CheckResult, ServiceResult, SmokeReport


class Stacks:
    def __init__(self, fail: str | None = None, raise_error: Exception | None = None):
        self.calls: list[list[str]] = []
        self.fail = fail
        self.raise_error = raise_error

    def __call__(self, platform, only, *, apply, on_output, **kw):
        assert apply is True
        self.calls.append(list(only))
        if self.raise_error:
            raise self.raise_error
        results = []
        for name in only:
            on_output(f"[ralf] === {name} ===")
            res = "failed" if name == self.fail else "succeeded"
            if res == "failed":
                on_output("TASK [n8n : Start n8n] ***")
                on_output('fatal: [n8n]: FAILED! => {"msg": "nope"}')
            results.append(SimpleNamespace(name=name, result=res, note="ansible-playbook failed" if res == "failed" else ""))
            if res == "failed":
                break
        return SimpleNamespace(ok=all(r.result == "succeeded" for r in results), results=results,
                               run_dir=Path("/tmp/ralf-run"), interrupted=False)


def smoke_report(target, catalog, failing: dict[str, str] | None = None) -> SmokeReport:
    failing = failing or {}
    services = []
    for name in catalog.target(target).services:
        if name in failing:
            checks = [CheckResult("nginx/TLS", "tls", f"{name}-tls", "x:443", "FAIL", failing[name])]
            services.append(ServiceResult(name, catalog.group_of(name), checks, failed_layer="nginx/TLS",
                                          diagnosis=f"{name}: FAIL at nginx/TLS — {failing[name]}"))
        else:
            checks = [CheckResult("nginx/TLS", "tls", f"{name}-tls", "x:443", "OK", "valid", cert_days_left=80)]
            services.append(ServiceResult(name, catalog.group_of(name), checks))
    return SmokeReport(target, services)


def run_local(plan, journal, catalog, stacks, smoke, probes=None):
    out = io.StringIO()
    ex = LocalExecutor(catalog.platform, run_stacks=stacks, run_smoke=smoke)
    report = execute(plan, ex, journal, catalog=catalog, reporter=Reporter(out), probes=probes,
                     request_args={"request": plan.request})
    return report, out.getvalue()


def test_local_standard_order(journal, default_catalog, probes):
    plan = build_plan(default_catalog)
    stacks = Stacks()
    report, out = run_local(plan, journal, default_catalog, stacks,
                            lambda target, platform: smoke_report(target, default_catalog), probes)
    assert report.exit_code == 0 and report.executor == "local"
    assert stacks.calls[0] == ["042-vaultwarden-lxc", "043-vaultwarden-config"]
    assert len(stacks.calls) == 4
    assert "  [RALF Vault Apply] [ralf] === 042-vaultwarden-lxc ===" in out
    assert "step 2/8 RALF Vault Smoke succeeded" in out
    assert all(s.task_id is None for s in report.steps)
    by = {r["service"]: r for r in journal.service_status(default_catalog)}
    assert by["exo"]["last_smoke"]["cert_days_left"] == 80
    assert by["exo"]["last_apply"]["template"] == "RALF AI Apply"


def test_local_apply_failure_is_triaged_like_semaphore(journal, default_catalog, probes):
    plan = build_plan(default_catalog, "n8n")
    report, out = run_local(plan, journal, default_catalog, Stacks(fail="045-n8n-config"),
                            lambda target, platform: smoke_report(target, default_catalog), probes)
    assert report.exit_code == 1
    assert [s.result for s in report.steps] == ["failed", "not run"]
    assert "045-n8n-config: failed" in report.steps[0].message
    t = report.steps[0].triage
    assert (t.category, t.service, t.stack) == ("ansible", "n8n", "045-n8n-config")


def test_local_smoke_failure_records_per_service(journal, default_catalog, probes):
    plan = build_plan(default_catalog, "communication")
    smoke = lambda target, platform: smoke_report(target, default_catalog, {"mail": "certificate expired"})  # noqa: E731
    report, out = run_local(plan, journal, default_catalog, Stacks(), smoke, probes)
    assert [s.result for s in report.steps] == ["succeeded", "failed"]
    t = report.steps[1].triage
    assert (t.category, t.service, t.layer) == ("smoke", "mail", "nginx/TLS")
    assert probes.calls == [("smoke", "mail")]
    by = {r["service"]: r for r in journal.service_status(default_catalog)}
    assert by["mail"]["last_smoke"]["result"] == "failed"
    assert by["mail"]["last_smoke"]["failed_layer"] == "nginx/TLS"
    assert by["synapse"]["last_smoke"]["result"] == "succeeded"


def test_local_runner_error_becomes_a_failed_step(journal, default_catalog):
    plan = build_plan(default_catalog, "vault")
    stacks = Stacks(raise_error=LockHeldError("another run holds the lock (pid 42)"))
    report, out = run_local(plan, journal, default_catalog, stacks, lambda t, p: smoke_report(t, default_catalog))
    assert report.steps[0].result == "failed"
    assert "holds the lock" in report.steps[0].message
    assert report.steps[1].result == "not run"


def test_reporter_heartbeat_and_plain_output():
    from ralf.deploy.output import Reporter, fmt_duration

    now = [0.0]
    out = io.StringIO()
    r = Reporter(out, show_log=False, heartbeat=30, clock=lambda: now[0])
    step = SimpleNamespace(template="RALF Vault Apply")
    r.step_start(0, 8, step)
    r.status("waiting")
    now[0] = 5
    r.status("running")
    now[0] = 20
    r.status("running")
    r.line("RALF Vault Apply", "hidden line")
    now[0] = 36
    r.status("running")
    lines = out.getvalue().splitlines()
    assert lines == ["step 1/8 RALF Vault Apply ...", "step 1/8 RALF Vault Apply: waiting (0.0 s)",
                     "step 1/8 RALF Vault Apply: running (5.0 s)", "step 1/8 RALF Vault Apply: running (36 s)"]
    assert "\x1b" not in out.getvalue()
    assert fmt_duration(125) == "2 min 05 s" and fmt_duration(None) == "-"


def _slow_stacks(seconds: float = 30.0):
    """A stack runner that takes long; plain code, so the timeout's interruption arrives as KeyboardInterrupt."""

    def run(platform, only, *, apply, on_output, **kw):
        on_output(f"[ralf] === {only[0]} ===")
        t0 = time.monotonic()
        while time.monotonic() - t0 < seconds:
            time.sleep(0.01)
        raise AssertionError("the step's timeout did not interrupt the stack runner")

    return run


def _guarded_stacks(platform, only, *, apply, on_output, **kw):
    """Like the real stack runner: its own SIGINT handler stops the child and reports an interrupted run."""
    hit = []
    old = signal.signal(signal.SIGINT, lambda signum, frame: hit.append(signum))
    try:
        t0 = time.monotonic()
        while not hit and time.monotonic() - t0 < 30:
            time.sleep(0.01)
    finally:
        signal.signal(signal.SIGINT, old)
    assert hit, "the step's timeout did not reach the stack runner's handler"
    on_output(f"[ralf] {only[0]}: interrupted — stopped by SIGINT")
    results = [SimpleNamespace(name=only[0], result="interrupted", note="stopped by SIGINT")]
    return SimpleNamespace(ok=False, results=results, run_dir=Path("/tmp/ralf-run"), interrupted=True)


@pytest.mark.slow  # waits for real timeouts
def test_local_step_timeout_stops_the_step_and_the_run(journal, default_catalog, probes):
    plan = build_plan(default_catalog, "vault")
    for stacks in (_slow_stacks(), _guarded_stacks):
        out = io.StringIO()
        ex = LocalExecutor(default_catalog.platform, run_stacks=stacks,
                           run_smoke=lambda t, p: smoke_report(t, default_catalog))
        t0 = time.monotonic()
        report = execute(plan, ex, journal, catalog=default_catalog, reporter=Reporter(out), probes=probes,
                         timeout=0.3, request_args={"request": plan.request})
        assert time.monotonic() - t0 < 15  # interrupted, not waited out (30 s); room for a busy machine
        s = report.steps[0]
        assert s.result == "stopped" and s.message.startswith("timed out after 0.3 s"), s.message
        assert report.result == "stopped" and report.exit_code == 1  # a timeout, not a Ctrl-C (130)
        assert report.steps[1].result == "not run"
        assert "step 1/2 RALF Vault Apply stopped" in out.getvalue() and "timed out after 0.3 s" in out.getvalue()
        assert journal.run(report.run_id)["steps"][0]["message"].startswith("timed out")


def test_local_steps_within_their_timeout_leave_no_interrupt_behind(journal, default_catalog):
    plan = build_plan(default_catalog)
    report, _ = run_local_with_timeout(plan, journal, default_catalog, 0.4)
    assert report.exit_code == 0
    time.sleep(0.6)  # a timer that was not disarmed would raise KeyboardInterrupt here


def test_local_smoke_timeout(journal, default_catalog):
    plan = build_plan(default_catalog, "RALF Vault Smoke")

    def slow_smoke(target, platform):
        time.sleep(30)  # long enough that only the timeout's interruption can end it
        raise AssertionError("not interrupted")

    ex = LocalExecutor(default_catalog.platform, run_stacks=Stacks(), run_smoke=slow_smoke)
    report = execute(plan, ex, journal, catalog=default_catalog, reporter=Reporter(io.StringIO()), timeout=0.3,
                     run_checks=False)
    assert report.steps[0].result == "stopped" and report.steps[0].message == "timed out after 0.3 s"


def run_local_with_timeout(plan, journal, catalog, timeout):
    ex = LocalExecutor(catalog.platform, run_stacks=Stacks(), run_smoke=lambda t, p: smoke_report(t, catalog))
    report = execute(plan, ex, journal, catalog=catalog, reporter=Reporter(io.StringIO()), timeout=timeout,
                     run_checks=False)
    return report, None
