"""A real LXC node: CTs from service data, the lxc transport, Ansible over SSH with checked host keys.

One small platform of the test's own (namespace ralf-t<pid>, 172.31.252.0/24, no route out): a CT
made by its ``*-lxc`` stack, configured by a real playbook over SSH, smoked through ``lxc-attach``,
left alone by a second run, and gone — CT, namespace, processes — after ``down``.
"""

from __future__ import annotations

import os
import subprocess
import textwrap
from pathlib import Path

import network_guard
import pytest

from tests.lxc.conftest import CACHE, require_lxc

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]  # booting CTs on a busy 2-core machine

PLAYBOOK = """\
- name: Configure the box
  hosts: box
  gather_facts: false
  tasks:
    - name: Reach the CT over SSH
      ansible.builtin.ping:
    - name: Leave a mark
      ansible.builtin.copy:
        dest: /etc/ralf-mark
        content: "converged by ralf\\n"
        mode: "0644"
"""


def _platform_text(name: str, root: Path) -> str:
    return textwrap.dedent(f"""\
        version: 1
        name: lxc-node-test
        network: {{cidr: 172.31.252.0/24}}
        lxc_host:
          name: {name}
          host_ip: 172.31.252.1
          bridge: rt{os.getpid() % 100000}
          lxc_path: {root}/lxc
          cache_dir: {CACHE}
          cache_port: 8000
          boot_timeout: 120
        secrets: {{dir: {root}/secrets}}
        exec: {{transport: lxc}}
        stacks_dir: {root}/stacks
        groups: [{{name: phase1, word: Phase1, phase1: true}}]
        services:
          box:
            word: Box
            group: phase1
            ct_id: 900
            ip: 172.31.252.10
            hostname: box
            size: {{cores: 1, memory_mb: 512, disk_gb: 4}}
            stacks: [090-box-lxc, 091-box-config]
            units: [ssh]
            checks:
              - {{kind: unit, unit: ssh}}
              - {{kind: unit, unit: systemd-journald}}
              - {{kind: tcp, name: box-ssh, port: 22}}
              - {{kind: app_port, name: box-sshd, port: 22}}
        """)


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    require_lxc()
    from ralf.backends.lxc.node import LxcNode
    from ralf.loader import load_platform

    root = tmp_path_factory.mktemp("lxcnode")
    (root / "stacks" / "091-box-config").mkdir(parents=True)
    (root / "stacks" / "091-box-config" / "playbook.yml").write_text(PLAYBOOK)
    name = f"t{os.getpid() % 100000}"
    pf = root / "platform.yaml"
    pf.write_text(_platform_text(name, root))
    platform = load_platform(pf)
    n = LxcNode(platform)
    network_guard.allow_namespace(platform.lxc_host.netns)
    yield platform, n
    n.down()
    network_guard.forget_namespace(platform.lxc_host.netns)


def _run(platform, only, state_dir, **env):
    from ralf.stacks import run_stacks

    lines: list[str] = []
    res = run_stacks(platform, only=only, apply=True, state_dir=state_dir, on_output=lines.append,
                     ansible_retries=0, environ={**os.environ, **env})
    return res, lines


def test_the_lxc_stack_makes_and_starts_the_ct_then_leaves_it_alone(node, tmp_path):
    platform, n = node
    # As an Apply template runs them: the CT (and the SSH key it is made with), then its config over SSH.
    res, lines = _run(platform, ["090-box-lxc", "091-box-config"], tmp_path)
    assert res.ok, "\n".join(lines[-30:])
    assert res.results[0].changed == 1 and "created and started" in res.results[0].note
    assert res.results[1].changed == 1
    assert n.containers.state("900") == "RUNNING"
    # Same service data as on Proxmox: hostname, address, the key from the secrets directory.
    assert n.containers.attach("900", ["hostname"]).stdout.strip() == "box"
    assert "172.31.252.10/24" in n.containers.attach("900", ["ip", "-4", "-o", "addr", "show", "eth0"]).stdout
    pub = (platform.secrets_path / "ralf_ed25519.pub").read_text().split()[1]
    assert pub in n.containers.attach("900", ["cat", "/root/.ssh/authorized_keys"]).stdout
    # No route out: the namespace holds the bridge and loopback only.
    routes = subprocess.run(["ip", "-n", platform.lxc_host.netns, "route"], capture_output=True, text=True).stdout
    assert "default" not in routes

    marker = "/root/still-here"
    n.containers.attach("900", ["touch", marker])
    again, _ = _run(platform, ["090-box-lxc"], tmp_path)
    assert again.ok and again.results[0].changed == 0
    assert n.containers.attach("900", ["test", "-e", marker]).returncode == 0  # data left alone


