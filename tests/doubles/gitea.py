"""A test double of Gitea's API on 127.0.0.1 (HTTPS), following Gitea's documented answers.

What it serves, as Gitea (``routers/api/v1/repo``) does, under ``/api/v1``:

- basic auth; a wrong or missing user/password is ``401``;
- ``GET /repos/{owner}/{repo}``: ``200`` with the repository (``mirror``, ``mirror_interval`` written
  as a Go duration such as ``10m0s``, ``original_url``, ``clone_url``, ``default_branch``), ``404``
  ``{"message": "The target couldn't be found.", ...}`` when missing;
- ``POST /repos/migrate`` (``clone_addr``, ``repo_name`` required; ``repo_owner``, ``mirror``,
  ``mirror_interval``, ``private``, ``service``): ``201`` with the repository once the source is
  cloned; ``409`` "The repository with the same name already exists."; ``422`` for an unknown
  owner, missing fields or a source Gitea cannot clone; ``403`` when a non-admin migrates to
  another user; an interval below ``MIN_INTERVAL`` (10m) fails the migration (``500``);
- ``PATCH /repos/{owner}/{repo}`` with ``mirror_interval``: ``200`` with the repository, ``422``
  for an interval Gitea refuses;
- ``POST /repos/{owner}/{repo}/mirror-sync``: ``200`` with an empty body, the fetch is queued and
  happens ``sync_delay`` seconds later; ``400`` "Repository is not a mirror";
- ``GET /repos/{owner}/{repo}/branches/{branch}``: ``200`` ``{"name", "commit": {"id", ...}}``, ``404``.

The sources a mirror can clone are the ``remotes`` dict (URL → {branch: commit}); tests push to it.
Every request is logged as ``(method, path, json body)`` for tests to assert exactly.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from http.server import BaseHTTPRequestHandler
from urllib.parse import unquote, urlsplit

from doubles.http import ServedDouble

PREFIX = "/api/v1"
MIN_INTERVAL = 600
DOCS = "https://gitea.example/api/swagger"


def go_duration(seconds: int) -> str:
    """How Go's time.Duration prints: 10m0s, 8h0m0s, 0s."""
    if seconds == 0:
        return "0s"
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return (f"{h}h{m}m{s}s" if h else f"{m}m{s}s" if m else f"{s}s")


def parse_duration(text: str) -> int | None:
    if text == "0":
        return 0
    m = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?", text or "")
    if not text or not m:
        return None
    h, mi, s = (int(x or 0) for x in m.groups())
    return h * 3600 + mi * 60 + s


