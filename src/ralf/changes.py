"""Which deployment a set of changed repository paths calls for.

A changed path is, in this order: ignored (docs, tests), owned by a service (its stacks and role,
from ``repository.service_paths`` and ``services.<name>.paths``), part of the shared base
(``repository.shared_base``: smoke code, runner, seeder, shared roles), or unknown. Unknown paths
are treated as shared base touching every group: deploying too much is safer than too little.

The platform file itself is finer-grained when the old version is known (``--changed-from REF``):
the two versions are compared section by section, so editing one service's entry touches only that
service, while a change to the network, Proxmox, Semaphore or the groups touches the shared base.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from pathlib import Path

from ralf.errors import ExternalToolError, UsageError
from ralf.model import SharedPath


@dataclass
class PlatformDiff:
    """What changed in the platform file between two versions."""

    path: str  # the platform file, relative to the repository root
    services: list[str] = field(default_factory=list)  # entries changed or added
    shared: list[str] = field(default_factory=list)  # sections whose change touches every group
    unreadable: str | None = None  # the old version could not be read or validated

    @property
    def empty(self) -> bool:
        return not (self.services or self.shared or self.unreadable)


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


def classify_paths(catalog, paths: list[str], platform_diff: PlatformDiff | None = None) -> ChangeSet:
    """Sort changed paths into service-owned, shared base, unknown and ignored."""
    repo = catalog.platform.repository
    owned = service_patterns(catalog)
    cs = ChangeSet()
    for raw in paths:
        path = _normalise(raw)
        if not path:
            continue
        if platform_diff is not None and path == platform_diff.path and not platform_diff.unreadable:
            _classify_platform_diff(cs, platform_diff)
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


def _classify_platform_diff(cs: ChangeSet, diff: PlatformDiff) -> None:
    if diff.empty:
        cs.ignored.append(f"{diff.path} (nothing deployable changed in it)")
    for svc in diff.services:
        cs.services.setdefault(svc, []).append(f"{diff.path}: services.{svc}")
    for section in diff.shared:
        rule = SharedPath(path=diff.path, smokes="all", why=f"{section} changed in the platform file")
        cs.shared.append((f"{diff.path}: {section}", rule))


# Sections that only steer ralf's planning: changing them deploys nothing.
_PLANNING_ONLY = {"repository"}


def platform_diff(catalog, old_text: str, path: str) -> PlatformDiff:
    """Compare the platform file's old text with the loaded (new) platform, section by section."""
    from ralf.errors import PlatformError
    from ralf.loader import parse_platform

    diff = PlatformDiff(path)
    try:
        old = parse_platform(old_text, source=f"{path} (old)")
    except PlatformError as e:
        diff.unreadable = e.problems[0] if e.problems else "invalid"
        return diff
    new = catalog.platform
    old_d, new_d = old.model_dump(), new.model_dump()
    for section in new_d:
        if section in ("services", *_PLANNING_ONLY) or old_d.get(section) == new_d[section]:
            continue
        diff.shared.append(section)
    for name, svc in new_d["services"].items():
        if old_d["services"].get(name) != svc:
            diff.services.append(name)
    removed = [n for n in old_d["services"] if n not in new_d["services"]]
    if removed:
        diff.shared.append(f"services removed ({', '.join(removed)})")
    return diff


def git_platform_diff(catalog, ref: str, repo_root: str | Path) -> PlatformDiff | None:
    """The platform file's change since ``ref``, or None when the file is not inside the repository."""
    src = catalog.platform.source
    if src is None:
        return None
    root = Path(repo_root)
    top = _git(root, ref, "rev-parse", "--show-toplevel").strip()
    try:
        rel = Path(src).resolve().relative_to(Path(top).resolve()).as_posix()
    except ValueError:
        return None
    try:
        old_text = _git(root, ref, "show", "--end-of-options", f"{ref}:{rel}")
    except UsageError:
        return PlatformDiff(rel, unreadable=f"{rel} does not exist at {ref}")
    return platform_diff(catalog, old_text, rel)


def _git(root: Path, ref: str, *args: str) -> str:
    if ref.startswith("-") or any(ord(c) < 32 or c.isspace() for c in ref):
        raise UsageError(f"--changed-from expects a git revision (a branch, tag or commit), not {ref!r}")
    from ralf import process

    try:
        proc = process.run(["git", *args], cwd=root, timeout=60)
    except FileNotFoundError:
        raise ExternalToolError("git is not installed; install git or pass --changed PATH... instead") from None
    if proc.timed_out:
        raise ExternalToolError(f"git {' '.join(args)} took longer than 60 s")
    if proc.returncode != 0:
        msg = (proc.stderr.strip().splitlines() or ["unknown error"])[-1]
        raise UsageError(f"cannot compare with {ref!r} in {root}: {msg}")
    return proc.stdout


def git_changed_files(ref: str, repo_root: str | Path = ".") -> list[str]:
    """Files changed between ``ref`` and the working tree (tracked changes plus untracked files)."""
    root = Path(repo_root)
    changed = _git(root, ref, "diff", "--name-only", "--end-of-options", ref, "--").splitlines()
    untracked = _git(root, ref, "ls-files", "--others", "--exclude-standard").splitlines()
    return [p for p in dict.fromkeys(changed + untracked) if p]  # in order, each once
