"""Reading OpenTofu's machine output: the JSON UI stream (``-json``) and a saved plan (``show -json``).

Decisions never rest on OpenTofu's human text. ``plan``/``apply`` run with ``-json``: every line is a
JSON message whose ``@message`` is what a person would have read (that is what the log shows), and
whose ``type`` says what it is (``diagnostic``, ``change_summary``, ...). A saved plan read with
``show -json`` lists every resource change with its actions and, for a replacement, OpenTofu's
reason (``action_reason``) and the attributes forcing it (``replace_paths``) — the destroy guard's
input.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from ralf.errors import ExternalToolError

# Why OpenTofu deletes or replaces, in words (values of ``action_reason`` in ``show -json``).
REASONS = {
    "replace_because_cannot_update": "a changed argument cannot be updated in place",
    "replace_because_tainted": "the resource is tainted (a create step failed earlier)",
    "replace_by_request": "-replace was requested",
    "replace_by_triggers": "replace_triggered_by fired",
    "delete_because_no_resource_config": "it is no longer in the configuration (no moved block matches it)",
    "delete_because_no_module": "its module is no longer called",
    "delete_because_wrong_repetition": "count/for_each changed shape",
    "delete_because_count_index": "its count index is gone",
    "delete_because_each_key": "its for_each key is gone",
    "delete_because_no_move_target": "its moved block points at nothing",
}


def message(line: str) -> dict | None:
    """One line of ``-json`` output as a dict (None for a line that is not a JSON message)."""
    if not line.startswith("{"):
        return None
    try:
        msg = json.loads(line)
    except ValueError:
        return None
    return msg if isinstance(msg, dict) else None


def human(line: str) -> str:
    """What the log shows for a ``-json`` line: its ``@message`` (diagnostic details appended)."""
    msg = message(line)
    if msg is None:
        return line
    text = str(msg.get("@message", line))
    diag = msg.get("diagnostic")
    if isinstance(diag, dict) and diag.get("detail"):
        text += "\n  " + str(diag["detail"]).replace("\n", "\n  ")
    return text


def errors(lines: list[str]) -> list[str]:
    """The error diagnostics of a ``-json`` run: ``summary: detail`` each."""
    out = []
    for line in lines:
        msg = message(line)
        diag = msg.get("diagnostic") if msg else None
        if isinstance(diag, dict) and diag.get("severity") == "error":
            out.append(": ".join(str(p) for p in (diag.get("summary"), diag.get("detail")) if p))
    return out


def change_count(lines: list[str]) -> int | None:
    """added + changed + removed (+ imported) from the last ``change_summary`` message; None if none."""
    count = None
    for line in lines:
        msg = message(line)
        if msg and msg.get("type") == "change_summary" and isinstance(msg.get("changes"), dict):
            c = msg["changes"]
            count = sum(int(c.get(k) or 0) for k in ("add", "change", "remove", "import"))
    return count


@dataclass
class ResourceChange:
    address: str
    actions: list[str]
    previous_address: str | None = None
    reason: str | None = None
    replace_paths: list[list] = field(default_factory=list)
    mode: str = "managed"

    @property
    def destroys(self) -> bool:
        return "delete" in self.actions

    @property
    def replaced(self) -> bool:
        return "delete" in self.actions and "create" in self.actions

    @property
    def counted(self) -> int:
        """How many of the summary's add/change/remove this change makes (a replacement is two)."""
        return sum(1 for a in self.actions if a in ("create", "update", "delete"))

    def why(self) -> str:
        """Why OpenTofu deletes or replaces it, as the operator should read it."""
        words = REASONS.get(self.reason or "", self.reason or "no reason given")
        if self.replace_paths:
            paths = ", ".join(".".join(str(p) for p in path) for path in self.replace_paths)
            words += f" (forced by: {paths})"
        moved = f", moved from {self.previous_address}" if self.previous_address else ""
        return f"{'replace' if self.replaced else 'delete'} {self.address}{moved}: {words}"


@dataclass
class Plan:
    changes: list[ResourceChange]

    @property
    def destructive(self) -> list[ResourceChange]:
        return [c for c in self.changes if c.mode == "managed" and c.destroys]

    @property
    def change_count(self) -> int:
        return sum(c.counted for c in self.changes if c.mode == "managed")


def read_plan(text: str) -> Plan:
    """A saved plan from ``show -json``; an unreadable one is an error (the guard must not guess)."""
    try:
        doc = json.loads(text)
        rows = doc.get("resource_changes") or []
        changes = [
            ResourceChange(
                address=str(rc["address"]),
                actions=[str(a) for a in rc["change"]["actions"]],
                previous_address=rc.get("previous_address"),
                reason=rc.get("action_reason"),
                replace_paths=list(rc["change"].get("replace_paths") or []),
                mode=str(rc.get("mode", "managed")),
            )
            for rc in rows
        ]
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise ExternalToolError(f"cannot read the saved plan from `show -json`: {e}") from None
    return Plan(changes)
