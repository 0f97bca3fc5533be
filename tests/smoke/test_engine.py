"""The engine: layer order and diagnosis, skipped and not-checked layers, every failure reported, parallelism."""

from __future__ import annotations

import dataclasses
import subprocess
import threading

import pytest

from ralf.errors import UsageError
from ralf.smoke import run_smoke
from ralf.smoke.layers import LAYERS, plan_service
from ralf.transport import ExecResult, LocalTransport, NoTransport, PctTransport

HOST = "127.0.0.1"


@pytest.fixture
def units_dir(tmp_path):
    d = tmp_path / "units"
    d.mkdir()
    for unit in ("app", "nginx"):
        (d / unit).touch()
    return d


@pytest.fixture
def web(make_platform, units_dir, nginx, certs, open_port, closed_port):
    """Five services: one healthy, one broken at each layer."""

    def svc(*, unit="app", tls="good", app_port=open_port, tcp_port=None, https=True):
        checks = [{"kind": "unit", "unit": unit}, {"kind": "unit", "unit": "nginx"}]
        if tls:
            checks.append({"kind": "tls", "host": HOST, "port": nginx.ports[tls], "server_name": "good.test",
                           "ca_file": str(certs.ca)})
        checks.append({"kind": "app_port", "port": app_port})
        port = tcp_port or nginx.ports["good"]
        checks.append({"kind": "tcp", "host": HOST, "port": port})
        if https:
            checks.append({"kind": "https", "url": f"https://{HOST}:{port}/", "ca_file": str(certs.ca), "deadline": 5})
        return {"group": "web", "checks": checks}

    services = {
        "store": {"checks": [{"kind": "tcp", "host": HOST, "port": open_port}]},
        "ok": svc(),
        "deadunit": svc(unit="missing"),
        "expired": svc(tls="expired"),
        "noapp": svc(app_port=closed_port),
        "deadend": svc(tcp_port=closed_port),
    }
    groups = [{"name": "phase1", "word": "Phase1", "phase1": True}, {"name": "web", "word": "Web"}]
    return make_platform(services, groups=groups,
                         exec_={"transport": "local", "unit_command": f"test -e {units_dir}/{{unit}}"})


def test_first_failing_layer_is_the_diagnosis_and_every_failure_is_reported(web):
    report = run_smoke("web", web)
    by = {s.name: s for s in report.services}
    assert [s.name for s in report.services] == ["ok", "deadunit", "expired", "noapp", "deadend"]
    assert by["ok"].status == "OK" and by["ok"].failed_layer is None and by["ok"].cert_days_left == 90
    assert {s.name: s.failed_layer for s in report.failed} == {
        "deadunit": "service in CT",
        "expired": "nginx/TLS",
        "noapp": "app port",
        "deadend": "public endpoint",
    }
    assert by["expired"].diagnosis == "expired: FAIL at nginx/TLS — certificate expired 3 days ago"
    assert by["deadunit"].diagnosis == "deadunit: FAIL at service in CT — unit missing is not active (exit 1)"
    assert not report.ok and report.exit_code == 1


def test_layers_after_the_failing_one_are_skipped(web):
    s = run_smoke("expired", web).services[0]
    assert [(c.layer, c.kind, c.status) for c in s.checks] == [
        ("service in CT", "unit", "OK"),
        ("service in CT", "unit", "OK"),
        ("nginx/TLS", "tls", "FAIL"),
        ("app port", "app_port", "SKIPPED"),
        ("public endpoint", "tcp", "SKIPPED"),
        ("public endpoint", "https", "SKIPPED"),
    ]
    assert s.checks[3].detail == "not run: nginx/TLS failed"


def test_dead_endpoint_skips_http_retries_on_the_same_port(web):
    s = run_smoke("deadend", web).services[0]
    tcp, https = s.checks[-2:]
    assert (tcp.status, tcp.detail) == ("FAIL", "connection refused")
    assert https.status == "SKIPPED" and "TCP connect" in https.detail
    assert s.duration_ms < 4000  # not the https check's 5 s deadline


