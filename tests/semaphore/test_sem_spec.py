"""Every request body the client sends is valid against Semaphore's own API spec (api-docs.yml, 2.16.14)."""

from __future__ import annotations

import pytest

from ralf.semaphore.client import SemaphoreClient
from ralf.semaphore.ownership import TEMPLATE_MARK
from ralf.semaphore.reconcile import seed
from sem_spec import body_schema, validate


def _check_all(api_spec, fake) -> int:
    checked = 0
    problems: list[str] = []
    for r in fake.requests:
        if not r.is_write or r.body is None:
            continue
        schema = body_schema(api_spec, r.method, r.path)
        assert schema is not None, f"{r.method} {r.path} is not in the spec"
        found = validate(api_spec, schema, r.body, f"{r.method} {r.path}")
        if r.method == "PUT":
            # a PUT carries the server's object back; Swagger allows properties it does not list
            found = [p for p in found if not p.endswith("not in the spec")]
        problems += found
        checked += 1
    assert problems == []
    return checked


def test_validator_catches_wrong_types(api_spec):
    schema = body_schema(api_spec, "POST", "/api/project/1/tasks")
    assert validate(api_spec, schema, {"template_id": 3}) == []
    assert validate(api_spec, schema, {"template_id": "3"}) != []
    tpl = body_schema(api_spec, "POST", "/api/project/1/templates")
    assert validate(api_spec, tpl, {"name": "x", "arguments": ["a"]}) != []  # must be a JSON string
    assert validate(api_spec, tpl, {"name": "x", "view_id": None}) != []  # null where not nullable
    assert body_schema(api_spec, "POST", "/api/project/1/templates/2/tasks") is None  # the path that does not exist


def test_seed_bodies_match_the_spec(api_spec, fake, desired):
    with SemaphoreClient(fake.url, token=fake.token) as c:
        seed(c, desired)
        pid = next(iter(fake.projects))
        # drift of every kind, and an orphan, so that PUT and DELETE bodies are exercised too
        for kind, name, edit in [("repositories", "RALF Local", {"git_branch": "x"}),
                                 ("inventory", "RALF Inventory", {"inventory": ""}),
                                 ("environment", "RALF AI Env", {"env": "{}"}),
                                 ("templates", "RALF AI Apply", {"playbook": "x"}),
                                 ("views", "RALF", {"position": 3})]:
            fake.edit(kind, fake.find(kind, pid, name)[0]["id"], **edit)
        fake.insert("templates", pid, name="RALF Gone", app="bash", playbook="x", repository_id=1,
                    description=TEMPLATE_MARK)  # ralf's own orphan: --prune deletes it
        seed(c, desired, prune=True)
    checked = _check_all(api_spec, fake)
    methods = {(r.method, r.path.rsplit("/", 1)[-1] if r.method == "POST" else r.path.split("/")[4])
               for r in fake.writes}
    assert checked >= 60
    assert {("POST", "projects"), ("POST", "templates"), ("POST", "environment"), ("POST", "repositories"),
            ("POST", "inventory"), ("POST", "views"), ("PUT", "templates"), ("PUT", "environment"),
            ("PUT", "inventory"), ("PUT", "repositories"), ("DELETE", "templates")} <= methods


def test_task_bodies_match_the_spec(api_spec, fake, desired):
    fake.script("RALF Vault Apply", "hang")
    with SemaphoreClient(fake.url, token=fake.token) as c:
        seed(c, desired)
        pid = next(iter(fake.projects))
        tpl = fake.find("templates", pid, "RALF Vault Apply")[0]["id"]
        task = c.start_task(pid, tpl, message="spec check", debug=False)
        c.stop_task(pid, task["id"], force=True)
    fake.requests[:] = [r for r in fake.requests if "/tasks" in r.path]
    assert _check_all(api_spec, fake) == 2


def test_login_and_token_bodies_match_the_spec(api_spec, fake):
    with SemaphoreClient(fake.url, user=fake.user, password=fake.password) as c:
        c.list_projects()
    assert _check_all(api_spec, fake) == 2


@pytest.mark.parametrize("kind", ["keys", "repositories", "inventory", "environment", "templates", "views"])
def test_every_collection_path_is_in_the_spec(api_spec, kind):
    assert body_schema(api_spec, "POST", f"/api/project/1/{kind}") is not None
    assert body_schema(api_spec, "PUT", f"/api/project/1/{kind}/2") is not None