class FakeGitea(ServedDouble):
    """``with FakeGitea(tls=(cert, key)) as gitea: gitea.url`` — state is plain attributes tests can edit."""

    thread_name = "fake-gitea"
    url_path = "/"

    def __init__(self, *, tls: tuple[str, str], users: dict[str, str] | None = None, admins: set[str] | None = None,
                 sync_delay: float = 0.05) -> None:
        self.tls = tls
        self.users = users if users is not None else {"ralf": "gitea-admin-password"}
        self.admins = admins if admins is not None else set(self.users)
        self.remotes: dict[str, dict[str, str]] = {}
        self.repos: dict[tuple[str, str], dict] = {}
        self.branches: dict[tuple[str, str], dict[str, str]] = {}
        self.sync_delay = sync_delay
        self.requests: list[tuple[str, str, dict | None]] = []
        self.lock = threading.Lock()
        self._next_id = 1
        self._timers: list[threading.Timer] = []

    # ------------------------------------------------------------------ lifecycle

    def stopping(self) -> None:
        for t in self._timers:
            t.cancel()

    def writes(self) -> list[tuple[str, str, dict | None]]:
        return [r for r in self.requests if r[0] != "GET"]

    def reads_and_writes(self) -> list[tuple[str, str]]:
        return [(m, p) for m, p, _ in self.requests]

    # ------------------------------------------------------------------ the API

    def _repo_json(self, key: tuple[str, str]) -> dict:
        r = self.repos[key]
        base = self.url.rstrip("/")
        out = {"id": r["id"], "owner": {"id": 1, "login": key[0]}, "name": key[1], "full_name": f"{key[0]}/{key[1]}",
               "description": r["description"], "private": r["private"], "mirror": r["mirror"], "empty": False,
               "clone_url": f"{base}/{key[0]}/{key[1]}.git", "html_url": f"{base}/{key[0]}/{key[1]}",
               "default_branch": "main", "original_url": r["original_url"], "mirror_interval": "",
               "mirror_updated": "2026-11-28T06:00:00Z"}
        if r["mirror"]:
            out["mirror_interval"] = go_duration(r["interval"])
        return out

    def _fetch(self, key: tuple[str, str]) -> None:
        with self.lock:
            repo = self.repos.get(key)
            if repo is not None:
                self.branches[key] = dict(self.remotes.get(repo["original_url"], {}))

    def handle(self, method: str, path: str, body: dict | None, user: str | None) -> tuple[int, object]:
        if user is None:
            return 401, {"message": "invalid username, password or token", "url": DOCS}
        if not path.startswith(PREFIX + "/repos/"):
            return 404, {"message": "The target couldn't be found.", "url": DOCS, "errors": []}
        parts = [unquote(p) for p in path[len(PREFIX) + len("/repos/"):].split("/")]
        if parts == ["migrate"] and method == "POST":
            return self._migrate(body or {}, user)
        if len(parts) < 2:
            return 404, {"message": "The target couldn't be found.", "url": DOCS, "errors": []}
        key = (parts[0], parts[1])
        if key not in self.repos:
            return 404, {"message": "The target couldn't be found.", "url": DOCS, "errors": []}
        rest = parts[2:]
        if rest == [] and method == "GET":
            return 200, self._repo_json(key)
        if rest == [] and method == "PATCH":
            if body and "mirror_interval" in body:
                seconds = parse_duration(str(body["mirror_interval"]))
                if seconds is None or (0 < seconds < MIN_INTERVAL):
                    return 422, {"message": "Invalid mirror interval", "url": DOCS}
                self.repos[key]["interval"] = seconds
            return 200, self._repo_json(key)
        if rest == ["mirror-sync"] and method == "POST":
            if not self.repos[key]["mirror"]:
                return 400, {"message": "Repository is not a mirror", "url": DOCS}
            t = threading.Timer(self.sync_delay, self._fetch, args=(key,))
            t.daemon = True
            self._timers.append(t)
            t.start()
            return 200, None
        if len(rest) >= 2 and rest[0] == "branches" and method == "GET":
            name = "/".join(rest[1:])
            sha = self.branches.get(key, {}).get(name)
            if sha is None:
                return 404, {"message": "The target couldn't be found.", "url": DOCS, "errors": []}
            return 200, {"name": name, "commit": {"id": sha, "message": "commit\n"}, "protected": False}
        return 404, {"message": "The target couldn't be found.", "url": DOCS, "errors": []}

    def _migrate(self, body: dict, user: str) -> tuple[int, object]:
        missing = [f for f in ("clone_addr", "repo_name") if not body.get(f)]
        if missing:
            return 422, {"message": f"[{missing[0]}]: Required", "url": DOCS}
        owner = body.get("repo_owner") or user
        if owner not in self.users:
            return 422, {"message": f"user redirect does not exist [name: {owner}]", "url": DOCS}
        if user not in self.admins and owner != user:
            return 403, {"message": "Given user is not an organization.", "url": DOCS}
        key = (owner, body["repo_name"])
        if key in self.repos:
            return 409, {"message": "The repository with the same name already exists.", "url": DOCS}
        source = body["clone_addr"]
        if source not in self.remotes:
            return 422, {"message": f"Migration failed: clone error: exit status 128 - fatal: repository "
                                    f"'{source}' not found.", "url": DOCS}
        interval = 8 * 3600
        if body.get("mirror") and body.get("mirror_interval"):
            seconds = parse_duration(str(body["mirror_interval"]))
            if seconds is None or 0 < seconds < MIN_INTERVAL:
                return 500, {"message": "MigrateRepository", "url": DOCS}
            interval = seconds
        with self.lock:
            self.repos[key] = {"id": self._next_id, "mirror": bool(body.get("mirror")), "interval": interval,
                               "private": bool(body.get("private")), "description": body.get("description", ""),
                               "original_url": source}
            self._next_id += 1
            self.branches[key] = dict(self.remotes[source])
        return 201, self._repo_json(key)


class _Handler(BaseHTTPRequestHandler):
    server_fake: FakeGitea
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:  # quiet
        pass

    def _user(self) -> str | None:
        auth = self.headers.get("Authorization") or ""
        if not auth.startswith("Basic "):
            return None
        try:
            user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
        except ValueError:
            return None
        return user if self.server_fake.users.get(user) == password else None

    def _serve(self, method: str) -> None:
        fake = self.server_fake
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        with fake.lock:
            fake.requests.append((method, url.path, body))
        status, data = fake.handle(method, url.path, body, self._user())
        raw = b"" if data is None else json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json;charset=utf-8")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PATCH(self) -> None:
        self._serve("PATCH")


FakeGitea.handler = _Handler  # defined after the double, which it serves
