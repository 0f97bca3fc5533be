"""Reconcile a Semaphore project with the desired state: read once, diff, plan, apply.

- Reads: the project list, then each collection (keys, repositories, inventory, environment, views,
  templates) exactly once, whatever the number of objects.
- Plan: ``create`` for missing objects, ``update`` with field-level diffs for drifted ones (JSON-string
  fields are compared as JSON, per key; secret-looking fields are masked), and for objects whose names
  carry the template prefix but are no longer desired: ``delete`` with ``prune``, else ``orphan``
  (reported, kept). A desired name held by several server objects is an error naming their ids.
- Apply: creates and updates in dependency order, then deletes (templates first). An update is a
  full-object PUT: the server's object (request fields only) with the managed fields overlaid, ``id``
  and ``project_id`` included, so nothing the user set elsewhere (vaults, survey vars) is reset.
  Templates carry ``environment_id`` and ``environment_ids`` (2.16 reads the list).
- A rerun after a failure mid-way converges: everything is recomputed from the server.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable

from ralf.errors import SemaphoreError
from ralf.semaphore.client import SemaphoreClient
from ralf.semaphore.desired import LABEL, ORDER, DesiredObject, DesiredState, Ref

SECRET_WORDS = ("password", "secret", "private_key", "passphrase", "token")
JSON_FIELDS = frozenset({"env", "json", "arguments"})
PRUNE_ORDER = ("templates", "views", "environment", "inventory", "repositories")
MASK = "***"

# fields of each kind's request body (api-docs.yml *Request definitions) that a PUT carries over
REQUEST_FIELDS: dict[str, tuple[str, ...]] = {
    "keys": ("name", "type"),
    "repositories": ("name", "git_url", "git_branch", "ssh_key_id"),
    "inventory": ("name", "inventory", "ssh_key_id", "become_key_id", "type", "repository_id", "holder_id"),
    "environment": ("name", "password", "json", "env"),
    "templates": ("name", "inventory_id", "repository_id", "environment_id", "environment_ids", "view_id",
                  "vaults", "playbook", "arguments", "description", "allow_override_args_in_task", "limit",
                  "suppress_success_alerts", "suppress_error_alerts", "app", "git_branch", "survey_vars", "type",
                  "start_version", "build_template_id", "autorun", "task_params", "working_directory",
                  "allow_override_branch_in_task"),
    "views": ("title", "position", "hidden", "type", "sort_column", "sort_reverse"),
}


def name_of(kind: str, obj: dict) -> str:
    return str(obj.get("title" if kind == "views" else "name") or "")


def _secret(name: str) -> bool:
    low = name.lower()
    return any(w in low for w in SECRET_WORDS)


@dataclass
class FieldDiff:
    field: str
    old: Any
    new: Any

    def to_dict(self) -> dict:
        return {"field": self.field, "old": None if self.old is _MISSING else self.old,
                "new": None if self.new is _MISSING else self.new}

    def render(self) -> str:
        return f"{self.field}: {_show(self.old)} → {_show(self.new)}"


@dataclass
class Action:
    op: str  # create | update | delete | orphan
    kind: str
    name: str
    id: int | None = None
    diffs: list[FieldDiff] = field(default_factory=list)

    @property
    def is_change(self) -> bool:
        return self.op in ("create", "update", "delete")

    def to_dict(self) -> dict:
        return {"op": self.op, "kind": LABEL.get(self.kind, self.kind), "name": self.name, "id": self.id,
                "diffs": [d.to_dict() for d in self.diffs]}

    def render(self) -> list[str]:
        sign = {"create": "+", "update": "~", "delete": "-", "orphan": "?"}[self.op]
        where = f" (id {self.id})" if self.id is not None else ""
        head = f"{sign} {self.op} {LABEL.get(self.kind, self.kind)} {self.name!r}{where}"
        if self.op == "orphan":
            head += ": not in the platform any more (--prune deletes it)"
        return [head] + [f"    {d.render()}" for d in self.diffs]


@dataclass
class Plan:
    project: str
    project_id: int | None
    actions: list[Action]
    unchanged: int = 0
    # resolved server state the plan was computed from
    index: dict[tuple[str, str], dict] = field(default_factory=dict, repr=False)

    @property
    def changes(self) -> list[Action]:
        return [a for a in self.actions if a.is_change]

    @property
    def orphans(self) -> list[Action]:
        return [a for a in self.actions if a.op == "orphan"]

    def summary(self) -> str:
        n = {op: sum(a.op == op for a in self.actions) for op in ("create", "update", "delete", "orphan")}
        text = f"{n['create']} to create, {n['update']} to update, {n['delete']} to delete"
        if n["orphan"]:
            text += f", {n['orphan']} orphaned (kept)"
        return text + f"; {self.unchanged} unchanged"


@dataclass
class SeedResult:
    project: str
    project_id: int | None
    plan: Plan
    check: bool
    prune: bool
    writes: int = 0
    server_version: str = ""

    @property
    def drift(self) -> bool:
        return bool(self.plan.changes)

    @property
    def changed(self) -> bool:
        return self.writes > 0

    def to_dict(self) -> dict:
        return {"project": self.project, "project_id": self.project_id, "server_version": self.server_version,
                "check": self.check, "prune": self.prune, "drift": self.drift, "changed": self.changed,
                "writes": self.writes, "summary": self.plan.summary(),
                "actions": [a.to_dict() for a in self.plan.actions]}


# --------------------------------------------------------------------------- reading and diffing


def read_state(client: SemaphoreClient, project_id: int) -> dict[str, list[dict]]:
    """Each collection of the project, read once."""
    return {kind: client.list_objects(kind, project_id) for kind in ORDER}


def _norm(fieldname: str, value: Any) -> Any:
    if value is None or value == "" or (fieldname.endswith("_id") and value == 0):
        return None
    return value


def _server_value(kind: str, obj: dict, fieldname: str) -> Any:
    if kind == "templates" and fieldname == "environment_id":
        ids = obj.get("environment_ids") or []
        return ids[0] if ids else obj.get("environment_id")  # 2.16 reads the list; environment_id reads back 0
    return obj.get(fieldname)


def _json_or_raw(text: Any) -> tuple[bool, Any]:
    if text is None or text == "":
        return True, None
    if not isinstance(text, str):
        return False, text
    try:
        return True, json.loads(text)
    except ValueError:
        return False, text


def _diff_json(fieldname: str, old_raw: Any, new_raw: Any) -> list[FieldDiff]:
    ok_old, old = _json_or_raw(old_raw)
    _, new = _json_or_raw(new_raw)
    if ok_old and old == new:
        return []
    if ok_old and isinstance(new, dict) and isinstance(old, (dict, type(None))):
        old = old or {}
        out = []
        for k in sorted(set(old) | set(new), key=lambda k: (k not in new, k)):
            o, n = old.get(k, _MISSING), new.get(k, _MISSING)
            if o != n:
                mask = _secret(k)
                out.append(FieldDiff(f"{fieldname}.{k}", MASK if mask and o is not _MISSING else o,
                                     MASK if mask and n is not _MISSING else n))
        return out
    return [FieldDiff(fieldname, old if ok_old else old_raw, new)]  # shown decoded when it decodes


def _diff_text(fieldname: str, old: Any, new: Any) -> FieldDiff:
    """Multi-line text (the inventory): name the first differing line instead of dumping both."""
    if isinstance(old, str) and isinstance(new, str) and ("\n" in old or "\n" in new):
        a, b = old.splitlines(), new.splitlines()
        for i in range(max(len(a), len(b))):
            x = a[i] if i < len(a) else None
            y = b[i] if i < len(b) else None
            if x != y:
                return FieldDiff(f"{fieldname} line {i + 1}", x, y)
    return FieldDiff(fieldname, old, new)


class _Missing:
    def __repr__(self) -> str:
        return "(absent)"


_MISSING = _Missing()


def _resolve(value: Any, ids: dict[tuple[str, str], int]) -> Any:
    if isinstance(value, Ref):
        return ids.get((value.kind, value.name))
    return value


def compare(d: DesiredObject, current: dict, ids: dict[tuple[str, str], int]) -> list[FieldDiff]:
    diffs: list[FieldDiff] = []
    for fname, want in d.fields.items():
        have = _server_value(d.kind, current, fname)
        if isinstance(want, Ref):
            wid = ids.get((want.kind, want.name))
            if wid is None:
                diffs.append(FieldDiff(fname, have, f"(new {LABEL[want.kind]} {want.name!r})"))
            elif _norm(fname, have) != wid:
                diffs.append(FieldDiff(fname, have, wid))
            continue
        if fname in JSON_FIELDS:
            diffs += _diff_json(fname, have, want)
        elif _norm(fname, have) != _norm(fname, want):
            if _secret(fname):
                diffs.append(FieldDiff(fname, MASK, MASK))
            else:
                diffs.append(_diff_text(fname, have, want))
    return diffs


def _carries_prefix(name: str, prefix: str) -> bool:
    return bool(prefix) and (name == prefix or name.startswith(prefix + " "))


def make_plan(desired: DesiredState, state: dict[str, list[dict]], *, project_id: int | None,
              prune: bool = False) -> Plan:
    """Compare the desired objects with the server's; raises on duplicate desired names."""
    index: dict[tuple[str, str], dict] = {}
    duplicates: list[str] = []
    for kind in ORDER:
        by_name: dict[str, list[dict]] = {}
        for obj in state.get(kind, []):
            by_name.setdefault(name_of(kind, obj), []).append(obj)
        for d in desired.of(kind):
            matches = sorted(by_name.get(d.name, []), key=lambda o: o.get("id") or 0)
            if len(matches) > 1 and kind != "keys":
                ids = ", ".join(str(o.get("id")) for o in matches)
                duplicates.append(f"{d.label} exists {len(matches)} times (ids {ids})")
            if matches:
                # several "None" keys are harmless: the oldest is the project's own
                index[(kind, d.name)] = matches[0]
    if duplicates:
        raise SemaphoreError(
            f"duplicate names in Semaphore project {desired.project!r}: " + "; ".join(duplicates)
            + ". Delete or rename the extra objects, then seed again."
        )
    ids = {k: o["id"] for k, o in index.items()}
    actions: list[Action] = []
    unchanged = 0
    for d in desired.objects:
        cur = index.get((d.kind, d.name))
        if cur is None:
            if d.kind == "keys" and project_id is None:
                continue  # creating the project creates its "None" key
            actions.append(Action("create", d.kind, d.name))
        elif d.kind == "keys":
            unchanged += 1  # used as found; secrets cannot be compared
        else:
            diffs = compare(d, cur, ids)
            if diffs:
                actions.append(Action("update", d.kind, d.name, cur.get("id"), diffs))
            else:
                unchanged += 1
    for kind in PRUNE_ORDER:
        wanted = desired.names(kind)
        for obj in state.get(kind, []):
            n = name_of(kind, obj)
            if n not in wanted and _carries_prefix(n, desired.prefix):
                actions.append(Action("delete" if prune else "orphan", kind, n, obj.get("id")))
    return Plan(desired.project, project_id, actions, unchanged, index)


