"""`ralf lab` and `ralf status` on the command line: exit codes, one-line errors, the journal wired in."""

from __future__ import annotations

import json

from ralf.lab import supervisor

from .lab_support import LAB
from .test_lab_supervisor import free_port, web_unit

LAB_PLATFORM = str(LAB / "platform.yaml")


def test_unit_and_port_exit_codes(state, run_cli):
    port = free_port()
    web_unit("t-web", port)
    assert run_cli("lab", "unit", "t-web")[:2] == (3, "inactive\n")
    assert run_cli("lab", "port", "127.0.0.1", str(port))[0] == 1
    supervisor.start("t-web")
    assert run_cli("lab", "unit", "t-web")[:2] == (0, "active\n")
    assert run_cli("lab", "port", "127.0.0.1", str(port))[0] == 0
    assert run_cli("lab", "stop", "t-web")[1] == "t-web: stopped\n"
    assert run_cli("lab", "unit", "t-web")[0] == 3


def test_bad_requests_are_one_line_errors(state, run_cli):
    code, out, err = run_cli("lab", "break", "nosuch", "tls", "--platform", LAB_PLATFORM)
    assert code == 2 and "unknown service 'nosuch'" in err and "Traceback" not in err
    code, out, err = run_cli("lab", "break", "store", "tls", "--platform", LAB_PLATFORM)
    assert code == 2 and err.strip() == "ralf: service 'store' has no TLS endpoint; break one of: unit, app"
    code, out, err = run_cli("lab", "break", "portal", "app", "--platform", LAB_PLATFORM)
    assert code == 2 and "not running" in err
    # a stopped lab is not broken "successfully" (a TLS break used to start nginx on the way)
    for layer in ("tls", "nginx", "unit"):
        code, out, err = run_cli("lab", "break", "portal", layer, "--platform", LAB_PLATFORM)
        assert code == 2 and "is not running; start the lab first (`ralf lab up`)" in err, (layer, err)
    assert not (state / "lab" / "tls").exists() and not (state / "lab" / "run").exists()
    code, out, err = run_cli("lab", "start", "lab-nothing")
    assert code == 1 and "not installed" in err and len(err.strip().splitlines()) == 1


def test_up_refuses_a_real_platform(state, run_cli, repo_root):
    code, out, err = run_cli("lab", "up", "--platform", str(repo_root / "platform.yaml"))
    assert code == 2
    assert "is not a lab platform" in err and "OpenTofu" in err
    assert not (state / "runs").exists()  # nothing ran


def test_status_without_a_journal(state, run_cli):
    code, out, err = run_cli("status", "--platform", LAB_PLATFORM, "--json")
    assert code == 0, err
    data = json.loads(out)
    assert [s["service"] for s in data["services"]] == ["store", "portal", "echo"]
    assert {s["state"] for s in data["services"]} == {"never"}


def test_status_reads_the_journal_and_writes_the_page(state, run_cli, tmp_path, lab_platform):
    from ralf.catalog import Catalog
    from ralf.journal import Journal, PlatformId
    from ralf.planner import build_plan

    plan = build_plan(Catalog(lab_platform), "web")
    with Journal() as j:
        rid = j.start_run(plan, executor="local", platform=PlatformId.of(lab_platform))
        j.update_step(rid, 0, result="succeeded", finished_at="2026-11-27T07:00:00+00:00")
        j.update_step(rid, 1, result="failed", finished_at="2026-11-27T07:00:05+00:00")
        j.record_smoke(rid, 1, "portal", "FAIL", failed_layer="nginx/TLS",
                       diagnosis="FAIL at nginx/TLS — certificate expired 3 days ago", cert_days_left=-3,
                       at="2026-11-27T07:00:05+00:00")
        j.finish_run(rid, "failed")
    page = tmp_path / "board.html"
    code, out, err = run_cli("status", "--platform", LAB_PLATFORM, "--html", str(page))
    assert code == 1, err
    lines = {line.split()[1]: line for line in out.splitlines()[2:5]}
    assert "FAIL" in lines["portal"] and "certificate expired 3 days ago" in lines["portal"]
    assert "NEVER RUN" in lines["store"]
    assert "│" not in out and "\x1b[" not in out  # plain when piped
    html = page.read_text()
    assert 'data-service="portal" data-state="fail"' in html
    assert 'data-service="echo" data-state="never"' in html


def test_status_html_to_a_bad_place_is_one_message(state, run_cli, tmp_path):
    code, out, err = run_cli("status", "--platform", LAB_PLATFORM, "--html", str(tmp_path / "no" / "such" / "x.html"))
    assert code == 1 and err.startswith("ralf: cannot write") and "Traceback" not in err


def test_progress_is_plain_when_piped(capsys):
    import io

    from ralf.lab.progress import StepProgress

    buf = io.StringIO()
    p = StepProgress(2, stream=buf)
    p.start("011-store-config")
    p.line("TASK [x]\n")
    p.line("   ")
    p.finish("succeeded", "changed=0")
    lines = buf.getvalue().splitlines()
    assert lines[0] == "[1/2] 011-store-config ..."
    assert lines[1].startswith("[1/2 011-store-config +") and lines[1].endswith("s] TASK [x]")
    assert lines[2].startswith("[1/2] 011-store-config succeeded in ") and lines[2].endswith("s (changed=0)")
    assert "\x1b[" not in buf.getvalue() and len(lines) == 3
