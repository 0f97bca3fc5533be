"""SemaphoreClient against the fake server: auth, errors, retries, 204 creates, the task API."""

from __future__ import annotations

import time

import httpx
import pytest
from ports import free_port

from ralf.errors import SemaphoreError
from ralf.semaphore.client import SemaphoreClient, parse_version
from ralf.semaphore.errors import (
    SemaphoreAuthError,
    SemaphoreBadRequest,
    SemaphoreNotFound,
    SemaphoreServerError,
    SemaphoreUnreachable,
)


def test_token_auth_sends_bearer_and_reads_version(fake, client):
    assert client.ping() is True
    version = client.version()
    assert version[:2] == tuple(int(x) for x in fake.version.split("."))
    assert fake.count("GET", "/api/info") == 1


@pytest.mark.parametrize("text,expected", [("v2.10.32-d4a2713-1729850000", (2, 10, 32)),
                                           ("2.16.14", (2, 16, 14)), ("develop", None)])
def test_parse_version(text, expected):
    assert parse_version(text) == expected


def test_login_mints_a_token_and_expires_it_on_close(fake):
    with SemaphoreClient(fake.url, user=fake.user, password=fake.password) as c:
        assert c.list_projects() == []
        minted = c._token
        assert minted and minted != fake.token
    assert fake.requests[0].path == "/api/auth/login"
    assert fake.requests[1].path == "/api/user/tokens"
    assert fake.requests[-1].method == "DELETE" and fake.requests[-1].path == f"/api/user/tokens/{minted}"
    with SemaphoreClient(fake.url, token=minted) as c2, pytest.raises(SemaphoreAuthError):
        c2.list_projects()


def test_wrong_password_is_an_auth_error_without_the_password(fake):
    with SemaphoreClient(fake.url, user=fake.user, password="nope-wrong") as c:
        with pytest.raises(SemaphoreAuthError) as e:
            c.list_projects()
    assert "wrong user name or password" in str(e.value) and "nope-wrong" not in str(e.value)


def test_missing_auth_is_401(fake):
    with SemaphoreClient(fake.url, token="not-a-token") as c, pytest.raises(SemaphoreAuthError, match="401"):
        c.list_projects()
    assert httpx.get(fake.url + "/api/projects").status_code == 401


def test_unreachable_server_is_one_clear_error():
    with SemaphoreClient(f"http://127.0.0.1:{free_port()}", token="t", retries=1, backoff=0.01) as c:
        assert c.ping() is False
        with pytest.raises(SemaphoreUnreachable) as e:
            c.list_projects()
    assert "did not answer GET /api/projects" in str(e.value) and "after 2 attempts" in str(e.value)


def test_get_is_retried_on_5xx_and_dropped_connections(fake, client):
    fake.fail_next(1, 502, method="GET")
    fake.drop_next(1, method="GET")
    assert client.list_projects() == []
    assert fake.count("GET", "/api/projects") == 3


def test_get_gives_up_after_the_retries(fake, client):
    fake.fail_next(5, 500, method="GET")
    with pytest.raises(SemaphoreServerError, match="answered 500"):
        client.list_projects()
    assert fake.count("GET", "/api/projects") == 3  # 1 + retries=2


def test_post_is_never_retried(fake, client):
    fake.fail_next(1, 500, method="POST")
    with pytest.raises(SemaphoreServerError):
        client.create_project({"name": "P"})
    assert fake.count("POST", "/api/projects") == 1
    assert fake.projects == {}


def test_empty_body_errors_have_clear_messages(fake, client):
    pid = client.create_project({"name": "P"})["id"]
    with pytest.raises(SemaphoreNotFound) as e:
        client.get_object("templates", pid, 999)
    assert str(e.value).startswith(f"Semaphore GET /api/project/{pid}/templates/999 answered 404: not found")
    with pytest.raises(SemaphoreBadRequest) as e:
        client.get_task(pid, 424242)  # the real server answers 400 for an unknown task id
    assert "400" in str(e.value) and "unknown task id" in str(e.value)
    with pytest.raises(SemaphoreBadRequest, match="Project ID in body and URL must be the same"):
        client.post(f"/project/{pid}/inventory", {"name": "x", "project_id": pid + 1, "type": "static"})


