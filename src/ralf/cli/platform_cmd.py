"""``ralf validate``, ``ralf catalog …`` and ``ralf inventory``: the platform file and what derives from it."""

from __future__ import annotations

import click

from ralf.cli.common import emit_json, json_option, load, load_catalog, platform_option, table


@click.command()
@platform_option
@json_option
def validate(as_json: bool) -> None:
    """Check the platform file: schema, unknown keys, and cross-references.

    Checks unique CT ids, IPs, hostnames and stack names, IPs inside the network, that every group
    and stack reference resolves and that each service is in exactly one group. Each problem is one
    line naming the file and the place; the exit code is 2 when anything is wrong.
    """
    from ralf.catalog import Catalog

    platform = load()
    c = Catalog(platform)
    summary = {
        "platform": str(platform.source),
        "valid": True,
        "groups": len(platform.groups),
        "services": len(platform.services),
        "stacks": len(c.stacks),
        "templates": len(c.templates),
    }
    if as_json:
        emit_json(summary)
    else:
        click.echo(
            f"{platform.source}: valid — {summary['groups']} groups, {summary['services']} services, "
            f"{summary['stacks']} stacks, {summary['templates']} Semaphore templates"
        )


@click.group()
@platform_option
def catalog() -> None:
    """Show what is derived from the platform file: stacks, smoke targets, Semaphore templates."""


@catalog.command("stacks")
@platform_option
@json_option
def catalog_stacks(as_json: bool) -> None:
    """Stacks in execution order with their type (tofu / ansible)."""
    c = load_catalog()
    if as_json:
        emit_json([s.to_dict() for s in c.stacks])
        return
    rows = [[i, s.name, s.type, s.service, s.group, "local" if s.local_state else ""] for i, s in enumerate(c.stacks, 1)]
    table("Stacks in execution order", ["#", "stack", "type", "service", "group", "state"], rows)


@catalog.command("targets")
@platform_option
@json_option
def catalog_targets(as_json: bool) -> None:
    """Smoke targets: each service, each group, phase1 and platform."""
    c = load_catalog()
    if as_json:
        emit_json([t.to_dict() for t in c.targets.values()])
        return
    table("Smoke targets", ["target", "kind", "services"], [[t.name, t.kind, ", ".join(t.services)] for t in c.targets.values()])


@catalog.command("templates")
@platform_option
@json_option
def catalog_templates(as_json: bool) -> None:
    """Semaphore templates with what they run (ONLY_STACKS / AUTO_APPLY, or the smoke target)."""
    c = load_catalog()
    if as_json:
        emit_json(
            {
                "templates": [t.to_dict() for t in c.templates],
                "service_to_group_smoke": c.service_to_group_smoke,
                "environments": c.environments,
            }
        )
        return
    rows = []
    for t in c.templates:
        what = f"AUTO_APPLY={t.env['AUTO_APPLY']} ONLY_STACKS={' '.join(t.stacks)}" if t.kind == "apply" else f"smoke {t.target}"
        rows.append([t.name, t.kind, what])
    table(f"Semaphore templates ({len(c.templates)})", ["template", "kind", "runs"], rows)


@click.command()
@platform_option
@json_option
def inventory(as_json: bool) -> None:
    """Print the Ansible inventory generated from the platform (INI, or JSON with --json)."""
    from ralf.inventory import inventory_dict, inventory_ini

    platform = load()
    if as_json:
        emit_json(inventory_dict(platform))
    else:
        click.echo(inventory_ini(platform), nl=False)


@catalog.command("paths")
@platform_option
@json_option
def catalog_paths(as_json: bool) -> None:
    """Which repository paths belong to which service, which are the shared base, which are ignored."""
    from ralf.changes import service_patterns

    c = load_catalog()
    repo = c.platform.repository
    owned = service_patterns(c)
    if as_json:
        emit_json({
            "services": owned,
            "shared_base": [r.model_dump() for r in repo.shared_base],
            "ignore": list(repo.ignore),
        })
        return
    rows = [[svc, "service", " ".join(p)] for svc, p in owned.items()]
    rows += [["(shared base)", f"smokes: {r.smokes}", r.path + (f"  — {r.why}" if r.why else "")] for r in repo.shared_base]
    rows += [["(ignored)", "", " ".join(repo.ignore)]]
    table("Repository paths (first match wins: ignored, service, shared base; anything else counts as shared base)",
          ["owner", "kind", "paths"], rows)
