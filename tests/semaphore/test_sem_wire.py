"""SemaphoreClient's wire behaviour through httpx's MockTransport: the exact requests, retries, errors, odd answers.

No server runs here: each test scripts the answers and asserts every request the client sent (method, URL,
headers, body) and the error it raised.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from ralf.errors import SemaphoreError
from ralf.semaphore import client as client_module
from ralf.semaphore.api import SecretValue
from ralf.semaphore.client import SemaphoreClient
from ralf.semaphore.errors import (
    SemaphoreAuthError,
    SemaphoreBadAnswer,
    SemaphoreBadRequest,
    SemaphoreConflict,
    SemaphoreNotFound,
    SemaphoreServerError,
    SemaphoreUnreachable,
)
from ralf.semaphore.reconcile import create_body

BASE = "https://semaphore.test"
TOKEN = "wire-test-token-0123456789"
JSON_TYPE = {"content-type": "application/json"}

Answer = httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]


class Wire:
    """A scripted server: answers in order, every request kept (the last answer repeats when they run out)."""

    def __init__(self, *answers: Answer) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer(request) if callable(answer) else answer

    def client(self, **kw: Any) -> SemaphoreClient:
        kw.setdefault("token", TOKEN)
        return SemaphoreClient(BASE, transport=httpx.MockTransport(self), **kw)

    @property
    def sent(self) -> list[tuple[str, str, Any]]:
        """(method, URL, decoded JSON body or None) of every request."""
        return [(r.method, str(r.url), json.loads(r.content) if r.content else None) for r in self.requests]


def ok(payload: Any, status: int = 200) -> httpx.Response:
    return httpx.Response(status, headers=JSON_TYPE, content=json.dumps(payload).encode())


def empty(status: int) -> httpx.Response:
    """The real server's error answers: a JSON content type and no body."""
    return httpx.Response(status, headers=JSON_TYPE, content=b"")


@pytest.fixture
def pauses(monkeypatch) -> list[float]:
    """The client's backoff pauses, recorded instead of slept."""
    slept: list[float] = []
    monkeypatch.setattr(client_module.time, "sleep", slept.append)
    return slept


# ------------------------------------------------------------------ requests as sent


def test_a_read_sends_bearer_auth_and_accepts_json():
    wire = Wire(ok([{"id": 1, "name": "P"}]))
    with wire.client() as c:
        assert c.list_projects() == [{"id": 1, "name": "P"}]
    [req] = wire.requests
    assert (req.method, str(req.url)) == ("GET", f"{BASE}/api/projects")
    assert req.headers["authorization"] == f"Bearer {TOKEN}"
    assert req.headers["accept"] == "application/json"
    assert req.content == b""


def test_task_requests_are_exactly_what_the_server_needs():
    task = {"id": 7, "template_id": 5, "status": "waiting"}
    wire = Wire(ok(task, 201), ok({**task, "status": "running"}), empty(204), ok([task]))
    with wire.client() as c:
        assert c.start_task(1, 5, message="ralf run r1 step 1")["id"] == 7
        assert c.get_task(1, 7)["status"] == "running"
        c.stop_task(1, 7)
        assert c.last_tasks(1, 5, limit=500) == [task]
    assert wire.sent == [
        ("POST", f"{BASE}/api/project/1/tasks", {"template_id": 5, "message": "ralf run r1 step 1"}),
        ("GET", f"{BASE}/api/project/1/tasks/7", None),
        ("POST", f"{BASE}/api/project/1/tasks/7/stop", {"force": False}),  # 2.10 refuses an empty stop body
        ("GET", f"{BASE}/api/project/1/templates/5/tasks/last?limit=200", None),  # the server's maximum
    ]


