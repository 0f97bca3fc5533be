"""The runbook planner: a request becomes an ordered list of Semaphore template steps.

Requests (all derived from the catalog, nothing hard-coded about the user's services):

- nothing: the runbook's standard order, each group after Phase 1: Apply then Smoke;
- a group: its Apply then its Smoke (the Phase 1 group: Phase1 Config Apply, Phase1 Smoke);
- a service outside Phase 1: its single-service Apply, then its group's Smoke (pattern A);
- a Phase 1 service: ``Phase1 Config Apply`` then ``Phase1 Smoke``;
- ``platform``: Full Platform Apply, Full Platform Smoke; a template name: that template alone;
- changed paths: pattern A (only service-owned paths) or pattern B (shared base changed);
- ``cleanroom``: Phase 1 pair by pair with a smoke after each, then Phase1 Smoke and the group smokes.

Planning never runs anything and never touches the network.
"""

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Literal, NamedTuple

from ralf.catalog import PLATFORM_TARGET, Catalog
from ralf.errors import UsageError
from ralf.serial import Record, record

if TYPE_CHECKING:  # a plan without --changed never needs git (ralf.changes imports subprocess)
    from ralf.changes import ChangeSet

CLEANROOM = "cleanroom"


class Step(NamedTuple):  # a NamedTuple like the catalog's records (see there)
    template: str
    kind: Literal["apply", "smoke"]
    stacks: tuple[str, ...] = ()
    target: str | None = None
    reason: str = ""

    def to_dict(self) -> dict:
        data = record(self)  # template, kind, stacks, target, reason
        del data["target" if self.kind == "apply" else "stacks"]
        return data


class Plan(Record):
    """The steps for a request. A plain class, not a dataclass: defining one costs `ralf plan` ~1 ms of start-up."""

    json_fields = ("pattern", "request", "message", "needs_confirmation", "fingerprint", "steps")

    def __init__(self, pattern: str, steps: list[Step] | None = None, request: str | None = None, message: str = "",
                 changes: "ChangeSet | None" = None) -> None:
        self.pattern = pattern  # standard | group | service | phase1 | platform | template | A | B | none | cleanroom
        self.steps: list[Step] = [] if steps is None else steps
        self.request = request
        self.message = message
        self.changes = changes

    def _values(self) -> tuple:
        return self.pattern, self.steps, self.request, self.message, self.changes

    def __eq__(self, other: object) -> bool:
        return other.__class__ is self.__class__ and other._values() == self._values()

    __hash__ = None  # type: ignore[assignment]  # mutable, as a dataclass with eq

    def __repr__(self) -> str:
        return f"Plan{self._values()!r}"

    @property
    def needs_confirmation(self) -> bool:
        """Pattern B and cleanroom change the shared base: a person must agree first."""
        return self.pattern in ("B", CLEANROOM)

    def fingerprint(self) -> str:
        """A stable hash of what the steps do, to refuse resuming a plan that has changed since."""
        import json  # here: `ralf plan` prints no fingerprint, and importing json costs it ~1 ms

        body = [[s.template, s.kind, list(s.stacks), s.target] for s in self.steps]
        return hashlib.sha256(json.dumps(body, separators=(",", ":")).encode()).hexdigest()[:16]


class _Builder:
    def __init__(self, catalog: Catalog) -> None:
        self.c = catalog
        self.steps: list[Step] = []

    def add(self, template: str, reason: str) -> None:
        if any(s.template == template for s in self.steps):
            return
        t = self.c.template(template)
        self.steps.append(Step(t.name, t.kind, t.stacks, t.target, reason))


def build_plan(
    catalog: Catalog,
    request: str | None = None,
    *,
    changed: list[str] | None = None,
    changed_from: str | None = None,
    repo_root: str | Path | None = None,
) -> Plan:
    """Turn a request into a :class:`Plan`. Raises :class:`UsageError` for an unknown request."""
    if changed is not None or changed_from is not None:
        if request:
            raise UsageError("give either a request or --changed/--changed-from, not both")
        paths = list(changed or [])
        diff = None
        if changed_from is not None:
            root = repo_root or _default_repo_root(catalog)
            from ralf.changes import git_changed_files, git_platform_diff

            paths += git_changed_files(changed_from, root)
            diff = git_platform_diff(catalog, changed_from, root)
        return _plan_changes(catalog, paths, request=f"changed from {changed_from}" if changed_from else "changed",
                             platform_diff=diff)
    c = catalog
    b = _Builder(c)
    if request is None or request == "standard":
        for g in c.deploy_groups:
            b.add(c.group_apply(g), f"standard order: group {g}")
            b.add(c.group_smoke(g), f"standard order: check group {g}")
        return Plan("standard", b.steps, request, "the runbook's standard order from Phase 1 on")
    if request == CLEANROOM:
        return _plan_cleanroom(c)
    if request == PLATFORM_TARGET:
        full_apply = c.template_name("Full Platform", "Apply")
        b.add(full_apply, "the whole platform, every stack in execution order")
        b.add(c.template_name("Full Platform", "Smoke"), "check every service")
        return Plan("platform", b.steps, request, "the whole platform")
    if request in c.group_names:
        if request == c.phase1:
            _phase1(b, f"group {request}")
            return Plan("phase1", b.steps, request, "Phase 1 re-converged through its Config Apply")
        b.add(c.group_apply(request), f"group {request} requested")
        b.add(c.group_smoke(request), f"check group {request}")
        return Plan("group", b.steps, request, f"group {request}")
    if request in c.platform.services:
        group = c.group_of(request)
        if group == c.phase1:
            _phase1(b, f"{request} is a Phase 1 service")
            return Plan("phase1", b.steps, request, f"{request} is part of Phase 1: its Config Apply refreshes it")
        b.add(c.service_apply(request), f"{request} requested → {c.service_apply(request)}")
        b.add(c.group_smoke(group), f"{request} belongs to group {group} → {c.group_smoke(group)}")
        return Plan("service", b.steps, request, f"pattern A for {request}")
    if request in c.template_index:
        b.add(request, "template requested by name")
        return Plan("template", b.steps, request, f"only {request}")
    valid = ["(nothing: standard order)", *c.group_names, *c.platform.services, PLATFORM_TARGET, CLEANROOM]
    raise UsageError(f"unknown request {request!r}; expected one of: {', '.join(valid)} or a template name")


