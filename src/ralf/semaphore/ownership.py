"""Which Semaphore objects are ralf's: a marker the user can see in the UI, on every object that has room for one.

- template: its description ends with ``(managed by ralf)``;
- environment (variable group): its environment variables hold ``RALF_MANAGED=1``;
- inventory: its text starts with the comment line ``# managed by ralf ...``.

Keys, repositories and views have no free-text field, so they carry no marker: ralf uses the ones the
platform names and never deletes any. ``--prune`` deletes only marked objects; an object with a
desired name but no marker (the user's original seeder made it, or the user did) is *adopted*: the
update that brings it to the desired state also adds the marker.
"""

from __future__ import annotations

import json
from typing import Any

TEMPLATE_MARK = "(managed by ralf)"
ENV_MARK_KEY = "RALF_MANAGED"
ENV_MARK_VALUE = "1"
INVENTORY_MARK = "# managed by ralf (`ralf semaphore seed`): edits here are overwritten"
MARKED_KINDS = ("templates", "environment", "inventory")


def template_description(description: str | None) -> str:
    return f"{description} {TEMPLATE_MARK}" if description else TEMPLATE_MARK


def environment_env(env: dict[str, str]) -> dict[str, str]:
    return {**env, ENV_MARK_KEY: ENV_MARK_VALUE}


def inventory_text(text: str) -> str:
    return f"{INVENTORY_MARK}\n{text}"


def is_owned(kind: str, obj: dict[str, Any]) -> bool:
    """True when the server object carries ralf's marker (always False for kinds without one)."""
    if kind == "templates":
        return str(obj.get("description") or "").rstrip().endswith(TEMPLATE_MARK)
    if kind == "environment":
        try:
            env = json.loads(obj.get("env") or "{}")
        except (TypeError, ValueError):
            return False
        return isinstance(env, dict) and env.get(ENV_MARK_KEY) == ENV_MARK_VALUE
    if kind == "inventory":
        return str(obj.get("inventory") or "").startswith(INVENTORY_MARK)
    return False