def test_create_resolves_204_without_body_by_name(fake, client):
    pid = client.create_project({"name": "P"})["id"]
    key = next(k for k in client.list_keys(pid) if k["name"] == "None")
    repo = client.create_object("repositories", pid, {"name": "R", "git_url": "/srv/repo", "git_branch": "",
                                                      "ssh_key_id": key["id"]})
    assert repo["name"] == "R" and repo["id"] in fake.objects["repositories"]
    create = next(r for r in fake.requests if r.method == "POST" and r.path.endswith("/repositories"))
    assert create.status == (204 if fake.version == "2.10" else 201)
    listed = fake.count("GET", f"/project/{pid}/repositories")
    assert listed == (1 if fake.version == "2.10" else 0)


def _template(client, fake, name="RALF Vault Apply"):
    pid = client.create_project({"name": "P"})["id"]
    key = next(k for k in client.list_keys(pid) if k["name"] == "None")
    repo = client.create_object("repositories", pid, {"name": "R", "git_url": "/srv/repo", "git_branch": "",
                                                      "ssh_key_id": key["id"]})
    tpl = client.create_object("templates", pid, {"name": name, "app": "bash", "playbook": "run.sh",
                                                  "repository_id": repo["id"], "arguments": "[]"})
    return pid, tpl["id"]