def test_plan_mode_changes_nothing(node, tmp_path):
    platform, n = node
    from ralf.stacks import run_stacks

    res = run_stacks(platform, only=["090-box-lxc"], apply=False, state_dir=tmp_path)
    assert res.ok and res.results[0].changed == 0  # running: nothing to do


def test_ansible_converges_over_ssh_with_recorded_host_keys(node, tmp_path):
    platform, n = node
    first, lines = _run(platform, ["091-box-config"], tmp_path)
    assert first.ok, "\n".join(lines)
    assert first.results[0].changed == 0  # converged with the CT in the first test
    second, _ = _run(platform, ["091-box-config"], tmp_path)
    assert second.ok and second.results[0].changed == 0
    assert n.containers.attach("900", ["cat", "/etc/ralf-mark"]).stdout == "converged by ralf\n"
    inventory = (first.run_dir / "inventory.ini").read_text()
    assert "StrictHostKeyChecking=yes" in inventory and "StrictHostKeyChecking=no" not in inventory


def test_a_changed_host_key_is_refused(node, tmp_path):
    platform, n = node
    kh = n.known_hosts
    saved = kh.read_text()
    try:
        kh.write_text("172.31.252.10 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGk9Zl2o0fYyQ1b0YxJ3pQ9y7Nf8bWb0d1Qe7r0xq4Xh\n")
        # A fresh SSH connection (Ansible would otherwise reuse its persistent one for 60 s).
        res, lines = _run(platform, ["091-box-config"], tmp_path, ANSIBLE_SSH_ARGS="-o ControlMaster=no")
        assert not res.ok
        assert any("REMOTE HOST IDENTIFICATION HAS CHANGED" in ln or "Host key verification failed" in ln
                   for ln in lines), "\n".join(lines[-20:])
    finally:
        kh.write_text(saved)


def test_smoke_through_lxc_attach(node):
    platform, n = node
    from ralf.smoke.engine import run_smoke

    report = run_smoke("box", platform)
    assert report.ok, report
    assert report.transport == "lxc"
    n.containers.attach("900", ["systemctl", "stop", "ssh.socket", "ssh"])
    try:
        broken = run_smoke("box", platform)
        assert not broken.ok
        # both unit checks went in one batch (one shell in the node's namespace, an lxc-attach each)
        assert broken.services[0].failed_layer == "service in CT"
        units = {c.name: (c.status, c.detail) for c in broken.services[0].checks if c.kind == "unit"}
        assert units["box-ssh"][0] == "FAIL" and units["box-ssh"][1].startswith("unit ssh is inactive")
        assert units["box-systemd-journald"] == ("OK", "active")
    finally:
        n.containers.attach("900", ["systemctl", "start", "ssh"])


def test_down_leaves_no_ct_namespace_or_process(node, tmp_path):
    platform, n = node
    from ralf.backends.lxc import netns

    assert n.is_up()
    pids_before = netns.pids(platform.lxc_host.netns)
    assert pids_before  # the CT's init and the cache server live there
    n.down()
    assert not netns.exists(platform.lxc_host.netns)
    assert n.containers.names() == []
    for pid in pids_before:
        assert not Path(f"/proc/{pid}").exists() or _zombie(pid), pid
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert str(n.path) not in ps


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except OSError:
        return True
