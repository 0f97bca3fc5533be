"""ralf's Semaphore models and endpoints (ralf.semaphore.api) agree with the server's OpenAPI spec (2.16.14).

Every endpoint's method and path is in the spec; every field a request model can send is in the spec's body
schema for that request, with the spec's JSON type; every field an answer model reads is in the spec's
definition of that object, with its type.
"""

from __future__ import annotations

import re
import types
import typing
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError
from sem_spec import body_schema

from ralf.semaphore import api

JSON_TYPES = {int: "integer", str: "string", bool: "boolean", list: "array", dict: "object"}

# the spec's definition of each object an answer model reads
DEFINITION = {api.Token: "APIToken", api.Info: "InfoType", api.Project: "Project", api.Task: "Task",
              api.TaskRef: "Task", api.OutputLine: "TaskOutput", api.Key: "AccessKey",
              api.Repository: "Repository", api.Inventory: "Inventory", api.Environment: "Environment",
              api.View: "View", api.Template: "Template"}


# routes the real server serves (BEHAVIOUR.md, "Endpoints", from its router) that the spec leaves out
NOT_IN_SPEC = {
    ("GET", "/project/{}/templates/{}/tasks/last"): "a template's last tasks, ?limit=N (at most 200)",
    ("GET", "/project/{}/keys/{}"): "one access key (the spec has only its PUT and DELETE)",
}


def _shape(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "{}", path).rstrip("/")


def _spec_operation(spec: dict, method: str, path: str) -> dict | None:
    for template, ops in spec["paths"].items():
        if _shape(template) == _shape(path) and method.lower() in ops:
            return ops[method.lower()]
    return None


def _json_type(annotation: Any) -> tuple[str, str | None]:
    """(JSON type, item JSON type) of a field annotation, None/Optional unwrapped."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        assert len(args) == 1, annotation
        return _json_type(args[0])
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "object", None
    origin = typing.get_origin(annotation) or annotation
    item = JSON_TYPES[args[0]] if origin is list and args else None
    return JSON_TYPES[origin], item


def _resolve(spec: dict, schema: dict) -> dict:
    while "$ref" in schema:
        schema = spec["definitions"][schema["$ref"].split("/")[-1]]
    return schema


def mismatches(spec: dict, model: type[BaseModel], schema: dict) -> list[str]:
    """Fields of ``model`` the schema does not have, or has with another JSON type."""
    props = _resolve(spec, schema).get("properties", {})
    found = []
    for name, info in model.model_fields.items():
        wire = info.alias or name
        if wire not in props:
            found.append(f"{model.__name__}.{wire}: not in the spec")
            continue
        typ, item = _json_type(info.annotation)
        want = _resolve(spec, props[wire])
        if want.get("type") and want["type"] != typ:
            found.append(f"{model.__name__}.{wire}: {typ}, the spec says {want['type']}")
        if item and want.get("items", {}).get("type") not in (None, item):
            found.append(f"{model.__name__}.{wire}: items {item}, the spec says {want['items']['type']}")
        nested = _nested_model(info.annotation)
        if nested is not None:
            found += mismatches(spec, nested, want)
    return found


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    """The model a field holds (an object inside the body), None/Optional unwrapped."""
    for candidate in (annotation, *typing.get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


@pytest.mark.parametrize("ep", api.endpoints(), ids=lambda ep: f"{ep.method} {ep.path}")
def test_every_endpoint_is_in_the_spec_with_its_request_fields(api_spec, ep):
    op = _spec_operation(api_spec, ep.method, ep.path)
    if (ep.method, _shape(ep.path)) in NOT_IN_SPEC:
        assert op is None  # when a newer spec documents it, this exception goes
        return
    assert op is not None, f"{ep.method} {ep.path} is not in the spec"
    if ep.request is not None:
        schema = body_schema(api_spec, ep.method, "/api" + ep.path.format_map(_Ids()))
        assert schema, f"{ep.method} {ep.path}: the spec takes no body there"
        assert mismatches(api_spec, ep.request, schema) == []


@pytest.mark.parametrize("model", list(DEFINITION), ids=lambda m: m.__name__)
def test_every_field_an_answer_model_reads_is_in_the_spec(api_spec, model):
    assert mismatches(api_spec, model, {"$ref": f"#/definitions/{DEFINITION[model]}"}) == []


def test_the_check_finds_a_field_or_a_type_the_spec_does_not_have(api_spec):
    class Bogus(api.Request):
        template_id: str
        colour: int | None = None

    schema = body_schema(api_spec, "POST", "/api/project/1/tasks")
    assert mismatches(api_spec, Bogus, schema) == ["Bogus.template_id: string, the spec says integer",
                                                  "Bogus.colour: not in the spec"]


def test_the_check_looks_inside_an_object_field(api_spec):
    class Secret(api.Request):
        login: str
        pin: int | None = None

    class BogusKey(api.Request):
        project_id: int
        login_password: Secret | None = None
        ssh: str | None = None

    schema = body_schema(api_spec, "POST", "/api/project/1/keys")
    assert mismatches(api_spec, BogusKey, schema) == ["Secret.pin: not in the spec",
                                                     "BogusKey.ssh: string, the spec says object"]


def test_every_collection_has_its_five_calls_and_every_answer_model_is_checked():
    kinds = {ep.path.split("/")[3] for ep in api.endpoints() if ep.path.startswith("/project/{project_id}/")
             and ep.path.count("/") in (3, 4)}
    assert set(api.KINDS) <= kinds
    answers = {ep.answer for ep in api.endpoints() if ep.answer is not None}
    assert answers <= set(DEFINITION)


class _Ids(dict):
    def __missing__(self, key: str) -> str:
        return "7"


# ------------------------------------------------------------------ what the models accept and send


def test_a_request_is_sent_as_given_and_refuses_unknown_fields_and_wrong_types():
    body = {"project_id": 1, "name": "E", "json": "{}", "env": '{"A": "1"}'}
    assert api.KINDS["environment"].create.model_validate(body).body() == body
    with pytest.raises(ValidationError):
        api.KINDS["environment"].create.model_validate({**body, "secret": "x"})
    with pytest.raises(ValidationError):
        api.TaskRequest.model_validate({"template_id": "5"})  # the server would answer 400 with an empty body
    assert api.TokenRequest().body() == {}
    assert api.StopRequest(force=False).body() == {"force": False}


def test_a_put_carries_the_servers_other_fields_back_unchanged():
    current = {"id": 3, "project_id": 1, "name": "T", "app": "bash", "playbook": "run.sh", "repository_id": 2,
               "vaults": [{"id": 1}], "survey_vars": [], "autorun": False, "task_params": None}
    assert api.KINDS["templates"].update.model_validate(current).body() == current
    with pytest.raises(ValidationError):
        api.KINDS["templates"].update.model_validate({**current, "repository_id": "2"})


def test_an_answer_keeps_what_ralf_does_not_read_and_names_the_field_that_does_not_fit():
    task = api.Task.model_validate({"id": 7, "status": "running", "commit_hash": None})
    assert task.model_extra == {"commit_hash": None}
    for data, text in (({"id": "7"}, "a task without a numeric id"), ({"id": 7}, "a task without a status"),
                       ({"id": 7, "status": 3}, "a task without a status")):
        with pytest.raises(ValidationError) as e:
            api.Task.model_validate(data)
        assert api.problem(api.Task, e.value) == text
