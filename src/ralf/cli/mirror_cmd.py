"""``ralf mirror``: the repository mirror in the platform's Gitea (what Semaphore's tasks check out)."""

from __future__ import annotations

import click

from ralf.cli.common import emit_json, json_option, load, platform_option


def _setup():
    from ralf.errors import UsageError
    from ralf.gitea.api import GiteaApi

    platform = load()
    if platform.mirror is None:
        raise UsageError("the platform file has no mirror section: Semaphore clones "
                         f"{platform.semaphore.repository.git_url if platform.semaphore else 'nothing'} directly")
    branch = platform.semaphore.repository.branch if platform.semaphore else "main"
    return platform, platform.mirror, branch, GiteaApi.from_platform(platform)


@click.group()
def mirror() -> None:
    """The pull mirror of the operator's remote in Gitea; Semaphore's tasks run what it holds."""


@mirror.command()
@platform_option
@json_option
def ensure(as_json: bool) -> None:
    """Make the mirror (what `ralf bootstrap` does after the Gitea pair); changes nothing when it is there."""
    from ralf.gitea.mirror import ensure_mirror

    _platform, m, branch, api = _setup()
    with api:
        result = ensure_mirror(api, m, branch)
    if as_json:
        emit_json({"changed": result.changed, "head": result.head, "lines": result.lines})
    else:
        for line in result.lines:
            click.echo(line)


@mirror.command()
@platform_option
@json_option
def status(as_json: bool) -> None:
    """Show where the mirror's branch is (the commit Semaphore's next task runs)."""
    from ralf.gitea.mirror import mirror_head

    _platform, m, branch, api = _setup()
    with api:
        repo = api.repo(m.owner, m.name)
        head = mirror_head(api, m, branch) if repo is not None else None
    data = {"repository": f"{m.owner}/{m.name}", "exists": repo is not None, "source": m.source_url,
            "interval": (repo or {}).get("mirror_interval"), "updated": (repo or {}).get("mirror_updated"),
            "branch": branch, "head": head}
    if as_json:
        emit_json(data)
        return
    if repo is None:
        click.echo(f"{m.owner}/{m.name} does not exist in Gitea: `ralf mirror ensure` (or `ralf bootstrap`) makes it")
        raise SystemExit(1)
    click.echo(f"{m.owner}/{m.name} mirrors {m.source_url} every {data['interval']} (last fetch {data['updated']})")
    click.echo(f"{branch}: {head or '(no such branch)'}")


@mirror.command()
@click.option("--wait", type=float, default=60.0, show_default=True, metavar="SECONDS",
              help="How long to wait for Gitea's fetch to move the branch.")
@platform_option
@json_option
def sync(wait: float, as_json: bool) -> None:
    """Let Gitea fetch the operator's remote now (mirror-sync), then show the branch's new head."""
    from ralf.gitea.mirror import sync_mirror

    _platform, m, branch, api = _setup()
    with api:
        before, after = sync_mirror(api, m, branch, wait=wait, poll=min(1.0, max(wait / 20, 0.05)))
    if as_json:
        emit_json({"branch": branch, "before": before, "after": after, "moved": before != after})
    elif before != after:
        click.echo(f"{branch}: {before or '(none)'} → {after}")
    else:
        click.echo(f"{branch}: still {after or '(none)'} after {wait:g} s (the source holds nothing newer, or "
                   "Gitea's fetch is slow: see `ralf mirror status`)")
