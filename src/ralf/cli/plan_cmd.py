"""``ralf plan``: print the runbook steps for a request without running anything."""

from __future__ import annotations

import click

from ralf.cli.common import emit_json, json_option, load_catalog, platform_option


def request_options(f):
    """REQUEST... plus --changed/--changed-from/--repo: what `plan` and `deploy` both accept."""
    for option in reversed([
        click.argument("request", nargs=-1),
        click.option("--changed", "changed", multiple=True, metavar="PATH",
                     help="A changed repository path (repeatable; several paths may follow one flag)."),
        click.option("--changed-from", "changed_from", metavar="GITREF",
                     help="Use the files changed between GITREF and the working tree."),
        click.option("--repo", "repo_root", metavar="DIR", default=None,
                     help="Git repository for --changed-from (default: the platform file's directory)."),
    ]):
        f = option(f)
    return f


@click.command()
@request_options
@platform_option
@json_option
def plan(request: tuple[str, ...], changed: tuple[str, ...], changed_from: str | None,
         repo_root: str | None, as_json: bool) -> None:
    """Print the ordered Semaphore template steps for REQUEST.

    \b
    REQUEST is one of:
      (nothing)     the runbook's standard order: each group's Apply, then its Smoke
      GROUP         e.g. vault: RALF Vault Apply, RALF Vault Smoke
      SERVICE       e.g. exo: RALF Exo Apply, RALF AI Smoke (pattern A);
                    a Phase 1 service: RALF Phase1 Config Apply, RALF Phase1 Smoke
      platform      RALF Full Platform Apply, RALF Full Platform Smoke
      cleanroom     Phase 1 pair by pair with a smoke after each, then all smokes
      "TEMPLATE"    one template by its name
    or --changed PATH... / --changed-from GITREF: pattern A when only service-owned
    paths changed, pattern B when the shared base changed, nothing for docs only.
    """
    from ralf.planner import build_plan

    request_name, paths = split_request(request, changed)
    c = load_catalog()
    p = build_plan(
        c,
        request_name,
        changed=paths,
        changed_from=changed_from,
        repo_root=repo_root,
    )
    if as_json:
        emit_json(p.to_dict())
        return
    click.echo(render_plan(p))


def split_request(args: tuple[str, ...], changed: tuple[str, ...]) -> tuple[str | None, list[str] | None]:
    """``--changed a b c`` takes every positional as a path; otherwise at most one REQUEST."""
    if changed:
        return None, list(changed) + list(args)
    if len(args) > 1:
        raise click.UsageError(f"expected one REQUEST, got {len(args)}: {' '.join(args)}")
    return (args[0] if args else None), None


def render_plan(p) -> str:
    """The human form of a plan: a headline, then one numbered line per step with its reason."""
    lines = [f"Plan ({p.pattern}): {p.message}"]
    if p.changes is not None and p.changes.ignored:
        lines.append(f"  ignored (not deployable): {', '.join(p.changes.ignored)}")
    width = max((len(s.template) for s in p.steps), default=0)
    for i, s in enumerate(p.steps, 1):
        what = {"apply": f"stacks {' '.join(s.stacks)}", "smoke": f"smoke {s.target}"}.get(s.kind, s.kind)
        lines.append(f"  {i:>2}. {s.template:<{width}}  {what}")
        if s.reason:
            lines.append(f"      why: {s.reason}")
    if p.needs_confirmation:
        lines.append("  note: this plan changes the shared base; `ralf deploy` asks before running it")
    if not p.steps:
        lines.append("  (no steps)")
    return "\n".join(lines)
