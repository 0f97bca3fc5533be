"""A safety net for the whole test suite: nothing may leave loopback.

In-process: socket connects to any address outside 127.0.0.0/8 and ::1 raise at once.
Subprocesses: ``ssh``/``scp``/``sftp`` stand-ins come first on PATH; they pass through to the real
client only when every host argument is loopback, and otherwise fail the way an unreachable host
does (exit 255). CI additionally runs everything in a network namespace with only loopback up.

One exception: a network namespace that a test made itself for real LXC containers (a bridge
inside, no route out) may be registered with :func:`allow_namespace`; a thread (or an ssh started
from a process) inside it may then reach the containers' addresses — there is nothing else there.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import socket
import stat
from pathlib import Path

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


class NetworkGuardError(OSError):
    pass


_allowed_netns: list[str] = []


def allow_namespace(name: str) -> None:
    """Let connections from inside the test's own namespace ``name`` through (see the docstring).

    The namespace may not exist yet (ralf makes it during the command the test runs).
    """
    if name not in _allowed_netns:
        _allowed_netns.append(name)
    os.environ["RALF_GUARD_NETNS"] = ":".join(_allowed_netns)


def forget_namespace(name: str) -> None:
    if name in _allowed_netns:
        _allowed_netns.remove(name)
    os.environ["RALF_GUARD_NETNS"] = ":".join(_allowed_netns)


def _in_allowed_netns() -> bool:
    if not _allowed_netns:
        return False
    try:
        here = os.stat("/proc/thread-self/ns/net")
    except OSError:
        return False
    for name in _allowed_netns:
        try:
            there = os.stat(f"/run/netns/{name}")
        except OSError:
            continue
        if (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino):
            return True
    return False


def _allowed(address) -> bool:
    if not isinstance(address, tuple):  # AF_UNIX paths and the like
        return True
    if _in_allowed_netns():
        return True
    host = address[0]
    try:
        ip = ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return host in ("localhost",)
    return ip.is_loopback or ip.is_unspecified


def _guarded_connect(self, address):
    if not _allowed(address):
        raise NetworkGuardError(111, f"test network guard: refusing to contact {address!r} (loopback only)")
    return _real_connect(self, address)


def _guarded_connect_ex(self, address):
    if not _allowed(address):
        raise NetworkGuardError(111, f"test network guard: refusing to contact {address!r} (loopback only)")
    return _real_connect_ex(self, address)


SSH_STUB = """#!/bin/sh
# ralf test network guard: only loopback hosts reach the real {name}, or any host from inside a
# namespace a test made for its own containers (RALF_GUARD_NETNS).
if [ -n "$RALF_GUARD_NETNS" ]; then
  ns=$(ip netns identify $$ 2>/dev/null)
  case ":$RALF_GUARD_NETNS:" in *":$ns:"*) [ -n "$ns" ] && exec {real} "$@" ;; esac
fi
for a in "$@"; do
  case "$a" in
    -*) ;;
    *127.0.0.1*|*localhost*|*::1*) exec {real} "$@" ;;
  esac
done
echo "ssh: connect to host (blocked by ralf's test network guard: loopback only) port 22: Connection refused" >&2
exit 255
"""


def install(bin_dir: Path) -> None:
    socket.socket.connect = _guarded_connect
    socket.socket.connect_ex = _guarded_connect_ex
    bin_dir.mkdir(parents=True, exist_ok=True)
    for name in ("ssh", "scp", "sftp"):
        real = shutil.which(name) or "/bin/false"
        stub = bin_dir / name
        stub.write_text(SSH_STUB.format(name=name, real=real))
        stub.chmod(stub.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    os.environ["PATH"] = f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"


def uninstall() -> None:
    socket.socket.connect = _real_connect
    socket.socket.connect_ex = _real_connect_ex