def test_layers_without_transport_are_not_checked_not_passed(web):
    report = run_smoke("web", web, transport=NoTransport(reason="not configured: test"))
    by = {s.name: s for s in report.services}
    ok = by["ok"]
    statuses = {(c.kind, c.status) for c in ok.checks}
    assert ("unit", "NOT CHECKED") in statuses and ("app_port", "NOT CHECKED") in statuses
    assert ("unit", "OK") not in statuses
    assert ok.status == "OK" and len(ok.not_checked) == 3
    # a unit that is really missing goes unnoticed without transport; the outer layers still run
    assert by["deadunit"].status == "OK"
    assert by["noapp"].status == "OK"
    assert by["expired"].failed_layer == "nginx/TLS"


def test_broken_transport_warns_and_the_run_goes_on(web):
    report = run_smoke("ok", web, transport=LocalTransport())  # same platform, but replace the unit command
    assert report.services[0].status == "OK"
    broken = dataclasses.replace(LocalTransport(), runner=lambda argv, t: ExecResult(127, "", "sh: 1: nope: not found"))
    s = run_smoke("ok", web, transport=broken).services[0]
    assert s.status == "WARN" and s.failed_layer is None
    assert s.checks[0].status == "WARN" and s.checks[0].detail.startswith("could not check: command not found")
    assert s.checks[-1].status == "OK"


# `pct` on a fake Proxmox node: records its words and answers like systemctl in a CT whose nginx is stopped.
FAKE_PCT = """#!/bin/sh
echo "$*" >> "$(dirname "$0")/pct.log"
shift 3
case "$*" in *nginx*) echo inactive; exit 3;; *) echo active;; esac
"""


@pytest.fixture
def node(tmp_path):
    """A runner standing in for ssh to the node: the node's shell runs the remote command with the fake pct."""
    (tmp_path / "pct").write_text(FAKE_PCT)
    (tmp_path / "pct").chmod(0o755)
    calls: list[list[str]] = []

    def runner(argv, timeout):
        calls.append(argv[-2:])
        env = {"PATH": f"{tmp_path}:/usr/bin:/bin"}
        done = subprocess.run(["sh", "-c", argv[-1]], capture_output=True, text=True, timeout=timeout, env=env)
        return ExecResult(done.returncode, done.stdout, done.stderr)

    def ran() -> list[str]:
        log = tmp_path / "pct.log"
        return sorted(log.read_text().splitlines()) if log.exists() else []

    return runner, calls, ran


def test_pct_transport_through_the_engine_one_ssh_for_the_node(make_platform, node):
    runner, calls, ran = node
    p = make_platform({"svc": {"ct_id": 4242, "checks": [
        {"kind": "unit", "unit": "app"}, {"kind": "unit", "unit": "nginx"}, {"kind": "app_port", "port": 3000},
    ]}, "other": {"ct_id": 4243, "checks": [{"kind": "unit", "unit": "app"}]}})
    report = run_smoke("platform", p, transport=PctTransport(host="pve.test", runner=runner))
    # the three unit checks of two CTs on one node came together: one ssh connection, each its own pct exec
    assert [c[0] for c in calls] == ["root@pve.test"] and calls[0][1].startswith("sh -c ")
    assert ran() == ["exec 4242 -- systemctl is-active app", "exec 4242 -- systemctl is-active nginx",
                     "exec 4243 -- systemctl is-active app"]
    svc, other = report.services
    assert svc.diagnosis == "svc: FAIL at service in CT — unit nginx is inactive (exit 3)"
    assert [c.status for c in svc.checks] == ["OK", "FAIL", "SKIPPED"]
    assert other.status == "OK" and other.checks[0].detail == "active"


def test_a_lone_command_runs_as_the_transport_runs_it(make_platform, node):
    runner, calls, ran = node
    p = make_platform({"svc": {"ct_id": 4242, "checks": [{"kind": "unit", "unit": "app"}]}})
    assert run_smoke("svc", p, transport=PctTransport(host="pve.test", runner=runner)).ok
    assert calls == [["root@pve.test", "pct exec 4242 -- systemctl is-active app"]]
    assert ran() == ["exec 4242 -- systemctl is-active app"]


def test_services_run_in_parallel_and_one_by_one_with_concurrency_1(make_platform, http_stub):
    services = {f"s{i}": {"checks": [{"kind": "http", "url": http_stub.url(f"/sleep/0.3?{i}")}]} for i in range(4)}
    p = make_platform(services)
    assert run_smoke("phase1", p).ok
    assert http_stub.state.max_in_flight == 4
    http_stub.state.max_in_flight = 0
    assert run_smoke("phase1", p, concurrency=1).ok
    assert http_stub.state.max_in_flight == 1


