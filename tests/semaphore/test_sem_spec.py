"""Every request body the client sends is valid against Semaphore's own API spec (api-docs.yml, 2.16.14)."""

from __future__ import annotations

import pytest
from sem_spec import body_schema, validate

from ralf.semaphore.client import SemaphoreClient
from ralf.semaphore.ownership import TEMPLATE_MARK
from ralf.semaphore.reconcile import seed


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


def test_the_facts_generator_keeps_endpoints_methods_and_body_types(tmp_path):
    """scripts/semaphore_spec_facts.py: what the validator reads survives, descriptions and examples do not."""
    import json
    import subprocess
    import sys

    from sem_spec import FACTS_PATH

    spec = tmp_path / "api-docs.yml"
    spec.write_text(
        "swagger: '2.0'\ninfo: {version: 9.9.9}\nbasePath: /api\n"
        "definitions:\n  Task:\n    type: object\n    description: drop me\n    properties:\n"
        "      template_id: {type: integer, minimum: 1, example: 3}\n"
        "      note: {type: string, x-nullable: true}\n"
        "paths:\n  /project/{project_id}/tasks:\n    get: {summary: list}\n"
        "    post:\n      parameters:\n        - {name: task, in: body, schema: {$ref: '#/definitions/Task'}}\n")
    out = tmp_path / "facts.json"
    script = FACTS_PATH.parents[2] / "scripts" / "semaphore_spec_facts.py"
    run = subprocess.run([sys.executable, str(script), str(spec), "--out", str(out)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    facts = json.loads(out.read_text())
    assert facts["version"] == "9.9.9"
    assert facts["paths"] == {"/project/{project_id}/tasks": {"get": {"body": None},
                                                              "post": {"body": {"$ref": "#/definitions/Task"}}}}
    assert facts["definitions"]["Task"] == {"type": "object", "properties": {
        "template_id": {"type": "integer", "minimum": 1}, "note": {"type": "string", "x-nullable": True}}}
    check = subprocess.run([sys.executable, str(script), str(spec), "--out", str(out), "--check"],
                           capture_output=True, text=True)
    assert check.returncode == 0
    out.write_text("{}\n")
    check = subprocess.run([sys.executable, str(script), str(spec), "--out", str(out), "--check"],
                           capture_output=True, text=True)
    assert check.returncode == 1 and "out of date" in check.stderr


def test_the_committed_facts_are_semaphore_2_16(api_spec):
    assert api_spec["version"] == "2.16.14"
    assert set(api_spec["paths"]["/project/{project_id}/templates"]) == {"get", "post"}
