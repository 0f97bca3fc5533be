"""The lab end to end: real stack runner + real Ansible bring it up, real smoke checks it, each
``break`` fails the right layer, ``fix`` repairs it, ``down`` leaves nothing running."""

from __future__ import annotations

import pytest

from ralf.lab import breaks, control, supervisor
from ralf.smoke import run_smoke
from ralf.smoke.layers import APP_PORT, ENDPOINT, SERVICE, TLS
from ralf.stacks import run_stacks

from .lab_support import MOVES, lab_processes

pytestmark = pytest.mark.timeout(240)


@pytest.fixture(scope="module")
def lab_up(lab):
    platform, state = lab
    first = control.up(platform)
    assert first.ok, first.steps
    return platform, state, first


def _smoke(platform, target):
    return run_smoke(target, platform, retry_interval=0.2)


def test_up_runs_every_stack_and_smoke_passes(lab_up):
    platform, state, first = lab_up
    assert [s["stack"] for s in first.steps] == ["011-store-config", "021-portal-config", "031-echo-config"]
    assert all(s["result"] == "succeeded" for s in first.steps)
    assert all(s["changed"] and s["changed"] > 0 for s in first.steps)
    assert all(supervisor.is_active(u) for u in ("lab-store", "lab-portal", "lab-nginx", "lab-echo"))
    report = _smoke(platform, "platform")
    assert report.ok, [(s.name, s.failed_layer, s.diagnosis) for s in report.services]
    assert sorted(s.name for s in report.services) == ["echo", "portal", "store"]
    portal = next(s for s in report.services if s.name == "portal")
    assert portal.cert_days_left is not None and portal.cert_days_left > 300


def test_second_apply_changes_nothing(lab_up):
    platform, _, _ = lab_up
    pids = {u: supervisor.main_pid(u) for u in ("lab-store", "lab-portal", "lab-nginx", "lab-echo")}
    again = control.up(platform)
    assert again.ok
    assert [s["changed"] for s in again.steps] == [0, 0, 0]
    assert {u: supervisor.main_pid(u) for u in pids} == pids  # nothing was restarted


def test_stacks_read_the_platform_being_applied(lab_up, monkeypatch):
    """`ralf deploy --platform COPY` without $RALF_LAB_PLATFORM: the playbooks follow the runner's RALF_PLATFORM,
    not examples/lab/platform.yaml (whose addresses a developer's own lab may be using)."""
    import json

    platform, state, _ = lab_up
    monkeypatch.delenv("RALF_LAB_PLATFORM", raising=False)
    res = run_stacks(platform, ["031-echo-config"], apply=True, state_dir=state)
    assert res.ok and res.results[0].changed == 0
    spec = json.loads((state / "lab" / "units" / "lab-echo.json").read_text())
    assert spec["ready"] == [MOVES["127.0.30.10"], 8030]


def test_secret_file_is_private_and_store_requires_it(lab_up):
    import socket

    platform, _, _ = lab_up
    env = platform.secrets_path / "store.env"
    assert oct(env.stat().st_mode & 0o777) == "0o600"
    token = env.read_text().strip().split("=", 1)[1]
    assert len(token) >= 32
    with socket.create_connection((MOVES["127.0.10.10"], 7010), timeout=3) as s:
        f = s.makefile("rwb")
        for line in (b"SET k v\n", b"AUTH " + token.encode() + b"\n", b"SET k v\n", b"GET k\n"):
            f.write(line)
        f.flush()
        answers = [f.readline().strip() for _ in range(4)]
    assert answers == [b"ERR auth required", b"OK", b"OK", b"VALUE v"]


@pytest.mark.parametrize(
    "service, layer, expected",
    [
        ("store", "unit", SERVICE),
        ("portal", "service", SERVICE),
        ("portal", "nginx", SERVICE),
        ("portal", "tls", TLS),
        ("portal", "app", APP_PORT),
        ("echo", "app", ENDPOINT),
        ("echo", "unit", SERVICE),
    ],
)
def test_break_fails_the_right_layer_and_fix_repairs_it(lab_up, service, layer, expected):
    platform, _, _ = lab_up
    out = breaks.break_service(platform, service, layer)
    assert out.expect == expected
    try:
        report = _smoke(platform, "platform")
        by_name = {s.name: s for s in report.services}
        assert not report.ok
        assert by_name[service].status == "FAIL"
        assert by_name[service].failed_layer == expected, by_name[service].diagnosis
        if layer == "tls":
            assert "expired" in by_name[service].diagnosis
        others = [s for n, s in by_name.items() if n != service]
        assert all(s.status == "OK" for s in others), [(s.name, s.diagnosis) for s in others]
    finally:
        fixed = breaks.fix_service(platform, service)
    assert fixed.actions, "fix found nothing to repair"
    after = _smoke(platform, service)
    assert after.ok, [(s.name, s.failed_layer, s.diagnosis) for s in after.services]


def test_tls_and_app_breaks_survive_an_apply(lab_up):
    """The tour's premise: re-applying the stacks does not hide these, so `ralf deploy` fails at smoke."""
    platform, state, _ = lab_up
    breaks.break_service(platform, "portal", "tls")
    breaks.break_service(platform, "echo", "app")
    try:
        res = run_stacks(platform, ["021-portal-config", "031-echo-config"], apply=True, state_dir=state)
        assert res.ok
        report = _smoke(platform, "platform")
        layers = {s.name: s.failed_layer for s in report.services}
        assert layers == {"store": None, "portal": TLS, "echo": ENDPOINT}
    finally:
        breaks.fix_service(platform, "portal")
        breaks.fix_service(platform, "echo")
    assert _smoke(platform, "platform").ok


def test_stopped_units_are_restarted_by_an_apply(lab_up):
    platform, state, _ = lab_up
    breaks.break_service(platform, "portal", "nginx")
    res = run_stacks(platform, ["021-portal-config"], apply=True, state_dir=state)
    assert res.ok and res.results[0].changed == 1
    assert _smoke(platform, "portal").ok


def test_down_stops_everything(lab_up):
    platform, state, _ = lab_up
    assert lab_processes(state)
    result = control.down()
    assert result == {"lab-echo": "stopped", "lab-nginx": "stopped", "lab-portal": "stopped", "lab-store": "stopped"}
    assert lab_processes(state) == []
    for ip, port in ((MOVES["127.0.10.10"], 7010), (MOVES["127.0.20.10"], 8443), (MOVES["127.0.30.10"], 8030)):
        assert not supervisor.listening(ip, port, 0.5)
    report = _smoke(platform, "platform")
    assert {s.failed_layer for s in report.services} == {SERVICE}
    assert control.down() == {"lab-echo": "inactive", "lab-nginx": "inactive", "lab-portal": "inactive",
                              "lab-store": "inactive"}
