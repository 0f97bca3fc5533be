"""The local LXC backend's pure parts: CT configuration, transport command lines, inventory, model."""

from __future__ import annotations

from pathlib import Path

import pytest

from ralf.backends.lxc import netns
from ralf.backends.lxc.containers import CtSpec, record_host_key, render_config, render_hosts
from ralf.errors import PlatformError
from ralf.inventory import all_vars, inventory_ini
from ralf.loader import load_platform
from ralf.transport import LxcTransport, transport_for

REPO = Path(__file__).resolve().parents[2]
CTLAB = REPO / "examples" / "ctlab" / "platform.yaml"

SPEC = CtSpec(ct_id=2010, service="postgres", hostname="postgres", ip="172.31.250.20", prefix=24,
              gateway="172.31.250.1", bridge="ralfct0", cores=2, memory_mb=1024)


def test_config_holds_the_service_data_cgroup_v1():
    text = render_config(SPEC, Path("/var/lib/ralf/lxc/ctlab/2010/rootfs"), v2=False)
    lines = text.splitlines()
    assert "lxc.uts.name = postgres" in lines
    assert "lxc.rootfs.path = dir:/var/lib/ralf/lxc/ctlab/2010/rootfs" in lines
    assert "lxc.net.0.link = ralfct0" in lines
    assert "lxc.net.0.ipv4.address = 172.31.250.20/24" in lines
    assert "lxc.net.0.ipv4.gateway = 172.31.250.1" in lines
    assert "lxc.cgroup.memory.limit_in_bytes = 1073741824" in lines
    assert "lxc.cgroup.cpu.cfs_quota_us = 200000" in lines
    assert not any("cgroup2" in ln for ln in lines)


def test_config_cgroup_v2_keys():
    lines = render_config(SPEC, Path("/r"), v2=True).splitlines()
    assert "lxc.cgroup2.memory.max = 1073741824" in lines
    assert "lxc.cgroup2.cpu.max = 200000 100000" in lines


def test_mac_is_stable_and_locally_administered():
    assert SPEC.hwaddr == "02:52:00:00:07:da"
    assert CtSpec(**{**SPEC.__dict__, "ct_id": 11010}).hwaddr == "02:52:00:00:2b:02"


def test_hosts_file_names_the_ct():
    assert "172.31.250.20\tpostgres\n" in render_hosts(SPEC)
    fq = CtSpec(**{**SPEC.__dict__, "hostname": "pg.lab.test"})
    assert "172.31.250.20\tpg.lab.test pg\n" in render_hosts(fq)


def test_host_key_replaces_the_ips_old_line(tmp_path):
    kh = tmp_path / "known_hosts"
    kh.write_text("172.31.250.20 ssh-ed25519 OLD\n172.31.250.30 ssh-ed25519 OTHER\n")
    record_host_key(kh, "172.31.250.20", "ssh-ed25519 NEW root@x\n")
    assert kh.read_text().splitlines() == ["172.31.250.30 ssh-ed25519 OTHER", "172.31.250.20 ssh-ed25519 NEW"]


def test_lxc_argv_enters_the_namespace_with_a_fresh_sysfs():
    argv = netns.lxc_argv("ralf-ctlab", ["lxc-info", "-n", "2010"])
    assert argv[:5] == ["unshare", "--mount", "--propagation", "private", "sh"]
    assert argv[-6:] == ["ralf-lxc", "/run/netns/ralf-ctlab", "/run/ralf-cgroup-ralf-ctlab", "lxc-info", "-n", "2010"]
    script = argv[6]
    assert "mount -t sysfs sysfs /sys" in script and "/sys/fs/cgroup" in script and 'nsenter --net="$ns"' in script


def test_transport_is_lxc_attach_with_argv_not_a_shell():
    platform = load_platform(CTLAB)
    t = transport_for(platform)
    assert isinstance(t, LxcTransport) and t.kind == "lxc"
    svc = platform.services["postgres"]
    argv = t.argv(svc, "systemctl is-active postgresql")
    inner = argv[argv.index("lxc-attach"):]
    assert inner == ["lxc-attach", "-n", "2010", "-P", "/var/lib/ralf/lxc/ctlab", "--clear-env",
                     "-v", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                     "--", "systemctl", "is-active", "postgresql"]
    assert t.where(svc) == "ct 2010"


