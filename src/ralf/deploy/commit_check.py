"""Before a deploy through Semaphore: is the commit Semaphore's tasks will check out the operator's commit?

Semaphore clones its repository (``semaphore.repository``: URL and branch, as the project holds it)
for each task, so a task runs the branch's head *at that URL*. The check reads the repository from
the Semaphore project, asks that URL for the branch's head (``git ls-remote``) and compares it with
``HEAD`` of the operator's checkout. When they differ ralf refuses and names both commits and the
fix (push, or pull); a URL the operator cannot reach (``file://`` on the Semaphore host) cannot be
checked — the result says so instead of guessing.

When the repository is the platform's mirror in Gitea (``mirror``), the branch's head is asked from
Gitea's API (the mirror asks for a sign-in); when it lags behind a commit the operator has already
pushed to the source, the fix is to let Gitea fetch now (``ralf mirror sync``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ralf import process
from ralf.errors import RalfError

GIT_TIMEOUT = 30


@dataclass
class CommitCheck:
    status: str  # same | differs | unknown
    message: str
    operator: str | None = None
    semaphore: str | None = None

    @property
    def refuses(self) -> bool:
        return self.status == "differs"


def _git(args: list[str], cwd: Path | None = None) -> str:
    try:
        proc = process.run(["git", *args], cwd=cwd, timeout=GIT_TIMEOUT, env={**os.environ, "GIT_TERMINAL_PROMPT": "0"})
    except FileNotFoundError:
        raise RalfError("git is not installed") from None
    if proc.timed_out:
        raise RalfError(f"git {args[0]} took longer than {GIT_TIMEOUT} s")
    if proc.returncode != 0:
        raise RalfError(proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"git {args[0]} failed")
    return proc.stdout


def operator_commit(repo_root: Path, git: Callable = _git) -> str:
    return git(["rev-parse", "HEAD"], cwd=repo_root).strip()


def remote_commit(url: str, branch: str, git: Callable = _git) -> str | None:
    out = git(["ls-remote", url, f"refs/heads/{branch}"])
    for line in out.splitlines():
        sha, _, ref = line.partition("\t")
        if ref.strip() == f"refs/heads/{branch}":
            return sha.strip()
    return None


def check_commit(client: Any, project_id: int, repo_name: str, repo_root: Path, *,
                 git: Callable = _git, mirror: Any = None, gitea: Any = None) -> CommitCheck:
    repos = [r for r in client.list_repositories(project_id) if r.get("name") == repo_name]
    if not repos:
        return CommitCheck("unknown", f"the Semaphore project has no repository {repo_name!r}; "
                                      "`ralf semaphore seed` creates it")
    url, branch = repos[0].get("git_url", ""), repos[0].get("git_branch") or "main"
    try:
        mine = operator_commit(repo_root, git)
    except RalfError as e:
        return CommitCheck("unknown", f"cannot read the commit of {repo_root}: {e}")
    if mirror is not None and gitea is not None and url.rstrip("/") == mirror.clone_url:
        return _check_mirror(mirror, gitea, branch, mine, repo_root, git)
    local = url[len("file://"):] if url.startswith("file://") else (url if url.startswith("/") else None)
    if local is not None and not Path(local).exists():
        return CommitCheck("unknown", f"Semaphore runs {url} ({branch}), a path on the Semaphore host that ralf "
                                      "cannot read from here; point semaphore.repository.git_url at the "
                                      "platform's Gitea so the commit can be checked", operator=mine)
    try:
        theirs = remote_commit(url, branch, git)
    except RalfError as e:
        return CommitCheck("unknown", f"cannot ask {url} for branch {branch}: {e}", operator=mine)
    return _verdict(
        mine, theirs, f"{branch} at {url}", repo_root, git,
        missing=f"branch {branch} does not exist at {url}, the repository Semaphore runs; push it: {_push(branch)}",
        ahead=lambda: f"push your commit: {_push(branch)} (Gitea mirrors the operator's remote), then deploy again")


def _verdict(mine: str, theirs: str | None, source: str, repo_root: Path, git: Callable, *, missing: str,
             ahead: Callable[[], str]) -> CommitCheck:
    """Same, or differs with the fix: ``missing`` when the branch is not there, ``git pull`` when the operator's
    checkout is behind, else ``ahead()`` (how to get the operator's commit to where Semaphore reads)."""
    if theirs is None:
        return CommitCheck("differs", missing, operator=mine)
    if theirs == mine:
        return CommitCheck("same", f"Semaphore will run {mine[:12]} ({source}), your HEAD", operator=mine,
                           semaphore=theirs)
    fix = _behind(theirs) if _is_ancestor(repo_root, mine, theirs, git) else ahead()
    return CommitCheck("differs", f"Semaphore would run {theirs} ({source}), but your HEAD is {mine}; {fix}",
                       operator=mine, semaphore=theirs)


def _behind(theirs: str) -> str:
    return f"your checkout is behind: `git pull` (or deploy from {theirs[:12]})"


def _push(branch: str) -> str:
    return f"`git push <remote> HEAD:{branch}`"


def _is_ancestor(repo_root: Path, mine: str, theirs: str, git: Callable) -> bool:
    """True when ``mine`` is an ancestor of ``theirs`` (the operator is behind); unknown counts as no."""
    try:
        git(["merge-base", "--is-ancestor", mine, theirs], cwd=repo_root)
        return True
    except RalfError:
        return False


def _check_mirror(mirror: Any, gitea: Any, branch: str, mine: str, repo_root: Path, git: Callable) -> CommitCheck:
    from ralf.gitea.mirror import mirror_head

    where = f"{mirror.owner}/{mirror.name} in Gitea"
    try:
        theirs = mirror_head(gitea, mirror, branch)
    except RalfError as e:
        return CommitCheck("unknown", f"cannot ask Gitea for {branch} of the mirror {where}: {e}", operator=mine)
    sync = f"`ralf mirror sync` (Gitea fetches {mirror.source_url} every {mirror.interval} by itself)"

    def ahead() -> str:
        try:
            pushed = remote_commit(mirror.source_url, branch, git) == mine
        except RalfError:
            pushed = False
        return (f"you pushed it to {mirror.source_url}, but the mirror has not fetched it yet: {sync}" if pushed else
                f"push your commit to {mirror.source_url} ({_push(branch)}), then {sync}")

    return _verdict(mine, theirs, f"{branch} of the mirror {where}", repo_root, git,
                    missing=f"the mirror {where} has no branch {branch}: push it to {mirror.source_url} "
                            f"({_push(branch)}), then {sync}", ahead=ahead)
