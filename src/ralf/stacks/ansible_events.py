"""Reading Ansible's results as data: the JSON lines ralf's ``ralf_events`` callback writes.

ansible-playbook runs with its usual human output (streamed and logged for the operator) and with the
callback plugin shipped in :mod:`ralf.stacks.callback_plugins`, which appends one JSON object per line
to a file ralf names in ``RALF_ANSIBLE_EVENTS``. Every decision about an Ansible run — which hosts
failed, which were unreachable (and are retried), how many tasks changed — is taken from these
events, never from the PLAY RECAP text.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import ralf.stacks.callback_plugins as _plugins

CALLBACK = "ralf_events"
EVENTS_ENV = "RALF_ANSIBLE_EVENTS"
PLUGIN_DIR = Path(_plugins.__file__).resolve().parent


@dataclass(frozen=True)
class HostRecap:
    """One host's line of the recap (the counts Ansible's stats keep)."""

    host: str
    ok: int = 0
    changed: int = 0
    unreachable: int = 0
    failed: int = 0
    skipped: int = 0
    rescued: int = 0
    ignored: int = 0


@dataclass(frozen=True)
class TaskProblem:
    """A task that failed on a host, or a host Ansible could not reach during a task."""

    host: str
    task: str
    msg: str
    ignored: bool = False


@dataclass
class PlaybookEvents:
    """What one ansible-playbook run reported; ``recap`` is None when it ended before its stats."""

    recap: list[HostRecap] | None = None
    failures: list[TaskProblem] = field(default_factory=list)
    unreachable: list[TaskProblem] = field(default_factory=list)

    @property
    def failed_hosts(self) -> list[str]:
        return [h.host for h in self.recap or () if h.failed]

    @property
    def unreachable_hosts(self) -> list[str]:
        """Hosts unreachable and not failed: the only ones a retry can help."""
        return [h.host for h in self.recap or () if h.unreachable and not h.failed]

    @property
    def changed(self) -> int | None:
        return None if self.recap is None else sum(h.changed for h in self.recap)

    def first_failure(self, host: str) -> TaskProblem | None:
        """The first failure on ``host`` that counted (not ignored)."""
        return next((f for f in self.failures if f.host == host and not f.ignored), None)


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def parse_events(text: str) -> PlaybookEvents:
    """The events of one run from the callback's JSON lines.

    A line that is not a JSON object (a run killed while writing) is skipped; an unknown event is
    ignored, so a newer plugin's additions do not break an older reader.
    """
    out = PlaybookEvents()
    for line in text.splitlines():
        try:
            ev = json.loads(line)
        except ValueError:
            continue
        if not isinstance(ev, dict):
            continue
        kind = ev.get("event")
        if kind == "stats" and isinstance(ev.get("hosts"), dict):
            out.recap = [
                HostRecap(str(host), **{k: _count(c.get(k)) for k in ("ok", "changed", "unreachable", "failed",
                                                                      "skipped", "rescued", "ignored")})
                for host, c in ev["hosts"].items() if isinstance(c, dict)
            ]
        elif kind in ("failed", "unreachable"):
            problem = TaskProblem(str(ev.get("host", "?")), str(ev.get("task", "")), str(ev.get("msg", "")),
                                  bool(ev.get("ignored", False)))
            (out.failures if kind == "failed" else out.unreachable).append(problem)
    return out


def read_events(path: str | os.PathLike[str]) -> PlaybookEvents:
    """The events in ``path``; no file means the run wrote none (it ended before its first event)."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return PlaybookEvents()
    return parse_events(text)


def callback_env(base: dict[str, str], events_file: Path) -> dict[str, str]:
    """``base`` with ralf's callback enabled and writing to ``events_file`` (the user's callbacks kept)."""
    env = dict(base)
    paths = [str(PLUGIN_DIR)] + [p for p in base.get("ANSIBLE_CALLBACK_PLUGINS", "").split(os.pathsep) if p]
    env["ANSIBLE_CALLBACK_PLUGINS"] = os.pathsep.join(paths)
    enabled = [c.strip() for c in base.get("ANSIBLE_CALLBACKS_ENABLED", "").split(",") if c.strip()]
    env["ANSIBLE_CALLBACKS_ENABLED"] = ",".join([*enabled, CALLBACK] if CALLBACK not in enabled else enabled)
    env[EVENTS_ENV] = str(events_file)
    return env
