"""The local LXC node: bring-up, the CTs of the platform's ``*-lxc`` stacks, and teardown.

``LxcNode(platform)`` is the one object the rest of ralf uses: the stack runner asks it to make a
service's CT (create if missing, start if stopped, leave a running CT and its data alone), the
``lxc`` transport runs commands in CTs through it, ``ralf lab`` brings it up and down, and the
CLI enters its network namespace so smoke checks and Ansible reach the CTs (and nothing else).

Bring-up, in order: the CT template (debootstrap, cached), the package cache (built on the host
side from the registries, cached), the namespace with its bridge, the cache served inside the
namespace at ``http://<host_ip>:<cache_port>/``. Teardown stops and removes the CTs, stops every
process left in the namespace, and removes it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import yaml

from ralf import process
from ralf.backends.lxc import netns, rootfs
from ralf.backends.lxc.containers import Containers, CtSpec
from ralf.errors import PlatformError, RalfError
from ralf.model import Platform

SSH_KEY = "ralf_ed25519"


def lxc_path(platform: Platform) -> Path:
    lh = platform.lxc_host
    assert lh is not None
    return platform.resolve_path(lh.lxc_path or f"/var/lib/ralf/lxc/{lh.name}")


def ssh_key(platform: Platform, on_output: Callable[[str], None] | None = None) -> tuple[Path, str]:
    """The platform's SSH key pair (``ralf_ed25519`` in the secrets directory), made when missing."""
    key = platform.secrets_path / SSH_KEY
    pub = key.with_suffix(".pub")
    if not key.is_file() or not pub.is_file():
        key.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        key.unlink(missing_ok=True)
        pub.unlink(missing_ok=True)
        proc = process.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "ralf", "-f", str(key)])
        if proc.returncode != 0:
            raise RalfError(f"cannot make the SSH key {key}: {proc.stderr.strip()}")
        if on_output:
            on_output(f"[ralf] made the SSH key pair {key} (.pub goes into every CT)")
    return key, pub.read_text(encoding="utf-8")


def playbook_roles(platform: Platform) -> list[str]:
    """The roles the platform's config playbooks use (what the package cache must serve)."""
    roles: list[str] = []
    for svc in platform.services.values():
        for ref in svc.stack_refs:
            if ref.type != "ansible":
                continue
            try:
                plays = yaml.safe_load((platform.stacks_path / ref.name / "playbook.yml").read_text()) or []
            except (OSError, yaml.YAMLError):
                continue
            for play in plays if isinstance(plays, list) else []:
                for r in (play or {}).get("roles", []) or []:
                    name = r.get("role") if isinstance(r, dict) else r
                    if isinstance(name, str) and name not in roles:
                        roles.append(name)
    return roles


