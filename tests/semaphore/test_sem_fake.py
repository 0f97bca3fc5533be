"""The fake server rejects what the real one rejects (BEHAVIOUR.md), in the shape the real one does."""

from __future__ import annotations

import httpx
import pytest
from doubles.semaphore import FakeSemaphore


@pytest.fixture
def http(fake):
    with httpx.Client(base_url=fake.url + "/api", headers={"Authorization": f"Bearer {fake.token}"}) as h:
        yield h


def _project(http) -> tuple[int, int, int]:
    pid = http.post("/projects", json={"name": "P"}).json()["id"]
    key = next(k for k in http.get(f"/project/{pid}/keys").json() if k["name"] == "None")["id"]
    http.post(f"/project/{pid}/repositories",
              json={"name": "R", "project_id": pid, "git_url": "/srv/r", "git_branch": "", "ssh_key_id": key})
    repo = next(r for r in http.get(f"/project/{pid}/repositories").json() if r["name"] == "R")["id"]
    return pid, key, repo


def test_new_project_has_none_key_and_empty_environment(http):
    pid = http.post("/projects", json={"name": "P"}).json()["id"]
    assert [(k["name"], k["type"]) for k in http.get(f"/project/{pid}/keys").json()] == [("None", "none")]
    assert [(e["name"], e["json"]) for e in http.get(f"/project/{pid}/environment").json()] == [("Empty", "{}")]


@pytest.mark.parametrize("body", [{"template_id": "1"}, {"template_id": 1, "debug": "false"}, ["x"]])
def test_wrong_json_types_are_400_with_empty_body(http, body):
    pid, _, repo = _project(http)
    tpl = http.post(f"/project/{pid}/templates", json={"name": "T", "app": "bash", "playbook": "a.sh",
                                                       "repository_id": repo}).json()
    if isinstance(body, dict) and body.get("template_id") == 1:
        body["template_id"] = tpl["id"]
    r = http.post(f"/project/{pid}/tasks", json=body)
    assert r.status_code == 400 and r.content == b""
    assert r.headers["content-type"].startswith("application/json")


def test_unknown_ids(http):
    pid, _, repo = _project(http)
    assert http.get("/project/999/templates").status_code == 404
    r = http.get(f"/project/{pid}/inventory/999")
    assert r.status_code == 404 and r.content == b""
    assert http.get(f"/project/{pid}/tasks/999").status_code == 400  # unknown task: 400, not 404
    r = http.post(f"/project/{pid}/repositories", json={"name": "X", "project_id": pid, "git_url": "/x",
                                                       "git_branch": "", "ssh_key_id": 999})
    assert r.status_code == 404
    r = http.post(f"/project/{pid}/templates", json={"name": "T", "app": "bash", "playbook": "a",
                                                     "repository_id": repo, "environment_id": 999,
                                                     "environment_ids": [999]})
    assert r.status_code == 404


def test_put_is_full_replacement_and_needs_ids(http):
    pid, key, repo = _project(http)
    inv = http.post(f"/project/{pid}/inventory", json={"name": "I", "project_id": pid, "type": "static",
                                                      "inventory": "x", "ssh_key_id": key}).json()
    assert http.put(f"/project/{pid}/inventory/{inv['id']}", json={"name": "I", "project_id": pid}).status_code == 400
    r = http.put(f"/project/{pid}/inventory/{inv['id']}",
                 json={"id": inv["id"], "project_id": pid, "name": "I", "type": "static"})
    assert r.status_code == 204
    after = http.get(f"/project/{pid}/inventory/{inv['id']}").json()
    assert after["inventory"] == "" and after["ssh_key_id"] is None  # omitted fields were reset


def test_in_use_environment_cannot_be_deleted(http, fake):
    pid, _, repo = _project(http)
    http.post(f"/project/{pid}/environment", json={"name": "E", "project_id": pid, "json": "{}"})
    env = next(e for e in http.get(f"/project/{pid}/environment").json() if e["name"] == "E")["id"]
    http.post(f"/project/{pid}/templates", json={"name": "T", "app": "bash", "playbook": "a", "repository_id": repo,
                                                 "environment_id": env, "environment_ids": [env]})
    r = http.delete(f"/project/{pid}/environment/{env}")
    assert r.status_code == 400 and r.json()["inUse"] is True


