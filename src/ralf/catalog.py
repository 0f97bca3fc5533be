"""The catalog: everything derived from a validated platform, never written twice.

- stacks in execution order with their type (tofu / ansible), service and group;
- smoke targets (each service, each group, ``phase1``, ``platform``) and the services they cover;
- Semaphore templates (the runbook's names) with their meaning: the ``ONLY_STACKS`` list and
  ``AUTO_APPLY`` for apply templates, the smoke target for smoke templates, and the environment
  each one uses;
- the single-service → group-smoke map.

Execution order: the Phase 1 group's stacks first, in the order its services are listed (MinIO
creates the state backend, so it goes before PostgreSQL), then every other stack by name, as the
original runner sorted them.
"""

from functools import cached_property
from typing import TYPE_CHECKING, Literal, NamedTuple

from ralf.serial import record

if TYPE_CHECKING:  # the catalog only reads a Platform: whoever built one has imported the models
    from ralf.model import Platform

PLATFORM_TARGET = "platform"


# The records `ralf plan` makes are NamedTuples, not Record dataclasses: defining a frozen dataclass costs ~1 ms
# of start-up (its methods are generated and compiled), a NamedTuple a tenth of that. This module (like the planner
# and settings) has no `from __future__ import annotations`: with it, typing compiles each NamedTuple field's
# annotation text at import (a ForwardRef), five times the cost of the NamedTuple itself.


class Stack(NamedTuple):
    name: str
    type: Literal["tofu", "ansible", "lxc"]  # lxc: a *-lxc stack realised on the platform's local LXC host
    service: str
    group: str
    role: Literal["infra", "config"]  # tofu creates the CT, ansible configures it
    local_state: bool = False

    def to_dict(self) -> dict:
        return record(self)


class Template(NamedTuple):
    """A Semaphore template as the runbook names it, with what it does."""

    name: str
    kind: Literal["apply", "smoke"]
    scope: str  # "group:vault", "service:n8n", "phase1", "all", "platform"
    environment: str
    stacks: tuple[str, ...] = ()
    target: str | None = None
    auto_apply: bool = True
    start_at: str = "000"
    description: str = ""

    def to_dict(self) -> dict:
        data = record(self, ("name", "kind", "scope", "environment", "stacks", "auto_apply", "start_at", "target",
                             "description"))
        for key in ("target",) if self.kind == "apply" else ("stacks", "auto_apply", "start_at"):
            del data[key]  # an Apply runs stacks, a Smoke checks a target
        return data

    @property
    def env(self) -> dict[str, str]:
        """The Semaphore environment's variables (strings, as Semaphore passes them)."""
        if self.kind == "smoke":
            return {}
        return {
            "AUTO_APPLY": "1" if self.auto_apply else "0",
            "START_AT": self.start_at,
            "ONLY_STACKS": " ".join(self.stacks),
        }


class Target(NamedTuple):
    name: str
    kind: Literal["service", "group", "platform"]
    services: tuple[str, ...]

    def to_dict(self) -> dict:
        return record(self)


