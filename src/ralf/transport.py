"""Running a command "inside a CT": the one seam the smoke engine and triage use for it.

Proxmox offers one way in without a network path into the CT: ``pct exec <ctid> -- <cmd>`` on
the node, which ralf reaches over SSH. Alternatives are SSH straight into the CT and, for the
lab, local execution. ``platform.exec.transport`` picks one:

    pct    ssh <proxmox.ssh_user>@<ssh_host of the CT's node> 'pct exec <ct_id> -- <cmd>'
    lxc    lxc-attach -n <ct_id> -- <cmd> on the local LXC host (inside its network namespace)
    ssh    ssh <exec.ssh_user>@<service.ip> '<cmd>'
    local  sh -c '<cmd>' on this machine
    none   nothing runs; checks that need it are reported "not checked"

Every transport has the same narrow interface: :meth:`Transport.unavailable` says why it cannot
reach a service (None when it can) and :meth:`Transport.run` returns an :class:`ExecResult`.
A failure of the transport itself (SSH refused, command not found) is kept apart from the
command's own exit code in ``ExecResult.transport_error`` so a broken SSH key is not mistaken
for a stopped service.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from ralf import process
from ralf.paths import ssh_host_key_options

# ssh exits 255 both for its own errors and when the remote command does (pct dies with 255 when
# the CT is stopped); these messages are ssh's own.
_SSH_ERROR = re.compile(
    r"^ssh:|Permission denied|Host key verification failed|Connection (refused|timed out|closed|reset)"
    r"|Could not resolve|No route to host|Network is unreachable|kex_exchange_identification|Identity file",
    re.MULTILINE,
)


class ExecResult(NamedTuple):
    rc: int
    stdout: str
    stderr: str
    transport_error: str | None = None  # set when the command could not be run at all
    timed_out: bool = False


Runner = Callable[[list[str], float], ExecResult]


def run_argv(argv: list[str], timeout: float) -> ExecResult:
    """Run argv in its own process group; on timeout kill the whole group (shells leave children)."""
    try:
        done = process.run(argv, timeout=timeout)
    except FileNotFoundError:
        return ExecResult(127, "", f"{argv[0]}: command not found", transport_error=f"{argv[0]} is not installed")
    except OSError as e:
        return ExecResult(126, "", str(e), transport_error=f"cannot run {argv[0]}: {e.strerror or e}")
    return ExecResult(done.returncode, done.stdout, done.stderr, timed_out=done.timed_out)


def _sh(script: str) -> str:
    """A batch script for a remote login shell, run by ``sh`` (dash on Debian: one write per block; bash may
    split a block and another's could land in between)."""
    return shlex.join(["sh", "-c", script])


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return ""


class Transport:
    """Base class. ``kind`` names it in reports; ``configured`` is False for :class:`NoTransport`."""

    kind = "none"
    configured = True

    def unavailable(self, service) -> str | None:
        """Why this transport cannot reach ``service`` (None when it can)."""
        return None

    def where(self, service) -> str:
        """A short label for reports: where the command runs."""
        return self.kind

    def argv(self, service, command: str) -> list[str]:
        raise NotImplementedError

    def run(self, service, command: str, timeout: float) -> ExecResult:
        raise NotImplementedError

    # At most this many commands in one batch (:mod:`ralf.transport_batch`), run one after another or all
    # at once: small sequential batches on this machine, side by side on its cores (a shell's forks cost
    # CPU here); large parallel ones where each batch costs an SSH connection and pct exec is slow.
    batch_size = 8
    batch_parallel = False

    def batch_key(self, service) -> str | None:
        """Where one process can run this service's commands together with others' of the same key
        (:mod:`ralf.transport_batch`); None: each command runs alone."""
        return None

    def run_many(self, items: Sequence[tuple[object, str, float]]) -> list[ExecResult]:
        """Run (service, command, timeout) items that share a :meth:`batch_key`: one process for all of
        them, each with its own result as :meth:`run` would give it. A command whose result is lost in
        the batch (garbled output) runs again alone."""
        if len(items) == 1 or self.batch_key(items[0][0]) is None:
            return [self.run(s, c, t) for s, c, t in items]
        from ralf import transport_batch

        token = transport_batch.new_token()
        text = transport_batch.script([self._inner(s, c) for s, c, _ in items], token, parallel=self.batch_parallel)
        # all at once: the longest command's time; one after another: their times added up
        budget = max(t for _, _, t in items) if self.batch_parallel else sum(t for _, _, t in items)
        whole = self._run_script(items[0][0], text, budget)
        found = transport_batch.parse(whole.stdout, token, len(items))
        results = []
        for (s, c, t), got in zip(items, found, strict=True):
            if got is not None:
                results.append(self._judge(ExecResult(*got), c))
            elif whole.transport_error is not None:
                results.append(whole)
            elif whole.timed_out:
                results.append(ExecResult(process.TIMED_OUT, "", "", timed_out=True))
            else:
                results.append(self.run(s, c, t))
        return results

    def _inner(self, service, command: str) -> str:
        """The shell command that runs ``command`` for ``service`` where the batch script runs."""
        raise NotImplementedError

    def _run_script(self, service, script: str, timeout: float) -> ExecResult:
        """Run a batch script at the place ``service``'s :meth:`batch_key` names."""
        raise NotImplementedError

    def _judge(self, res: ExecResult, command: str) -> ExecResult:
        """A command's own result as :meth:`run` reports it (e.g. exit 127 as a transport error)."""
        return res


@dataclass
class _SshBase(Transport):
    batch_size = 64  # few connections: sshd refuses a burst of them (MaxStartups)
    batch_parallel = True

    user: str = "root"
    key_file: str | None = None
    connect_timeout: int = 5
    runner: Runner = field(default=run_argv, repr=False)

    def _ssh(self, host: str, remote: str) -> list[str]:
        argv = [
            "ssh",
            "-o", "BatchMode=yes",
            "-o", f"ConnectTimeout={self.connect_timeout}",
            *ssh_host_key_options(),
        ]
        if self.key_file:
            argv += ["-i", self.key_file]
        return argv + [f"{self.user}@{host}", remote]

    def run(self, service, command: str, timeout: float) -> ExecResult:
        return self._run_ssh(self.argv(service, command), self._target(service), timeout)

    def _run_ssh(self, argv: list[str], target: str, timeout: float) -> ExecResult:
        # The command's timeout starts once ssh is connected: with one shared budget, an unreachable
        # node would hit the process timeout before ssh's ConnectTimeout and look like a dead CT.
        res = self.runner(argv, timeout + self.connect_timeout)
        if res.transport_error is None and res.rc == 255 and _SSH_ERROR.search(res.stderr):
            return res._replace(transport_error=f"ssh {target} failed: {_first_line(res.stderr)}")
        return res

    def _target(self, service) -> str:
        raise NotImplementedError

    def _ssh_host(self, service) -> str:
        """The host ssh connects to for ``service``."""
        raise NotImplementedError

    def argv(self, service, command: str) -> list[str]:
        return self._ssh(self._ssh_host(service), self._inner(service, command))

    def batch_key(self, service) -> str | None:
        return self._target(service)  # one SSH connection for the commands of one place

    def _run_script(self, service, script: str, timeout: float) -> ExecResult:
        return self._run_ssh(self._ssh(self._ssh_host(service), _sh(script)), self._target(service), timeout)


@dataclass
class PctTransport(_SshBase):
    """``pct exec`` on the Proxmox node the CT lives on, reached over SSH.

    ``host`` serves CTs on the default node; ``nodes`` maps the cluster's other nodes to their SSH
    host (None: not reachable), for services that name one (``services.<svc>.node``)."""

    host: str = ""
    nodes: dict[str, str | None] = field(default_factory=dict)
    kind = "pct"

    def _host(self, service) -> str | None:
        node = getattr(service, "node", None)
        return self.nodes.get(node) if node in self.nodes else self.host

    def unavailable(self, service) -> str | None:
        if service.ct_id is None:
            return "the service has no ct_id for pct exec"
        if not self._host(service):
            return f"not configured: proxmox.nodes.{service.node}.ssh_host is needed for pct exec on that node"
        return None

    def where(self, service) -> str:
        node = getattr(service, "node", None)
        return f"ct {service.ct_id}" + (f" on {node}" if node in self.nodes else "")

    def _target(self, service) -> str:
        return f"{self.user}@{self._host(service)}"

    def on_node(self, host: str, command: list[str], timeout: float) -> ExecResult:
        """Run ``command`` on a Proxmox node itself (not in a CT), the way ``pct exec`` reaches it."""
        return self._run_ssh(self._ssh(host, shlex.join(command)), f"{self.user}@{host}", timeout)

    def _ssh_host(self, service) -> str:
        return self._host(service) or ""  # the node: one SSH connection serves the commands of all its CTs

    def _inner(self, service, command: str) -> str:
        # pct runs argv directly (no shell in the CT); re-quoting keeps the words intact through
        # the node's login shell.
        return shlex.join(["pct", "exec", str(service.ct_id), "--", *shlex.split(command)])


@dataclass
class SshTransport(_SshBase):
    """SSH straight into the CT's IP."""

    kind = "ssh"

    def where(self, service) -> str:
        return f"ssh {service.ip}"

    def _target(self, service) -> str:
        return f"{self.user}@{service.ip}"

    def _ssh_host(self, service) -> str:
        return service.ip

    def _inner(self, service, command: str) -> str:
        return command


@dataclass
class LxcTransport(Transport):
    """``lxc-attach`` on the local LXC host: the local twin of ``pct exec`` (argv, no shell in the CT)."""

    netns: str = ""
    lxc_path: str = ""
    runner: Runner = field(default=run_argv, repr=False)
    kind = "lxc"

    def unavailable(self, service) -> str | None:
        if service.ct_id is None:
            return "the service has no ct_id for lxc-attach"
        return None

    def where(self, service) -> str:
        return f"ct {service.ct_id}"

    def argv(self, service, command: str) -> list[str]:
        return self._containers().attach_argv(str(service.ct_id), shlex.split(command))

    def run(self, service, command: str, timeout: float) -> ExecResult:
        return self._down() or self.runner(self.argv(service, command), timeout)

    def batch_key(self, service) -> str | None:
        return self.where(service)  # one batch per CT, one after another: a hung CT holds only its own commands

    def _inner(self, service, command: str) -> str:
        return shlex.join(self._containers().attach_argv(str(service.ct_id), shlex.split(command), wrap=False))

    def _run_script(self, service, script: str, timeout: float) -> ExecResult:
        from ralf.backends.lxc import netns

        return self._down() or self.runner(netns.lxc_argv(self.netns, ["sh", "-c", script]), timeout)

    def _containers(self):
        from pathlib import Path

        from ralf.backends.lxc.containers import Containers

        return Containers(self.netns, Path(self.lxc_path))

    def _down(self) -> ExecResult | None:
        from ralf.backends.lxc import netns

        if netns.exists(self.netns):
            return None
        return ExecResult(255, "", "", transport_error=f"the LXC node is down (no network namespace {self.netns})")


@dataclass
class LocalTransport(Transport):
    """Runs the command on this machine with a shell (the lab: its "CTs" are this machine)."""

    runner: Runner = field(default=run_argv, repr=False)
    kind = "local"

    def argv(self, service, command: str) -> list[str]:
        return ["sh", "-c", command]

    def run(self, service, command: str, timeout: float) -> ExecResult:
        return self._judge(self.runner(self.argv(service, command), timeout), command)

    def batch_key(self, service) -> str | None:
        return "local"

    def _inner(self, service, command: str) -> str:
        return command

    def _run_script(self, service, script: str, timeout: float) -> ExecResult:
        return self.runner(["sh", "-c", script], timeout)

    def _judge(self, res: ExecResult, command: str) -> ExecResult:
        if res.transport_error is None and res.rc == 127:
            return res._replace(transport_error=f"command not found: {_first_line(res.stderr) or command}")
        return res


@dataclass
class NoTransport(Transport):
    """No way into the CT: checks that need one are reported "not checked", never passed."""

    reason: str = "exec transport is none"
    kind = "none"
    configured = False

    def unavailable(self, service) -> str | None:
        return self.reason

    def where(self, service) -> str:
        return "-"

    def run(self, service, command: str, timeout: float) -> ExecResult:
        return ExecResult(0, "", "", transport_error=self.reason)


@dataclass
class RecordingTransport(Transport):
    """A fake for tests: records (service ip, command) and answers from ``answer(service, command)``."""

    answer: Callable[[object, str], ExecResult] = lambda service, command: ExecResult(0, "active\n", "")
    kind = "fake"
    calls: list[tuple[str, str]] = field(default_factory=list)

    def run(self, service, command: str, timeout: float) -> ExecResult:
        self.calls.append((service.ip, command))
        return self.answer(service, command)


def transport_for(platform) -> Transport:
    """The transport ``platform.exec`` selects; a pct transport without ``proxmox.ssh_host`` is none."""
    ex = platform.exec
    key = str(platform.resolve_path(ex.ssh_key_file)) if ex.ssh_key_file else None
    if ex.transport == "pct":
        px = platform.proxmox
        if px is None or not px.ssh_host:
            return NoTransport(reason="not configured: exec.transport pct needs proxmox.ssh_host")
        others = {name: n.ssh_host for name, n in px.nodes.items() if name != px.node}
        return PctTransport(host=px.ssh_host, nodes=others, user=px.ssh_user, key_file=key)
    if ex.transport == "lxc":
        lh = platform.lxc_host
        if lh is None:
            return NoTransport(reason="not configured: exec.transport lxc needs an lxc_host section")
        from ralf.backends.lxc.node import lxc_path

        return LxcTransport(netns=lh.netns, lxc_path=str(lxc_path(platform)))
    if ex.transport == "ssh":
        return SshTransport(user=ex.ssh_user, key_file=key)
    if ex.transport == "local":
        return LocalTransport()
    return NoTransport(reason="not configured: exec.transport is none")
