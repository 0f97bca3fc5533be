"""The repository mirror in the platform's Gitea: made once, kept as the platform file says, synced on demand.

What the original did with ``git clone --mirror`` inside the Gitea CT, done through Gitea's own pull
mirror, so Gitea fetches the operator's remote by itself (every ``mirror.interval``) and
Semaphore's tasks clone the result. :func:`ensure_mirror` is idempotent: a mirror that exists
with the platform's interval is left alone (no write at all); a missing one is migrated (Gitea
clones the source before it answers); a repository of that name that is not a mirror, or mirrors
another source, is reported with the fix rather than touched. :func:`mirror_head` is the commit
Semaphore's next task would check out; :func:`sync_mirror` asks Gitea to fetch now and waits
until the branch moves (Gitea queues the fetch and answers at once).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ralf.gitea.api import GiteaApi, GiteaError
from ralf.model import Mirror

DESCRIPTION = "ralf: mirror of the operator's repository; Semaphore's tasks run what it holds"
_UNITS = {"h": 3600, "m": 60, "s": 1}


def duration_seconds(text: str) -> float:
    """Seconds in a Go duration as Gitea writes it (``10m0s``, ``8h0m0s``, ``0s``) or the platform file does."""
    parts = re.findall(r"(\d+(?:\.\d+)?)(h|m|s)", text or "")
    return sum(float(n) * _UNITS[u] for n, u in parts)


@dataclass
class MirrorResult:
    changed: bool = False
    lines: list[str] = field(default_factory=list)
    head: str | None = None


def _source_differs(repo: dict, mirror: Mirror) -> bool:
    original = str(repo.get("original_url") or "")
    return bool(original) and original.rstrip("/") != mirror.source_url.rstrip("/")


def ensure_mirror(api: GiteaApi, mirror: Mirror, branch: str) -> MirrorResult:
    """Make the mirror exist with the platform's interval; raises :class:`GiteaError` with the fix when it cannot."""
    out = MirrorResult()
    where = f"{mirror.owner}/{mirror.name}"
    repo = api.repo(mirror.owner, mirror.name)
    if repo is None:
        try:
            repo = api.migrate_mirror(mirror, DESCRIPTION)
        except GiteaError as e:
            raise GiteaError(f"Gitea could not mirror {mirror.source_url} as {where}: {e}; "
                             + _migrate_fix(e.status, mirror), e.status) from None
        out.changed = True
        out.lines.append(f"made {where}: a pull mirror of {mirror.source_url} every {mirror.interval}")
    elif not repo.get("mirror"):
        raise GiteaError(f"{where} exists in Gitea but is not a mirror: Semaphore would run whatever was pushed "
                         f"there; rename or delete it in Gitea (or set mirror.name), then run `ralf bootstrap` again")
    elif _source_differs(repo, mirror):
        raise GiteaError(f"{where} mirrors {repo.get('original_url')}, not {mirror.source_url}; change its mirror "
                         "address in Gitea (Settings → Repository → Mirror settings) or delete it and run "
                         "`ralf bootstrap` again")
    elif duration_seconds(str(repo.get("mirror_interval", ""))) != duration_seconds(mirror.interval):
        api.edit_repo(mirror.owner, mirror.name, {"mirror_interval": mirror.interval})
        out.changed = True
        out.lines.append(f"{where}: interval {repo.get('mirror_interval')} → {mirror.interval}")
    else:
        out.lines.append(f"{where} mirrors {mirror.source_url} every {repo.get('mirror_interval')}: "
                         "nothing to change")
    out.head = mirror_head(api, mirror, branch)
    if out.head is None:
        raise GiteaError(f"the mirror {where} has no branch {branch}: push it to {mirror.source_url} "
                         f"(`git push <remote> HEAD:{branch}`), then `ralf mirror sync`")
    out.lines.append(f"{branch} is at {out.head}: what Semaphore's next task runs")
    return out


def _migrate_fix(status: int, mirror: Mirror) -> str:
    if status == 422:
        return ("check that Gitea can reach and read mirror.source_url (a source on the local network needs "
                "[migrations] ALLOW_LOCALNETWORKS = true in Gitea's app.ini; a private one needs credentials)")
    if status == 403:
        return f"the Gitea user in {mirror.credentials_file} must be an admin or own {mirror.owner!r}"
    if status == 401:
        return f"check {mirror.user_var}/{mirror.password_var} in {mirror.credentials_file}"
    return "see Gitea's log (`journalctl -u gitea` in its CT)"


def mirror_head(api: GiteaApi, mirror: Mirror, branch: str) -> str | None:
    """The commit ``branch`` points at in the mirror (None: no such branch)."""
    b = api.branch(mirror.owner, mirror.name, branch)
    if b is None:
        return None
    return str((b.get("commit") or {}).get("id") or "") or None


def sync_mirror(api: GiteaApi, mirror: Mirror, branch: str, *, wait: float = 30.0, poll: float = 1.0,
                until: str | None = None, sleep: Callable[[float], None] = time.sleep) -> tuple[str | None, str | None]:
    """Ask Gitea to fetch the source now; wait until ``branch`` moves (or reaches ``until``). ``(before, after)``."""
    before = mirror_head(api, mirror, branch)
    try:
        api.mirror_sync(mirror.owner, mirror.name)
    except GiteaError as e:
        if e.status == 400:
            raise GiteaError(f"{mirror.owner}/{mirror.name} is not a mirror in Gitea ({e}); "
                             "`ralf bootstrap` makes it one", e.status) from None
        raise
    deadline = time.monotonic() + wait
    after = before
    while time.monotonic() < deadline:
        sleep(poll)
        after = mirror_head(api, mirror, branch)
        if (until is not None and after == until) or (until is None and after != before):
            break
    return before, after
