"""One service's CT as an LXC container: its configuration (pure) and its life (through LXC).

The container is named by the service's CT id, as ``pct`` names it, and lives under the node's
``lxc_path``. Its configuration comes from the same service data the OpenTofu module reads:
hostname, IP in the node's network, cores and memory (the disk size cannot be expressed with a
directory rootfs and is not enforced). Before its first start ralf writes into the copied rootfs
what Proxmox would inject: the hostname, ``/etc/hosts``, the SSH public key for root, and fresh
SSH host keys — whose public half ralf records in the node's ``known_hosts``, so Ansible checks
host keys strictly.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from ralf import process
from ralf.backends.lxc import netns
from ralf.errors import RalfError

CGROUP_ROOT = Path("/sys/fs/cgroup")


class ContainerError(RalfError):
    """An LXC operation on a CT failed."""


@dataclass(frozen=True)
class CtSpec:
    """What a CT is made from: the service's data, resolved against the node."""

    ct_id: int
    service: str
    hostname: str
    ip: str
    prefix: int
    gateway: str
    bridge: str
    cores: int | None = None
    memory_mb: int | None = None

    @property
    def name(self) -> str:
        return str(self.ct_id)

    @property
    def hwaddr(self) -> str:
        # Stable per CT id, locally administered (02:...), so a recreated CT keeps its MAC.
        n = self.ct_id & 0xFFFFFFFF
        return "02:52:" + ":".join(f"{(n >> s) & 0xFF:02x}" for s in (24, 16, 8, 0))


def cgroup_v2() -> bool:
    return (CGROUP_ROOT / "cgroup.controllers").exists()


def render_config(spec: CtSpec, rootfs: Path, *, v2: bool) -> str:
    """The container's LXC configuration file."""
    lines = [
        "# Made by ralf from the platform file; ralf lab down removes it.",
        "lxc.include = /usr/share/lxc/config/common.conf",
        f"lxc.uts.name = {spec.hostname}",
        f"lxc.rootfs.path = dir:{rootfs}",
        "lxc.apparmor.profile = unconfined",
        "lxc.net.0.type = veth",
        f"lxc.net.0.link = {spec.bridge}",
        "lxc.net.0.flags = up",
        "lxc.net.0.name = eth0",
        f"lxc.net.0.hwaddr = {spec.hwaddr}",
        f"lxc.net.0.ipv4.address = {spec.ip}/{spec.prefix}",
        f"lxc.net.0.ipv4.gateway = {spec.gateway}",
    ]
    if spec.memory_mb:
        key = "lxc.cgroup2.memory.max" if v2 else "lxc.cgroup.memory.limit_in_bytes"
        lines.append(f"{key} = {spec.memory_mb * 1024 * 1024}")
    if spec.cores:
        if v2:
            lines.append(f"lxc.cgroup2.cpu.max = {spec.cores * 100000} 100000")
        else:
            lines += ["lxc.cgroup.cpu.cfs_period_us = 100000", f"lxc.cgroup.cpu.cfs_quota_us = {spec.cores * 100000}"]
    return "\n".join(lines) + "\n"


def render_hosts(spec: CtSpec) -> str:
    short = spec.hostname.split(".")[0]
    names = spec.hostname if short == spec.hostname else f"{spec.hostname} {short}"
    return f"127.0.0.1\tlocalhost\n{spec.ip}\t{names}\n::1\tlocalhost ip6-localhost ip6-loopback\n"


