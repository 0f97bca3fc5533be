"""What the fake Semaphore's handlers decode: the Go structs' field types, their zero values, and the errors.

Type codes: int, bool, str, list, dict, ints (list of int); None (JSON null) is accepted for every field, as
Go's decoder does. Unknown fields are ignored, also as Go does. A body that is not an object or has a field of
the wrong type is answered 400 with an empty body (:class:`BadRequest` with no message).
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

COMMON = {"id": "int", "project_id": "int"}
BODY_TYPES: dict[str, dict[str, str]] = {
    "project": {"id": "int", "name": "str", "alert": "bool", "alert_chat": "str", "max_parallel_tasks": "int",
                "type": "str", "demo": "bool"},
    "keys": {**COMMON, "name": "str", "type": "str", "override_secret": "bool", "login_password": "dict",
             "ssh": "dict"},
    "repositories": {**COMMON, "name": "str", "git_url": "str", "git_branch": "str", "ssh_key_id": "int"},
    "inventory": {**COMMON, "name": "str", "inventory": "str", "ssh_key_id": "int", "become_key_id": "int",
                  "type": "str", "repository_id": "int", "holder_id": "int"},
    "environment": {**COMMON, "name": "str", "password": "str", "json": "str", "env": "str", "secrets": "list"},
    "templates": {**COMMON, "inventory_id": "int", "repository_id": "int", "environment_id": "int", "name": "str",
                  "playbook": "str", "arguments": "str", "allow_override_args_in_task": "bool",
                  "description": "str", "vaults": "list", "type": "str", "start_version": "str",
                  "build_template_id": "int", "view_id": "int", "autorun": "bool", "git_branch": "str",
                  "survey_vars": "list", "suppress_success_alerts": "bool", "app": "str"},
    "views": {**COMMON, "title": "str", "position": "int"},
    "task": {"template_id": "int", "debug": "bool", "dry_run": "bool", "diff": "bool", "playbook": "str",
             "environment": "str", "limit": "str", "secret": "str", "arguments": "str", "git_branch": "str",
             "message": "str", "inventory_id": "int"},
    "stop": {"force": "bool"},
    "login": {"auth": "str", "password": "str"},
    "token": {"name": "str"},
}
BODY_TYPES_216: dict[str, dict[str, str]] = {
    "templates": {"environment_ids": "ints", "working_directory": "str", "limit": "str",
                  "suppress_error_alerts": "bool", "task_params": "dict", "allow_override_branch_in_task": "bool"},
    "views": {"hidden": "bool", "type": "str", "sort_column": "str", "sort_reverse": "bool"},
    "task": {"template_name": "str", "params": "dict"},
}
NESTED = {("keys", "login_password"): {"login": "str", "password": "str"},
          ("keys", "ssh"): {"login": "str", "passphrase": "str", "private_key": "str"}}

# stored fields and their zero values (what an omitted field becomes on create or PUT)
FIELDS: dict[str, dict[str, Any]] = {
    "keys": {"name": "", "type": "none"},
    "repositories": {"name": "", "git_url": "", "git_branch": "", "ssh_key_id": 0},
    "inventory": {"name": "", "inventory": "", "ssh_key_id": None, "become_key_id": None, "type": "static",
                  "repository_id": None, "holder_id": None},
    "environment": {"name": "", "password": None, "json": "", "env": None},
    "templates": {"inventory_id": None, "repository_id": 0, "environment_id": None, "name": "", "playbook": "",
                  "arguments": None, "allow_override_args_in_task": False, "description": None, "vaults": [],
                  "type": "", "start_version": None, "build_template_id": None, "view_id": None,
                  "autorun": False, "git_branch": None, "survey_vars": [], "suppress_success_alerts": False,
                  "app": ""},
    "views": {"title": "", "position": 0},
}
FIELDS_216: dict[str, dict[str, Any]] = {
    "templates": {"environment_ids": [], "working_directory": None, "limit": "", "suppress_error_alerts": False,
                  "task_params": None, "allow_override_branch_in_task": False},
    "views": {"hidden": False, "type": "", "sort_column": "", "sort_reverse": False},
}


class BadRequest(Exception):
    """Answer ``status`` (400 unless told); ``message`` None means an empty body (the real server's decode
    failures and its 401/403/404/409), else ``{"error": message, **extra}``."""

    def __init__(self, message: str | None = None, status: int = 400, extra: dict | None = None) -> None:
        super().__init__(message or "")
        self.message = message
        self.status = status
        self.extra = extra or {}


def now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def defaults(kind: str, version: str) -> dict:
    """A new object of ``kind`` with every stored field at its zero value."""
    d = copy.deepcopy(FIELDS[kind])
    if version == "2.16":
        d.update(copy.deepcopy(FIELDS_216.get(kind, {})))
    return d


def _types(kind: str, version: str) -> dict[str, str]:
    t = dict(BODY_TYPES[kind])
    if version == "2.16":
        t.update(BODY_TYPES_216.get(kind, {}))
    return t


def _type_ok(value: Any, code: str) -> bool:
    if value is None:
        return True
    if code == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if code == "bool":
        return isinstance(value, bool)
    if code == "str":
        return isinstance(value, str)
    if code == "list":
        return isinstance(value, list)
    if code == "dict":
        return isinstance(value, dict)
    if code == "ints":
        return isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    return True


def need_object(body: Any) -> dict:
    """The body a handler binds to a struct: anything but a JSON object → 400, empty body."""
    if not isinstance(body, dict):
        raise BadRequest()
    return body


def check_body(kind: str, body: Any, version: str) -> dict:
    """Go's json.Decode into the handler's struct: not an object or a wrong type → 400, empty body."""
    need_object(body)
    for name, code in _types(kind, version).items():
        if name in body and not _type_ok(body[name], code):
            raise BadRequest()
        sub = NESTED.get((kind, name))
        if sub and isinstance(body.get(name), dict):
            for k, c in sub.items():
                if k in body[name] and not _type_ok(body[name][k], c):
                    raise BadRequest()
    return body
