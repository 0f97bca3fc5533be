"""Semaphore's REST API as ralf uses it: typed requests and answers (pydantic), and one table of endpoints.

- Requests (:class:`Request` subclasses) refuse unknown fields and wrong JSON types (strict), so a body ralf
  builds wrongly fails here, before the server would answer 400 with an empty body. What is sent is exactly the
  fields that were given (``exclude_unset``): the server resets an omitted field, so nothing is added.
- A full-object PUT (:attr:`Kind.update`) carries the server's own object back: the declared fields are
  checked, the others pass through unchanged.
- Answers (:class:`Answer` subclasses) declare only what ralf reads and keep everything else (the reconciler
  PUTs objects back whole); a wrong shape is reported by the client as a ``SemaphoreBadAnswer``.
- :data:`KINDS` knows each project collection (URL segment, name field, label, models) and :class:`Endpoint`
  each call (method, path, request and answer model); ``tests/semaphore/test_sem_api.py`` checks every one
  against the server's OpenAPI spec.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError


class Request(BaseModel):
    """A request body: only declared fields, strict JSON types, sent as given."""

    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=True)

    def body(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, exclude_unset=True)


@dataclass(frozen=True)
class SecretValue:
    """A request field's value that is read (e.g. from the secrets directory) only when the body is built for
    sending (:func:`resolve`); never compared, shown or logged."""

    read: Callable[[], Any]

    def __repr__(self) -> str:
        return "SecretValue(***)"


def resolve(body: dict[str, Any]) -> dict[str, Any]:
    """``body`` with its :class:`SecretValue` fields read: only for validating and sending it."""
    return {k: (v.read() if isinstance(v, SecretValue) else v) for k, v in body.items()}


class Answer(BaseModel):
    """An answer: what ralf reads is typed, the rest is kept as the server sent it."""

    model_config = ConfigDict(extra="allow", strict=True, populate_by_name=True)


# --------------------------------------------------------------------------- auth, server, projects


class LoginRequest(Request):
    auth: str
    password: str


class TokenRequest(Request):
    name: str | None = None


class Token(Answer):
    id: str


class Info(Answer):
    version: str = ""


class ProjectRequest(Request):
    name: str
    alert: bool | None = None


class Project(Answer):
    id: int
    name: str = ""


# --------------------------------------------------------------------------- project objects


class _ObjectRequest(Request):
    id: int | None = None
    project_id: int


class LoginPassword(Request):
    """A ``login_password`` key's secret (Gitea's user and password for cloning)."""

    login: str | None = None
    password: str


class SshSecret(Request):
    """An ``ssh`` key's secret."""

    login: str | None = None
    passphrase: str | None = None
    private_key: str


class KeyRequest(_ObjectRequest):
    name: str
    type: str
    override_secret: bool | None = None  # on PUT the stored secret is replaced only with this true
    login_password: LoginPassword | None = None
    ssh: SshSecret | None = None


class RepositoryRequest(_ObjectRequest):
    name: str
    git_url: str
    git_branch: str | None = None
    ssh_key_id: int


class InventoryRequest(_ObjectRequest):
    name: str
    type: str
    inventory: str | None = None
    ssh_key_id: int | None = None
    become_key_id: int | None = None
    repository_id: int | None = None


class EnvironmentRequest(_ObjectRequest):
    name: str
    json_: str | None = Field(None, alias="json")
    env: str | None = None
    password: str | None = None


class ViewRequest(_ObjectRequest):
    title: str
    position: int | None = None


class TemplateRequest(_ObjectRequest):
    name: str
    app: str
    playbook: str
    arguments: str | None = None  # a JSON array, as a string
    description: str | None = None
    repository_id: int
    inventory_id: int | None = None
    environment_id: int | None = None
    environment_ids: list[int] | None = None  # 2.16 reads this list; 2.10 ignores it
    view_id: int | None = None


def _pass_through(model: type[Request]) -> type[Request]:
    """The PUT form of a create model: declared fields checked, the server's other fields passed through."""
    name = model.__name__.replace("Request", "Update")
    config = ConfigDict(extra="allow", strict=True, populate_by_name=True)
    return type(name, (model,), {"model_config": config, "__doc__": _pass_through.__doc__,
                                 "__module__": __name__})


KeyUpdate = _pass_through(KeyRequest)
RepositoryUpdate = _pass_through(RepositoryRequest)
InventoryUpdate = _pass_through(InventoryRequest)
EnvironmentUpdate = _pass_through(EnvironmentRequest)
ViewUpdate = _pass_through(ViewRequest)
TemplateUpdate = _pass_through(TemplateRequest)


class ProjectObject(Answer):
    id: int


class Key(ProjectObject):
    name: str


class Repository(ProjectObject):
    name: str


class Inventory(ProjectObject):
    name: str


class Environment(ProjectObject):
    name: str


class View(ProjectObject):
    title: str


class Template(ProjectObject):
    name: str
    environment_ids: list[int] | None = None