def test_generation_differences():
    for version in ("2.10", "2.16"):
        with FakeSemaphore(version) as sem, httpx.Client(
            base_url=sem.url + "/api", headers={"Authorization": f"bearer {sem.token.upper()}"}
        ) as h:  # the header check is case-insensitive, as the real one
            pid = h.post("/projects", json={"name": "P"}).json()["id"]
            r = h.post(f"/project/{pid}/environment", json={"name": "E", "project_id": pid, "json": "{}"})
            assert (r.status_code, r.content == b"") == ((204, True) if version == "2.10" else (201, False))
            env = next(e for e in h.get(f"/project/{pid}/environment").json() if e["name"] == "E")["id"]
            key = next(k for k in h.get(f"/project/{pid}/keys").json())["id"]
            h.post(f"/project/{pid}/repositories", json={"name": "R", "project_id": pid, "git_url": "/r",
                                                        "git_branch": "", "ssh_key_id": key})
            repo = h.get(f"/project/{pid}/repositories").json()[0]["id"]
            t = h.post(f"/project/{pid}/templates", json={"name": "T", "app": "bash", "playbook": "a",
                                                          "repository_id": repo, "environment_id": env,
                                                          "environment_ids": [env]}).json()
            shown = h.get(f"/project/{pid}/templates/{t['id']}").json()
            if version == "2.16":
                assert shown["environment_id"] == 0 and shown["environment_ids"] == [env]
            else:
                assert shown["environment_id"] == env and "environment_ids" not in shown
            task = h.post(f"/project/{pid}/tasks", json={"template_id": t["id"]}).json()
            stop = h.post(f"/project/{pid}/tasks/{task['id']}/stop")
            assert stop.status_code == (400 if version == "2.10" else 204)
            raw = h.get(f"/project/{pid}/tasks/{task['id']}/raw_output")
            assert raw.status_code == (404 if version == "2.10" else 200)
            # 2.10 stores a template with a bad app and still answers 400
            bad = h.post(f"/project/{pid}/templates", json={"name": "B", "app": "", "playbook": "a",
                                                            "repository_id": repo})
            assert bad.status_code == 400
            stored = [x["name"] for x in h.get(f"/project/{pid}/templates").json()]
            assert ("B" in stored) == (version == "2.10")


def test_same_template_tasks_run_one_at_a_time(fake216):
    import time

    with httpx.Client(base_url=fake216.url + "/api", headers={"Authorization": f"Bearer {fake216.token}"}) as h:
        pid, _, repo = _project(h)
        t = h.post(f"/project/{pid}/templates", json={"name": "T", "app": "bash", "playbook": "a",
                                                      "repository_id": repo}).json()
        fake216.script("T", "success", duration=0.3)
        a = h.post(f"/project/{pid}/tasks", json={"template_id": t["id"]}).json()["id"]
        b = h.post(f"/project/{pid}/tasks", json={"template_id": t["id"]}).json()["id"]
        time.sleep(0.1)
        assert h.get(f"/project/{pid}/tasks/{a}").json()["status"] == "running"
        assert h.get(f"/project/{pid}/tasks/{b}").json()["status"] == "waiting"
        deadline = time.monotonic() + 5
        while h.get(f"/project/{pid}/tasks/{b}").json()["status"] != "success":
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert h.get(f"/project/{pid}/tasks/{a}").json()["status"] == "success"
        raw = h.get(f"/project/{pid}/tasks/{b}/raw_output").text
        assert raw.splitlines()[0] == f"Task {b} added to queue"


def test_log_lag_lets_the_last_lines_follow_the_final_status():
    """BEHAVIOUR.md: log records are inserted asynchronously; the fake can hold them back like that."""
    import time

    with FakeSemaphore("2.10", log_lag=0.3) as sem, httpx.Client(
        base_url=sem.url + "/api", headers={"Authorization": f"Bearer {sem.token}"}
    ) as h:
        pid, _, repo = _project(h)
        t = h.post(f"/project/{pid}/templates", json={"name": "T", "app": "bash", "playbook": "a",
                                                      "repository_id": repo}).json()
        sem.script("T", "error", duration=0.0, log=["fatal: boom"])
        tid = h.post(f"/project/{pid}/tasks", json={"template_id": t["id"]}).json()["id"]
        while h.get(f"/project/{pid}/tasks/{tid}").json()["status"] != "error":
            time.sleep(0.01)
        early = [r["output"] for r in h.get(f"/project/{pid}/tasks/{tid}/output").json()]
        assert "fatal: boom" not in early
        time.sleep(0.35)
        late = [r["output"] for r in h.get(f"/project/{pid}/tasks/{tid}/output").json()]
        assert late[-2:] == ["fatal: boom", "Command exited with status 1"] and late[0] == f"Task {tid} added to queue"