def test_transport_reports_a_down_node_as_a_transport_error():
    platform = load_platform(CTLAB)
    t = LxcTransport(netns="ralf-does-not-exist", lxc_path="/nonexistent",
                     runner=lambda argv, timeout: pytest.fail("nothing may run when the node is down"))
    res = t.run(platform.services["postgres"], "systemctl is-active postgresql", 5)
    assert res.transport_error and "LXC node is down" in res.transport_error


def test_inventory_checks_host_keys_strictly_and_points_at_the_cache():
    platform = load_platform(CTLAB)
    v = all_vars(platform)
    assert v["ansible_ssh_common_args"] == (
        "-o StrictHostKeyChecking=yes -o UserKnownHostsFile=/var/lib/ralf/lxc/ctlab/known_hosts")
    assert v["ralf_apt_mirror"] == "http://172.31.250.1:8000/debian"
    assert v["ralf_pip_find_links"] == "http://172.31.250.1:8000/pypi/"
    assert "StrictHostKeyChecking=no" not in inventory_ini(platform)


def test_inventory_names_the_ca_certificate_when_issued(tmp_path, monkeypatch):
    monkeypatch.setenv("RALF_SECRETS_DIR", str(tmp_path))
    from ralf.backends.lxc import tls

    platform = load_platform(CTLAB)
    assert "nginx_tls_cert_src" not in inventory_ini(platform)
    issued = tls.ensure_certs(platform)
    # mail (SMTP, IMAPS), postgres (TLS to its clients), synapse (nginx for its public names), n8n (nginx)
    assert set(issued) == {"mail", "n8n", "postgres", "synapse"}
    assert tls.ensure_certs(platform) == []  # second run: nothing to renew
    text = inventory_ini(platform)
    assert f"ralf_tls_cert_src={tmp_path}/tls/mail/cert.pem" in text
    info = tls.ca(platform).info(tmp_path / "tls" / "mail")
    assert info.issuer_is_lab_ca and set(info.names) == {"mail.ctlab.test", "172.31.250.120"}
    info = tls.ca(platform).info(tmp_path / "tls" / "synapse")
    assert info.names == ("matrix.ctlab.test", "ctlab.test", "172.31.250.110")
    assert tls.ca(platform).info(tmp_path / "tls" / "postgres").names == ("postgres.ctlab.test", "172.31.250.20")
    assert oct((tmp_path / "ca" / "ca.key").stat().st_mode & 0o777) == "0o600"


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "platform.yaml"
    p.write_text(text)
    return p


BASE = CTLAB.read_text()


def test_host_ip_must_be_in_the_network(tmp_path):
    bad = BASE.replace("host_ip: 172.31.250.1 ", "host_ip: 10.10.0.1 ")
    with pytest.raises(PlatformError) as e:
        load_platform(_write(tmp_path, bad))
    assert "lxc_host.host_ip" in str(e.value) and "outside the network" in str(e.value)


def test_host_ip_must_not_be_a_service_ip(tmp_path):
    bad = BASE.replace("host_ip: 172.31.250.1 ", "host_ip: 172.31.250.20 ")
    with pytest.raises(PlatformError) as e:
        load_platform(_write(tmp_path, bad))
    assert "already used" in str(e.value)


def test_lxc_transport_needs_an_lxc_host(tmp_path):
    text = BASE.split("lxc_host:")[0] + "secrets:" + BASE.split("secrets:", 1)[1]
    with pytest.raises(PlatformError) as e:
        load_platform(_write(tmp_path, text))
    assert "exec.transport" in str(e.value) and "lxc_host" in str(e.value)


def test_lxc_stacks_need_no_tofu_nor_state_backend():
    platform = load_platform(CTLAB)
    assert platform.proxmox is None and platform.state_backend is None
    from ralf.catalog import Catalog
    from ralf.stacks.runner import preflight

    stacks = [s for s in Catalog(platform).stacks if s.type == "lxc"]
    tofu_path, _, creds = preflight(platform, stacks, {"PATH": "/nonexistent"}, None)
    assert tofu_path is None and creds == {}