def test_password_login_mints_a_token_uses_it_and_expires_it_on_close():
    wire = Wire(httpx.Response(204, headers={**JSON_TYPE, "set-cookie": "semaphore=sess1; Path=/"}),
                ok({"id": "minted-token-abcdef", "expired": False}, 201), ok([]), empty(204))
    with wire.client(token=None, user="admin", password="pw-secret") as c:
        assert c.list_projects() == []
    assert wire.sent == [
        ("POST", f"{BASE}/api/auth/login", {"auth": "admin", "password": "pw-secret"}),
        ("POST", f"{BASE}/api/user/tokens", {}),
        ("GET", f"{BASE}/api/projects", None),
        ("DELETE", f"{BASE}/api/user/tokens/minted-token-abcdef", None),
    ]
    login, mint, read, expire = wire.requests
    assert "authorization" not in login.headers and "cookie" not in login.headers
    assert mint.headers["cookie"] == "semaphore=sess1" and "authorization" not in mint.headers
    assert read.headers["authorization"] == "Bearer minted-token-abcdef" and "cookie" not in read.headers
    assert expire.headers["authorization"] == "Bearer minted-token-abcdef"


def test_update_is_a_full_object_put_with_the_ids_from_the_url():
    wire = Wire(empty(204))
    with wire.client() as c:
        c.update_object("views", 3, 9, {"title": "RALF", "position": 1})
    assert wire.sent == [("PUT", f"{BASE}/api/project/3/views/9",
                          {"title": "RALF", "position": 1, "id": 9, "project_id": 3})]


# ------------------------------------------------------------------ 201 / 204 / empty bodies


def test_create_answered_201_with_the_object_is_one_request():
    wire = Wire(ok({"id": 4, "name": "Repo", "project_id": 1}, 201))
    with wire.client() as c:
        assert c.create_object("repositories", 1, {"name": "Repo", "git_url": "file:///r", "ssh_key_id": 1})["id"] == 4
    assert wire.sent == [("POST", f"{BASE}/api/project/1/repositories",
                          {"name": "Repo", "git_url": "file:///r", "ssh_key_id": 1, "project_id": 1})]


@pytest.mark.parametrize("answer", [empty(204), httpx.Response(201, headers={"location": "/api/project/1/keys/6"})],
                         ids=["204-no-body", "201-location-only"])
def test_create_answered_without_a_body_is_resolved_by_listing_and_picking_the_newest(answer):
    wire = Wire(answer, ok([{"id": 2, "name": "K"}, {"id": 6, "name": "K"}, {"id": 9, "name": "other"}]))
    with wire.client() as c:
        assert c.create_object("keys", 1, {"name": "K", "type": "none"}) == {"id": 6, "name": "K"}
    assert wire.sent == [("POST", f"{BASE}/api/project/1/keys", {"name": "K", "type": "none", "project_id": 1}),
                         ("GET", f"{BASE}/api/project/1/keys", None)]


def test_create_accepted_but_not_listed_is_a_clear_error():
    wire = Wire(empty(204), ok([]))
    with wire.client() as c, pytest.raises(SemaphoreError, match="accepted the new environment object 'E' but does not list it"):
        c.create_object("environment", 1, {"name": "E", "json": "{}"})


def test_an_empty_list_answer_and_a_null_list_are_both_empty():
    wire = Wire(ok(None), httpx.Response(200, headers=JSON_TYPE, content=b""))
    with wire.client() as c:
        assert c.list_templates(1) == []
        assert c.list_templates(1) == []


# ------------------------------------------------------------------ errors


def test_401_is_an_auth_error_that_names_the_token_and_never_shows_it():
    wire = Wire(empty(401))
    with wire.client() as c, pytest.raises(SemaphoreAuthError) as e:
        c.list_projects()
    msg = str(e.value)
    assert msg.startswith("Semaphore GET /api/projects answered 401: not authenticated")
    assert "the API token (SEMAPHORE_TOKEN) is invalid or expired" in msg and TOKEN not in msg
    assert len(wire.requests) == 1  # an auth failure is not retried


