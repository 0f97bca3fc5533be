"""``ralf smoke``: human lines, --json, --junit, progress on stderr, exit codes 0/1/2."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET

import pytest

HOST = "127.0.0.1"


@pytest.fixture
def platform_file(make_platform, open_port, closed_port, nginx, certs):
    groups = [{"name": "phase1", "word": "Phase1", "phase1": True}, {"name": "web", "word": "Web"}]
    p = make_platform(
        {
            "store": {"checks": [{"kind": "tcp", "name": "store-tcp", "host": HOST, "port": open_port}]},
            "site": {"group": "web", "checks": [
                {"kind": "tls", "name": "site-tls", "host": HOST, "port": nginx.ports["soon"],
                 "server_name": "good.test", "ca_file": str(certs.ca)},
                {"kind": "https", "name": "site-nginx", "url": f"https://{HOST}:{nginx.ports['soon']}/",
                 "ca_file": str(certs.ca)},
            ]},
            "old": {"group": "web", "checks": [
                {"kind": "unit", "unit": "old"},
                {"kind": "tls", "name": "old-tls", "host": HOST, "port": nginx.ports["expired"],
                 "server_name": "good.test", "insecure": True},
                {"kind": "https", "name": "old-nginx", "url": f"https://{HOST}:{nginx.ports['expired']}/",
                 "insecure": True},
            ]},
            "gone": {"group": "web", "checks": [
                {"kind": "tcp", "name": "gone-tcp", "host": HOST, "port": closed_port},
            ]},
        },
        groups=groups,
    )
    return str(p.source)


def test_ok_target_prints_the_originals_lines_and_exits_0(run_cli, platform_file, open_port):
    code, out, err = run_cli("smoke", "store", "--platform", platform_file)
    assert code == 0, err
    lines = out.splitlines()
    assert re.fullmatch(rf"\[smoke\] OK tcp store-tcp 127\.0\.0\.1:{open_port} \d+ ms", lines[0])
    assert lines[1] == "[smoke] store: OK — 1 check"
    assert re.fullmatch(r"\[smoke\] Done \(store\): 1 service — 1 OK, 0 WARN, 0 FAIL in \d+\.\d s", lines[-1])
    assert "[smoke] … store done (1/1 services)" in err


def test_default_target_is_phase1(run_cli, platform_file):
    code, out, _ = run_cli("smoke", "--platform", platform_file)
    assert code == 0 and "Done (phase1)" in out and "store-tcp" in out and "site" not in out


def test_failing_group_reports_every_failure_and_exits_1(run_cli, platform_file):
    code, out, err = run_cli("smoke", "web", "--platform", platform_file)
    assert code == 1
    assert "[smoke] WARN tls site-tls" in out and "certificate expires in 5 days" in out
    assert "[smoke] site: WARN" in out
    # exec transport is none: the unit layer is not checked, TLS is the first layer that runs
    assert "[smoke] NOT CHECKED unit old-old old@- — not configured: exec.transport is none" in out
    assert "[smoke] old: FAIL at nginx/TLS — certificate expired 3 days ago (1 later checks skipped)" in out
    assert "[smoke] gone: FAIL at public endpoint — connection refused" in out
    assert "[smoke] 2 services failed:" in out
    assert out.rstrip().splitlines()[-1].startswith("[smoke] Done (web): 3 services — 0 OK, 1 WARN, 2 FAIL")
    assert "gone FAIL" in err


def test_insecure_is_never_silent(run_cli, make_platform, nginx):
    p = make_platform({"svc": {"checks": [
        {"kind": "https", "name": "svc-nginx", "url": f"https://{HOST}:{nginx.ports['good']}/", "insecure": True}]}})
    code, out, _ = run_cli("smoke", "svc", "--platform", str(p.source))
    assert code == 0
    assert re.search(r"\[smoke\] OK https svc-nginx https://127\.0\.0\.1:\d+/ \d+ ms \(insecure\)", out)


def test_json_output(run_cli, platform_file):
    code, out, _ = run_cli("smoke", "web", "--json", "--platform", platform_file)
    assert code == 1
    data = json.loads(out)
    assert data["target"] == "web" and data["ok"] is False and data["exit_code"] == 1
    assert data["summary"] == {"services": 3, "ok": 0, "warn": 1, "fail": 2}
    old = next(s for s in data["services"] if s["name"] == "old")
    assert old["failed_layer"] == "nginx/TLS" and old["cert_days_left"] == -3
    assert [c["status"] for c in old["checks"]] == ["NOT CHECKED", "FAIL", "SKIPPED"]


def test_junit_file(run_cli, platform_file, tmp_path):
    junit = tmp_path / "smoke.xml"
    code, _, _ = run_cli("smoke", "web", "--junit", str(junit), "--platform", platform_file)
    assert code == 1
    root = ET.parse(junit).getroot()
    assert root.tag == "testsuites" and root.get("tests") == "6"
    assert root.get("failures") == "2" and root.get("skipped") == "2"
    suites = {s.get("name"): s for s in root.findall("testsuite")}
    assert set(suites) == {"site", "old", "gone"}
    failure = suites["old"].find("testcase/failure")
    assert failure.get("message") == "certificate expired 3 days ago"
    assert "WARN" in suites["site"].find("testcase/system-out").text


def test_usage_errors_exit_2(run_cli, platform_file, tmp_path):
    code, out, err = run_cli("smoke", "nope", "--platform", platform_file)
    assert code == 2 and out == ""
    assert err.strip() == "ralf: unknown target 'nope'; valid targets: store, site, old, gone, phase1, web, platform"
    code, _, err = run_cli("smoke", "web", "--concurrency", "0", "--platform", platform_file)
    assert code == 2
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nname: x\nservices: [\n")
    code, _, err = run_cli("smoke", "--platform", str(bad))
    assert code == 2 and err.startswith("ralf: ") and "Traceback" not in err


def test_unwritable_junit_is_a_usage_error_before_anything_runs(run_cli, platform_file, tmp_path):
    code, out, err = run_cli("smoke", "store", "--junit", str(tmp_path / "no" / "dir" / "x.xml"), "--platform", platform_file)
    assert code == 2 and out == ""
    assert err.strip() == f"ralf: cannot write JUnit file {tmp_path / 'no' / 'dir' / 'x.xml'}: directory {tmp_path / 'no' / 'dir'} does not exist"
    assert "[smoke] …" not in err  # no check ran


def test_junit_write_failure_after_the_run_still_shows_the_report(run_cli, platform_file, tmp_path, monkeypatch):
    import builtins

    junit = tmp_path / "smoke.xml"
    real_open = builtins.open

    def failing_open(file, mode="r", *a, **kw):
        if str(file) == str(junit) and "w" in mode:
            raise OSError(28, "No space left on device")
        return real_open(file, mode, *a, **kw)

    monkeypatch.setattr(builtins, "open", failing_open)
    code, out, err = run_cli("smoke", "store", "--junit", str(junit), "--platform", platform_file)
    assert code == 2
    assert "[smoke] Done (store)" in out  # the results are not lost
    assert err.splitlines()[-1] == f"ralf: cannot write JUnit file {junit}: No space left on device"


def test_concurrency_1_gives_the_same_report(run_cli, platform_file):
    _, a, _ = run_cli("smoke", "web", "--json", "--platform", platform_file)
    _, b, _ = run_cli("smoke", "web", "--json", "--concurrency", "1", "--platform", platform_file)
    strip = lambda d: [(s["name"], s["status"], s["diagnosis"]) for s in json.loads(d)["services"]]  # noqa: E731
    assert strip(a) == strip(b)


def test_lab_platform_plans_layers_with_the_local_transport(lab_platform):
    from ralf.smoke.layers import plan_service
    from ralf.transport import LocalTransport, transport_for

    t = transport_for(lab_platform)
    assert isinstance(t, LocalTransport)
    portal = plan_service("portal", lab_platform.services["portal"], lab_platform, t)
    assert [c.layer for c in portal] == ["service in CT", "service in CT", "nginx/TLS", "app port", "public endpoint"]
    assert lab_platform.exec.unit_command.format(unit="lab-portal") == "ralf lab unit lab-portal"


def test_ctrl_c_stops_the_cli_at_once(make_platform, http_stub):
    import os
    import signal
    import subprocess
    import sys
    import time

    slow = {"kind": "http", "url": http_stub.url("/sleep/6"), "timeout": 10, "deadline": 20}
    p = make_platform({"a": {"checks": [slow]}, "b": {"checks": [slow]}})
    proc = subprocess.Popen([sys.executable, "-m", "ralf", "smoke", "--platform", str(p.source)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ),
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        end = time.monotonic() + 20
        while http_stub.state.in_flight < 2 and time.monotonic() < end:
            time.sleep(0.05)
        assert http_stub.state.in_flight == 2, "both checks should be running"
        start = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=15)
        took = time.monotonic() - start
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130 and took < 3, (took, err)
    assert "ralf: interrupted; smoke stopped before all checks finished" in err and "Traceback" not in err