class LxcNode:
    def __init__(self, platform: Platform, on_output: Callable[[str], None] | None = None) -> None:
        if platform.lxc_host is None:
            raise PlatformError(["lxc_host: this platform has no local LXC host"])
        self.platform = platform
        self.host = platform.lxc_host
        self.say = on_output or (lambda line: None)
        self.path = lxc_path(platform)
        self.cache_dir = platform.resolve_path(self.host.cache_dir)
        self.containers = Containers(self.host.netns, self.path)

    # ---------------------------------------------------------------- facts

    @property
    def known_hosts(self) -> Path:
        return self.path / "known_hosts"

    @property
    def cache_url(self) -> str:
        return f"http://{self.host.host_ip}:{self.host.cache_port}"

    @property
    def template(self) -> Path:
        return rootfs.path(self.cache_dir, self.host.distro)

    def is_up(self) -> bool:
        return netns.exists(self.host.netns)

    def ct_services(self) -> list[str]:
        """Services with a ``*-lxc`` stack, in platform order."""
        return [n for n, s in self.platform.services.items() if any(r.type == "tofu" for r in s.stack_refs)]

    def spec(self, service: str) -> CtSpec:
        svc = self.platform.services[service]
        if svc.ct_id is None:
            raise PlatformError([f"services.{service}.ct_id: expected a CT id for its *-lxc stack"])
        size = svc.size
        return CtSpec(
            ct_id=svc.ct_id, service=service, hostname=svc.hostname, ip=svc.ip,
            prefix=self.platform.network.network.prefixlen, gateway=self.host.host_ip, bridge=self.host.bridge,
            cores=size.cores if size else None, memory_mb=size.memory_mb if size else None,
        )

    # ---------------------------------------------------------------- bring-up

    def prepare(self) -> list[str]:
        """What needs the package registries, done on the host side: CT template and package cache.

        The only step that uses the network; ``up`` and everything after it work offline.
        """
        _need_root()
        changes = []
        if rootfs.ensure(self.cache_dir, self.host.distro, self.say):
            changes.append(f"built the CT template {self.template}")
        self._build_cache()
        return changes

    def up(self) -> list[str]:
        """Everything the CTs need before the first one is made; returns what changed."""
        changes = self.prepare()
        self.path.mkdir(parents=True, exist_ok=True)
        os.chmod(self.path, 0o700)
        if netns.create(self.host.netns, self.host.bridge, f"{self.host.host_ip}/{self.platform.network.network.prefixlen}"):
            changes.append(f"made the network namespace {self.host.netns} (bridge {self.host.bridge} at {self.host.host_ip}, no route out)")
        if self._start_cache_server():
            changes.append(f"serving the package cache at {self.cache_url}/")
        return changes

    def _build_cache(self) -> None:
        try:
            from ralf.backends.lxc.cache import build_cache
        except ImportError:
            return
        build_cache(self.cache_dir, self.template, playbook_roles(self.platform), on_output=self.say)

    def ensure_ct(self, service: str, apply: bool = True) -> str:
        """Create the CT if missing, start it if stopped; a running CT and its data are left alone.

        Returns what happened: ``created``, ``started`` or ``unchanged`` (with ``apply=False``:
        what would happen, nothing done).
        """
        spec = self.spec(service)
        state = self.containers.state(spec.name) if self.is_up() else (
            "STOPPED" if self.containers.exists(spec.name) else "ABSENT")
        if state == "RUNNING":
            return "unchanged"
        action = "created" if state == "ABSENT" else "started"
        if not apply:
            return action
        if not self.is_up():
            self.up()
        if state == "ABSENT":
            _, pub = ssh_key(self.platform, self.say)
            self.say(f"[ralf] creating CT {spec.ct_id} ({service}, {spec.hostname}, {spec.ip})")
            self.containers.create(spec, self.template, pub, self.known_hosts)
        self.say(f"[ralf] starting CT {spec.ct_id} and waiting for systemd and sshd")
        self.containers.start(spec.name, self.host.boot_timeout)
        return action

    # ---------------------------------------------------------------- network

    @contextlib.contextmanager
    def network(self) -> Iterator[None]:
        """This process inside the node's namespace for the block (smoke checks, Ansible, ssh)."""
        with netns.entered(self.host.netns):
            yield

    # ---------------------------------------------------------------- status and teardown

    def status(self) -> dict:
        return {
            "node": self.host.name,
            "netns": self.host.netns,
            "up": self.is_up(),
            "cache_url": self.cache_url,
            "cache_server": self._server_pid() is not None,
            "cts": {
                name: {"ct_id": self.platform.services[name].ct_id, "ip": self.platform.services[name].ip,
                       "state": self.containers.state(str(self.platform.services[name].ct_id))}
                for name in self.ct_services()
            },
        }

    def down(self) -> list[str]:
        """Stop and remove every CT of this node, every process in its namespace, the namespace."""
        _need_root()
        changes = []
        for name in self.containers.names():
            self.say(f"[ralf] removing CT {name}")
            self.containers.destroy(name)
            changes.append(f"removed CT {name}")
        pid = self._server_pid()
        if pid is not None:
            _kill(pid)
            changes.append("stopped the package cache server")
        (self.path / "cache-server.pid").unlink(missing_ok=True)
        if self.is_up():
            for p in netns.pids(self.host.netns):
                _kill(p)
            netns.delete(self.host.netns)
            changes.append(f"removed the network namespace {self.host.netns}")
        self.known_hosts.unlink(missing_ok=True)
        return changes

    # ---------------------------------------------------------------- cache server

    def _server_pid(self) -> int | None:
        try:
            pid = int((self.path / "cache-server.pid").read_text())
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError):
            return None
        return pid if b"http.server" in cmd else None

    def _start_cache_server(self) -> bool:
        if self._server_pid() is not None:
            return False
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        argv = netns.exec_argv(self.host.netns, [
            sys.executable, "-m", "http.server", "--bind", self.host.host_ip, "--directory", str(self.cache_dir),
            str(self.host.cache_port)])
        log = open(self.path / "cache-server.log", "ab")
        process.started(argv)
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
        log.close()
        (self.path / "cache-server.pid").write_text(str(proc.pid))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RalfError(f"the package cache server exited at once; see {self.path / 'cache-server.log'}")
            if self._listening():
                return True
            time.sleep(0.1)
        raise RalfError(f"the package cache server did not listen on {self.cache_url} within 10s")

    def _listening(self) -> bool:
        proc = process.run(netns.exec_argv(self.host.netns, ["ss", "-Hltn", f"sport = :{self.host.cache_port}"]))
        return bool(proc.stdout.strip())


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    for _ in range(50):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def _need_root() -> None:
    if os.geteuid() != 0:
        raise RalfError("the local LXC node needs root (LXC containers and network namespaces)")


def platform_network(platform: Platform) -> contextlib.AbstractContextManager:
    """Inside the platform's LXC node namespace for a block, when it has one and it is up.

    Wraps whatever talks to the CTs over the network (smoke checks, ansible-playbook over SSH);
    a no-op for Proxmox and loopback platforms, and when the node is down (checks then fail as
    unreachable, which is the truth).
    """
    lh = platform.lxc_host
    if lh is None or not netns.exists(lh.netns) or netns.inside(lh.netns) or os.geteuid() != 0:
        return contextlib.nullcontext()
    return netns.entered(lh.netns)