def test_wrong_password_is_one_auth_error_and_nothing_else_is_sent():
    wire = Wire(empty(401))
    with wire.client(token=None, user="admin", password="wrong-pw") as c, pytest.raises(SemaphoreAuthError) as e:
        c.list_projects()
    assert "wrong user name or password for 'admin'" in str(e.value) and "wrong-pw" not in str(e.value)
    assert [r.url.path for r in wire.requests] == ["/api/auth/login"]


@pytest.mark.parametrize("status,body,error,text", [
    (400, b'{"error":"Playbook can not be empty"}', SemaphoreBadRequest,
     "answered 400: Playbook can not be empty (the server rejected the request"),
    (400, b'{"error":"Environment is in use by one or more templates","inUse":true}', SemaphoreBadRequest,
     "Environment is in use by one or more templates"),
    (404, b"", SemaphoreNotFound, "answered 404: not found"),
    (409, b"", SemaphoreConflict, "answered 409: conflict"),
    (403, b"", SemaphoreAuthError, "answered 403: forbidden"),
])
def test_error_answers_become_typed_errors_with_the_servers_message(status, body, error, text):
    wire = Wire(httpx.Response(status, headers=JSON_TYPE, content=body))
    with wire.client() as c, pytest.raises(error) as e:
        c.delete_object("environment", 1, 4)
    assert text in str(e.value)
    assert str(e.value).startswith(f"Semaphore DELETE /api/project/1/environment/4 answered {status}")


def test_invalid_json_is_a_clear_error_not_a_traceback():
    wire = Wire(httpx.Response(200, headers=JSON_TYPE, content=b'{"version": '))
    with wire.client() as c, pytest.raises(SemaphoreError, match="GET /api/info answered 200 with invalid JSON"):
        c.info()


@pytest.mark.parametrize("answer,described", [
    (httpx.Response(200, headers={"content-type": "text/html"},
                    content=b"<html><head><title>Captive Portal</title></head></html>"),
     "an HTML page (Captive Portal)"),
    (ok(None), "null"),
    (ok([1, 2]), "a list of 2 item(s)"),
    (ok({"id": 7}), "without a status"),
])
def test_a_task_read_that_is_not_a_task_is_a_bad_answer(answer, described):
    wire = Wire(answer)
    with wire.client() as c, pytest.raises(SemaphoreBadAnswer) as e:
        c.get_task(1, 7)
    assert "GET /api/project/1/tasks/7 answered" in str(e.value) and described in str(e.value)


def test_a_start_answered_without_a_numeric_task_id_is_a_bad_answer():
    wire = Wire(ok({"id": "7"}, 201))
    with wire.client() as c, pytest.raises(SemaphoreBadAnswer, match="a task without a numeric id"):
        c.start_task(1, 5)
    assert len(wire.requests) == 1


# ------------------------------------------------------------------ retries, backoff, timeouts


def test_reads_are_retried_on_5xx_and_dropped_connections_with_doubling_pauses(pauses):
    wire = Wire(empty(502), httpx.RemoteProtocolError("closed"), ok([]))
    with wire.client(backoff=0.25) as c:
        assert c.list_projects() == []
    assert [r.url.path for r in wire.requests] == ["/api/projects"] * 3
    assert pauses == [0.25, 0.5]


def test_reads_give_up_after_the_retries_with_the_last_5xx(pauses):
    wire = Wire(empty(503))
    with wire.client(retries=2, backoff=0.1) as c, pytest.raises(SemaphoreServerError, match="answered 503"):
        c.list_projects()
    assert len(wire.requests) == 3 and pauses == [0.1, 0.2]


def test_connection_refused_is_unreachable_and_certainly_not_sent(pauses):
    wire = Wire(httpx.ConnectError("[Errno 111] Connection refused"))
    with wire.client(retries=2, backoff=0.1) as c, pytest.raises(SemaphoreUnreachable) as e:
        c.list_projects()
    assert e.value.sent is False and len(wire.requests) == 3
    assert str(e.value) == (f"Semaphore at {BASE} did not answer GET /api/projects: connection refused (nothing "
                            "listens on that address and port) (after 3 attempts in 15 s)")


