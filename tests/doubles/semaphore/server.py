"""FakeSemaphore: a small Semaphore-compatible HTTP server on 127.0.0.1, for tests and benchmarks.

It follows ``BEHAVIOUR.md`` (the real server's behaviour) closely enough that a client that works here
works against Semaphore 2.10 and 2.16+:

- auth: ``Authorization: Bearer`` (case-insensitive, as the real header check), login cookie, API tokens;
  401/403/404/409 answers have an **empty body** with a JSON content type;
- a JSON value of the wrong type (``"template_id": "5"``, ``"debug": "false"``) → 400 with an empty body;
  validation errors → 400 ``{"error": ...}``; unknown object ids → 404; unknown task id → 400;
- ``version="2.10"``: keys, repositories and environments are created with **204 and no body**, a
  template's bad ``app`` is stored *and* answered 400, ``stop`` needs a body, no ``raw_output``, the
  template list leaves out vaults and survey variables (null; only the single GET has them);
  ``version="2.16"``: every create answers 201 with the object, templates read ``environment_ids`` (and
  ``environment_id`` reads back 0), ``template_name`` may start a task;
- PUT is full replacement (omitted fields are reset) and needs ``id``/``project_id`` equal to the URL;
  creating a project also creates the ``None`` key and the ``Empty`` environment;
- tasks: ``POST /project/<pid>/tasks`` queues a task that goes waiting → starting → running →
  success|error as scripted per template name (:meth:`FakeSemaphore.script`), log lines appear in
  ``/output`` while it runs (``log_lag``: only that long after they were written, as the real server's
  asynchronous log channel, so the last lines may follow the final status); a second task of the same
  template waits for the first; ``start_latency`` holds every task in ``waiting`` (the 5-second pool tick);
  stop → stopping → stopped;
- ``GET /api/ws`` (``websocket=True``, as both generations): each log line and status change is pushed once as
  ``{"type": "log", ...}`` / ``{"type": "update", ...}`` (:mod:`doubles.semaphore.ws`), immediately — before
  ``log_lag`` lets the line into ``/output``. ``websocket=False`` answers 404 there (a proxy without upgrades).

Test hooks: :attr:`FakeSemaphore.requests` (every request with its answer), :meth:`fail_next`,
:meth:`drop_next`, :meth:`lose_next_start_response`, :meth:`expire_token`, and direct state access.
Fault injection (the failures a real server, its proxy or the network produce): :meth:`garble_next`
(200 with a non-object: ``null``, an HTML portal page), :meth:`slow_next` (an answer later than the
client waits, the work done before or after the wait), :meth:`hang_next` (accepts, never answers) and
:meth:`outage` (every request dropped or answered by a proxy's error page for a while).
"""

from __future__ import annotations

import json
import re
import secrets
import ssl
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from doubles.semaphore import ws as fake_ws

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
APPS = ("ansible", "terraform", "tofu", "bash", "powershell", "python")
FINISHED = ("success", "error", "stopped")
ACTIVE = ("waiting", "starting", "waiting_confirmation", "confirmed", "running", "stopping")

# --------------------------------------------------------------------------- request body types (Go structs)
# type codes: int, bool, str, list, dict, ints (list of int); None (JSON null) is accepted for every field,
# as Go's decoder does. Unknown fields are ignored, also as Go does.

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
NAME_FIELD = {"views": "title"}
KIND_SEGMENTS = ("keys", "repositories", "inventory", "environment", "templates", "views")


class _BadRequest(Exception):
    """Answer 400; ``message`` None means an empty body (the real server's decode failures)."""

    def __init__(self, message: str | None = None, status: int = 400, extra: dict | None = None) -> None:
        super().__init__(message or "")
        self.message = message
        self.status = status
        self.extra = extra or {}


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _check_type(value: Any, code: str) -> bool:
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


@dataclass
class Logged:
    """One request the server received, and its answer status (0 = connection dropped)."""

    method: str
    path: str
    query: str = ""
    body: Any = None
    status: int = 0
    size: int = 0  # bytes of the answer's body

    @property
    def is_write(self) -> bool:
        return self.method not in ("GET", "HEAD")


@dataclass
class _Rule:
    count: int
    status: int | None  # 0 = drop the connection; None = the normal answer
    method: str | None
    path: str | None
    body: bytes | None = None  # answered instead of the normal payload (with ``ctype``)
    ctype: str = "application/json"
    delay: float = 0.0  # seconds the answer is held back
    process: str = "no"  # "no": the request has no effect; "before"/"after": it is handled before/after the delay

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method == method) and (self.path is None or self.path in path)


@dataclass
class _Script:
    outcome: str = "success"
    duration: float = 0.2
    log: list[str] = field(default_factory=list)


