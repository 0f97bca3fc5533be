"""A small httpx client for Semaphore UI's REST API, tolerant of both server generations (2.10, 2.16+).

- Auth: ``Authorization: Bearer <token>``; with a user and password instead, it logs in once and
  mints an API token (expired again on :meth:`SemaphoreClient.close`).
- Errors: typed (:mod:`ralf.semaphore.errors`); empty-body answers never reach ``.json()``.
- Retries with exponential backoff on connection errors and 5xx, for idempotent methods only
  (GET, HEAD, PUT, DELETE); a POST is sent exactly once. One call, retries included, takes at most
  ``timeout`` seconds (15 s by default), so a server that accepts and never answers is reported in time.
- Answers are checked for the shape each call promises (an object, a list of objects); anything else is a
  :class:`SemaphoreBadAnswer` naming the endpoint and summarising what came back in one line.
- The token never appears in a message: it is checked for characters an HTTP header cannot carry
  before it is used, and masked in any error text.
- Creates answered 204 without a body (2.10 keys, repositories, environments) are resolved by
  listing the collection and picking the object by name (the highest id, i.e. the newest).
- Every call is an endpoint of :mod:`ralf.semaphore.api`: its body is built through the endpoint's request
  model and its answer checked against the answer model (the caller gets the server's JSON object whole).
"""

from __future__ import annotations

import logging
import re
import ssl
import time
from typing import Any

import httpx
from pydantic import BaseModel, ValidationError

from ralf import backoff, https
from ralf.semaphore import api
from ralf.semaphore.api import KINDS, Endpoint
from ralf.semaphore.errors import (
    SemaphoreAuthError,
    SemaphoreBadAnswer,
    SemaphoreError,
    SemaphoreUnreachable,
    error_for,
    summarise_body,
)

log = logging.getLogger(__name__)

IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE"})

VERSION_RE = re.compile(r"v?(\d+)\.(\d+)\.(\d+)")


def parse_version(text: str) -> tuple[int, int, int] | None:
    """``v2.10.32-abc-123`` → (2, 10, 32); None when there is no version in the text."""
    m = VERSION_RE.search(text or "")
    return (int(m.group(1)), int(m.group(2)), int(m.group(3))) if m else None