def test_a_post_is_sent_once_whatever_comes_back(pauses):
    for answer, error in ((empty(502), SemaphoreServerError), (httpx.ReadTimeout("slow"), SemaphoreUnreachable)):
        wire = Wire(answer)
        with wire.client() as c, pytest.raises(error) as e:
            c.start_task(1, 5)
        assert len(wire.requests) == 1 and pauses == []
    assert e.value.sent is True  # the start may have happened: the caller must look before starting again
    assert "timed out waiting for the answer" in str(e.value)


def test_every_attempt_gets_only_the_time_left_of_one_budget(pauses):
    wire = Wire(httpx.ReadTimeout("slow"), ok([]))
    with wire.client(timeout=4.0) as c:
        assert c.list_projects() == []
    timeouts = [r.extensions["timeout"] for r in wire.requests]
    assert all(0 < t["read"] <= 4.0 and t["connect"] <= 4.0 for t in timeouts)
    assert timeouts[1]["read"] <= timeouts[0]["read"]


def test_a_body_ralf_built_wrongly_is_refused_before_it_is_sent():
    wire = Wire(ok({"id": 1}, 201))
    with wire.client() as c, pytest.raises(SemaphoreError) as e:
        c.create_object("templates", 1, {"name": "T", "app": "bash", "playbook": "p", "repository_id": "2"})
    assert str(e.value) == ("ralf built an invalid body for POST /api/project/1/templates: repository_id: "
                            "Input should be a valid integer")
    assert wire.requests == []


def test_a_keys_secret_is_read_only_when_the_body_is_sent_and_never_shown(caplog):
    reads: list[int] = []

    def secret() -> dict:
        reads.append(1)
        return {"login": "ralf", "password": "hunter2-secret"}

    body = create_body("keys", "RALF Gitea", {"login_password": SecretValue(secret)}, {"type": "login_password"})
    assert reads == [] and "hunter2" not in repr(body)
    wire = Wire(ok({"id": 6, "name": "RALF Gitea", "project_id": 1}, 201))
    with caplog.at_level(logging.DEBUG), wire.client() as c:
        assert c.create_object("keys", 1, body)["id"] == 6
    assert reads == [1]
    assert wire.sent == [("POST", f"{BASE}/api/project/1/keys",
                          {"name": "RALF Gitea", "type": "login_password", "project_id": 1,
                           "login_password": {"login": "ralf", "password": "hunter2-secret"}})]
    assert "hunter2" not in caplog.text


def test_a_wrong_secret_is_refused_naming_the_field_never_the_value():
    bad = SecretValue(lambda: {"login": "hunter2-login"})  # no password
    wire = Wire(ok({"id": 6}, 201))
    with wire.client() as c, pytest.raises(SemaphoreError) as e:
        c.create_object("keys", 1, {"name": "K", "type": "login_password", "login_password": bad})
    assert str(e.value) == ("ralf built an invalid body for POST /api/project/1/keys: login_password.password: "
                            "Field required")
    assert wire.requests == []


def test_an_answer_of_the_wrong_shape_names_the_field():
    wire = Wire(ok([{"id": 1, "name": "P"}, {"id": "2", "name": "Q"}]))
    with wire.client() as c, pytest.raises(SemaphoreBadAnswer) as e:
        c.list_projects()
    assert str(e.value) == ("Semaphore GET /api/projects answered a project without a numeric id "
                            "(an object with keys id, name)")


def test_last_tasks_leaves_out_entries_without_a_numeric_id():
    wire = Wire(ok([{"id": 9, "status": "success"}, {"id": None}, {"status": "x"}]))
    with wire.client() as c:
        assert c.last_tasks(1, 5) == [{"id": 9, "status": "success"}]
    assert wire.sent == [("GET", f"{BASE}/api/project/1/templates/5/tasks/last?limit=10", None)]


def test_a_custom_transport_never_opens_a_websocket():
    with Wire(ok([])).client() as c, pytest.raises(SemaphoreError, match="no websocket through a custom HTTP transport"):
        c.websocket_target()
