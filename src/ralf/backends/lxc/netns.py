"""The node's network namespace: a bridge inside it, no route out, and ways to run things in it.

Three ways in, for three needs:

- :func:`entered` moves this process (its main thread) into the namespace for a ``with`` block,
  so ralf's own sockets (smoke checks) and every child it starts (ansible-playbook, ssh) reach
  the containers' addresses and nothing else;
- :func:`lxc_argv` wraps an ``lxc-*`` command: LXC inside a namespace needs a ``/sys`` that shows
  the namespace's bridge, so the command gets a private mount namespace with a fresh sysfs and
  the host's cgroup mounts bound back on top;
- :func:`exec_argv` wraps any other command (``ip netns exec``).

The namespace is made with ``ip netns add`` (a bind mount under ``/run/netns``), so it outlives
ralf and ``ralf lab down`` removes it.
"""

from __future__ import annotations

import contextlib
import ctypes
import ipaddress
import os
from collections.abc import Iterator
from pathlib import Path

from ralf import process
from ralf.errors import RalfError

NETNS_DIR = Path("/run/netns")
CLONE_NEWNET = 0x40000000


class NetnsError(RalfError):
    """Creating, entering or removing the node's namespace failed."""


def path(name: str) -> Path:
    return NETNS_DIR / name


def exists(name: str) -> bool:
    return path(name).exists()


def _ip(*args: str) -> None:
    try:
        proc = process.run(["ip", *args], timeout=30)
    except FileNotFoundError:
        raise NetnsError("`ip` is not installed (apt-get install iproute2)") from None
    if proc.returncode != 0:
        raise NetnsError(f"ip {' '.join(args)} failed: {proc.stderr.strip() or proc.returncode}")


def create(name: str, bridge: str, host_cidr: str) -> bool:
    """Make the namespace with loopback and the bridge at ``host_cidr`` (e.g. 172.31.250.1/24).

    Returns True when something was created. There is no default route: nothing in the
    namespace can reach beyond the bridge.
    """
    ipaddress.ip_interface(host_cidr)  # validated by the model; a bad value must never reach ip
    made = False
    if not exists(name):
        _ip("netns", "add", name)
        made = True
    _ip("-n", name, "link", "set", "lo", "up")
    if not _link_exists(name, bridge):
        _ip("-n", name, "link", "add", bridge, "type", "bridge")
        made = True
    if host_cidr not in _addresses(name, bridge):
        _ip("-n", name, "addr", "add", host_cidr, "dev", bridge)
        made = True
    _ip("-n", name, "link", "set", bridge, "up")
    return made


def delete(name: str) -> bool:
    if not exists(name):
        return False
    _ip("netns", "delete", name)
    return True


def pids(name: str) -> list[int]:
    """Processes whose network namespace is this one (what teardown must leave none of)."""
    try:
        proc = process.run(["ip", "netns", "pids", name], timeout=30)
    except FileNotFoundError:
        return []
    return [int(p) for p in proc.stdout.split() if p.isdigit()]


def _link_exists(name: str, link: str) -> bool:
    proc = process.run(["ip", "-n", name, "link", "show", link])
    return proc.returncode == 0


def _addresses(name: str, link: str) -> list[str]:
    proc = process.run(["ip", "-n", name, "-o", "addr", "show", "dev", link])
    out = []
    for line in proc.stdout.splitlines():
        words = line.split()
        if "inet" in words:
            out.append(words[words.index("inet") + 1])
    return out


def exec_argv(name: str, argv: list[str]) -> list[str]:
    return ["ip", "netns", "exec", name, *argv]


# A private mount namespace, the host's cgroup hierarchy parked, a sysfs of the target network
# namespace on /sys, the cgroups put back: then the lxc command, which sees the bridge and can
# manage cgroups. Arguments: $1 namespace path, $2 parking dir, then the command.
_LXC_SHELL = (
    'set -e; ns="$1"; park="$2"; shift 2; '
    'mount --make-rprivate /; '
    'mkdir -p "$park"; mount --rbind /sys/fs/cgroup "$park"; '
    'exec nsenter --net="$ns" sh -c \''
    'park="$0"; mount -t sysfs sysfs /sys && mount --rbind "$park" /sys/fs/cgroup && exec "$@"\' "$park" "$@"'
)


def lxc_argv(name: str, argv: list[str]) -> list[str]:
    """``argv`` (an lxc-* command) run inside the namespace with a sysfs that shows its links."""
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", _LXC_SHELL, "ralf-lxc",
            str(path(name)), f"/run/ralf-cgroup-{name}", *argv]


_libc = None


def _setns(fd: int) -> None:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise NetnsError(f"cannot enter the network namespace: {os.strerror(err)} (ralf must run as root)")


@contextlib.contextmanager
def entered(name: str) -> Iterator[None]:
    """This thread (and what it starts) in the namespace ``name`` for the block, then back.

    Call it from the main thread before worker threads start: threads and children inherit the
    namespace of the thread that creates them.
    """
    if not exists(name):
        raise NetnsError(f"network namespace {name} does not exist")
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        target = os.open(path(name), os.O_RDONLY)
        try:
            _setns(target)
        finally:
            os.close(target)
        try:
            yield
        finally:
            _setns(home)
    finally:
        os.close(home)


def inside(name: str) -> bool:
    """Whether this thread is already in the namespace ``name``."""
    try:
        here = os.stat("/proc/thread-self/ns/net")
        there = os.stat(path(name))
    except OSError:
        return False
    return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)