class Containers:
    """LXC operations for the CTs of one node (all run inside the node's namespace)."""

    def __init__(self, netns_name: str, lxc_path: Path) -> None:
        self.netns_name = netns_name
        self.lxc_path = lxc_path

    # ---------------------------------------------------------------- queries

    def dir(self, spec_or_name: CtSpec | str) -> Path:
        name = spec_or_name.name if isinstance(spec_or_name, CtSpec) else spec_or_name
        return self.lxc_path / name

    def exists(self, name: str) -> bool:
        return (self.lxc_path / name / "config").is_file()

    def names(self) -> list[str]:
        if not self.lxc_path.is_dir():
            return []
        return sorted(p.name for p in self.lxc_path.iterdir() if (p / "config").is_file())

    def state(self, name: str) -> str:
        """RUNNING, STOPPED, … as lxc-info says; ABSENT when there is no such CT."""
        if not self.exists(name):
            return "ABSENT"
        if not netns.exists(self.netns_name):
            return "STOPPED"
        proc = self._lxc(["lxc-info", "-n", name, "-P", str(self.lxc_path), "-s", "-H"], check=False)
        return proc.stdout.strip() or "STOPPED"

    # ---------------------------------------------------------------- life

    def create(self, spec: CtSpec, template_rootfs: Path, pubkey: str, known_hosts: Path) -> None:
        """Copy the rootfs, inject hostname, hosts, root's key and fresh host keys, write the config."""
        d = self.dir(spec)
        tmp = d.with_name(d.name + ".new")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        root = tmp / "rootfs"
        _run(["cp", "-a", "--reflink=auto", str(template_rootfs), str(root)], "copy the rootfs")
        (root / "etc" / "hostname").write_text(spec.hostname + "\n", encoding="utf-8")
        (root / "etc" / "hosts").write_text(render_hosts(spec), encoding="utf-8")
        ssh_dir = root / "root" / ".ssh"
        ssh_dir.mkdir(mode=0o700, exist_ok=True)
        keys = ssh_dir / "authorized_keys"
        keys.write_text(pubkey.strip() + "\n", encoding="utf-8")
        keys.chmod(0o600)
        for old in (root / "etc" / "ssh").glob("ssh_host_*"):
            old.unlink()
        _run(["ssh-keygen", "-q", "-A", "-f", str(root)], "make SSH host keys")
        (tmp / "config").write_text(render_config(spec, d / "rootfs", v2=cgroup_v2()), encoding="utf-8")
        shutil.rmtree(d, ignore_errors=True)
        tmp.rename(d)
        record_host_key(known_hosts, spec.ip, (d / "rootfs" / "etc" / "ssh" / "ssh_host_ed25519_key.pub").read_text())

    def start(self, name: str, boot_timeout: float = 90.0) -> None:
        self._lxc(["lxc-start", "-n", name, "-P", str(self.lxc_path), "-d",
                   "-l", "INFO", "-o", str(self.dir(name) / "lxc.log")], what=f"start CT {name}")
        self.wait_booted(name, boot_timeout)

    def wait_booted(self, name: str, timeout: float) -> None:
        """Until systemd says the CT is up (running or degraded) and sshd answers, within ``timeout``."""
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            proc = self.attach(name, ["systemctl", "is-system-running"], timeout=10)
            last = proc.stdout.strip()
            if last in ("running", "degraded"):
                ssh = self.attach(name, ["systemctl", "is-active", "ssh"], timeout=10)
                if ssh.stdout.strip() == "active":
                    return
                last = f"ssh {ssh.stdout.strip()}"
            time.sleep(0.5)
        raise ContainerError(f"CT {name} did not finish booting within {timeout:.0f}s (systemd: {last or 'no answer'})")

    def stop(self, name: str) -> None:
        if self.state(name) == "RUNNING":
            self._lxc(["lxc-stop", "-n", name, "-P", str(self.lxc_path), "-t", "20"], check=False)
        if self.state(name) == "RUNNING":
            self._lxc(["lxc-stop", "-n", name, "-P", str(self.lxc_path), "-k"], what=f"kill CT {name}")

    def destroy(self, name: str) -> None:
        self.stop(name)
        shutil.rmtree(self.dir(name), ignore_errors=True)

    def attach(self, name: str, argv: list[str], timeout: float = 60,
               input_text: str | None = None) -> process.Completed:
        return self._lxc(self.attach_argv(name, argv, wrap=False), check=False, timeout=timeout, input_text=input_text)

    def attach_argv(self, name: str, argv: list[str], wrap: bool = True) -> list[str]:
        """``lxc-attach`` (the local twin of ``pct exec``): argv runs in the CT, no shell in between."""
        cmd = ["lxc-attach", "-n", name, "-P", str(self.lxc_path), "--clear-env",
               "-v", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "--", *argv]
        return netns.lxc_argv(self.netns_name, cmd) if wrap else cmd

    def _lxc(self, argv: list[str], *, what: str = "", check: bool = True, timeout: float = 120,
             input_text: str | None = None):
        full = netns.lxc_argv(self.netns_name, argv)
        try:
            proc = process.run(full, timeout=timeout, input_text=input_text)
        except FileNotFoundError:
            raise ContainerError("LXC is not installed (apt-get install lxc)") from None
        if proc.timed_out:
            if check:
                raise ContainerError(f"cannot {what or argv[0]}: no answer within {timeout:.0f}s")
            proc.stderr = "timed out"
        elif check and proc.returncode != 0:
            raise ContainerError(f"cannot {what or argv[0]}: {proc.last_line() or f'exit {proc.returncode}'}")
        return proc


def record_host_key(known_hosts: Path, ip: str, pub: str) -> None:
    """Replace ``ip``'s line in ``known_hosts`` with its new host key."""
    kind, key = pub.split()[:2]
    lines = []
    if known_hosts.exists():
        lines = [ln for ln in known_hosts.read_text().splitlines() if ln.split(" ", 1)[0] != ip]
    lines.append(f"{ip} {kind} {key}")
    known_hosts.parent.mkdir(parents=True, exist_ok=True)
    known_hosts.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _run(argv: list[str], what: str) -> None:
    proc = process.run(argv)
    if proc.returncode != 0:
        raise ContainerError(f"cannot {what}: {proc.last_line() or f'exit {proc.returncode}'}")