@dataclass(frozen=True)
class Kind:
    """One collection of a project's objects."""

    kind: str  # ralf's name, also the URL segment under /project/<pid>/
    name_field: str
    label: str  # as messages name one object
    create: type[Request]
    update: type[Request]
    answer: type[ProjectObject]

    @property
    def collection(self) -> str:
        return f"/project/{{project_id}}/{self.kind}"

    @property
    def item(self) -> str:
        return f"/project/{{project_id}}/{self.kind}/{{object_id}}"


#: the collections, in the order their objects must exist (a template needs all the others)
KINDS: dict[str, Kind] = {k.kind: k for k in (
    Kind("keys", "name", "key", KeyRequest, KeyUpdate, Key),
    Kind("repositories", "name", "repository", RepositoryRequest, RepositoryUpdate, Repository),
    Kind("inventory", "name", "inventory", InventoryRequest, InventoryUpdate, Inventory),
    Kind("environment", "name", "environment", EnvironmentRequest, EnvironmentUpdate, Environment),
    Kind("views", "title", "view", ViewRequest, ViewUpdate, View),
    Kind("templates", "name", "template", TemplateRequest, TemplateUpdate, Template),
)}


def name_of(kind: str, obj: dict[str, Any]) -> str:
    """An object's name as the server shows it (a view's is its title)."""
    return str(obj.get(KINDS[kind].name_field) or "")


# --------------------------------------------------------------------------- tasks


class TaskRequest(Request):
    template_id: int
    message: str | None = None
    debug: bool | None = None
    dry_run: bool | None = None
    diff: bool | None = None
    playbook: str | None = None
    environment: str | None = None
    limit: str | None = None
    arguments: str | None = None
    git_branch: str | None = None
    inventory_id: int | None = None


class StopRequest(Request):
    force: bool


class Task(Answer):
    id: int
    status: str
    template_id: int | None = None


class TaskRef(Answer):
    id: int


class OutputLine(Answer):
    output: str | None = None


# --------------------------------------------------------------------------- endpoints


@dataclass(frozen=True)
class Endpoint:
    """One call: ``path`` is below ``/api`` with ``{placeholders}``; ``many``: the answer is a list."""

    method: str
    path: str
    request: type[Request] | None = None
    answer: type[Answer] | None = None
    many: bool = False
    params: tuple[str, ...] = field(default=())  # query parameters it takes

    def url(self, **values: Any) -> str:
        return self.path.format(**values)


PING = Endpoint("GET", "/ping")
LOGIN = Endpoint("POST", "/auth/login", LoginRequest)
MINT_TOKEN = Endpoint("POST", "/user/tokens", TokenRequest, Token)
EXPIRE_TOKEN = Endpoint("DELETE", "/user/tokens/{token}")
INFO = Endpoint("GET", "/info", answer=Info)
EVENTS = Endpoint("GET", "/ws")  # the websocket (live task events)
LIST_PROJECTS = Endpoint("GET", "/projects", answer=Project, many=True)
CREATE_PROJECT = Endpoint("POST", "/projects", ProjectRequest, Project)
START_TASK = Endpoint("POST", "/project/{project_id}/tasks", TaskRequest, Task)
GET_TASK = Endpoint("GET", "/project/{project_id}/tasks/{task_id}", answer=Task)
TASK_OUTPUT = Endpoint("GET", "/project/{project_id}/tasks/{task_id}/output", answer=OutputLine, many=True)
STOP_TASK = Endpoint("POST", "/project/{project_id}/tasks/{task_id}/stop", StopRequest)
LAST_TASKS = Endpoint("GET", "/project/{project_id}/templates/{template_id}/tasks/last", answer=TaskRef, many=True,
                      params=("limit",))


def list_objects(kind: str) -> Endpoint:
    k = KINDS[kind]
    return Endpoint("GET", k.collection, answer=k.answer, many=True)


def get_object(kind: str) -> Endpoint:
    k = KINDS[kind]
    return Endpoint("GET", k.item, answer=k.answer)


def create_object(kind: str) -> Endpoint:
    k = KINDS[kind]
    return Endpoint("POST", k.collection, k.create, k.answer)


def update_object(kind: str) -> Endpoint:
    return Endpoint("PUT", KINDS[kind].item, KINDS[kind].update)


def delete_object(kind: str) -> Endpoint:
    return Endpoint("DELETE", KINDS[kind].item)


def endpoints() -> list[Endpoint]:
    """Every call ralf makes (what the spec test walks)."""
    fixed = [PING, LOGIN, MINT_TOKEN, EXPIRE_TOKEN, INFO, EVENTS, LIST_PROJECTS, CREATE_PROJECT, START_TASK,
             GET_TASK, TASK_OUTPUT, STOP_TASK, LAST_TASKS]
    per_kind = [make(kind) for kind in KINDS
                for make in (list_objects, get_object, create_object, update_object, delete_object)]
    return fixed + per_kind


# --------------------------------------------------------------------------- checking


#: how a message names a missing or mistyped field of an answer
_FIELD_WORDS = {"id": "a numeric id", "status": "a status", "version": "a version text"}


def problem(model: type[BaseModel], error: ValidationError) -> str:
    """One line naming the first field that does not fit, e.g. ``a task without a status``."""
    first = error.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    what = model.__name__.lower() if model is not OutputLine else "log line"
    return f"a {what} without {_FIELD_WORDS.get(where, f'a valid {where!r}')}"
