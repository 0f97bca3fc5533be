"""The exec transport: exact ssh / pct command lines (never executed), local execution for real."""

from __future__ import annotations

import dataclasses
import time

import pytest

from ralf.transport import (
    ExecResult,
    LocalTransport,
    NoTransport,
    PctTransport,
    SshTransport,
    transport_for,
)


class FakeRunner:
    """Records argv instead of running ssh; answers with a fixed result."""

    def __init__(self, result: ExecResult | None = None) -> None:
        self.result = result or ExecResult(0, "active\n", "")
        self.calls: list[tuple[list[str], float]] = []

    def __call__(self, argv: list[str], timeout: float) -> ExecResult:
        self.calls.append((argv, timeout))
        return self.result


def ssh_opts() -> list[str]:
    """Host keys are recorded on first contact in ralf's one known_hosts file, and checked ever after."""
    from ralf.paths import known_hosts

    return ["-o", "BatchMode=yes", "-o", "ConnectTimeout=5", "-o", f"UserKnownHostsFile={known_hosts()}",
            "-o", "StrictHostKeyChecking=accept-new"]


def test_default_platform_uses_pct_over_ssh_to_the_node(default_platform):
    t = transport_for(default_platform)
    assert isinstance(t, PctTransport)
    runner = FakeRunner()
    t = dataclasses.replace(t, runner=runner)
    vw = default_platform.services["vaultwarden"]
    res = t.run(vw, default_platform.exec.unit_command.format(unit="nginx"), 5)
    assert res.rc == 0 and res.transport_error is None
    assert runner.calls == [
        (["ssh", *ssh_opts(), "-i", "/opt/ralf/runtime/secrets/ralf_ed25519", "root@10.10.10.10",
          "pct exec 4020 -- systemctl is-active nginx"], 10)  # 5 s for the command + ssh's 5 s to connect
    ]


def test_pct_keeps_the_port_commands_words_intact(default_platform):
    runner = FakeRunner()
    t = dataclasses.replace(transport_for(default_platform), runner=runner)
    cmd = default_platform.exec.port_command.format(host="127.0.0.1", port=8080)
    t.run(default_platform.services["vaultwarden"], cmd, 3)
    assert runner.calls[0][0][-1] == "pct exec 4020 -- timeout 3 bash -c '</dev/tcp/$1/$2' app_port 127.0.0.1 8080"


def test_ssh_transport_goes_straight_to_the_ct(default_platform):
    runner = FakeRunner()
    t = SshTransport(user="admin", key_file="/k/id", runner=runner)
    t.run(default_platform.services["n8n"], "systemctl is-active n8n", 4)
    assert runner.calls == [(["ssh", *ssh_opts(), "-i", "/k/id", "admin@10.10.40.30", "systemctl is-active n8n"], 9)]
    assert t.where(default_platform.services["n8n"]) == "ssh 10.10.40.30"


def test_ssh_errors_are_transport_errors_but_a_stopped_ct_is_not(default_platform):
    vw = default_platform.services["vaultwarden"]
    denied = PctTransport(host="10.10.10.10", runner=FakeRunner(ExecResult(255, "", "root@10.10.10.10: Permission denied (publickey).\n")))
    res = denied.run(vw, "systemctl is-active nginx", 5)
    assert res.transport_error == "ssh root@10.10.10.10 failed: root@10.10.10.10: Permission denied (publickey)."
    stopped = PctTransport(host="10.10.10.10", runner=FakeRunner(ExecResult(255, "", "CT 4020 not running\n")))
    res = stopped.run(vw, "systemctl is-active nginx", 5)
    assert res.transport_error is None and res.rc == 255
    inactive = PctTransport(host="10.10.10.10", runner=FakeRunner(ExecResult(3, "inactive\n", "")))
    assert inactive.run(vw, "systemctl is-active nginx", 5).transport_error is None


def test_unreachable_node_is_a_transport_problem_not_a_dead_ct(default_platform):
    # ssh gives up connecting after ConnectTimeout, inside the process timeout, and says so itself
    runner = FakeRunner(ExecResult(255, "", "ssh: connect to host 10.10.10.10 port 22: Connection timed out\n"))
    t = PctTransport(host="10.10.10.10", connect_timeout=5, runner=runner)
    res = t.run(default_platform.services["vaultwarden"], "systemctl is-active nginx", 5)
    assert runner.calls[0][1] > 5  # the command's budget is not eaten by the connect
    assert res.transport_error == ("ssh root@10.10.10.10 failed: "
                                   "ssh: connect to host 10.10.10.10 port 22: Connection timed out")