# --------------------------------------------------------------------------- applying


def _body(kind: str, base: dict, fields: dict[str, Any]) -> dict:
    body = {**base, **fields}
    if kind == "templates":
        env_id = body.get("environment_id")
        body["environment_ids"] = [env_id] if env_id else []
    # null and 0 references are dropped: the server treats an omitted field the same way
    return {k: v for k, v in body.items() if v is not None and not (k.endswith("_id") and v == 0)}


def apply_plan(client: SemaphoreClient, desired: DesiredState, plan: Plan, project_id: int) -> None:
    ids = {k: o["id"] for k, o in plan.index.items()}
    by_key = {(d.kind, d.name): d for d in desired.objects}
    changes = [a for a in plan.changes if a.kind != "project"]  # the project exists by now
    for done, action in enumerate(changes):
        try:
            if action.op == "delete":
                client.delete_object(action.kind, project_id, action.id)
                continue
            d = by_key[(action.kind, action.name)]
            fields = {k: _resolve(v, ids) for k, v in d.fields.items()}
            missing = [k for k, v in d.fields.items() if isinstance(v, Ref) and fields[k] is None]
            if missing:
                raise SemaphoreError(f"{d.label}: cannot resolve {', '.join(missing)} (was its target created?)")
            name_field = "title" if d.kind == "views" else "name"
            if action.op == "create":
                body = _body(d.kind, {name_field: d.name, **d.create_only}, fields)
                obj = client.create_object(d.kind, project_id, body)
                ids[(d.kind, d.name)] = obj["id"]
            else:
                current = plan.index[(d.kind, d.name)]
                base = {k: current[k] for k in REQUEST_FIELDS[d.kind] if k in current}
                client.update_object(d.kind, project_id, current["id"], _body(d.kind, base, fields))
        except SemaphoreError as e:
            raise type(e)(
                f"seeding stopped at {action.op} {LABEL[action.kind]} {action.name!r} after {done} of "
                f"{len(changes)} changes: {e.message}\nrun `ralf semaphore seed` again to converge"
            ) from None


