"""The CT template: a Debian rootfs built once with debootstrap and kept in the node's cache.

Proxmox CTs start from a template (``lxc_template``); the local node builds the equivalent once
(minimal Debian with systemd, sshd and Python, which Ansible needs) from Debian's mirror, on the
host side, and copies it for each CT. A half-built rootfs never counts: it is built beside its
final path and renamed into place only when debootstrap succeeded.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from ralf.errors import RalfError

RELEASES = {"debian-12": "bookworm"}
MIRROR = "http://deb.debian.org/debian"
PACKAGES = [
    "systemd-sysv", "dbus", "openssh-server", "python3", "python3-apt", "ca-certificates", "iproute2",
    "procps", "netbase", "less",
]
# Timers that would reach for Debian's mirror (no route from a CT) and hold the dpkg lock mid-converge.
MASKED = ["apt-daily.timer", "apt-daily-upgrade.timer"]


class RootfsError(RalfError):
    """The CT template could not be built."""


def path(cache_dir: Path, distro: str) -> Path:
    return cache_dir / "rootfs" / distro


def ensure(cache_dir: Path, distro: str, on_output: Callable[[str], None] = print) -> bool:
    """Build the rootfs when it is missing; True when it was built now."""
    final = path(cache_dir, distro)
    if (final / "usr" / "bin" / "python3").exists():
        return False
    if distro not in RELEASES:
        raise RootfsError(f"unknown distro {distro!r}; known: {', '.join(RELEASES)}")
    if shutil.which("debootstrap") is None:
        raise RootfsError("debootstrap is not installed (apt-get install debootstrap)")
    tmp = final.with_name(final.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.parent.mkdir(parents=True, exist_ok=True)
    on_output(f"[ralf] building the {distro} CT template with debootstrap (a few minutes, once) → {final}")
    argv = ["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}", RELEASES[distro], str(tmp), MIRROR]
    log = final.with_name(final.name + ".log")
    with open(log, "w", encoding="utf-8") as out:
        proc = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        raise RootfsError(f"debootstrap failed (exit {proc.returncode}); see {log}")
    finish(tmp)
    tmp.rename(final)
    return True


def finish(root: Path) -> None:
    """What every CT gets on top of debootstrap's result."""
    systemd = root / "etc" / "systemd" / "system"
    systemd.mkdir(parents=True, exist_ok=True)
    for unit in MASKED:
        link = systemd / unit
        if not link.is_symlink():
            link.symlink_to("/dev/null")
    # No DHCP, no wait for a network that LXC has already configured.
    (root / "etc" / "network").mkdir(exist_ok=True)
    (root / "etc" / "network" / "interfaces").write_text("auto lo\niface lo inet loopback\n", encoding="utf-8")
    (root / "etc" / "resolv.conf").unlink(missing_ok=True)
    (root / "etc" / "resolv.conf").write_text("# no resolver: the CTs have no route out\n", encoding="utf-8")