class FakeSemaphore:
    """A running fake server. ``with FakeSemaphore(version="2.10") as sem: ... sem.url, sem.token``."""

    def __init__(
        self,
        version: str = "2.16",
        *,
        user: str = "admin",
        password: str = "fake-admin-password",
        start_latency: float = 0.0,
        log_lag: float = 0.0,
        tls: tuple[str, str] | None = None,
        websocket: bool = True,
    ) -> None:
        if version not in ("2.10", "2.16"):
            raise ValueError("version must be '2.10' or '2.16'")
        self.version = version
        self.user = user
        self.password = password
        self.start_latency = start_latency
        # the real server writes log records through an asynchronous channel: with a lag, a record shows up in
        # /output only this long after it was written, so a task's last lines can follow its final status
        self.log_lag = log_lag
        self.tls = tls  # (certificate chain file, key file): serve https
        self.websocket = websocket
        self.subscribers: list[fake_ws.Subscriber] = []  # open /api/ws connections
        self.ws_history: list[fake_ws.Subscriber] = []  # every one ever opened (their byte counts)
        self.lock = threading.RLock()
        self.requests: list[Logged] = []
        self._rules: list[_Rule] = []
        self._lose_start = 0
        self._outage: tuple[float, int, bytes | None, str] | None = None
        self._ids: dict[str, int] = {}
        self.projects: dict[int, dict] = {}
        self.objects: dict[str, dict[int, dict]] = {k: {} for k in KIND_SEGMENTS}
        self._key_secrets: dict[int, dict] = {}
        self.tasks: dict[int, dict] = {}
        self.outputs: dict[int, list[dict]] = {}
        self._visible_at: dict[int, list[float]] = {}
        self._scripts: dict[str, _Script] = {}
        self._stop_events: dict[int, threading.Event] = {}
        self._shutdown = threading.Event()
        self._tokens: dict[str, dict] = {}
        self._sessions: dict[str, int] = {}
        self.token = self._new_token()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> FakeSemaphore:
        fake = self

        class Handler(_Handler):
            server_fake = fake

        self._server = _QuietServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        host, port = self._server.server_address[:2]
        self.url = f"http://{host}:{port}"
        if self.tls is not None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*self.tls)
            self._server.socket = ctx.wrap_socket(self._server.socket, server_side=True)
            self.url = f"https://{host}:{port}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fake-semaphore", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._shutdown.set()
        for ev in list(self._stop_events.values()):
            ev.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeSemaphore:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ test hooks

    def script(self, template_name: str, outcome: str = "success", duration: float = 0.2,
               log: list[str] | None = None) -> None:
        """How tasks of ``template_name`` run: ``success``, ``error`` or ``hang`` (until stopped)."""
        if outcome not in ("success", "error", "hang"):
            raise ValueError("outcome must be success, error or hang")
        self._scripts[template_name] = _Script(outcome, duration, list(log or []))

    def fail_next(self, n: int = 1, status: int = 500, *, method: str | None = None, path: str | None = None) -> None:
        """Answer the next ``n`` matching requests with ``status`` and an empty body, doing nothing else."""
        with self.lock:
            self._rules.append(_Rule(n, status, method, path))

    def drop_next(self, n: int = 1, *, method: str | None = None, path: str | None = None) -> None:
        """Close the connection of the next ``n`` matching requests without answering (nothing is done)."""
        with self.lock:
            self._rules.append(_Rule(n, 0, method, path))

    def garble_next(self, n: int = 1, body: bytes | str = b"null", *, ctype: str = "application/json",
                    status: int = 200, method: str | None = None, path: str | None = None) -> None:
        """Answer the next ``n`` matching requests with ``status`` and ``body`` (nothing is done)."""
        data = body.encode() if isinstance(body, str) else body
        with self.lock:
            self._rules.append(_Rule(n, status, method, path, body=data, ctype=ctype))

    def slow_next(self, n: int = 1, delay: float = 1.0, *, work: str = "before", method: str | None = None,
                  path: str | None = None, drop: bool = False) -> None:
        """Hold the answer of the next ``n`` matching requests ``delay`` seconds; the request takes effect
        ``work="before"`` the wait (a late answer) or ``"after"`` it (a server slow to process); with
        ``drop`` the connection is then closed instead of answered."""
        if work not in ("before", "after"):
            raise ValueError("work must be 'before' or 'after'")
        with self.lock:
            self._rules.append(_Rule(n, 0 if drop else None, method, path, delay=delay, process=work))

    def hang_next(self, n: int = 1, *, method: str | None = None, path: str | None = None,
                  seconds: float = 3600.0) -> None:
        """Accept the next ``n`` matching requests and never answer them (until ``seconds`` or shutdown)."""
        with self.lock:
            self._rules.append(_Rule(n, 0, method, path, delay=seconds))

    def outage(self, seconds: float, *, status: int = 0, body: bytes | str | None = None,
               ctype: str = "text/html") -> None:
        """For the next ``seconds`` every request is dropped (``status`` 0) or answered ``status`` + ``body``
        (a reverse proxy's error page) without reaching the server."""
        data = body.encode() if isinstance(body, str) else body
        with self.lock:
            self._outage = (time.monotonic() + seconds, status, data, ctype)

    def drop_websockets(self) -> None:
        """Close every open ``/api/ws`` connection (as a server restart or a proxy timeout would)."""
        with self.lock:
            subs, self.subscribers = self.subscribers, []
        for s in subs:
            s.close()

    def lose_next_start_response(self) -> None:
        """The next ``POST .../tasks`` creates the task, then drops the connection before answering."""
        with self.lock:
            self._lose_start += 1

    def expire_token(self, token: str | None = None) -> None:
        with self.lock:
            self._tokens[(token or self.token).lower()]["expired"] = True

    def new_token(self) -> str:
        with self.lock:
            return self._new_token()

    def clear_requests(self) -> None:
        with self.lock:
            self.requests.clear()

    def count(self, method: str | None = None, path: str | None = None) -> int:
        """Requests received, optionally only one method and/or paths containing ``path``."""
        with self.lock:
            return sum(1 for r in self.requests
                       if (method is None or r.method == method) and (path is None or path in r.path))

    def bytes_sent(self, path: str | None = None) -> int:
        """Body bytes answered to requests whose path contains ``path``, plus every websocket byte when None."""
        with self.lock:
            http = sum(r.size for r in self.requests if path is None or path in r.path)
            return http + (sum(s.sent_bytes for s in self.ws_history) if path is None else 0)

    def ws_bytes(self) -> int:
        with self.lock:
            return sum(s.sent_bytes for s in self.ws_history)

    @property
    def writes(self) -> list[Logged]:
        with self.lock:
            return [r for r in self.requests if r.is_write]

    # direct state access (a "manual edit in the UI")
    def add_project(self, name: str) -> int:
        with self.lock:
            return self._create_project({"name": name})["id"]

    def find(self, kind: str, project_id: int, name: str) -> list[dict]:
        nf = NAME_FIELD.get(kind, "name")
        with self.lock:
            return [o for o in self.objects[kind].values() if o["project_id"] == project_id and o[nf] == name]

    def insert(self, kind: str, project_id: int, **fields: Any) -> dict:
        """Store an object as given (no validation): for duplicates and odd server states."""
        with self.lock:
            obj = {**self._defaults(kind), **fields, "id": self._next(kind), "project_id": project_id}
            self.objects[kind][obj["id"]] = obj
            return obj

    def edit(self, kind: str, object_id: int, **fields: Any) -> None:
        with self.lock:
            self.objects[kind][object_id].update(fields)

    # ------------------------------------------------------------------ internals: ids, auth

    def _next(self, kind: str) -> int:
        self._ids[kind] = self._ids.get(kind, 0) + 1
        return self._ids[kind]

    def _new_token(self) -> str:
        tok = secrets.token_urlsafe(32).lower()
        self._tokens[tok] = {"id": tok, "created": _now(), "expired": False, "user_id": 1}
        return tok

    def _authenticated(self, headers: Any) -> bool:
        h = (headers.get("Authorization") or "").lower()
        if "bearer" in h:
            tok = h.replace("bearer ", "", 1).strip()
            info = self._tokens.get(tok)
            return bool(info) and not info["expired"]
        cookie = headers.get("Cookie") or ""
        m = re.search(r"(?:^|;\s*)semaphore=([^;]+)", cookie)
        return bool(m) and m.group(1) in self._sessions

    def _defaults(self, kind: str) -> dict:
        d = json.loads(json.dumps(FIELDS[kind]))
        if self.version == "2.16":
            d.update(json.loads(json.dumps(FIELDS_216.get(kind, {}))))
        return d

    def _types(self, kind: str) -> dict[str, str]:
        t = dict(BODY_TYPES[kind])
        if self.version == "2.16":
            t.update(BODY_TYPES_216.get(kind, {}))
        return t

    def _check_body(self, kind: str, body: Any) -> dict:
        """Go's json.Decode into the handler's struct: not an object or a wrong type → 400, empty body."""
        if not isinstance(body, dict):
            raise _BadRequest()
        for name, code in self._types(kind).items():
            if name in body and not _check_type(body[name], code):
                raise _BadRequest()
            sub = NESTED.get((kind, name))
            if sub and isinstance(body.get(name), dict):
                for k, c in sub.items():
                    if k in body[name] and not _check_type(body[name][k], c):
                        raise _BadRequest()
        return body

    # ------------------------------------------------------------------ internals: projects and objects

    def _create_project(self, body: dict) -> dict:
        pid = self._next("project")
        proj = {"id": pid, "name": body.get("name") or "", "created": _now(), "alert": False, "alert_chat": None,
                "max_parallel_tasks": 0, "type": body.get("type") or ""}
        if self.version == "2.16":
            proj["alert"] = bool(body.get("alert"))
            proj["alert_chat"] = body.get("alert_chat")
            proj["max_parallel_tasks"] = body.get("max_parallel_tasks") or 0
        self.projects[pid] = proj
        none_key = {"id": self._next("keys"), "project_id": pid, "name": "None", "type": "none"}
        self.objects["keys"][none_key["id"]] = none_key
        empty = {**self._defaults("environment"), "id": self._next("environment"), "project_id": pid,
                 "name": "Empty", "json": "{}"}
        self.objects["environment"][empty["id"]] = empty
        return proj

    def _project(self, pid: int) -> dict:
        proj = self.projects.get(pid)
        if proj is None:
            raise _BadRequest(None, 404)
        return proj

    def _object(self, kind: str, pid: int, oid: int) -> dict:
        obj = self.objects[kind].get(oid)
        if obj is None or obj["project_id"] != pid:
            raise _BadRequest(None, 404)
        return obj

    def _present(self, kind: str, obj: dict, listing: bool = False) -> dict:
        out = json.loads(json.dumps(obj))
        if kind == "keys":
            out.update(login_password={"login": "", "password": ""}, ssh={"login": "", "passphrase": "",
                                                                          "private_key": ""})
        elif kind == "environment":
            out["secrets"] = []
        elif kind == "templates":
            if self.version == "2.16":
                out["environment_id"] = 0
            if listing:
                last = [t for t in self.tasks.values() if t["template_id"] == obj["id"]]
                out["last_task"] = self._task_with_tpl(max(last, key=lambda t: t["id"])) if last else None
                if self.version == "2.10":
                    _without_template_details(out)
        return out

    def _validate(self, kind: str, pid: int, obj: dict) -> str | None:
        """Validation after decode: returns an error message (400 JSON) or raises 404 for unknown references."""
        nf = NAME_FIELD.get(kind, "name")
        if not obj.get(nf):
            return f"{kind} {nf} can not be empty"

        def ref(k: str, oid: Any) -> None:
            if oid is not None and oid != 0:
                o = self.objects[k].get(oid)
                if o is None or o["project_id"] != pid:
                    raise _BadRequest(None, 404)

        if kind == "keys":
            if obj.get("type") not in ("none", "ssh", "login_password", "string"):
                return "Invalid access key type"
        elif kind == "repositories":
            if not obj.get("git_url"):
                return "Repository url can not be empty"
            if not obj.get("ssh_key_id"):
                raise _BadRequest(None, 404)
            ref("keys", obj.get("ssh_key_id"))
        elif kind == "inventory":
            if obj.get("type") not in ("static", "static-yaml", "file", "terraform-workspace", "tofu-workspace"):
                return "Not supported inventory type"
            ref("keys", obj.get("ssh_key_id"))
            ref("keys", obj.get("become_key_id"))
            ref("repositories", obj.get("repository_id"))
        elif kind == "environment":
            for f in ("json", "env"):
                val = obj.get(f)
                if f == "json" or val not in (None, ""):
                    try:
                        if not isinstance(json.loads(val or ""), dict):
                            raise ValueError
                    except ValueError:
                        return f"Environment {f} must be a JSON object"
        elif kind == "templates":
            if obj.get("app") not in APPS:
                return f"Unknown app {obj.get('app')!r}"
            if obj["app"] not in ("terraform", "tofu") and not obj.get("playbook"):
                return "Playbook can not be empty"
            if obj["app"] == "ansible" and not obj.get("inventory_id"):
                return "Inventory can not be empty"
            if obj.get("arguments") not in (None, ""):
                try:
                    if not isinstance(json.loads(obj["arguments"]), list):
                        raise ValueError
                except ValueError:
                    return "Arguments must be a JSON array"
            ref("repositories", obj.get("repository_id") or -1)
            ref("inventory", obj.get("inventory_id"))
            ref("environment", obj.get("environment_id"))
            for eid in obj.get("environment_ids") or []:
                ref("environment", eid)
            ref("views", obj.get("view_id"))
        return None

    def _build(self, kind: str, body: dict, pid: int) -> dict:
        obj = self._defaults(kind)
        for k in obj:
            if k in body:
                obj[k] = body[k]
        obj["project_id"] = pid
        if kind == "templates" and self.version == "2.16":
            obj["environment_ids"] = list(body.get("environment_ids") or [])
            obj["environment_id"] = obj["environment_ids"][0] if obj["environment_ids"] else None
        return obj

    def _create(self, kind: str, pid: int, body: dict) -> tuple[int, Any]:
        self._project(pid)
        self._check_body(kind, body)
        if kind != "templates" and body.get("project_id") != pid:
            msg = "Project ID in body and URL must be the same"
            if not (self.version == "2.10" and kind in ("repositories", "environment")):
                raise _BadRequest(msg)
            # 2.10 quirk: AddRepository / AddEnvironment write the 400 but go on and create
        else:
            msg = None
        obj = self._build(kind, body, pid)
        if kind == "keys":
            if obj["type"] == "ssh" and not (body.get("ssh") or {}).get("private_key"):
                raise _BadRequest("SSH key can not be empty")
            if obj["type"] == "login_password" and not (body.get("login_password") or {}).get("password"):
                raise _BadRequest("Password can not be empty")
        problem = self._validate(kind, pid, obj)
        bad_app_quirk = (kind == "templates" and self.version == "2.10" and problem
                         and problem.startswith("Unknown app") and obj.get("name") and obj.get("playbook"))
        if problem and not bad_app_quirk:
            raise _BadRequest(problem)
        obj["id"] = self._next(kind)
        self.objects[kind][obj["id"]] = obj
        if kind == "keys":
            self._key_secrets[obj["id"]] = {"login_password": body.get("login_password"), "ssh": body.get("ssh")}
        if problem:  # 2.10 AddTemplate: inserted first, app checked afterwards
            raise _BadRequest(problem)
        if msg:
            raise _BadRequest(msg)
        if self.version == "2.10" and kind in ("keys", "repositories", "environment"):
            return 204, None
        return 201, self._present(kind, obj)

    def _update(self, kind: str, pid: int, oid: int, body: dict) -> tuple[int, Any]:
        self._project(pid)
        current = self._object(kind, pid, oid)
        self._check_body(kind, body)
        if body.get("id") != oid:
            raise _BadRequest(f"{kind} ID in body and URL must be the same")
        if body.get("project_id") != pid:
            raise _BadRequest("Project ID in body and URL must be the same")
        obj = self._build(kind, body, pid)
        obj["id"] = oid
        problem = self._validate(kind, pid, obj)
        if problem:
            raise _BadRequest(problem)
        if kind == "keys" and body.get("override_secret"):  # else the stored secret is kept
            self._key_secrets[oid] = {"login_password": body.get("login_password"), "ssh": body.get("ssh")}
        current.clear()
        current.update(obj)
        return 204, None

    def _delete(self, kind: str, pid: int, oid: int) -> tuple[int, Any]:
        self._project(pid)
        obj = self._object(kind, pid, oid)
        templates = [t for t in self.objects["templates"].values() if t["project_id"] == pid]
        in_use = False
        if kind == "keys":
            in_use = any(o.get("ssh_key_id") == oid or o.get("become_key_id") == oid
                         for k in ("repositories", "inventory") for o in self.objects[k].values())
        elif kind == "repositories":
            in_use = any(t.get("repository_id") == oid for t in templates)
        elif kind == "inventory":
            in_use = any(t.get("inventory_id") == oid for t in templates)
        elif kind == "environment":
            in_use = any(t.get("environment_id") == oid or oid in (t.get("environment_ids") or []) for t in templates)
        if in_use:
            label = {"keys": "Access key", "repositories": "Repository", "inventory": "Inventory",
                     "environment": "Environment"}[kind]
            raise _BadRequest(f"{label} is in use by one or more templates", extra={"inUse": True})
        if kind == "views":
            for t in templates:
                if t.get("view_id") == oid:
                    t["view_id"] = None
        if kind == "templates":
            for tid in [t["id"] for t in self.tasks.values() if t["template_id"] == oid]:
                self.tasks.pop(tid, None)
        del self.objects[kind][obj["id"]]
        return 204, None

    def _list(self, kind: str, pid: int, query: dict) -> list[dict]:
        self._project(pid)
        items = [self._present(kind, o, listing=True) for o in self.objects[kind].values() if o["project_id"] == pid]
        sort = (query.get("sort") or ["id"])[0]
        reverse = (query.get("order") or ["asc"])[0] == "desc"
        items.sort(key=lambda o: (str(o.get(sort)) if sort != "id" else o["id"]), reverse=reverse)
        return items

    # ------------------------------------------------------------------ internals: tasks

    def _task_with_tpl(self, task: dict) -> dict:
        out = dict(task)
        tpl = self.objects["templates"].get(task["template_id"]) or {}
        out.update(tpl_playbook=tpl.get("playbook", ""), tpl_alias=tpl.get("name", ""), tpl_type=tpl.get("type", ""),
                   tpl_app=tpl.get("app", ""), user_name=self.user, build_task=None)
        return out

    def _push(self, event: dict) -> None:
        """Send one event to every websocket (the fake's users are all admins, who get every project's)."""
        data = json.dumps(event, separators=(",", ":"), sort_keys=True).encode()  # as Go marshals a map
        with self.lock:
            self.subscribers = [s for s in self.subscribers if s.offer(data)]

    def _push_status(self, task: dict) -> None:
        self._push({"type": "update", "start": task["start"], "end": task["end"], "status": task["status"],
                    "task_id": task["id"], "template_id": task["template_id"], "project_id": task["project_id"],
                    "version": task.get("version")})

    def _log(self, tid: int, line: str) -> None:
        with self.lock:
            rec = {"task_id": tid, "time": _now(), "output": line}
            task = self.tasks.get(tid)
            self._push({"type": "log", "output": line, "time": rec["time"], "task_id": tid,
                        "project_id": task["project_id"] if task else None})
            if self.version == "2.16":
                rec["id"] = sum(len(v) for v in self.outputs.values()) + 1
            else:
                rec["task"] = ""
            self.outputs.setdefault(tid, []).append(rec)
            self._visible_at.setdefault(tid, []).append(time.monotonic() + self.log_lag)

    def _visible_output(self, tid: int) -> list[dict]:
        now = time.monotonic()
        records, times = self.outputs.get(tid, []), self._visible_at.get(tid, [])
        return [r for r, at in zip(records, times, strict=False) if at <= now]

    def _start_task(self, pid: int, body: dict) -> dict:
        self._project(pid)
        self._check_body("task", body)
        tpl_id = body.get("template_id")
        if not tpl_id and self.version == "2.16" and body.get("template_name"):
            named = self.find("templates", pid, body["template_name"])
            tpl_id = named[0]["id"] if named else None
        tpl = self.objects["templates"].get(tpl_id or 0)
        if tpl is None or tpl["project_id"] != pid:
            raise _BadRequest(None, 404)
        tid = self._next("task")
        task = {"id": tid, "template_id": tpl["id"], "project_id": pid, "status": "waiting",
                "debug": bool(body.get("debug")), "dry_run": bool(body.get("dry_run")), "diff": bool(body.get("diff")),
                "playbook": body.get("playbook") or "", "environment": body.get("environment") or "",
                "limit": body.get("limit") or "", "secret": "", "arguments": body.get("arguments"),
                "git_branch": body.get("git_branch"), "user_id": 1, "integration_id": None, "schedule_id": None,
                "created": _now(), "start": None, "end": None, "message": body.get("message") or "",
                "commit_hash": None, "commit_message": "", "build_task_id": None, "version": None,
                "inventory_id": body.get("inventory_id")}
        if self.version == "2.16":
            task["params"] = body.get("params") or {}
        self.tasks[tid] = task
        self._stop_events[tid] = threading.Event()
        self._log(tid, f"Task {tid} added to queue")
        threading.Thread(target=self._run_task, args=(tid,), name=f"fake-task-{tid}", daemon=True).start()
        return dict(task)

    def _set_status(self, tid: int, status: str) -> None:
        with self.lock:
            task = self.tasks.get(tid)
            if task is None:
                return
            task["status"] = status
            if status == "running" and task["start"] is None:
                task["start"] = _now()
            if status in FINISHED:
                task["end"] = _now()
            self._push_status(task)

    def _run_task(self, tid: int) -> None:
        stop = self._stop_events[tid]
        with self.lock:
            task = self.tasks[tid]
            tpl_name = (self.objects["templates"].get(task["template_id"]) or {}).get("name", "")
        script = self._scripts.get(tpl_name, _Script())
        if self.start_latency:
            stop.wait(self.start_latency)
        while not stop.is_set() and not self._shutdown.is_set():  # same-template tasks run one at a time
            with self.lock:
                blocked = any(t["template_id"] == task["template_id"] and t["id"] < tid and t["status"] in ACTIVE
                              for t in self.tasks.values())
            if not blocked:
                break
            stop.wait(0.02)
        if stop.is_set() or self._shutdown.is_set():
            self._finish_stopped(tid)
            return
        self._set_status(tid, "starting")
        self._log(tid, f"Started: {tid}")
        self._log(tid, f"Run TaskRunner with template: {tpl_name}")
        self._set_status(tid, "running")
        lines = script.log
        step = script.duration / max(1, len(lines) + 1)
        for line in lines:
            if stop.wait(step):
                self._finish_stopped(tid)
                return
            self._log(tid, line)
        if script.outcome == "hang":
            while not stop.wait(0.05):
                if self._shutdown.is_set():
                    return
            self._finish_stopped(tid)
            return
        if stop.wait(step):
            self._finish_stopped(tid)
            return
        ok = script.outcome == "success"
        if not ok:
            self._log(tid, "Command exited with status 1")
        self._set_status(tid, "success" if ok else "error")

    def _finish_stopped(self, tid: int) -> None:
        with self.lock:
            task = self.tasks.get(tid)
            if task is None or task["status"] in FINISHED:
                return
        time.sleep(0.02)  # "stopping" is visible for a moment
        self._log(tid, "Task stopped")
        self._set_status(tid, "stopped")

    def _stop_task(self, tid: int, force: bool) -> None:
        with self.lock:
            task = self.tasks[tid]
            if task["status"] in FINISHED or force:
                task["status"] = "stopped"
                task["end"] = task["end"] or _now()
            else:
                task["status"] = "stopping"
            self._push_status(task)
        self._stop_events[tid].set()

    def _task(self, pid: int, tid: int) -> dict:
        self._project(pid)
        task = self.tasks.get(tid)
        if task is None or task["project_id"] != pid:
            raise _BadRequest(None, 400)  # GetTaskMiddleware: 400, not 404
        return task

    # ------------------------------------------------------------------ routing

    def handle(self, method: str, path: str, query: dict, headers: Any, raw: bytes) -> tuple[int, Any, str]:
        """Dispatch one request; returns (status, payload, content type). Payload None = empty body."""
        if not path.startswith("/api/"):
            return 404, None, "text/plain"
        p = path[len("/api"):].rstrip("/") or "/"
        body: Any = None
        if raw.strip():
            try:
                body = json.loads(raw)
            except ValueError:
                body = _Undecodable
        if p == "/ping" and method in ("GET", "HEAD"):
            return 200, "pong", "text/plain; charset=utf-8"
        if p == "/auth/login":
            if method == "GET":
                return 200, {"oidc_providers": [], "login_with_password": True}, "application/json"
            if method == "POST":
                if body is _Undecodable or not isinstance(body, dict):
                    raise _BadRequest()
                self._check_body("login", body)
                if (body.get("auth") or "").lower() != self.user.lower() or body.get("password") != self.password:
                    raise _BadRequest(None, 401)
                session = secrets.token_hex(16)
                self._sessions[session] = 1
                return 204, ("__cookie__", session), "application/json"
            return 405, None, "application/json"
        if p == "/auth/logout" and method == "POST":
            return 204, None, "application/json"
        if not self._authenticated(headers):
            raise _BadRequest(None, 401)
        if body is _Undecodable:
            raise _BadRequest()

        def need_body() -> dict:
            if not isinstance(body, dict):
                raise _BadRequest()
            return body

        if p == "/info" and method == "GET":
            info = {"version": "v2.10.32-d4a2713-1729850000" if self.version == "2.10"
                    else "v2.16.14-013b450-1750000000", "ansible": "ansible [core 2.17.0]",
                    "web_host": self.url, "use_remote_runner": False}
            if self.version == "2.16":
                info.update(auth_methods={"totp": {"enabled": False}}, git_client="cmd_git",
                            schedule_timezone="UTC", features={})
            return 200, info, "application/json"
        if p == "/user" and method == "GET":
            return 200, {"id": 1, "username": self.user, "name": self.user, "email": "", "admin": True,
                         "can_create_project": True}, "application/json"
        if p == "/user/tokens":
            if method == "GET":
                return 200, [dict(t) for t in self._tokens.values()], "application/json"
            if method == "POST":
                if body is not None:
                    self._check_body("token", need_body())
                tok = self._new_token()
                return 201, dict(self._tokens[tok]), "application/json"
        m = re.fullmatch(r"/user/tokens/([^/]+)", p)
        if m and method == "DELETE":
            info = self._tokens.get(m.group(1).lower())
            if info is None:
                raise _BadRequest(None, 404)
            info["expired"] = True
            return 204, None, "application/json"
        if p == "/projects":
            if method == "GET":
                return 200, [dict(x) for x in self.projects.values()], "application/json"
            if method == "POST":
                b = self._check_body("project", need_body())
                if not b.get("name"):
                    raise _BadRequest("Project name can not be empty")
                return 201, dict(self._create_project(b)), "application/json"
        m = re.fullmatch(r"/project/(\d+)", p)
        if m:
            pid = int(m.group(1))
            proj = self._project(pid)
            if method == "GET":
                return 200, dict(proj), "application/json"
            if method == "PUT":
                b = self._check_body("project", need_body())
                if b.get("id") != pid:
                    raise _BadRequest("Project ID in body and URL must be the same")
                proj.update(name=b.get("name") or "", alert=bool(b.get("alert")), alert_chat=b.get("alert_chat"),
                            max_parallel_tasks=b.get("max_parallel_tasks") or 0)
                return 204, None, "application/json"
            if method == "DELETE":
                for kind in KIND_SEGMENTS:
                    for oid in [o["id"] for o in self.objects[kind].values() if o["project_id"] == pid]:
                        del self.objects[kind][oid]
                del self.projects[pid]
                return 204, None, "application/json"
            return 405, None, "application/json"
        m = re.fullmatch(r"/project/(\d+)/(keys|repositories|inventory|environment|templates|views)", p)
        if m:
            pid, kind = int(m.group(1)), m.group(2)
            if method == "GET":
                return 200, self._list(kind, pid, query), "application/json"
            if method == "POST":
                status, payload = self._create(kind, pid, need_body())
                return status, payload, "application/json"
            return 405, None, "application/json"
        m = re.fullmatch(r"/project/(\d+)/(keys|repositories|inventory|environment|templates|views)/(\d+)", p)
        if m:
            pid, kind, oid = int(m.group(1)), m.group(2), int(m.group(3))
            if method == "GET":
                self._project(pid)
                return 200, self._present(kind, self._object(kind, pid, oid)), "application/json"
            if method == "PUT":
                status, payload = self._update(kind, pid, oid, need_body())
                return status, payload, "application/json"
            if method == "DELETE":
                status, payload = self._delete(kind, pid, oid)
                return status, payload, "application/json"
            return 405, None, "application/json"
        m = re.fullmatch(r"/project/(\d+)/templates/(\d+)/tasks(/last)?", p)
        if m:
            if method != "GET":
                return 405, None, "application/json"  # there is no POST .../templates/<id>/tasks
            pid, oid = int(m.group(1)), int(m.group(2))
            self._project(pid)
            self._object("templates", pid, oid)
            tasks = sorted((t for t in self.tasks.values() if t["template_id"] == oid), key=lambda t: -t["id"])
            limit = 1000
            if m.group(3):
                try:
                    limit = min(200, int((query.get("limit") or ["200"])[0]))
                except ValueError:
                    limit = 200
            return 200, [self._task_with_tpl(t) for t in tasks[:limit]], "application/json"
        m = re.fullmatch(r"/project/(\d+)/templates/(\d+)/stop_all_tasks", p)
        if m and method == "POST" and self.version == "2.16":
            pid, oid = int(m.group(1)), int(m.group(2))
            self._object("templates", pid, oid)
            force = bool((body or {}).get("force")) if isinstance(body, dict) else False
            for t in list(self.tasks.values()):
                if t["template_id"] == oid and t["status"] in ACTIVE:
                    self._stop_task(t["id"], force)
            return 204, None, "application/json"
        m = re.fullmatch(r"/project/(\d+)/tasks(/last)?", p)
        if m:
            pid = int(m.group(1))
            if method == "GET":
                self._project(pid)
                tasks = sorted((t for t in self.tasks.values() if t["project_id"] == pid), key=lambda t: -t["id"])
                limit = 1000
                if m.group(2):  # ?limit=N, default and maximum 200
                    try:
                        limit = max(1, min(200, int((query.get("limit") or ["200"])[0])))
                    except ValueError:
                        limit = 200
                return 200, [self._task_with_tpl(t) for t in tasks[:limit]], "application/json"
            if method == "POST" and not m.group(2):
                task = self._start_task(pid, need_body())
                if self._lose_start:
                    self._lose_start -= 1
                    return 0, None, ""
                return 201, task, "application/json"
            return 405, None, "application/json"
        m = re.fullmatch(r"/project/(\d+)/tasks/(\d+)(/output|/raw_output|/stop)?", p)
        if m:
            pid, tid, sub = int(m.group(1)), int(m.group(2)), m.group(3)
            if sub == "/raw_output" and self.version == "2.10":
                return 404, None, "text/plain"
            task = self._task(pid, tid)
            if sub is None and method == "GET":
                return 200, dict(task), "application/json"
            if sub is None and method == "DELETE":
                if task["status"] in ACTIVE:
                    raise _BadRequest(None, 409)
                del self.tasks[tid]
                self.outputs.pop(tid, None)
                self._visible_at.pop(tid, None)
                return 204, None, "application/json"
            if sub == "/output" and method == "GET":
                return 200, [dict(r) for r in self._visible_output(tid)], "application/json"
            if sub == "/raw_output" and method == "GET":
                text = "".join(ANSI.sub("", r["output"]) + "\n" for r in self._visible_output(tid))
                return 200, text, "text/plain; charset=utf-8"
            if sub == "/stop" and method == "POST":
                if body is None and self.version == "2.10":
                    raise _BadRequest()  # 2.10: helpers.Bind on an empty body
                b = body if body is not None else {}
                self._check_body("stop", need_body() if body is not None else b)
                self._stop_task(tid, bool(b.get("force")))
                return 204, None, "application/json"
            return 405, None, "application/json"
        return 404, None, "application/json"


