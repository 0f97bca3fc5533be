"""Reconcile a Semaphore project with the desired state: read once, diff, plan, apply.

- Reads: the project list, then each collection (keys, repositories, inventory, environment, views,
  templates) exactly once, whatever the number of objects; a no-op reseed is 8 requests.
- Plan: ``create`` for missing objects; ``update`` with field-level diffs for drifted ones (JSON-string
  fields are compared as JSON, per key; secret-looking fields are masked; references are shown by
  name); ``adopt`` for an object with a desired name that lacks ralf's marker (made by the original
  seeder or by hand): it is brought to the desired state and marked. Objects that carry the marker
  (:mod:`ralf.semaphore.ownership`) but are no longer desired: ``delete`` with ``prune``, else
  ``orphan`` (drift, kept); one still used by a template that is not ralf's is ``kept`` and named.
  Unmarked objects the platform does not name are the user's and never touched.
  A desired name held by several server objects is an error naming their ids.
- Apply: creates and updates in dependency order, then deletes (templates before the environments
  and inventories they use). An update reads the object on its own first (2.10's lists leave out a
  template's vaults and survey variables) and PUTs it back whole with the managed fields overlaid, so
  everything ralf does not manage is kept. Templates carry ``environment_id`` and ``environment_ids``
  (2.16 reads the list; further variable groups the user added stay).
- ``writes`` counts only writes to Semaphore objects (not the login and token requests).
- A rerun after a failure mid-way converges: everything is recomputed from the server.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ralf.errors import SemaphoreError
from ralf.semaphore import ownership
from ralf.semaphore.api import KINDS, name_of
from ralf.semaphore.client import SemaphoreClient
from ralf.semaphore.desired import LABEL, NONE_KEY, ORDER, DesiredObject, DesiredState, Ref
from ralf.semaphore.errors import SemaphoreBadRequest
from ralf.serial import Record

SECRET_WORDS = ("password", "secret", "private_key", "passphrase", "token")
JSON_FIELDS = frozenset({"env", "json", "arguments"})
PRUNE_ORDER = ("templates", "environment", "inventory")  # users before what they use
MASK = "***"
# what a single GET returns but a PUT must not carry back (computed by the server, or secrets it never shows)
READ_ONLY = frozenset({"last_task", "tasks", "secrets", "login_password", "ssh", "created"})
# the template fields that reference another kind
TEMPLATE_REFS = {"environment": ("environment_id", "environment_ids"), "inventory": ("inventory_id",)}
CHANGE_OPS = ("create", "update", "adopt", "delete")


def _secret(name: str) -> bool:
    low = name.lower()
    return any(w in low for w in SECRET_WORDS)


@dataclass
class FieldDiff(Record):
    field: str
    old: Any
    new: Any

    def json_shape(self, data: dict[str, Any]) -> dict[str, Any]:
        # an absent value is null in JSON (the text shows "(absent)")
        return {**data, **{side: None for side in ("old", "new") if getattr(self, side) is _MISSING}}

    def render(self) -> str:
        return f"{self.field}: {_show(self.old)} → {_show(self.new)}"


@dataclass
class Action(Record):
    op: str  # create | update | adopt | delete | orphan | kept
    kind: str
    name: str
    id: int | None = None
    diffs: list[FieldDiff] = field(default_factory=list)
    note: str = ""  # kept: what still uses it

    @property
    def is_change(self) -> bool:
        return self.op in CHANGE_OPS

    json_fields = ("op", "kind=label", "name", "id", "diffs", "note")
    json_omit_empty = ("note",)

    @property
    def label(self) -> str:
        """The kind as messages name one object (``key``, ``template``, ...)."""
        return LABEL.get(self.kind, self.kind)

    def render(self) -> list[str]:
        sign = {"create": "+", "update": "~", "adopt": "~", "delete": "-", "orphan": "?", "kept": "!"}[self.op]
        where = f" (id {self.id})" if self.id is not None else ""
        head = f"{sign} {self.op} {self.label} {self.name!r}{where}"
        if self.op == "adopt":
            head += ": not marked as ralf's (made by the original seeder or by hand); taking it over"
        elif self.op == "orphan":
            head += ": ralf's, not in the platform any more (--prune deletes it)"
        elif self.op == "kept":
            head += f": ralf's, not in the platform any more, but {self.note}; kept"
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

    @property
    def drift(self) -> bool:
        """Something to do: changes, or ralf's own objects that --prune would delete."""
        return bool(self.changes or self.orphans)

    def summary(self) -> str:
        n = {op: sum(a.op == op for a in self.actions) for op in (*CHANGE_OPS, "orphan", "kept")}
        text = f"{n['create']} to create, {n['update']} to update, {n['delete']} to delete"
        if n["adopt"]:
            text += f", {n['adopt']} to adopt"
        if n["orphan"]:
            text += f", {n['orphan']} orphaned (kept; --prune deletes them)"
        if n["kept"]:
            text += f", {n['kept']} orphaned but in use (kept)"
        return text + f"; {self.unchanged} unchanged"