class SemaphoreClient:
    """One connection to one Semaphore server. Usable as a context manager."""

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        user: str | None = None,
        password: str | None = None,
        ca_file: str | None = None,
        verify: bool = True,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 15.0,
        retries: int = 3,
        backoff: float = 0.25,
    ) -> None:
        url = base_url.rstrip("/")
        if url.endswith("/api"):
            url = url[: -len("/api")]
        self.base_url = url
        for label, secret in (("the API token", token), ("the password", password)):
            if secret is not None and (not secret or any(ord(c) < 33 or ord(c) == 127 for c in secret)):
                raise SemaphoreAuthError(f"{label} for Semaphore is empty or holds a space, tab, CR, LF or "
                                         "another control character (a stray line end in the file or variable?)")
        self.timeout = timeout
        self.retries = max(0, retries)
        self.backoff = backoff
        self._token = token
        self._user = user
        self._password = password
        self._minted_token: str | None = None
        self._version: tuple[int, int, int] | None = None
        tls = https.trust((ca_file or True) if verify else False, "Semaphore's TLS", SemaphoreError)
        self._tls = tls
        self._own_transport = transport is not None  # a test double: nothing may be reached beside it
        self._http = httpx.Client(
            base_url=url + "/api",
            verify=tls,
            transport=transport,
            timeout=timeout,
            headers={"Accept": "application/json"},
            follow_redirects=False,
        )
        #: (method, path) of every request sent; the benchmark and tests count them
        self.sent: list[tuple[str, str]] = []

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> SemaphoreClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Expire a token this client minted from a password, then close the connection pool."""
        if self._minted_token is not None:
            try:
                self._request("DELETE", api.EXPIRE_TOKEN.url(token=self._minted_token), auth=True, retries=0)
            except SemaphoreError:
                pass
            self._minted_token = None
        self._http.close()

    def __repr__(self) -> str:  # never shows the token
        return f"SemaphoreClient({self.base_url!r})"

    # ------------------------------------------------------------------ transport

    def _auth_headers(self) -> dict[str, str]:
        if self._token is None:
            if self._user is None or self._password is None:
                raise SemaphoreAuthError(
                    f"no Semaphore credentials for {self.base_url}: set SEMAPHORE_TOKEN, or "
                    "SEMAPHORE_USER and SEMAPHORE_PASSWORD, or the admin credentials file"
                )
            self._login()
        return {"Authorization": f"Bearer {self._token}"}

    def _login(self) -> None:
        """Log in with user and password (session cookie), mint an API token, forget the cookie."""
        body = self._encode(api.LOGIN, {"auth": self._user, "password": self._password}, api.LOGIN.path)
        resp = self._send("POST", api.LOGIN.path, json=body, headers={}, retries=0)
        if resp.status_code == 401:
            raise SemaphoreAuthError(
                f"Semaphore POST /api/auth/login answered 401: wrong user name or password for {self._user!r}"
            )
        if resp.status_code >= 300:
            raise error_for("POST", "/api/auth/login", resp.status_code, resp.content)
        cookie = resp.cookies.get("semaphore")
        headers = {"Cookie": f"semaphore={cookie}"} if cookie else {}
        resp = self._send("POST", api.MINT_TOKEN.path, json=api.TokenRequest().body(), headers=headers, retries=0)
        self._http.cookies.clear()
        if resp.status_code >= 300:
            raise error_for("POST", "/api/user/tokens", resp.status_code, resp.content, hint="could not mint an API token")
        try:
            token = api.Token.model_validate(_json(resp))
        except ValidationError:
            raise SemaphoreError("Semaphore POST /api/user/tokens answered without a token") from None
        self._token = self._minted_token = token.id

    def _send(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict | None = None,
        headers: dict[str, str],
        retries: int | None = None,
    ) -> httpx.Response:
        """Send with retries (idempotent methods only) within ``self.timeout`` seconds in all.

        Raises SemaphoreUnreachable when nothing answers; its ``sent`` is False when no attempt got as far
        as the server (every connection attempt failed), so the request certainly had no effect.
        """
        attempts = 1 + (self.retries if retries is None else retries) if method in IDEMPOTENT else 1
        budget_end = time.monotonic() + self.timeout
        last: Exception | None = None
        reached = False
        tried = 0
        for attempt in range(attempts):
            if attempt:
                pause = backoff.delay(attempt, self.backoff)
                if time.monotonic() + pause >= budget_end:
                    break
                time.sleep(pause)
            left = budget_end - time.monotonic()
            if left <= 0:
                break
            self.sent.append((method, path))
            tried += 1
            try:
                resp = self._http.request(
                    method, path, json=json, params=params, headers=headers or None,
                    timeout=httpx.Timeout(left, connect=min(left, 5.0)),
                )
            except httpx.TransportError as e:
                last = e
                reached = reached or not isinstance(e, (httpx.ConnectError, httpx.ConnectTimeout))
                continue
            log.debug("%s /api%s -> %d", method, path, resp.status_code)
            if resp.status_code >= 500 and attempt + 1 < attempts:
                last = None
                continue
            return resp
        if last is None and tried:
            return resp  # the last 5xx answer
        raise SemaphoreUnreachable(
            f"Semaphore at {self.base_url} did not answer {method} /api{path}: "
            f"{self._mask(_describe(last)) if last else 'no time left'}"
            + (f" (after {tried} attempts in {self.timeout:g} s)" if tried > 1 else ""),
            sent=reached,
        )

    def _mask(self, text: str) -> str:
        for secret in (self._token, self._password):
            if secret and len(secret) >= 4:  # a shorter one would mask ordinary letters
                text = text.replace(secret, "***")
        return text

    def _request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict | None = None,
        auth: bool = True,
        retries: int | None = None,
        expect: type | None = None,
    ) -> Any:
        """Send and decode; with ``expect`` (dict or list) any other answer is a SemaphoreBadAnswer."""
        headers = self._auth_headers() if auth else {}
        resp = self._send(method, path, json=json, params=params, headers=headers, retries=retries)
        if resp.status_code >= 400:
            hint = None
            if resp.status_code == 401 and self._token and self._minted_token is None:
                hint = "the API token (SEMAPHORE_TOKEN) is invalid or expired"
            raise error_for(method, "/api" + path, resp.status_code, resp.content, hint=hint)
        if expect is None:
            return _json(resp)
        try:
            data = _json(resp) if "json" in resp.headers.get("content-type", "") else _NOT_JSON
        except SemaphoreError:
            data = _NOT_JSON
        if expect is list and data is None:
            return []
        if not isinstance(data, expect) or (isinstance(data, list) and not all(isinstance(x, dict) for x in data)):
            what = "an object" if expect is dict else "a list of objects"
            got = summarise_body(resp.content) if data is _NOT_JSON or not resp.content.strip() else _json_kind(data)
            raise SemaphoreBadAnswer(f"Semaphore {method} /api{path} answered {resp.status_code} with {got} "
                                     f"where {what} was expected")
        return data

    def _encode(self, ep: Endpoint, body: dict[str, Any], path: str) -> dict[str, Any]:
        """The body as ``ep``'s request model sends it, its secret values read only now; a body ralf built
        wrongly is one clear error (naming the field, never a value)."""
        assert ep.request is not None
        try:
            return ep.request.model_validate(api.resolve(body)).body()
        except ValidationError as e:
            first = e.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise SemaphoreError(f"ralf built an invalid body for {ep.method} /api{path}: {where}: {first['msg']}") from None

    def _checked(self, ep: Endpoint, path: str, data: Any, model: type[BaseModel] | None = None) -> Any:
        """``data`` when it fits the answer model, else a SemaphoreBadAnswer naming the field."""
        model = model or ep.answer
        assert model is not None
        try:
            model.model_validate(data)
        except ValidationError as e:
            raise SemaphoreBadAnswer(f"Semaphore {ep.method} /api{path} answered {api.problem(model, e)} "
                                     f"({_json_kind(data)})") from None
        return data

    def call(self, ep: Endpoint, body: dict[str, Any] | None = None, *, params: dict | None = None,
             **where: Any) -> Any:
        """One endpoint: ``where`` fills its path, ``body`` goes through its request model, the answer is checked
        against its answer model (a list of them with ``many``) and returned as the server sent it."""
        path = ep.url(**where)
        payload = self._encode(ep, body or {}, path) if ep.request is not None else None
        if ep.answer is None:
            return self._request(ep.method, path, json=payload, params=params)
        data = self._request(ep.method, path, json=payload, params=params, expect=list if ep.many else dict)
        for item in data if ep.many else [data]:
            self._checked(ep, path, item)
        return data

    def get(self, path: str, **params: Any) -> Any:
        return self._request("GET", path, params=params or None)

    def get_object_at(self, path: str, **params: Any) -> dict:
        return self._request("GET", path, params=params or None, expect=dict)

    def get_list_at(self, path: str, **params: Any) -> list[dict]:
        return self._request("GET", path, params=params or None, expect=list)

    def post(self, path: str, body: Any = None) -> Any:
        return self._request("POST", path, json=body)

    def put(self, path: str, body: Any) -> Any:
        return self._request("PUT", path, json=body)

    def delete(self, path: str) -> Any:
        return self._request("DELETE", path)

    # ------------------------------------------------------------------ server

    def ping(self) -> bool:
        """True when ``/api/ping`` answers ``pong`` (no auth needed)."""
        try:
            self.check_ping()
        except SemaphoreError:
            return False
        return True

    def check_ping(self) -> None:
        """``/api/ping`` must answer ``pong``; else one error that says why: TLS, refused, timeout, not Semaphore."""
        resp = self._send("GET", api.PING.path, headers={}, retries=0)
        if resp.status_code == 200 and resp.text.strip().lower() == "pong":
            return
        ctype = resp.headers.get("content-type", "no content type").split(";")[0]
        text = " ".join(resp.text.split())[:80]
        raise SemaphoreError(
            f"{self.base_url} answers, but not as Semaphore: GET /api/ping gave {resp.status_code} ({ctype})"
            + (f" {text!r}" if text else "") + " instead of 'pong'; is semaphore.url the Semaphore server?"
        )

    def websocket_target(self) -> tuple[str, dict[str, str], ssl.SSLContext | None]:
        """Where and how to open ``/api/ws``: (ws:// or wss:// URL, auth headers, TLS context or None)."""
        if self._own_transport:
            raise SemaphoreError("no websocket through a custom HTTP transport")
        url = "ws" + self.base_url[len("http"):] + "/api" + api.EVENTS.path
        if not url.startswith("wss://"):
            return url, self._auth_headers(), None
        if self._tls is False:
            ctx = ssl.create_default_context()
            ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
        elif isinstance(self._tls, ssl.SSLContext):
            ctx = self._tls
        else:
            ctx = ssl.create_default_context()
        return url, self._auth_headers(), ctx

    def info(self) -> dict:
        """``/api/info``; {} when the server answers something else than an object."""
        data = self.get(api.INFO.path)
        return self._checked(api.INFO, api.INFO.path, data) if isinstance(data, dict) else {}

    def version(self) -> tuple[int, int, int] | None:
        """The server version from ``/api/info`` (cached), e.g. (2, 16, 14)."""
        if self._version is None:
            self._version = parse_version(str(self.info().get("version", "")))
        return self._version

    # ------------------------------------------------------------------ projects

    def list_projects(self) -> list[dict]:
        return self.call(api.LIST_PROJECTS)

    def find_project(self, name: str) -> dict | None:
        """The project called ``name``; an error when several carry it."""
        matches = [p for p in self.list_projects() if p.get("name") == name]
        if len(matches) > 1:
            ids = ", ".join(str(p.get("id")) for p in matches)
            raise SemaphoreError(f"several Semaphore projects are named {name!r} (ids {ids}); delete or rename all but one")
        return matches[0] if matches else None

    def create_project(self, body: dict) -> dict:
        ep = api.CREATE_PROJECT
        data = self._request(ep.method, ep.path, json=self._encode(ep, body, ep.path))
        if isinstance(data, dict) and data.get("id"):
            return self._checked(ep, ep.path, data)
        found = self.find_project(body["name"])
        if found is None:
            raise SemaphoreError(f"Semaphore created project {body['name']!r} but does not list it")
        return found

    # ------------------------------------------------------------------ project collections

    def list_objects(self, kind: str, project_id: int) -> list[dict]:
        return self.call(api.list_objects(kind), project_id=project_id)

    def get_object(self, kind: str, project_id: int, object_id: int) -> dict:
        return self.call(api.get_object(kind), project_id=project_id, object_id=object_id)

    def create_object(self, kind: str, project_id: int, body: dict) -> dict:
        """POST a new object; a 204 without a body is resolved by listing and matching the name."""
        ep, name_field = api.create_object(kind), KINDS[kind].name_field
        path = ep.url(project_id=project_id)
        payload = self._encode(ep, {**body, "project_id": project_id}, path)
        data = self._request(ep.method, path, json=payload)
        if isinstance(data, dict) and data.get("id"):
            return self._checked(ep, path, data)
        name = payload.get(name_field)
        matches = [o for o in self.list_objects(kind, project_id) if o.get(name_field) == name]
        if not matches:
            raise SemaphoreError(f"Semaphore accepted the new {kind} object {name!r} but does not list it")
        return max(matches, key=lambda o: o.get("id") or 0)

    def update_object(self, kind: str, project_id: int, object_id: int, body: dict) -> None:
        """Full-object PUT (the server resets every omitted field): ``id`` and ``project_id`` included."""
        self.call(api.update_object(kind), {**body, "id": object_id, "project_id": project_id},
                  project_id=project_id, object_id=object_id)

    def delete_object(self, kind: str, project_id: int, object_id: int) -> None:
        self.call(api.delete_object(kind), project_id=project_id, object_id=object_id)

    # named helpers (thin aliases, for readers who look for them)
    def list_keys(self, project_id: int) -> list[dict]:
        return self.list_objects("keys", project_id)

    def list_repositories(self, project_id: int) -> list[dict]:
        return self.list_objects("repositories", project_id)

    def list_inventories(self, project_id: int) -> list[dict]:
        return self.list_objects("inventory", project_id)

    def list_environments(self, project_id: int) -> list[dict]:
        return self.list_objects("environment", project_id)

    def list_templates(self, project_id: int) -> list[dict]:
        return self.list_objects("templates", project_id)

    def list_views(self, project_id: int) -> list[dict]:
        return self.list_objects("views", project_id)

    # ------------------------------------------------------------------ tasks

    def start_task(self, project_id: int, template_id: int, **extra: Any) -> dict:
        """Start a task of a template: ``POST /api/project/<pid>/tasks {"template_id": id, ...}``.

        Sent once (POST is not idempotent): a dropped answer raises SemaphoreUnreachable and the
        caller must look at the template's last tasks before starting again.
        """
        return self.call(api.START_TASK, {"template_id": int(template_id), **extra}, project_id=project_id)

    def get_task(self, project_id: int, task_id: int) -> dict:
        """The task object; its ``status`` is always a string (a missing or odd one is a SemaphoreBadAnswer)."""
        return self.call(api.GET_TASK, project_id=project_id, task_id=task_id)

    def task_output(self, project_id: int, task_id: int) -> list[dict]:
        """The whole log so far: records with ``output`` (one line) and ``time``, oldest first."""
        return self.call(api.TASK_OUTPUT, project_id=project_id, task_id=task_id)

    def stop_task(self, project_id: int, task_id: int, force: bool = False) -> None:
        # 2.10 rejects an empty body, so the body is always sent.
        self.call(api.STOP_TASK, {"force": bool(force)}, project_id=project_id, task_id=task_id)

    def last_tasks(self, project_id: int, template_id: int, limit: int = 10) -> list[dict]:
        """The template's most recent tasks (``GET templates/<id>/tasks/last?limit=N``, N ≤ 200); an entry
        without a numeric id is left out."""
        ep = api.LAST_TASKS
        limit = max(1, min(int(limit), 200))
        tasks = self.get_list_at(ep.url(project_id=project_id, template_id=template_id), limit=limit)
        return [t for t in tasks if _fits(api.TaskRef, t)]


def _fits(model: type[BaseModel], data: Any) -> bool:
    try:
        model.model_validate(data)
    except ValidationError:
        return False
    return True


def _json(resp: httpx.Response) -> Any:
    """The decoded body, or None for an empty one (the server sets a JSON type on empty bodies too)."""
    if not resp.content or not resp.content.strip():
        return None
    ctype = resp.headers.get("content-type", "")
    if "json" not in ctype:
        return resp.text
    try:
        return resp.json()
    except ValueError:
        raise SemaphoreError(
            f"Semaphore {resp.request.method} {resp.request.url.path} answered {resp.status_code} with invalid JSON"
        ) from None


_NOT_JSON = object()


def _json_kind(data: Any) -> str:
    """A short description of a decoded JSON value, for messages (never the whole value)."""
    if data is None:
        return "null"
    if isinstance(data, dict):
        keys = ", ".join(sorted(map(str, data))[:6])
        return f"an object with keys {keys}" if keys else "an empty object"
    if isinstance(data, list):
        return f"a list of {len(data)} item(s)" if data else "an empty list"
    return f"a JSON {type(data).__name__} ({str(data)[:40]!r})"


def _describe(e: Exception) -> str:
    if isinstance(e, httpx.ConnectTimeout):
        return "connection timed out"
    if isinstance(e, httpx.TimeoutException):
        return "timed out waiting for the answer"
    if isinstance(e, httpx.ConnectError):
        text = str(e)
        if "CERTIFICATE_VERIFY_FAILED" in text or "certificate" in text.lower():
            return f"TLS certificate not trusted ({text}); set semaphore.ca_file to the internal CA"
        if "SSL" in text or "TLS" in text:
            return f"TLS handshake failed ({text}); does the server speak https on that port?"
        if "refused" in text.lower():
            return "connection refused (nothing listens on that address and port)"
        return f"connection failed ({text or 'refused'})"
    if isinstance(e, httpx.RemoteProtocolError):
        return "the connection was closed without an answer"
    return f"{type(e).__name__}: {e}"