class Catalog:
    def __init__(self, platform: "Platform") -> None:
        self.platform = platform

    # ------------------------------------------------------------------ groups and services

    @cached_property
    def group_names(self) -> list[str]:
        return [g.name for g in self.platform.groups]

    @cached_property
    def phase1(self) -> str:
        return self.platform.phase1_group.name

    @cached_property
    def deploy_groups(self) -> list[str]:
        """Groups deployed through Semaphore after Phase 1, in runbook order."""
        return [g for g in self.group_names if g != self.phase1]

    @cached_property
    def _services_by_group(self) -> dict[str, list[str]]:
        by: dict[str, list[str]] = {}
        for n, s in self.platform.services.items():
            by.setdefault(s.group, []).append(n)
        return by

    def services_of(self, group: str) -> list[str]:
        return list(self._services_by_group.get(group, ()))

    def group_of(self, service: str) -> str:
        return self.platform.services[service].group

    # ------------------------------------------------------------------ stacks

    @cached_property
    def stacks(self) -> list[Stack]:
        local = set(self.platform.state_backend.local_state_stacks) if self.platform.state_backend else set()
        first: list[Stack] = []
        rest: list[Stack] = []
        for sname, svc in self.platform.services.items():
            for ref in svc.stack_refs:
                st = Stack(
                    name=ref.name,
                    type="lxc" if ref.type == "tofu" and self.platform.lxc_host is not None else ref.type,
                    service=sname,
                    group=svc.group,
                    role="infra" if ref.type == "tofu" else "config",
                    local_state=ref.name in local,
                )
                (first if svc.group == self.phase1 else rest).append(st)
        return first + sorted(rest, key=lambda s: s.name)

    @cached_property
    def stack_index(self) -> dict[str, Stack]:
        return {s.name: s for s in self.stacks}

    @cached_property
    def _stack_position(self) -> dict[str, int]:
        return {s.name: i for i, s in enumerate(self.stacks)}

    @cached_property
    def _stacks_by_service(self) -> dict[str, list[Stack]]:
        by: dict[str, list[Stack]] = {}
        for s in self.stacks:
            by.setdefault(s.service, []).append(s)
        return by

    def ordered(self, stacks, role: str | None = None) -> tuple[str, ...]:
        """The given stack objects' names in execution order, optionally one role only (in time linear in
        the stacks given, not in the platform's: each per-service template asks)."""
        pos = self._stack_position
        wanted = {s.name for s in stacks if (role is None or s.role == role) and s.name in pos}
        return tuple(sorted(wanted, key=pos.__getitem__))

    def stacks_of_services(self, services, role: str | None = None) -> tuple[str, ...]:
        by = self._stacks_by_service
        return self.ordered([s for svc in dict.fromkeys(services) for s in by.get(svc, ())], role)

    # ------------------------------------------------------------------ smoke targets

    @cached_property
    def targets(self) -> dict[str, Target]:
        out: dict[str, Target] = {}
        for sname in self.platform.services:
            out[sname] = Target(sname, "service", (sname,))
        for g in self.group_names:
            out[g] = Target(g, "group", tuple(self.services_of(g)))
        out[PLATFORM_TARGET] = Target(
            PLATFORM_TARGET, "platform", tuple(s for g in self.group_names for s in self.services_of(g))
        )
        return out

    def target(self, name: str) -> Target:
        from ralf.errors import UsageError

        try:
            return self.targets[name]
        except KeyError:
            raise UsageError(f"unknown target {name!r}; valid targets: {', '.join(self.targets)}") from None

    # ------------------------------------------------------------------ templates

    def template_name(self, word: str, what: str) -> str:
        prefix = self.platform.semaphore.template_prefix if self.platform.semaphore else "RALF"
        return f"{prefix} {word} {what}".strip()

    def _env(self, label: str) -> str:
        return self.template_name(label, "Env")

    @cached_property
    def templates(self) -> list[Template]:
        p = self.platform
        out: list[Template] = []

        def add(t: Template) -> None:
            if t.kind == "apply" and not t.stacks:
                return  # e.g. a lab group without infra stacks: no empty template
            out.append(t)

        ph = p.phase1_group
        ph_services = self.services_of(ph.name)
        add(Template(self.template_name(ph.word, "Infra Apply"), "apply", "phase1", self._env(f"{ph.word} Infra"),
                     self.stacks_of_services(ph_services, "infra"), description="Phase 1 containers"))
        add(Template(self.template_name(ph.word, "Config Apply"), "apply", "phase1", self._env(f"{ph.word} Config"),
                     self.stacks_of_services(ph_services, "config"),
                     description="Phase 1 configuration; refreshes ralf and the repository on the Semaphore host"))
        add(Template(self.template_name(ph.word, "Smoke"), "smoke", "phase1", self._env("Smoke"), target=ph.name,
                     description="smoke checks of Phase 1"))
        all_services = list(p.services)
        add(Template(self.template_name("All", "Infra Apply"), "apply", "all", self._env("All Infra"),
                     self.stacks_of_services(all_services, "infra"), description="every container"))
        add(Template(self.template_name("All", "Config Apply"), "apply", "all", self._env("All Config"),
                     self.stacks_of_services(all_services, "config"), description="every configuration"))
        add(Template(self.template_name("Full Platform", "Apply"), "apply", "platform", self._env("All Apply"),
                     self.stacks_of_services(all_services), description="every stack in execution order"))
        add(Template(self.template_name("Full Platform", "Smoke"), "smoke", "platform", self._env("Smoke"),
                     target=PLATFORM_TARGET, description="smoke checks of every service"))
        for gname in self.deploy_groups:
            g = p.group(gname)
            svcs = self.services_of(gname)
            scope = f"group:{gname}"
            add(Template(self.template_name(g.word, "Apply"), "apply", scope, self._env(g.word),
                         self.stacks_of_services(svcs), description=f"group {gname}: {', '.join(svcs)}"))
            add(Template(self.template_name(g.word, "Smoke"), "smoke", scope, self._env("Smoke"), target=gname,
                         description=f"smoke checks of group {gname}"))
            add(Template(self.template_name(g.word, "Infra Apply"), "apply", scope, self._env(f"{g.word} Infra"),
                         self.stacks_of_services(svcs, "infra"), description=f"containers of group {gname}"))
            add(Template(self.template_name(g.word, "Config Apply"), "apply", scope, self._env(f"{g.word} Config"),
                         self.stacks_of_services(svcs, "config"), description=f"configuration of group {gname}"))
        for gname in self.deploy_groups:
            for sname in self.services_of(gname):
                s = p.services[sname]
                add(Template(self.template_name(s.word, "Apply"), "apply", f"service:{sname}", self._env(f"{s.word} Only"),
                             self.stacks_of_services([sname]), description=f"only {sname}"))
        # Cleanroom re-converges Phase 1 pair by pair with a smoke after each: one template per pair.
        for sname in ph_services:
            s = p.services[sname]
            add(Template(self.template_name(s.word, "Apply"), "apply", f"service:{sname}", self._env(f"{s.word} Only"),
                         self.stacks_of_services([sname]), description=f"only {sname} (cleanroom pair)"))
            add(Template(self.template_name(s.word, "Smoke"), "smoke", f"service:{sname}", self._env("Smoke"),
                         target=sname, description=f"smoke checks of {sname} (cleanroom)"))
        return out

    @cached_property
    def template_index(self) -> dict[str, Template]:
        return {t.name: t for t in self.templates}

    def template(self, name: str) -> Template:
        return self.template_index[name]

    # names the planner and executor use
    def group_apply(self, group: str) -> str:
        return self.template_name(self.platform.group(group).word, "Apply")

    def group_smoke(self, group: str) -> str:
        return self.template_name(self.platform.group(group).word, "Smoke")

    def group_config_apply(self, group: str) -> str:
        return self.template_name(self.platform.group(group).word, "Config Apply")

    def service_apply(self, service: str) -> str:
        return self.template_name(self.platform.services[service].word, "Apply")

    def service_smoke(self, service: str) -> str:
        return self.template_name(self.platform.services[service].word, "Smoke")

    @cached_property
    def service_to_group_smoke(self) -> dict[str, str]:
        """Single service → the group smoke the runbook runs after it (services outside Phase 1)."""
        return {s: self.group_smoke(g) for g in self.deploy_groups for s in self.services_of(g)}

    @cached_property
    def environments(self) -> dict[str, dict[str, str]]:
        """Semaphore environment name → its env variables, one per distinct selection."""
        envs: dict[str, dict[str, str]] = {}
        for t in self.templates:
            envs.setdefault(t.environment, t.env)
        return envs


def build_catalog(platform: "Platform") -> "Catalog":
    return Catalog(platform)