@dataclass
class SeedResult(Record):
    project: str
    project_id: int | None
    plan: Plan
    check: bool
    prune: bool
    writes: int = 0
    server_version: str = ""

    @property
    def drift(self) -> bool:
        return self.plan.drift

    @property
    def changed(self) -> bool:
        return self.writes > 0

    json_fields = ("project", "project_id", "server_version", "check", "prune", "drift", "changed", "writes",
                   "summary", "actions")

    def summary(self) -> str:
        return self.plan.summary()

    @property
    def actions(self) -> list[Action]:
        return self.plan.actions


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


def _ref_name(kind: str, object_id: Any, names: dict[tuple[str, int], str]) -> Any:
    """A referenced object as the user knows it: its name (its id when the server has no such object)."""
    if _norm("_id", object_id) is None:
        return None
    name = names.get((kind, object_id))
    return name if name is not None else f"id {object_id} (no such {LABEL[kind]})"


def compare(d: DesiredObject, current: dict, ids: dict[tuple[str, str], int],
            names: dict[tuple[str, int], str] | None = None) -> list[FieldDiff]:
    """Field-level differences between the desired object and the server's; references by name."""
    diffs: list[FieldDiff] = []
    for fname, want in d.fields.items():
        have = _server_value(d.kind, current, fname)
        if isinstance(want, Ref):
            if ids.get((want.kind, want.name)) is None or _norm(fname, have) != ids[(want.kind, want.name)]:
                diffs.append(FieldDiff(fname, _ref_name(want.kind, have, names or {}), want.name))
            continue
        if fname in JSON_FIELDS:
            diffs += _diff_json(fname, have, want)
        elif _norm(fname, have) != _norm(fname, want):
            if _secret(fname):
                diffs.append(FieldDiff(fname, MASK, MASK))
            else:
                diffs.append(_diff_text(fname, have, want))
    return diffs


def _template_uses(template: dict, kind: str, object_id: int) -> bool:
    for fname in TEMPLATE_REFS[kind]:
        value = template.get(fname)
        if value == object_id or (isinstance(value, list) and object_id in value):
            return True
    return False


def _unwanted(desired: DesiredState, state: dict[str, list[dict]], *, prune: bool) -> list[Action]:
    """ralf's own objects the platform no longer names: delete (with prune), orphan, or kept when in use.

    What stays after pruning are the desired templates (their references are replaced by desired ones)
    and the templates that are not ralf's; an environment or inventory one of the latter uses is kept.
    """
    actions: list[Action] = []
    wanted_templates = desired.names("templates")
    foreign = [t for t in state.get("templates", [])
               if name_of("templates", t) not in wanted_templates and not ownership.is_owned("templates", t)]
    for kind in PRUNE_ORDER:
        wanted = desired.names(kind)
        for obj in state.get(kind, []):
            n = name_of(kind, obj)
            if n in wanted or not ownership.is_owned(kind, obj):
                continue
            users = [name_of("templates", t) for t in foreign
                     if kind in TEMPLATE_REFS and _template_uses(t, kind, int(obj.get("id") or 0))]
            if users:
                note = "still used by template(s) " + ", ".join(repr(u) for u in sorted(users)) + " (not ralf's)"
                actions.append(Action("kept", kind, n, obj.get("id"), note=note))
            else:
                actions.append(Action("delete" if prune else "orphan", kind, n, obj.get("id")))
    return actions


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
                listed = ", ".join(str(o.get("id")) for o in matches)
                duplicates.append(f"{d.label} exists {len(matches)} times (ids {listed})")
            if matches:
                # several "None" keys are harmless: the oldest is the project's own
                index[(kind, d.name)] = matches[0]
    if duplicates:
        raise SemaphoreError(
            f"duplicate names in Semaphore project {desired.project!r}: " + "; ".join(duplicates)
            + ". Delete or rename the extra objects, then seed again."
        )
    ids = {k: o["id"] for k, o in index.items()}
    names = {(kind, int(o["id"])): name_of(kind, o) for kind in ORDER for o in state.get(kind, []) if o.get("id")}
    actions: list[Action] = []
    unchanged = 0
    for d in desired.objects:
        cur = index.get((d.kind, d.name))
        if cur is None:
            if d.kind == "keys" and d.name == NONE_KEY and project_id is None:
                continue  # creating the project creates its "None" key
            actions.append(Action("create", d.kind, d.name))
        elif d.kind == "keys":
            unchanged += 1  # used as found; secrets cannot be compared
        else:
            diffs = compare(d, cur, ids, names)
            if d.kind in ownership.MARKED_KINDS and not ownership.is_owned(d.kind, cur):
                actions.append(Action("adopt", d.kind, d.name, cur.get("id"), diffs))
            elif diffs:
                actions.append(Action("update", d.kind, d.name, cur.get("id"), diffs))
            else:
                unchanged += 1
    actions += _unwanted(desired, state, prune=prune)
    return Plan(desired.project, project_id, actions, unchanged, index)