def test_on_check_sees_every_check_once(web):
    seen = []
    lock = threading.Lock()

    def on_check(service, result):
        with lock:
            seen.append((service, result.name, result.status))

    report = run_smoke("web", web, on_check=on_check)
    expected = [(s.name, c.name, c.status) for s in report.services for c in s.checks]
    assert sorted(seen) == sorted(expected)


def test_unknown_target_and_bad_concurrency(web):
    with pytest.raises(UsageError, match="unknown target 'nope'; valid targets: store, ok, .*web, platform"):
        run_smoke("nope", web)
    with pytest.raises(UsageError):
        run_smoke("web", web, concurrency=0)


def test_targets_cover_groups_phase1_and_platform(web):
    assert [s.name for s in run_smoke("phase1", web, transport=NoTransport()).services] == ["store"]
    names = [s.name for s in run_smoke("platform", web, transport=NoTransport()).services]
    assert names == ["store", "ok", "deadunit", "expired", "noapp", "deadend"]


def test_default_checks_are_derived_from_units_app_port_and_endpoint(make_platform):
    p = make_platform(
        {
            "gitea": {"hostname": "gitea", "units": ["gitea", "nginx"], "app_port": 3000,
                      "endpoint": "https://127.0.1.1/"},
            "synapse": {"units": ["matrix-synapse"], "app_port": 8008, "endpoint": "http://127.0.1.2:8008/x"},
            "bare": {"app_port": 5432},
        },
        extra={"internal_domain": "homelab.lan"},
    )
    gitea = plan_service("gitea", p.services["gitea"], p, NoTransport())
    assert [(c.layer, c.kind, c.endpoint) for c in gitea] == [
        ("service in CT", "unit", "gitea@-"),
        ("service in CT", "unit", "nginx@-"),
        ("nginx/TLS", "tls", "127.0.1.1:443"),
        ("app port", "app_port", "127.0.0.1:3000@-"),
        ("public endpoint", "tcp", "127.0.1.1:443"),
        ("public endpoint", "https", "https://127.0.1.1/"),
    ]
    tls = gitea[2].check
    assert tls.server_name == "gitea.homelab.lan" and not tls.insecure  # never silently insecure
    synapse = plan_service("synapse", p.services["synapse"], p, NoTransport())
    assert [c.kind for c in synapse] == ["unit", "app_port", "tcp", "http"]
    assert synapse[2].endpoint == "127.0.1.2:8008"
    bare = plan_service("bare", p.services["bare"], p, NoTransport())
    assert [(c.kind, c.endpoint) for c in bare] == [("app_port", "127.0.0.1:5432@-"), ("tcp", "127.0.1.3:5432")]


def test_declared_checks_are_sorted_into_layer_order(default_platform):
    for name, svc in default_platform.services.items():
        planned = plan_service(name, svc, default_platform, NoTransport())
        layers = [LAYERS.index(c.layer) for c in planned]
        assert layers == sorted(layers), name
    mail = plan_service("mail", default_platform.services["mail"], default_platform, NoTransport())
    assert [(c.kind, c.name, c.endpoint) for c in mail][2:] == [
        ("smtp", "mail-smtp", "10.10.110.20:25"),
        ("smtp", "mail-submission", "10.10.110.20:587"),
        ("imaps", "mail-imaps", "10.10.110.20:993"),
    ]


def test_stopped_ct_is_a_service_failure_that_names_pct_s_reason(make_platform):
    # pct exits 255 for a stopped CT, which is not an ssh error: the unit layer fails with pct's words
    stopped = PctTransport(host="pve.test", runner=lambda argv, t: ExecResult(255, "", "CT 4242 not running\n"))
    p = make_platform({"svc": {"ct_id": 4242, "checks": [{"kind": "unit", "unit": "app"}]}})
    s = run_smoke("svc", p, transport=stopped).services[0]
    assert s.diagnosis == "svc: FAIL at service in CT — unit app is not active: CT 4242 not running (exit 255)"


@pytest.mark.parametrize("services", [["a"], ["a", "b"]], ids=["one service", "two services"])
def test_interrupt_returns_at_once_instead_of_waiting_for_every_deadline(make_platform, http_stub, services):
    # a deploy deadline (interrupt_main) or Ctrl-C arrives as KeyboardInterrupt in the main thread
    import _thread
    import time

    slow = {"kind": "http", "url": http_stub.url("/sleep/6"), "timeout": 10, "deadline": 20}
    p = make_platform({name: {"checks": [slow]} for name in services})
    timer = threading.Timer(0.5, _thread.interrupt_main)
    timer.start()
    start = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        run_smoke("phase1", p)
    assert time.monotonic() - start < 3


