"""Ansible stacks (``*-config``): generated inventory, ``ansible-playbook`` command lines, retries.

``<stacks_dir>/<stack>/playbook.yml`` runs with ``-i <run_dir>/inventory.ini`` (rendered from the
platform file). Planning is ``--syntax-check``. When hosts were UNREACHABLE, and only then, the
playbook is retried for exactly those hosts (``--limit``), a bounded number of times with a growing
pause; a task that failed on a reachable host is never retried. The per-host recap gives the number
of changed tasks, which the summary shows (a second run of a converged stack reports 0).

Those decisions come from the JSON events of ralf's callback plugin (:mod:`ralf.stacks.ansible_events`),
one events file per attempt, read and then removed (a failed task's message may quote a secret the log
redacts); the human output is only streamed and logged.
"""

from __future__ import annotations

import os
import shlex
import shutil
from pathlib import Path
from typing import TextIO

from ralf import settings
from ralf.catalog import Stack
from ralf.errors import ExternalToolError
from ralf.inventory import inventory_ini
from ralf.model import Platform
from ralf.paths import ssh_host_key_options
from ralf.stacks.ansible_events import PlaybookEvents, callback_env, read_events
from ralf.stacks.context import Outcome, RunContext
from ralf.stacks.process import run_streamed
from ralf.states import Result

PLAYBOOK = "playbook.yml"
INVENTORY = "inventory.ini"
SSH_PRIVATE_KEY = "ralf_ed25519"
MAX_DELAY = 60.0


def resolve_ansible(environ: dict[str, str]) -> str:
    found = shutil.which("ansible-playbook", path=settings.get("PATH", environ))
    if not found:
        raise ExternalToolError(
            "ansible-playbook not found on PATH; install ansible-core (pip install 'ansible-core<2.20')"
        )
    return found


def playbook_path(platform: Platform, stack_name: str) -> Path:
    return platform.stacks_path / stack_name / PLAYBOOK


def write_inventory(platform: Platform, run_dir: Path) -> Path:
    path = run_dir / INVENTORY
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with open(fd, "w", encoding="utf-8") as f:
        f.write(inventory_ini(platform))
    return path


def playbook_command(binary: str, inventory: Path, apply: bool, limit: list[str] | None = None) -> list[str]:
    cmd = [binary, "-i", str(inventory)]
    if not apply:
        cmd.append("--syntax-check")
    if limit:
        cmd += ["--limit", ",".join(limit)]
    cmd.append(PLAYBOOK)
    return cmd