# --------------------------------------------------------------------------- applying


def _drop_empty(body: dict) -> dict:
    # null and 0 references are dropped: the server treats an omitted field the same way
    return {k: v for k, v in body.items() if v is not None and not (k.endswith("_id") and v == 0)}


def create_body(kind: str, name: str, create_only: dict, fields: dict[str, Any]) -> dict:
    # SecretValues stay as they are: the client reads them only when it validates and sends the body
    body = {KINDS[kind].name_field: name, **create_only, **fields}
    if kind == "templates":
        env_id = body.get("environment_id")
        body["environment_ids"] = [env_id] if env_id else []
    return _drop_empty(body)


def update_body(kind: str, current: dict, fields: dict[str, Any]) -> dict:
    """The server's whole object with the managed fields overlaid (its read-only fields left out)."""
    body = {k: v for k, v in current.items() if k not in READ_ONLY}
    body.update(fields)
    if kind == "templates" and "environment_id" in fields:
        wanted = fields["environment_id"]
        old_first = _server_value(kind, current, "environment_id")
        others = [e for e in current.get("environment_ids") or [] if e not in (old_first, wanted)]
        body["environment_ids"] = ([wanted] if wanted else []) + others
    return _drop_empty(body)


def _in_use(e: SemaphoreError) -> bool:
    return isinstance(e, SemaphoreBadRequest) and "in use" in e.message


def apply_plan(client: SemaphoreClient, desired: DesiredState, plan: Plan, project_id: int,
               say: Callable[[str], None] = lambda line: None) -> None:
    ids = {k: o["id"] for k, o in plan.index.items()}
    by_key = {(d.kind, d.name): d for d in desired.objects}
    changes = [a for a in plan.changes if a.kind != "project"]  # the project exists by now
    for done, action in enumerate(changes):
        try:
            if action.op == "delete":
                assert action.id is not None  # deletes are planned from objects the server listed
                try:
                    client.delete_object(action.kind, project_id, action.id)
                except SemaphoreError as e:
                    if not _in_use(e):
                        raise
                    # something ralf cannot see in the lists uses it: keep it and say so, as for templates
                    action.op, action.note = "kept", "the server says it is in use"
                    say("  " + action.render()[0])
                continue
            d = by_key[(action.kind, action.name)]
            fields = {k: _resolve(v, ids) for k, v in d.fields.items()}
            missing = [k for k, v in d.fields.items() if isinstance(v, Ref) and fields[k] is None]
            if missing:
                raise SemaphoreError(f"{d.label}: cannot resolve {', '.join(missing)} (was its target created?)")
            if action.op == "create":
                obj = client.create_object(d.kind, project_id, create_body(d.kind, d.name, d.create_only, fields))
                ids[(d.kind, d.name)] = obj["id"]
            else:
                # read it on its own: 2.10's lists leave out a template's vaults and survey variables
                assert action.id is not None  # updates are planned from objects the server listed
                current = client.get_object(d.kind, project_id, action.id)
                client.update_object(d.kind, project_id, action.id, update_body(d.kind, current, fields))
        except SemaphoreError as e:
            raise type(e)(
                f"seeding stopped at {action.op} {LABEL[action.kind]} {action.name!r} after {done} of "
                f"{len(changes)} changes: {e.message}\nrun `ralf semaphore seed` again to converge"
            ) from None


def object_writes(sent: list[tuple[str, str]]) -> int:
    """Writes to the project and its objects (logging in and minting a token are not changes)."""
    return sum(1 for method, path in sent if method not in ("GET", "HEAD") and path.startswith("/project"))


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
        apply_plan(client, desired, plan, pid, say)
    return SeedResult(desired.project, pid, plan, check, prune, object_writes(client.sent[start:]), version)


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
