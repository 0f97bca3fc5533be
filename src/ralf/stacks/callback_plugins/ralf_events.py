"""``ralf_events``: an Ansible notification callback that writes what ralf decides on as JSON lines.

ansible-playbook keeps printing its usual human output (the log an operator reads); this plugin, enabled
with ``ANSIBLE_CALLBACKS_ENABLED=ralf_events`` and found through ``ANSIBLE_CALLBACK_PLUGINS``, appends
one JSON object per line to the file named by ``RALF_ANSIBLE_EVENTS``:

- ``{"event": "failed", "host", "task", "msg", "ignored"}`` for a task that failed on a host,
- ``{"event": "unreachable", "host", "task", "msg"}`` for a host Ansible could not reach,
- ``{"event": "stats", "hosts": {host: {"ok", "changed", "unreachable", "failed", "skipped", "rescued",
  "ignored"}}}`` once at the end: the per-host recap.

ralf reads them with :mod:`ralf.stacks.ansible_events`. A ``no_log`` task's result reaches callbacks
already censored by Ansible, so its message is Ansible's censor note, never the hidden values.
This module is loaded by Ansible, not imported by ralf.
"""

from __future__ import annotations

import json
import os

from ansible.plugins.callback import CallbackBase

ENV = "RALF_ANSIBLE_EVENTS"
# the recap's words, and the keys AggregateStats.summarize() gives them under
RECAP_KEYS = {"ok": "ok", "changed": "changed", "unreachable": "unreachable", "failed": "failures",
              "skipped": "skipped", "rescued": "rescued", "ignored": "ignored"}


def _message(result: dict) -> str:
    msg = result.get("msg") or result.get("censored")
    if not msg and result.get("stderr"):
        msg = result["stderr"]
    if not msg and result.get("rc") is not None:
        msg = f"non-zero return code {result['rc']}"
    return str(msg or "")


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "notification"
    CALLBACK_NAME = "ralf_events"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self) -> None:
        super().__init__()
        self._path = os.environ.get(ENV) or None

    def _emit(self, event: dict) -> None:
        if self._path is None:
            return
        fd = os.open(self._path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8") as f:
            f.write(json.dumps(event, default=str) + "\n")

    def v2_runner_on_failed(self, result, ignore_errors: bool = False) -> None:
        self._emit({"event": "failed", "host": result._host.get_name(), "task": result._task.get_name(),
                    "msg": _message(result._result), "ignored": bool(ignore_errors)})

    def v2_runner_on_unreachable(self, result) -> None:
        self._emit({"event": "unreachable", "host": result._host.get_name(), "task": result._task.get_name(),
                    "msg": _message(result._result)})

    def v2_playbook_on_stats(self, stats) -> None:
        hosts = {}
        for host in sorted(stats.processed):
            s = stats.summarize(host)
            hosts[host] = {word: int(s.get(key, 0)) for word, key in RECAP_KEYS.items()}
        self._emit({"event": "stats", "hosts": hosts})