def _without_template_details(listed: dict) -> None:
    """2.10's template list (``GetTemplates``) does not fill vaults and survey variables: they read null.

    Only the single GET (``GetTemplate`` → ``FillTemplate``) has them, so a client that builds its
    full-object PUT from the list wipes them."""
    listed["vaults"] = None
    listed["survey_vars"] = None


class _QuietServer(ThreadingHTTPServer):
    """A client that gives up and closes its connection is normal here, not an error worth a traceback."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class _UndecodableType:
    pass


_Undecodable = _UndecodableType()


class _Handler(BaseHTTPRequestHandler):
    server_fake: FakeSemaphore
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # answers are written in two parts; without this each waits ~40 ms

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _serve(self) -> None:
        fake = self.server_fake
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            parsed_body: Any = json.loads(raw) if raw.strip() else None
        except ValueError:
            parsed_body = raw.decode("utf-8", "replace")
        entry = Logged(self.command, parts.path, parts.query, parsed_body)
        with fake.lock:
            fake.requests.append(entry)
            rule = next((r for r in fake._rules if r.count > 0 and r.matches(self.command, parts.path)), None)
            if rule is not None:
                rule.count -= 1
                fake._rules = [r for r in fake._rules if r.count > 0]
            elif fake._outage is not None and time.monotonic() < fake._outage[0]:
                _, status, data, ctype = fake._outage
                rule = _Rule(1, status, None, None, body=data, ctype=ctype)
        if rule is not None and rule.process == "no":
            if rule.delay:
                fake._shutdown.wait(rule.delay)
            entry.status = rule.status or 0
            if not rule.status:
                self._drop()
            else:
                self._answer(rule.status, rule.body, rule.ctype)
            return
        if rule is not None and rule.process == "after":
            fake._shutdown.wait(rule.delay)
        if (parts.path.rstrip("/") == "/api/ws" and fake.websocket and self.command == "GET"
                and "websocket" in (self.headers.get("Upgrade") or "").lower()):
            self._websocket(entry)
            return
        try:
            with fake.lock:
                status, payload, ctype = fake.handle(self.command, parts.path, parse_qs(parts.query),
                                                     self.headers, raw)
        except _BadRequest as e:
            status, ctype = e.status, "application/json"
            payload = {"error": e.message, **e.extra} if e.message else None
        except Exception as e:  # a bug in the fake: answer 500 like a Go panic would, but visibly
            status, payload, ctype = 500, {"error": f"fake server bug: {type(e).__name__}: {e}"}, "application/json"
        if rule is not None and rule.process == "before":
            fake._shutdown.wait(rule.delay)
            if rule.status == 0:
                status = 0
        entry.status = status
        if status == 0:
            self._drop()
            return
        try:
            self._answer(status, payload, ctype, entry)
        except OSError:  # the client gave up waiting and closed the connection
            self.close_connection = True

    def _websocket(self, entry: Logged) -> None:
        fake = self.server_fake
        with fake.lock:
            allowed = fake._authenticated(self.headers)
        if not allowed:
            entry.status = 401
            self._answer(401, None, "application/json")
            return
        entry.status = 101
        sub = fake_ws.Subscriber()
        with fake.lock:
            fake.subscribers.append(sub)
            fake.ws_history.append(sub)

        def gone(s: fake_ws.Subscriber) -> None:
            with fake.lock:
                fake.subscribers = [x for x in fake.subscribers if x is not s]

        fake_ws.serve(self, sub, fake._shutdown, gone)

    def _drop(self) -> None:
        self.close_connection = True
        try:
            self.connection.shutdown(2)
        except OSError:
            pass

    def _answer(self, status: int, payload: Any, ctype: str, entry: Logged | None = None) -> None:
        cookie = None
        if isinstance(payload, tuple) and payload and payload[0] == "__cookie__":
            cookie, payload = payload[1], None
        if payload is None:
            data = b""
        elif isinstance(payload, bytes):
            data = payload
        elif isinstance(payload, str):
            data = payload.encode()
        else:
            data = json.dumps(payload, separators=(",", ":")).encode()  # compact, as Go's encoder
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        if cookie:
            self.send_header("Set-Cookie", f"semaphore={cookie}; Path=/; HttpOnly")
        if status != 204:
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if data and self.command != "HEAD" and status != 204:
            if entry is not None:  # before writing: the client may look at the log as soon as it has the body
                entry.size = len(data)
            self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _serve  # type: ignore[assignment]