def test_a_service_none_of_whose_checks_could_run_is_not_reported_as_passed():
    from ralf.smoke.results import NOT_CHECKED, OK, WARN, CheckResult, ServiceResult

    blind = ServiceResult("inside-only", "g", [
        CheckResult("service in CT", "unit", "u", "x", NOT_CHECKED, "no transport"),
        CheckResult("app port", "app_port", "p", "x", NOT_CHECKED, "no transport"),
    ])
    assert blind.status == WARN
    partly = ServiceResult("mixed", "g", [
        CheckResult("service in CT", "unit", "u", "x", NOT_CHECKED, "no transport"),
        CheckResult("public endpoint", "tcp", "t", "x", OK, "open"),
    ])
    assert partly.status == OK


def test_by_default_every_service_of_the_target_runs_at_once(make_platform, http_stub):
    services = {f"s{i:02d}": {"checks": [{"kind": "http", "url": http_stub.url(f"/sleep/0.3?{i}")}]}
                for i in range(40)}  # more than the old fixed cap of 16
    p = make_platform(services)
    assert run_smoke("phase1", p).ok
    assert http_stub.state.max_in_flight > 16  # no fixed cap: all 40 start together (a loaded machine may lag)


def test_a_silent_endpoint_does_not_hold_the_others_and_the_target_deadline_ends_it(make_platform, http_stub,
                                                                                    open_port):
    services = {f"s{i:02d}": {"checks": [{"kind": "http", "url": http_stub.url(f"/sleep/0.05?{i}")}]}
                for i in range(50)}
    services["quiet"] = {"checks": [{"kind": "http", "url": f"http://{HOST}:{open_port}/", "timeout": 30,
                                     "deadline": 30}]}
    p = make_platform(services)
    order = []
    lock = threading.Lock()

    def on_check(service, result):
        with lock:
            order.append(service)

    report = run_smoke("phase1", p, on_check=on_check, deadline=6.0)  # ample for 50 quick answers on a busy machine
    by = {s.name: s for s in report.services}
    assert all(by[f"s{i:02d}"].status == "OK" for i in range(50))
    assert order[-1] == "quiet" and len(order) == 51  # every healthy result came first, as it finished
    quiet = by["quiet"]
    assert quiet.status == "FAIL" and quiet.failed_layer == "public endpoint"
    assert "no result within the target's deadline of 6 s" in quiet.diagnosis
    assert report.duration_ms < 30_000  # the deadline, not the check's own 30 s, ended the run


def test_a_bad_deadline_is_a_usage_error(web):
    with pytest.raises(UsageError, match="deadline"):
        run_smoke("web", web, deadline=0)


def test_on_check_is_called_in_the_callers_thread(web):
    threads = set()
    run_smoke("web", web, on_check=lambda service, result: threads.add(threading.current_thread()))
    assert threads == {threading.current_thread()}  # a progress display needs no lock


def test_many_services_unit_checks_cost_a_few_processes(make_platform, tmp_path):
    units_dir = tmp_path / "units"
    units_dir.mkdir()
    for i in range(40):
        (units_dir / f"u{i}").touch()
    p = make_platform({f"s{i}": {"checks": [{"kind": "unit", "unit": f"u{i}"}]} for i in range(40)}
                      | {"gone": {"checks": [{"kind": "unit", "unit": "missing"}]}},
                      exec_={"transport": "local", "unit_command": f"test -e {units_dir}/{{unit}}"})
    runs = []
    real = LocalTransport().runner

    def runner(argv, timeout):
        runs.append(argv)
        return real(argv, timeout)

    report = run_smoke("platform", p, transport=LocalTransport(runner=runner))
    # the 41 unit checks come in the loop's first turn: 6 batches of at most 8 (LocalTransport.batch_size)
    assert len(runs) == 6 and all(argv[:2] == ["sh", "-c"] for argv in runs)
    by = {s.name: s for s in report.services}
    assert all(by[f"s{i}"].status == "OK" for i in range(40))
    assert by["gone"].diagnosis == "gone: FAIL at service in CT — unit missing is not active (exit 1)"