def seed(
    client: SemaphoreClient,
    desired: DesiredState,
    *,
    check: bool = False,
    prune: bool = False,
    emit: Callable[[str], None] | None = None,
) -> SeedResult:
    """Make the project match ``desired`` (or, with ``check``, only report the drift)."""
    say = emit or (lambda line: None)
    start = len(client.sent)
    version = str(client.info().get("version", ""))
    project = client.find_project(desired.project)
    pre: list[Action] = []
    if project is None:
        pre.append(Action("create", "project", desired.project))
        if check:
            plan = make_plan(desired, {}, project_id=None, prune=prune)
            plan.actions[:0] = pre
            _emit_plan(say, plan, None, version)
            return SeedResult(desired.project, None, plan, check, prune, 0, version)
        project = client.create_project({"name": desired.project, "alert": False})
    pid = int(project["id"])
    plan = make_plan(desired, read_state(client, pid), project_id=pid, prune=prune)
    plan.actions[:0] = pre
    _emit_plan(say, plan, pid, version)
    pending = [a for a in plan.changes if a.kind != "project"]  # the project exists by now
    if not check and pending:
        say(f"applying {len(pending)} change(s) ...")
        apply_plan(client, desired, plan, pid)
    writes = sum(1 for method, _ in client.sent[start:] if method not in ("GET", "HEAD"))
    return SeedResult(desired.project, pid, plan, check, prune, writes, version)


def _emit_plan(say: Callable[[str], None], plan: Plan, pid: int | None, version: str) -> None:
    where = f"id {pid}" if pid is not None else "missing"
    say(f"Semaphore {version or '(unknown version)'}, project {plan.project!r} ({where})")
    for action in plan.actions:
        for line in action.render():
            say("  " + line)
    say(plan.summary())


def _show(value: Any) -> str:
    if value is _MISSING:
        return "(absent)"
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) or value != MASK else value
    return text if len(text) <= 120 else text[:117] + "..."
