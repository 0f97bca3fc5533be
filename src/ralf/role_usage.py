"""Which services use a shared Ansible role or the OpenTofu module, read from the playbooks, roles and stacks.

A service uses a role when one of its config stacks' ``playbook.yml`` lists it, or when a role it
uses pulls it in (``include_role`` / ``import_role`` in its tasks, ``dependencies`` in its meta),
transitively. Every ``*-lxc`` stack calls the shared module under ``tofu/``, and the platform's
network and Proxmox sections reach every CT through it. This is what pattern B deploys: a change to
``ansible/roles/nginx_tls/`` means the Apply of every service whose configuration includes it.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import yaml

INCLUDE_KEYS = ("include_role", "import_role", "ansible.builtin.include_role", "ansible.builtin.import_role")
# platform sections every CT is made from (through the OpenTofu module or the LXC backend)
CT_SECTIONS = ("network", "proxmox", "lxc_host")


def _load(path: Path):
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return None


def _role_name(entry) -> str | None:
    name = entry.get("role") or entry.get("name") if isinstance(entry, dict) else entry
    return name if isinstance(name, str) and "{{" not in name else None


def playbook_roles(playbook: Path) -> list[str]:
    """The roles a playbook's plays list, in order."""
    plays = _load(playbook)
    out: list[str] = []
    for play in plays if isinstance(plays, list) else []:
        for r in (play or {}).get("roles", []) or [] if isinstance(play, dict) else []:
            name = _role_name(r)
            if name and name not in out:
                out.append(name)
    return out


def _included(tasks) -> list[str]:
    """Role names pulled in by a task list (blocks included)."""
    out: list[str] = []
    for t in tasks if isinstance(tasks, list) else []:
        if not isinstance(t, dict):
            continue
        for key in INCLUDE_KEYS:
            if key in t:
                name = _role_name(t[key])
                if name:
                    out.append(name)
        for key in ("block", "rescue", "always"):
            out += _included(t.get(key))
    return out


@lru_cache(maxsize=256)
def _direct(roles_dir: Path, role: str) -> tuple[str, ...]:
    base = roles_dir / role
    names: list[str] = []
    for f in sorted((base / "tasks").glob("*.yml")) if (base / "tasks").is_dir() else []:
        names += _included(_load(f))
    meta = _load(base / "meta" / "main.yml")
    for dep in (meta or {}).get("dependencies", []) or [] if isinstance(meta, dict) else []:
        name = _role_name(dep)
        if name:
            names.append(name)
    return tuple(dict.fromkeys(n for n in names if n != role))


def closure(roles_dir: Path, roles: list[str]) -> set[str]:
    """The roles and every role they pull in, transitively."""
    seen: set[str] = set()
    todo = list(roles)
    while todo:
        r = todo.pop()
        if r in seen:
            continue
        seen.add(r)
        todo += _direct(roles_dir, r)
    return seen


def roles_by_service(catalog) -> dict[str, set[str]]:
    """service -> every role its config stacks run (directly or pulled in)."""
    p = catalog.platform
    repo = p.source.parent if p.source is not None else Path(".")
    roles_dir = repo / "ansible" / "roles"
    out: dict[str, set[str]] = {}
    for st in catalog.stacks:
        if st.type == "ansible":
            roles = playbook_roles(p.stacks_path / st.name / "playbook.yml")
            out.setdefault(st.service, set()).update(closure(roles_dir, roles))
    return out


def services_using(catalog, path: str) -> tuple[list[str], str] | None:
    """The services a shared path is used by, and why; None when the path is no role or module ralf can trace."""
    parts = path.split("/")
    if len(parts) >= 3 and parts[0] == "ansible" and parts[1] == "roles":
        role = parts[2]
        users = [s for s, roles in roles_by_service(catalog).items() if role in roles]
        return _in_order(catalog, users), f"uses the role {role}"
    if parts[0] == "tofu":
        return module_users(catalog), "its CT comes from the OpenTofu module"
    return None


def module_users(catalog) -> list[str]:
    return _in_order(catalog, {st.service for st in catalog.stacks if st.type in ("tofu", "lxc")})


def _in_order(catalog, services) -> list[str]:
    wanted = set(services)
    return [s for s in catalog.platform.services if s in wanted]
