"""FakeSemaphore: a small Semaphore-compatible HTTP server on 127.0.0.1, for tests and benchmarks.

It follows ``BEHAVIOUR.md`` (the real server's behaviour) closely enough that a client that works here
works against Semaphore 2.10 and 2.16+. This module holds the server's state, its route table
(:meth:`FakeSemaphore.routes`, in the real router's order) and the HTTP plumbing; the handlers live per
resource: :mod:`.auth` (ping, login, info, user, tokens), :mod:`.projects`, :mod:`.objects` (keys,
repositories, inventories, environments, templates, views), :mod:`.tasks`, :mod:`.ws` (``/api/ws``);
:mod:`.bodies` knows the request structs, :mod:`.faults` the request log and the fault injection.

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
- tasks run as scripted per template name (:meth:`FakeSemaphore.script`), log lines reach ``/output`` only
  ``log_lag`` after they were written, a second task of the same template waits for the first,
  ``start_latency`` holds every task in ``waiting``;
- ``GET /api/ws`` (``websocket=True``, as both generations): each log line and status change is pushed once,
  immediately; ``websocket=False`` answers 404 there (a proxy without upgrades).

Test hooks: :attr:`FakeSemaphore.requests` (every request with its answer), the faults of :mod:`.faults`, and
direct state access (:meth:`add_project`, :meth:`find`, :meth:`insert`, :meth:`edit`, the dicts).
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from doubles.http import ServedDouble
from doubles.semaphore import ws
from doubles.semaphore.auth import AuthApi
from doubles.semaphore.bodies import BadRequest
from doubles.semaphore.faults import FaultsApi, Logged, Rule
from doubles.semaphore.objects import ObjectsApi
from doubles.semaphore.projects import KIND_SEGMENTS, ProjectsApi
from doubles.semaphore.routing import JSON, Answer, Request, Route, dispatch
from doubles.semaphore.tasks import Script, TasksApi

__all__ = ["FakeSemaphore", "Logged"]


class _Undecodable:
    """The body was not JSON: 400 on every authenticated route (the public ones may not read it)."""


class FakeSemaphore(ServedDouble, AuthApi, ProjectsApi, ObjectsApi, TasksApi, FaultsApi):
    """A running fake server. ``with FakeSemaphore(version="2.10") as sem: ... sem.url, sem.token``."""

    thread_name = "fake-semaphore"

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
        self.log_lag = log_lag
        self.tls = tls  # (certificate chain file, key file): serve https
        self.websocket = websocket
        self.subscribers: list[ws.Subscriber] = []  # open /api/ws connections
        self.ws_history: list[ws.Subscriber] = []  # every one ever opened (their byte counts)
        self.lock = threading.RLock()
        self.requests: list[Logged] = []
        self._rules: list[Rule] = []
        self._lose_start = 0
        self._outage: tuple[float, int, bytes | None, str] | None = None
        self._ids: dict[str, int] = {}
        self.projects: dict[int, dict] = {}
        self.objects: dict[str, dict[int, dict]] = {k: {} for k in KIND_SEGMENTS}
        self._key_secrets: dict[int, dict] = {}
        self.tasks: dict[int, dict] = {}
        self.outputs: dict[int, list[dict]] = {}
        self._visible_at: dict[int, list[float]] = {}
        self._scripts: dict[str, Script] = {}
        self._stop_events: dict[int, threading.Event] = {}
        self._shutdown = threading.Event()
        self._tokens: dict[str, dict] = {}
        self._sessions: dict[str, int] = {}
        self.token = self._new_token()
        self._public = self.public_routes()
        self._routes = self.routes()

    def routes(self) -> list[Route]:
        """Every route behind authentication, in the order they are tried."""
        return self.user_routes() + self.project_routes() + self.object_routes() + self.task_routes()

    # ------------------------------------------------------------------ lifecycle

    def stopping(self) -> None:
        self._shutdown.set()
        for ev in list(self._stop_events.values()):
            ev.set()

    # ------------------------------------------------------------------ direct state access

    def add_project(self, name: str) -> int:
        with self.lock:
            return self._create_project({"name": name})["id"]

    def _next(self, kind: str) -> int:
        self._ids[kind] = self._ids.get(kind, 0) + 1
        return self._ids[kind]

    # ------------------------------------------------------------------ routing

    def handle(self, method: str, path: str, query: dict, headers: Any, raw: bytes) -> Answer:
        """Answer one request (raises :class:`BadRequest` for the real server's error answers)."""
        if not path.startswith("/api/"):
            return Answer(404, ctype="text/plain")
        body: Any = None
        if raw.strip():
            try:
                body = json.loads(raw)
            except ValueError:
                body = _Undecodable()
        req = Request(method, path[len("/api"):].rstrip("/") or "/", query, headers, body)
        answer = dispatch(self._public, req)
        if answer is not None:
            return answer
        if not self._authenticated(headers):
            raise BadRequest(None, 401)
        if isinstance(body, _Undecodable):
            raise BadRequest()
        return dispatch(self._routes, req) or Answer(404)


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
        rule = fake.log_request(entry)
        if rule is not None and rule.process == "no":
            if rule.delay:
                fake._shutdown.wait(rule.delay)
            entry.status = rule.status or 0
            if not rule.status:
                self._drop()
            else:
                self._answer(Answer(rule.status, rule.body, rule.ctype))
            return
        if rule is not None and rule.process == "after":
            fake._shutdown.wait(rule.delay)
        if (parts.path.rstrip("/") == "/api/ws" and fake.websocket and self.command == "GET"
                and "websocket" in (self.headers.get("Upgrade") or "").lower()):
            self._websocket(entry)
            return
        try:
            with fake.lock:
                answer = fake.handle(self.command, parts.path, parse_qs(parts.query), self.headers, raw)
        except BadRequest as e:
            answer = Answer(e.status, {"error": e.message, **e.extra} if e.message else None)
        except Exception as e:  # a bug in the fake: answer 500 like a Go panic would, but visibly
            answer = Answer(500, {"error": f"fake server bug: {type(e).__name__}: {e}"})
        if rule is not None and rule.process == "before":
            fake._shutdown.wait(rule.delay)
            if rule.status == 0:
                answer = answer._replace(status=0)
        entry.status = answer.status
        if answer.status == 0:
            self._drop()
            return
        try:
            self._answer(answer, entry)
        except OSError:  # the client gave up waiting and closed the connection
            self.close_connection = True

    def _websocket(self, entry: Logged) -> None:
        fake = self.server_fake
        with fake.lock:
            allowed = fake._authenticated(self.headers)
        if not allowed:
            entry.status = 401
            self._answer(Answer(401))
            return
        entry.status = 101
        sub = ws.Subscriber()
        with fake.lock:
            fake.subscribers.append(sub)
            fake.ws_history.append(sub)

        def gone(s: ws.Subscriber) -> None:
            with fake.lock:
                fake.subscribers = [x for x in fake.subscribers if x is not s]

        ws.serve(self, sub, fake._shutdown, gone)

    def _drop(self) -> None:
        self.close_connection = True
        try:
            self.connection.shutdown(2)
        except OSError:
            pass

    def _answer(self, answer: Answer, entry: Logged | None = None) -> None:
        status, payload = answer.status, answer.payload
        if payload is None:
            data = b""
        elif isinstance(payload, bytes):
            data = payload
        elif isinstance(payload, str):
            data = payload.encode()
        else:
            data = json.dumps(payload, separators=(",", ":")).encode()  # compact, as Go's encoder
        self.send_response(status)
        self.send_header("Content-Type", answer.ctype or JSON)
        if answer.cookie:
            self.send_header("Set-Cookie", f"semaphore={answer.cookie}; Path=/; HttpOnly")
        if status != 204:
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if data and self.command != "HEAD" and status != 204:
            if entry is not None:  # before writing: the client may look at the log as soon as it has the body
                entry.size = len(data)
            self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _serve  # type: ignore[assignment]


FakeSemaphore.handler = _Handler  # defined after the double, which it serves
