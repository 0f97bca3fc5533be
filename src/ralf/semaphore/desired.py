"""The Semaphore project ralf wants, derived from the catalog: names, managed fields and references.

Objects (in the order they must exist):

- the access key ``None`` (type ``none``): the project's auto-created key, found by name — never
  assumed to have id 1; the repository (``file://``/local or public URL) uses it;
- when the repository is the platform's mirror in Gitea (``mirror``; Gitea asks for a sign-in), a
  ``login_password`` key (``mirror.semaphore_key``) holding Gitea's user and password, read from the
  secrets directory only when the key is created (secrets cannot be compared; it is never shown);
- the repository (``semaphore.repository``; its URL defaults to the mirror's) and the static
  inventory (``ralf.inventory.inventory_ini``);
- one environment per distinct stack selection (``Catalog.environments``): ``json`` ``"{}"`` and ``env``
  the JSON string of ``AUTO_APPLY``/``START_AT``/``ONLY_STACKS`` (strings);
- templates, environments and the inventory carry ralf's ownership marker (:mod:`ralf.semaphore.ownership`);
- a view titled with the template prefix, grouping the templates (optional);
- the templates (``Catalog.templates``): app ``bash`` running :data:`RUNNER` from the repository
  checkout, with the command line as the only argument: ``semaphore.apply_command`` for Apply,
  ``semaphore.smoke_command`` with ``{target}`` filled in for Smoke.

How a bash template runs a command line: Semaphore runs ``bash <playbook> <arguments...>`` in its
checkout of the repository, so the playbook is :data:`RUNNER` (``src/ralf/semaphore/semaphore-run.sh``,
part of this repository) and the arguments are ``["<command line>"]``; the script ``exec``s the line
with ``bash -c``. Changing the command in the platform file changes only the templates' arguments.

References between objects are :class:`Ref` (kind + name); the reconciler resolves them to ids.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ralf.catalog import Catalog
from ralf.errors import PlatformError
from ralf.inventory import inventory_ini
from ralf.semaphore import ownership
from ralf.semaphore.api import KINDS, SecretValue

RUNNER = "src/ralf/semaphore/semaphore-run.sh"
NONE_KEY = "None"
ORDER = tuple(KINDS)  # the order objects must exist in
LABEL = {kind: k.label for kind, k in KINDS.items()}


@dataclass(frozen=True)
class Ref:
    """A reference to another desired object by kind and name (resolved to its id on the server)."""

    kind: str
    name: str


@dataclass
class DesiredObject:
    kind: str
    name: str
    fields: dict[str, Any]  # managed fields, compared with the server; Ref values are resolved to ids
    create_only: dict[str, Any] = field(default_factory=dict)  # set on create, then left to the user

    @property
    def label(self) -> str:
        return f"{LABEL[self.kind]} {self.name!r}"


@dataclass
class DesiredState:
    project: str
    prefix: str
    objects: list[DesiredObject]

    def of(self, kind: str) -> list[DesiredObject]:
        return [o for o in self.objects if o.kind == kind]

    def names(self, kind: str) -> set[str]:
        return {o.name for o in self.of(kind)}

    @property
    def templates(self) -> list[DesiredObject]:
        return self.of("templates")


def command_for(catalog: Catalog, template) -> str:
    sem = catalog.platform.semaphore
    assert sem is not None  # templates exist only for a platform with a semaphore section
    if template.kind == "smoke":
        return sem.smoke_command.format(target=template.target)
    return sem.apply_command


def desired_state(catalog: Catalog, *, view: bool = True) -> DesiredState:
    """Everything the project must hold for ``catalog``'s platform."""
    p = catalog.platform
    sem = p.semaphore
    if sem is None:
        raise PlatformError(["semaphore: the platform file has no semaphore section, so there is nothing to seed"])
    objs: list[DesiredObject] = [DesiredObject("keys", NONE_KEY, {"type": "none"})]
    repo = sem.repository
    git_url = p.semaphore_git_url
    key = NONE_KEY
    if p.mirror is not None and git_url == p.mirror.clone_url:
        key = p.mirror.semaphore_key
        objs.append(DesiredObject("keys", key, {"type": "login_password"},
                                  create_only={"login_password": SecretValue(lambda: _gitea_login(p))}))
    objs.append(DesiredObject("repositories", repo.name, {
        "git_url": git_url,
        "git_branch": repo.branch,
        "ssh_key_id": Ref("keys", key),
    }))
    objs.append(DesiredObject("inventory", sem.inventory_name,
                              {"type": "static", "inventory": ownership.inventory_text(inventory_ini(p))}))
    for name, env in catalog.environments.items():
        objs.append(DesiredObject("environment", name,
                                  {"json": "{}", "env": json.dumps(ownership.environment_env(env))}))
    view_title = sem.template_prefix or "RALF"
    if view:
        objs.append(DesiredObject("views", view_title, {}, create_only={"position": 1}))
    for t in catalog.templates:
        fields: dict[str, Any] = {
            "app": "bash",
            "playbook": RUNNER,
            "arguments": json.dumps([command_for(catalog, t)]),
            "repository_id": Ref("repositories", repo.name),
            "inventory_id": Ref("inventory", sem.inventory_name),
            "environment_id": Ref("environment", t.environment),
            "description": ownership.template_description(t.description),
        }
        if view:
            fields["view_id"] = Ref("views", view_title)
        objs.append(DesiredObject("templates", t.name, fields))
    return DesiredState(project=sem.project, prefix=sem.template_prefix, objects=objs)


def _gitea_login(platform: Any) -> dict[str, str]:
    from ralf.gitea.api import credentials_from

    user, password = credentials_from(platform)
    return {"login": user, "password": password}