def test_pct_needs_a_ct_id(make_platform):
    p = make_platform({"svc": {}})
    assert PctTransport(host="node").unavailable(p.services["svc"]) == "the service has no ct_id for pct exec"


def test_transport_selection(make_platform, default_platform):
    proxmox = {"api_url": "https://127.0.0.1:8006/api2/json", "node": "n", "lxc_template": "t"}
    t = transport_for(make_platform({"svc": {}}, exec_={"transport": "pct"}, extra={"proxmox": proxmox}))
    assert isinstance(t, NoTransport) and not t.configured
    assert "proxmox.ssh_host" in t.reason
    assert isinstance(transport_for(make_platform({"svc": {}}, exec_={"transport": "pct"})), NoTransport)
    assert isinstance(transport_for(make_platform({"svc": {}}, exec_={"transport": "none"})), NoTransport)
    assert isinstance(transport_for(make_platform({"svc": {}}, exec_={"transport": "local"})), LocalTransport)
    t = transport_for(make_platform({"svc": {}}, exec_={"transport": "ssh", "ssh_user": "ops"}))
    assert isinstance(t, SshTransport) and t.user == "ops"
    assert transport_for(default_platform).host == "10.10.10.10"


def test_local_transport_runs_for_real(make_platform):
    svc = make_platform({"svc": {}}).services["svc"]
    t = LocalTransport()
    assert t.run(svc, "echo active; exit 0", 30) == ExecResult(0, "active\n", "")
    assert t.run(svc, "echo inactive; exit 3", 30).rc == 3
    res = t.run(svc, "definitely-not-a-command-ralf", 30)
    assert res.rc == 127 and res.transport_error.startswith("command not found")


def test_local_transport_timeout_kills_the_whole_process_group(make_platform):
    svc = make_platform({"svc": {}}).services["svc"]
    start = time.monotonic()
    # a grandchild that keeps the pipes open would hang a plain subprocess.run timeout
    res = LocalTransport().run(svc, "sleep 30 & sleep 30", 0.3)
    assert res.timed_out and res.rc == 124
    assert time.monotonic() - start < 5


@pytest.mark.parametrize("transport", [NoTransport(reason="not configured: x")])
def test_no_transport_reports_why(transport, make_platform):
    svc = make_platform({"svc": {}}).services["svc"]
    assert transport.unavailable(svc) == "not configured: x"
    assert transport.run(svc, "true", 1).transport_error == "not configured: x"


def _cluster(write_platform, repo_root, ssh_host: str | None):
    from ralf.loader import load_platform

    node = f"{{ssh_host: {ssh_host}}}" if ssh_host else "{}"
    text = (repo_root / "platform.yaml").read_text()
    text = text.replace("  ssh_user: root\n  # The API", f"  ssh_user: root\n  nodes:\n    pve-2: {node}\n  # The API", 1)
    text = text.replace("    ct_id: 4020\n", "    ct_id: 4020\n    node: pve-2\n", 1)
    return load_platform(write_platform(text))


def test_pct_follows_the_services_node(write_platform, repo_root):
    p = _cluster(write_platform, repo_root, "10.10.10.11")
    runner = FakeRunner()
    t = dataclasses.replace(transport_for(p), runner=runner)
    t.run(p.services["vaultwarden"], "systemctl is-active nginx", 5)
    t.run(p.services["n8n"], "systemctl is-active nginx", 5)
    assert [c[0][-2:] for c in runner.calls] == [
        ["root@10.10.10.11", "pct exec 4020 -- systemctl is-active nginx"],  # on pve-2
        ["root@10.10.10.10", "pct exec 4030 -- systemctl is-active nginx"],  # on the default node
    ]
    assert t.where(p.services["vaultwarden"]) == "ct 4020 on pve-2"


def test_a_node_without_ssh_host_is_not_reachable(write_platform, repo_root):
    p = _cluster(write_platform, repo_root, None)
    t = transport_for(p)
    assert t.unavailable(p.services["vaultwarden"]) == (
        "not configured: proxmox.nodes.pve-2.ssh_host is needed for pct exec on that node")
    assert t.unavailable(p.services["n8n"]) is None
