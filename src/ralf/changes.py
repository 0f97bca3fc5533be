"""Which deployment a set of changed repository paths calls for.

A changed path is, in this order: ignored (docs, tests), owned by a service (its stacks and role,
from ``repository.service_paths`` and ``services.<name>.paths``), part of the shared base
(``repository.shared_base``: smoke code, runner, seeder, shared roles), or unknown. Unknown paths
are treated as shared base touching every group: deploying too much is safer than too little.
"""

from __future__ import annotations

import fnmatch
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from ralf.errors import ExternalToolError, UsageError
from ralf.model import SharedPath


@dataclass
class ChangeSet:
    services: dict[str, list[str]] = field(default_factory=dict)  # service -> its changed paths
    shared: list[tuple[str, SharedPath]] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)

    @property
    def deployable(self) -> bool:
        return bool(self.services or self.shared or self.unknown)

    @property
    def shared_base_changed(self) -> bool:
        return bool(self.shared or self.unknown)

    @property
    def smokes_all(self) -> bool:
        return bool(self.unknown) or any(rule.smokes == "all" for _, rule in self.shared)


def _matches(path: str, pattern: str) -> bool:
    if pattern.endswith("/"):
        return path.startswith(pattern)
    if any(ch in pattern for ch in "*?["):
        return fnmatch.fnmatch(path, pattern) or fnmatch.fnmatch(path.rsplit("/", 1)[-1], pattern)
    return path == pattern


def _normalise(path: str) -> str:
    p = path.strip().replace("\\", "/")
    while p.startswith("./"):
        p = p[2:]
    return p


def service_patterns(catalog) -> dict[str, list[str]]:
    """service -> the path patterns it owns (``{service}`` and ``{stack}`` expanded)."""
    platform = catalog.platform
    out: dict[str, list[str]] = {}
    for name, svc in platform.services.items():
        pats: list[str] = []
        for tmpl in platform.repository.service_paths:
            if "{stack}" in tmpl:
                pats += [tmpl.format(service=name, stack=ref.name) for ref in svc.stack_refs]
            else:
                pats.append(tmpl.format(service=name, stack=""))
        pats += svc.paths
        out[name] = pats
    return out


def classify_paths(catalog, paths: list[str]) -> ChangeSet:
    """Sort changed paths into service-owned, shared base, unknown and ignored."""
    repo = catalog.platform.repository
    owned = service_patterns(catalog)
    cs = ChangeSet()
    for raw in paths:
        path = _normalise(raw)
        if not path:
            continue
        if any(_matches(path, pat) for pat in repo.ignore):
            cs.ignored.append(path)
            continue
        owner = next((svc for svc, pats in owned.items() if any(_matches(path, p) for p in pats)), None)
        if owner is not None:
            cs.services.setdefault(owner, []).append(path)
            continue
        rule = next((r for r in repo.shared_base if _matches(path, r.path)), None)
        if rule is not None:
            cs.shared.append((path, rule))
        else:
            cs.unknown.append(path)
    return cs


def git_changed_files(ref: str, repo_root: str | Path = ".") -> list[str]:
    """Files changed between ``ref`` and the working tree (tracked changes plus untracked files)."""
    root = Path(repo_root)

    def git(*args: str) -> str:
        try:
            proc = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=60)
        except FileNotFoundError:
            raise ExternalToolError("git is not installed; install git or pass --changed PATH... instead") from None
        except subprocess.TimeoutExpired:
            raise ExternalToolError(f"git {' '.join(args)} took longer than 60 s") from None
        if proc.returncode != 0:
            msg = (proc.stderr.strip().splitlines() or ["unknown error"])[-1]
            raise UsageError(f"cannot compare with {ref!r} in {root}: {msg}")
        return proc.stdout

    changed = git("diff", "--name-only", ref, "--").splitlines()
    untracked = git("ls-files", "--others", "--exclude-standard").splitlines()
    seen: set[str] = set()
    return [p for p in changed + untracked if p and not (p in seen or seen.add(p))]