def _default_repo_root(catalog: Catalog) -> Path:
    src = catalog.platform.source
    return src.parent if src is not None else Path(".")


def _phase1(b: _Builder, why: str) -> None:
    c = b.c
    ph = c.platform.phase1_group
    b.add(c.template_name(ph.word, "Config Apply"), f"{why} → refresh Phase 1 (tools and repository on the Semaphore host)")
    b.add(c.template_name(ph.word, "Smoke"), "check Phase 1")


def _plan_cleanroom(c: Catalog) -> Plan:
    b = _Builder(c)
    for s in c.services_of(c.phase1):
        b.add(c.service_apply(s), f"cleanroom: re-converge {s}")
        b.add(c.service_smoke(s), f"cleanroom: check {s} before the next pair")
    b.add(c.template_name(c.platform.phase1_group.word, "Smoke"), "cleanroom: full Phase 1 smoke")
    for g in c.deploy_groups:
        b.add(c.group_smoke(g), f"cleanroom: check group {g} on the re-converged base")
    return Plan(CLEANROOM, b.steps, CLEANROOM, "Phase 1 pair by pair, each followed by its smoke")


def _users_of_shared(c: Catalog, cs) -> dict[str, str]:
    """Pattern B: every service that uses a changed shared role or module (or the CT settings) → why."""
    from ralf.role_usage import CT_SECTIONS, module_users, services_using

    out: dict[str, str] = {}
    for path, _rule in cs.shared:
        if ": " in path:  # a section of the platform file
            section = path.split(": ", 1)[1]
            found = (module_users(c), f"its CT is made from the {section} settings") if section in CT_SECTIONS else None
        else:
            found = services_using(c, path)
        if found is None:
            continue
        users, why = found
        for s in users:
            out.setdefault(s, f"{s}: {why} ({path}) → {c.service_apply(s)}")
    return out


def _ordered_services(c: Catalog, names) -> list[str]:
    wanted = set(names)
    return [s for g in c.group_names for s in c.services_of(g) if s in wanted]


def _plan_changes(c: Catalog, paths: list[str], request: str, platform_diff=None) -> Plan:
    from ralf.changes import classify_paths

    cs = classify_paths(c, paths, platform_diff)
    b = _Builder(c)
    if not cs.deployable:
        what = ", ".join(cs.ignored) if cs.ignored else "no files"
        msg = f"nothing deployable changed ({what}); no step to run"
        return Plan("none", [], request, msg, cs)
    reasons = {s: f"{s} changed ({paths[0]}) → {c.service_apply(s)}" for s, paths in cs.services.items()}
    for s, why in _users_of_shared(c, cs).items():
        reasons.setdefault(s, why)
    touched = _ordered_services(c, reasons)
    phase1_touched = [s for s in touched if c.group_of(s) == c.phase1 and s in cs.services]
    others = [s for s in touched if c.group_of(s) != c.phase1]
    smoke_groups: list[str] = []
    if cs.shared_base_changed:
        first = (cs.shared[0][0] if cs.shared else cs.unknown[0])
        _phase1(b, f"shared base changed ({first})")
        if cs.smokes_all:
            found = next((f"{p}: {r.why}" if r.why else p for p, r in cs.shared if r.smokes == "all"), None)
            why = found or f"{cs.unknown[0]} (not owned by a service, treated as shared base)"
            smoke_groups = list(c.deploy_groups)
            all_reason = f"every group is affected ({why})"
        pattern = "B"
    else:
        pattern = "A"
        if phase1_touched:
            _phase1(b, f"{', '.join(phase1_touched)} changed ({cs.services[phase1_touched[0]][0]})")
    for s in others:
        b.add(c.service_apply(s), reasons[s])
    for g in c.deploy_groups:
        if g in smoke_groups:
            b.add(c.group_smoke(g), all_reason)
        elif any(c.group_of(s) == g for s in others):
            b.add(c.group_smoke(g), f"group {g} was touched → {c.group_smoke(g)}")
    msg = {
        "A": "pattern A: only service-owned paths changed",
        "B": "pattern B: the shared base changed; Phase 1 Config Apply refreshes the tools on the Semaphore host",
    }[pattern]
    return Plan(pattern, b.steps, request, msg, cs)