def _wait(client, pid, tid, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        task = client.get_task(pid, tid)
        if task["status"] in ("success", "error", "stopped"):
            return task
        time.sleep(0.02)
    raise AssertionError(f"task {tid} did not finish: {task}")


def test_task_runs_as_scripted_with_output(fake, client):
    pid, tid_tpl = _template(client, fake)
    fake.script("RALF Vault Apply", "error", duration=0.1, log=["TASK [x]", "fatal: boom"])
    task = client.start_task(pid, tid_tpl, message="from test")
    assert task["status"] == "waiting" and task["template_id"] == tid_tpl
    start = next(r for r in fake.requests if r.method == "POST" and r.path == f"/api/project/{pid}/tasks")
    assert start.body == {"template_id": tid_tpl, "message": "from test"}
    done = _wait(client, pid, task["id"])
    assert done["status"] == "error"
    lines = [r["output"] for r in client.task_output(pid, task["id"])]
    assert lines[0] == f"Task {task['id']} added to queue" and "fatal: boom" in lines
    assert all("time" in r for r in client.task_output(pid, task["id"]))
    last = client.last_tasks(pid, tid_tpl, limit=5)
    assert [t["id"] for t in last] == [task["id"]] and last[0]["status"] == "error"
    assert next(r for r in fake.requests if "/tasks/last" in r.path).query == "limit=5"


def test_stop_a_hanging_task(fake, client):
    pid, tid_tpl = _template(client, fake)
    fake.script("RALF Vault Apply", "hang")
    task = client.start_task(pid, tid_tpl)
    client.stop_task(pid, task["id"])
    stop = next(r for r in fake.requests if r.path.endswith("/stop"))
    assert stop.body == {"force": False}  # 2.10 needs a body
    assert _wait(client, pid, task["id"])["status"] == "stopped"


def test_lost_start_response_is_not_retried(fake, client):
    pid, tid_tpl = _template(client, fake)
    fake.lose_next_start_response()
    with pytest.raises(SemaphoreUnreachable):
        client.start_task(pid, tid_tpl)
    assert fake.count("POST", f"/api/project/{pid}/tasks") == 1
    assert len(client.last_tasks(pid, tid_tpl)) == 1  # the task exists: the caller finds it here


def test_old_template_tasks_path_does_not_exist(fake, client):
    pid, tid_tpl = _template(client, fake)
    with pytest.raises(SemaphoreBadRequest, match="405"):
        client.post(f"/project/{pid}/templates/{tid_tpl}/tasks", {"template_id": tid_tpl})
    assert not fake.tasks


def test_client_repr_hides_the_token(fake, client):
    assert fake.token not in repr(client)


def test_tls_is_verified_and_a_ca_file_makes_the_internal_ca_trusted(tmp_path, monkeypatch):
    from doubles.semaphore import FakeSemaphore

    from ralf.lab import certs, paths

    monkeypatch.setenv("RALF_STATE_DIR", str(tmp_path / "state"))
    certs.issue(tmp_path / "tls", "semaphore.test", ["127.0.0.1"])
    tls = (str(tmp_path / "tls" / "cert.pem"), str(tmp_path / "tls" / "key.pem"))
    with FakeSemaphore(tls=tls) as sem:
        assert sem.url.startswith("https://127.0.0.1:")
        with SemaphoreClient(sem.url, token=sem.token, retries=0) as c, pytest.raises(SemaphoreUnreachable) as e:
            c.list_projects()
        assert "TLS certificate not trusted" in str(e.value) and "semaphore.ca_file" in str(e.value)
        with SemaphoreClient(sem.url, token=sem.token, ca_file=str(paths.ca_file())) as c:
            assert c.list_projects() == [] and c.ping() is True
    not_pem = tmp_path / "not.pem"
    not_pem.write_text("nope")
    with pytest.raises(SemaphoreError, match="cannot use the CA file .*not.pem for Semaphore's TLS"):
        SemaphoreClient("https://127.0.0.1:1", token="t", ca_file=str(not_pem))


# ---------------------------------------------------------------------- defensive client

PROXY_502 = ("<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1>"
             "</center>\r\n<hr><center>nginx/1.22.1</center>\r\n</body>\r\n</html>\r\n")


def test_wrong_shapes_are_one_line_naming_the_endpoint(fake216):
    from ralf.semaphore.client import SemaphoreClient
    from ralf.semaphore.errors import SemaphoreBadAnswer

    pid = fake216.add_project("P")
    with SemaphoreClient(fake216.url, token=fake216.token, retries=0) as c:
        for body, ctype, seen in (("null", "application/json", "with null where"), ("", "application/json", "an empty body"),
                                  ("[1, 2]", "application/json", "a list of 2 item(s)"),
                                  ("<html><title>Portal</title></html>", "text/html", "an HTML page (Portal)"),
                                  ('{"id": 1}', "application/json", "a task without a status")):
            fake216.garble_next(1, body, ctype=ctype)
            with pytest.raises(SemaphoreBadAnswer) as e:
                c.get_task(pid, 1)
            assert seen in str(e.value) and "\n" not in str(e.value), str(e.value)
            assert str(e.value).startswith(f"Semaphore GET /api/project/{pid}/tasks/1 answered ")
        fake216.garble_next(1, '{"status": "x"}')
        with pytest.raises(SemaphoreBadAnswer, match="list of objects was expected"):
            c.task_output(pid, 1)
        fake216.garble_next(1, '{"id": "7"}', status=201)
        with pytest.raises(SemaphoreBadAnswer, match="without a numeric id"):
            c.start_task(pid, 1)


def test_html_502_from_a_proxy_is_one_line(fake216, run_cli, repo_root, tmp_path):
    fake216.outage(30, status=502, body=PROXY_502)
    env = {"RALF_STATE_DIR": str(tmp_path), "SEMAPHORE_URL": fake216.url, "SEMAPHORE_TOKEN": fake216.token}
    code, out, err = run_cli("--platform", str(repo_root / "platform.yaml"), "semaphore", "templates", env=env)
    assert code != 0 and "502 Bad Gateway" in err
    assert len([line for line in err.splitlines() if line.strip()]) == 1, err


def test_a_server_that_accepts_and_never_answers_is_reported_within_the_budget(fake216):
    import time

    from ralf.semaphore.client import SemaphoreClient
    from ralf.semaphore.errors import SemaphoreUnreachable

    fake216.hang_next(10, method="GET", seconds=30)
    with SemaphoreClient(fake216.url, token=fake216.token, retries=3, backoff=0.05, timeout=1.0) as c:
        t0 = time.monotonic()
        with pytest.raises(SemaphoreUnreachable, match="timed out") as e:
            c.list_projects()
        assert time.monotonic() - t0 < 3.0  # retries share the one budget, never 4 x the timeout
    assert e.value.sent is True  # the request reached the server: a POST must not simply be sent again


def test_refused_connection_is_known_not_to_have_reached_the_server():
    from ports import free_port

    from ralf.semaphore.client import SemaphoreClient
    from ralf.semaphore.errors import SemaphoreUnreachable

    with SemaphoreClient(f"http://127.0.0.1:{free_port()}", token="t", retries=0) as c:
        with pytest.raises(SemaphoreUnreachable) as e:
            c.start_task(1, 1)
    assert e.value.sent is False


def test_token_with_a_stray_line_end_is_refused_without_showing_it():
    from ralf.semaphore.client import SemaphoreClient
    from ralf.semaphore.errors import SemaphoreAuthError

    with pytest.raises(SemaphoreAuthError) as e:
        SemaphoreClient("http://127.0.0.1:9", token="s3cr3t-token-value\r")
    assert "s3cr3t" not in str(e.value) and "CR" in str(e.value)
