"""The fake Semaphore's project objects: keys, repositories, inventories, environments, templates and views.

One collection handler set (list, create, get, PUT, delete) for all six, as the real server's handlers share
their shape; what differs per kind is a validator (:data:`VALIDATORS`), what makes an object "in use"
(:meth:`ObjectsApi._in_use`) and how it reads back (:meth:`ObjectsApi._present`).

- create: 201 with the object (2.16), but keys, repositories and environments answer 204 with no body on
  2.10; a 2.10 template with a bad ``app`` is stored *and* answered 400; on 2.10 a repository or environment
  whose ``project_id`` differs from the URL is answered 400 and still created;
- PUT is full replacement (omitted fields are reset) and needs ``id``/``project_id`` equal to the URL;
- delete of an object a template uses: 400 ``{"error": ..., "inUse": true}``;
- 2.10's template list leaves out vaults and survey variables (null; only the single GET has them).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

from doubles.semaphore.bodies import BadRequest, check_body, defaults, need_object
from doubles.semaphore.routing import Answer, Request, Route

APPS = ("ansible", "terraform", "tofu", "bash", "powershell", "python")
NAME_FIELD = {"views": "title"}
_KINDS = "(?P<kind>keys|repositories|inventory|environment|templates|views)"
_IN_USE_LABEL = {"keys": "Access key", "repositories": "Repository", "inventory": "Inventory",
                 "environment": "Environment"}

Ref = Callable[[str, Any], None]  # (kind, id): 404 unless 0/None or an object of the project


def _valid_key(obj: dict, ref: Ref) -> str | None:
    if obj.get("type") not in ("none", "ssh", "login_password", "string"):
        return "Invalid access key type"
    return None


def _valid_repository(obj: dict, ref: Ref) -> str | None:
    if not obj.get("git_url"):
        return "Repository url can not be empty"
    if not obj.get("ssh_key_id"):
        raise BadRequest(None, 404)
    ref("keys", obj.get("ssh_key_id"))
    return None


def _valid_inventory(obj: dict, ref: Ref) -> str | None:
    if obj.get("type") not in ("static", "static-yaml", "file", "terraform-workspace", "tofu-workspace"):
        return "Not supported inventory type"
    ref("keys", obj.get("ssh_key_id"))
    ref("keys", obj.get("become_key_id"))
    ref("repositories", obj.get("repository_id"))
    return None


def _json_is(text: str, kind: type) -> bool:
    try:
        return isinstance(json.loads(text), kind)
    except ValueError:
        return False


def _valid_environment(obj: dict, ref: Ref) -> str | None:
    for f in ("json", "env"):
        val = obj.get(f)
        if (f == "json" or val not in (None, "")) and not _json_is(val or "", dict):
            return f"Environment {f} must be a JSON object"
    return None


def _valid_template(obj: dict, ref: Ref) -> str | None:
    if obj.get("app") not in APPS:
        return f"Unknown app {obj.get('app')!r}"
    if obj["app"] not in ("terraform", "tofu") and not obj.get("playbook"):
        return "Playbook can not be empty"
    if obj["app"] == "ansible" and not obj.get("inventory_id"):
        return "Inventory can not be empty"
    if obj.get("arguments") not in (None, "") and not _json_is(obj["arguments"], list):
        return "Arguments must be a JSON array"
    ref("repositories", obj.get("repository_id") or -1)
    ref("inventory", obj.get("inventory_id"))
    ref("environment", obj.get("environment_id"))
    for eid in obj.get("environment_ids") or []:
        ref("environment", eid)
    ref("views", obj.get("view_id"))
    return None


#: validation after decode: an error message (400 JSON), or BadRequest(404) raised for an unknown reference
VALIDATORS: dict[str, Callable[[dict, Ref], str | None]] = {
    "keys": _valid_key, "repositories": _valid_repository, "inventory": _valid_inventory,
    "environment": _valid_environment, "templates": _valid_template, "views": lambda obj, ref: None,
}


class ObjectsApi:
    """Mixed into :class:`~doubles.semaphore.server.FakeSemaphore`; the state lives there."""

    version: str
    objects: dict[str, dict[int, dict]]
    tasks: dict[int, dict]
    _key_secrets: dict[int, dict]
    _next: Callable[[str], int]
    _project: Callable[[int], dict]
    _task_with_tpl: Callable[[dict], dict]

    def object_routes(self) -> list[Route]:
        return [
            Route(rf"/project/(?P<pid>\d+)/{_KINDS}", {"GET": self.list_objects, "POST": self.create_object}),
            Route(rf"/project/(?P<pid>\d+)/{_KINDS}/(?P<oid>\d+)",
                  {"GET": self.get_object, "PUT": self.update_object, "DELETE": self.delete_object}),
        ]

    # ------------------------------------------------------------------ test hooks (a "manual edit in the UI")

    def find(self, kind: str, project_id: int, name: str) -> list[dict]:
        nf = NAME_FIELD.get(kind, "name")
        return [o for o in self.objects[kind].values() if o["project_id"] == project_id and o[nf] == name]

    def insert(self, kind: str, project_id: int, **fields: Any) -> dict:
        """Store an object as given (no validation): for duplicates and odd server states."""
        obj = {**defaults(kind, self.version), **fields, "id": self._next(kind), "project_id": project_id}
        self.objects[kind][obj["id"]] = obj
        return obj

    def edit(self, kind: str, object_id: int, **fields: Any) -> None:
        self.objects[kind][object_id].update(fields)

    # ------------------------------------------------------------------ state

    def _object(self, kind: str, pid: int, oid: int) -> dict:
        obj = self.objects[kind].get(oid)
        if obj is None or obj["project_id"] != pid:
            raise BadRequest(None, 404)
        return obj

    def _present(self, kind: str, obj: dict, listing: bool = False) -> dict:
        out = copy.deepcopy(obj)
        if kind == "keys":
            out.update(login_password={"login": "", "password": ""},
                       ssh={"login": "", "passphrase": "", "private_key": ""})
        elif kind == "environment":
            out["secrets"] = []
        elif kind == "templates":
            if self.version == "2.16":
                out["environment_id"] = 0
            if listing:
                last = [t for t in self.tasks.values() if t["template_id"] == obj["id"]]
                out["last_task"] = self._task_with_tpl(max(last, key=lambda t: t["id"])) if last else None
                if self.version == "2.10":  # GetTemplates does not fill them; only GetTemplate (FillTemplate) does
                    out["vaults"] = None
                    out["survey_vars"] = None
        return out

    def _validate(self, kind: str, pid: int, obj: dict) -> str | None:
        nf = NAME_FIELD.get(kind, "name")
        if not obj.get(nf):
            return f"{kind} {nf} can not be empty"

        def ref(k: str, oid: Any) -> None:
            if oid is not None and oid != 0:
                self._object(k, pid, oid)

        return VALIDATORS[kind](obj, ref)

    def _build(self, kind: str, body: dict, pid: int) -> dict:
        obj = defaults(kind, self.version)
        for k in obj:
            if k in body:
                obj[k] = body[k]
        obj["project_id"] = pid
        if kind == "templates" and self.version == "2.16":
            obj["environment_ids"] = list(body.get("environment_ids") or [])
            obj["environment_id"] = obj["environment_ids"][0] if obj["environment_ids"] else None
        return obj

    def _in_use(self, kind: str, pid: int, oid: int) -> bool:
        templates = [t for t in self.objects["templates"].values() if t["project_id"] == pid]
        if kind == "keys":
            return any(o.get("ssh_key_id") == oid or o.get("become_key_id") == oid
                       for k in ("repositories", "inventory") for o in self.objects[k].values())
        if kind == "repositories":
            return any(t.get("repository_id") == oid for t in templates)
        if kind == "inventory":
            return any(t.get("inventory_id") == oid for t in templates)
        if kind == "environment":
            return any(t.get("environment_id") == oid or oid in (t.get("environment_ids") or []) for t in templates)
        return False

    # ------------------------------------------------------------------ handlers

    def list_objects(self, req: Request) -> Answer:
        kind, pid = req.params["kind"], req.int_param("pid")
        self._project(pid)
        items = [self._present(kind, o, listing=True) for o in self.objects[kind].values() if o["project_id"] == pid]
        sort = (req.query.get("sort") or ["id"])[0]
        reverse = (req.query.get("order") or ["asc"])[0] == "desc"
        items.sort(key=lambda o: (str(o.get(sort)) if sort != "id" else o["id"]), reverse=reverse)
        return Answer(200, items)

    def create_object(self, req: Request) -> Answer:
        kind, pid, body = req.params["kind"], req.int_param("pid"), need_object(req.body)
        self._project(pid)
        check_body(kind, body, self.version)
        mismatch = None
        if kind != "templates" and body.get("project_id") != pid:
            mismatch = "Project ID in body and URL must be the same"
            if not (self.version == "2.10" and kind in ("repositories", "environment")):
                raise BadRequest(mismatch)
            # 2.10 quirk: AddRepository / AddEnvironment write the 400 but go on and create
        obj = self._build(kind, body, pid)
        if kind == "keys":
            if obj["type"] == "ssh" and not (body.get("ssh") or {}).get("private_key"):
                raise BadRequest("SSH key can not be empty")
            if obj["type"] == "login_password" and not (body.get("login_password") or {}).get("password"):
                raise BadRequest("Password can not be empty")
        problem = self._validate(kind, pid, obj)
        bad_app_quirk = (kind == "templates" and self.version == "2.10" and problem
                         and problem.startswith("Unknown app") and obj.get("name") and obj.get("playbook"))
        if problem and not bad_app_quirk:
            raise BadRequest(problem)
        obj["id"] = self._next(kind)
        self.objects[kind][obj["id"]] = obj
        if kind == "keys":
            self._key_secrets[obj["id"]] = {"login_password": body.get("login_password"), "ssh": body.get("ssh")}
        if problem:  # 2.10 AddTemplate: inserted first, app checked afterwards
            raise BadRequest(problem)
        if mismatch:
            raise BadRequest(mismatch)
        if self.version == "2.10" and kind in ("keys", "repositories", "environment"):
            return Answer(204)
        return Answer(201, self._present(kind, obj))

    def get_object(self, req: Request) -> Answer:
        kind, pid = req.params["kind"], req.int_param("pid")
        self._project(pid)
        return Answer(200, self._present(kind, self._object(kind, pid, req.int_param("oid"))))

    def update_object(self, req: Request) -> Answer:
        kind, pid, oid, body = req.params["kind"], req.int_param("pid"), req.int_param("oid"), need_object(req.body)
        self._project(pid)
        current = self._object(kind, pid, oid)
        check_body(kind, body, self.version)
        if body.get("id") != oid:
            raise BadRequest(f"{kind} ID in body and URL must be the same")
        if body.get("project_id") != pid:
            raise BadRequest("Project ID in body and URL must be the same")
        obj = self._build(kind, body, pid)
        obj["id"] = oid
        problem = self._validate(kind, pid, obj)
        if problem:
            raise BadRequest(problem)
        if kind == "keys" and body.get("override_secret"):  # else the stored secret is kept
            self._key_secrets[oid] = {"login_password": body.get("login_password"), "ssh": body.get("ssh")}
        current.clear()
        current.update(obj)
        return Answer(204)

    def delete_object(self, req: Request) -> Answer:
        kind, pid, oid = req.params["kind"], req.int_param("pid"), req.int_param("oid")
        self._project(pid)
        self._object(kind, pid, oid)
        if self._in_use(kind, pid, oid):
            raise BadRequest(f"{_IN_USE_LABEL[kind]} is in use by one or more templates", extra={"inUse": True})
        if kind == "views":
            for t in self.objects["templates"].values():
                if t["project_id"] == pid and t.get("view_id") == oid:
                    t["view_id"] = None
        if kind == "templates":
            for tid in [t["id"] for t in self.tasks.values() if t["template_id"] == oid]:
                self.tasks.pop(tid, None)
        del self.objects[kind][oid]
        return Answer(204)