def ansible_env(base: dict[str, str], platform: Platform, run_dir: Path, repo_root: Path) -> dict[str, str]:
    """Plain, unbuffered, self-contained: temp files and ANSIBLE_HOME inside the run directory."""
    env = dict(base)
    home = Path(base.get("ANSIBLE_HOME") or Path(base.get("HOME", str(Path.home()))) / ".ansible")
    a_dir = run_dir / "ansible"
    env.update(
        ANSIBLE_HOME=str(a_dir / "home"),
        ANSIBLE_LOCAL_TEMP=str(a_dir / "tmp"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_FORCE_COLOR="0",
        ANSIBLE_RETRY_FILES_ENABLED="0",
        PYTHONUNBUFFERED="1",
        RALF_SECRETS_DIR=str(platform.secrets_path),
    )
    if platform.source is not None:
        env["RALF_PLATFORM"] = str(platform.source)
    # A run-local ANSIBLE_HOME must not hide the collections and roles installed for the user.
    env.setdefault("ANSIBLE_COLLECTIONS_PATH", f"{home / 'collections'}:/usr/share/ansible/collections")
    if "ANSIBLE_ROLES_PATH" not in base:
        roles = [str(repo_root / "ansible" / "roles")] if (repo_root / "ansible" / "roles").is_dir() else []
        roles += [str(home / "roles"), "/usr/share/ansible/roles", "/etc/ansible/roles"]
        env["ANSIBLE_ROLES_PATH"] = ":".join(roles)
    chosen = platform.lxc_host is not None or "StrictHostKeyChecking" in platform.ansible.ssh_common_args
    if "ANSIBLE_SSH_ARGS" not in base and not chosen:
        # host keys recorded on first contact and checked ever after; a platform that chose its own host key
        # checking (the local LXC node's pre-recorded keys, explicit ssh_common_args) keeps it
        env["ANSIBLE_SSH_ARGS"] = " ".join(["-C", "-o", "ControlMaster=auto", "-o", "ControlPersist=60s",
                                            *map(shlex.quote, ssh_host_key_options())])
        env["ANSIBLE_HOST_KEY_CHECKING"] = "True"
    key = platform.secrets_path / SSH_PRIVATE_KEY
    # On a local LXC node the key may not exist yet: the run's *-lxc stack makes it with the CT.
    if "ANSIBLE_PRIVATE_KEY_FILE" not in base and (key.is_file() or platform.lxc_host is not None):
        env["ANSIBLE_PRIVATE_KEY_FILE"] = str(key)
    if platform.lxc_host is not None and "ANSIBLE_SSH_CONTROL_PATH_DIR" not in base:
        from ralf.backends.lxc.node import lxc_path

        # SSH's persistent connections are keyed by address; another node (namespace) may use the same
        # addresses, so each node keeps its own — never reuse a connection into another node's CT.
        env["ANSIBLE_SSH_CONTROL_PATH_DIR"] = str(lxc_path(platform) / "cp")
    return env


def retry_delay(attempt: int, first: float) -> float:
    """Pause before retry ``attempt`` (1-based): first, 2×first, 4×first … capped at a minute."""
    from ralf import backoff

    return backoff.delay(attempt, first, MAX_DELAY)


def events_path(run_dir: Path, stack_name: str) -> Path:
    return run_dir / "ansible" / f"{stack_name}.events.jsonl"


def failure_note(events: PlaybookEvents, returncode: int, redact) -> str:
    """Why a run failed, from its events: the failed hosts and the first failed task's message."""
    hosts = events.failed_hosts
    if hosts:
        first = events.first_failure(hosts[0])
        why = ""
        if first is not None:
            msg = redact(first.msg.strip().splitlines()[0][:200]) if first.msg.strip() else ""
            why = f" (task {first.task!r}" + (f": {msg})" if msg else ")")
        return f"failed on {', '.join(hosts)}{why}"
    if events.recap is None:
        return f"ansible-playbook exited {returncode} before running (see the log)"
    return f"ansible-playbook exited {returncode}"


def run_ansible_stack(ctx: RunContext, stack: Stack, apply: bool, inventory: Path, env: dict[str, str], log: TextIO) -> Outcome:
    assert ctx.ansible_binary is not None
    cwd = playbook_path(ctx.platform, stack.name).parent
    events_file = events_path(ctx.run_dir, stack.name)
    events_file.parent.mkdir(parents=True, exist_ok=True)
    env = callback_env(env, events_file)
    outcome = Outcome(Result.SUCCEEDED)
    changed: int | None = None
    limit: list[str] | None = None
    attempt = 0
    while True:
        argv = playbook_command(ctx.ansible_binary, inventory, apply, limit)
        outcome.commands.append(argv)
        header = f"$ {' '.join(argv)}    (in {cwd})"
        log.write(header + "\n")
        ctx.say(f"[ralf] {header}")
        events_file.unlink(missing_ok=True)
        try:
            res = run_streamed(argv, cwd=cwd, env=env, log=log, on_line=ctx.on_output, redact=ctx.redact,
                               guard=ctx.guard)
            events = read_events(events_file)
        finally:
            events_file.unlink(missing_ok=True)
        if res.interrupted:
            outcome.result, outcome.note = Result.INTERRUPTED, "interrupted"
            return outcome
        if not apply:
            if res.returncode != 0:
                outcome.result, outcome.note = Result.FAILED, "syntax check failed"
            return outcome
        if events.changed is not None:
            changed = (changed or 0) + events.changed
        outcome.changed = changed
        unreachable = events.unreachable_hosts
        if res.returncode == 0:
            break
        if not unreachable or events.failed_hosts:
            outcome.result = Result.FAILED
            outcome.note = failure_note(events, res.returncode, ctx.redact)
            return outcome
        attempt += 1
        if attempt > ctx.ansible_retries:
            outcome.result = Result.FAILED
            outcome.note = f"unreachable after {attempt} attempts: {', '.join(unreachable)}"
            return outcome
        delay = retry_delay(attempt, ctx.ansible_retry_delay)
        msg = f"[ralf] unreachable: {', '.join(unreachable)}; retry {attempt}/{ctx.ansible_retries} in {delay:g}s"
        log.write(msg + "\n")
        ctx.say(msg)
        if ctx.guard.sleep(delay):
            outcome.result, outcome.note = Result.INTERRUPTED, "interrupted"
            return outcome
        limit = unreachable
    if attempt:
        outcome.note = f"succeeded after {attempt} retr{'y' if attempt == 1 else 'ies'} of unreachable hosts"
    return outcome
