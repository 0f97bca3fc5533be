"""``ralf bootstrap``: preflight, Phase 1 pair by pair, seeding, Phase 1 smoke through Semaphore."""

from __future__ import annotations

import sys

import click

from ralf.cli.common import emit_json, json_option, load_catalog, platform_option

MARK = {"ok": "ok  ", "warn": "WARN", "fail": "FAIL", "would": "--> ", "info": "info"}


@click.command()
@click.option("--dry-run", is_flag=True, help="Check the prerequisites (changing nothing) and print the plan.")
@click.option("--resume", "resume", is_flag=False, flag_value="last", default=None, metavar="[RUN]",
              help="Continue a failed bootstrap run (default: the newest) from its failed step.")
@click.option("--timeout", type=float, default=None, metavar="SECONDS", help="Stop a step after this long.")
@click.option("--no-checks", is_flag=True, help="After a failure, classify it but skip the automatic first checks.")
@platform_option
@json_option
def bootstrap(dry_run: bool, resume: str | None, timeout: float | None, no_checks: bool, as_json: bool) -> None:
    """Bring an empty node up to a running Phase 1, in the runbook's binding order.

    \b
    1. preflight: Proxmox API (TLS verified), token and privileges, node, storage, bridge,
       LXC template (downloaded when missing), SSH key pair (made when missing), tools;
    2. each Phase 1 pair (containers + configuration, run by ralf), then its smoke;
    3. the Semaphore project seeded with the runbook's templates;
    4. the Phase 1 smoke as a Semaphore task.
    Journaled like a deploy; a rerun on a platform that is up changes nothing and says so.
    """
    from ralf.bootstrap import bootstrap as run_bootstrap
    from ralf.cli.plan_cmd import render_plan
    from ralf.deploy import Reporter
    from ralf.errors import UsageError
    from ralf.journal import Journal

    if timeout is not None and timeout <= 0:
        raise UsageError("--timeout must be a positive number of seconds")
    catalog = load_catalog()
    out = sys.stderr if as_json else sys.stdout

    def say(line: str) -> None:
        print(line, file=out, flush=True)

    probes = None
    if not no_checks:
        from ralf.triage import Probes

        probes = Probes(catalog.platform)
    with Journal() as journal:
        result = run_bootstrap(catalog, journal, dry_run=dry_run, resume=resume, timeout=timeout, probes=probes,
                               reporter=Reporter(out, command="ralf bootstrap"), on_output=say,
                               show=lambda pf, plan: show_preflight(pf, plan, say, render_plan))
    if as_json:
        emit_json(result.to_dict())
    elif result.note:
        say(result.note)
    if result.exit_code:
        sys.exit(result.exit_code)


def show_preflight(pf, plan, say, render_plan) -> None:
    say("Preflight")
    for c in pf.checks:
        say(f"  {MARK.get(c.status, c.status)}  {c.name}: {c.detail}")
        if c.fix and c.status != "ok":
            say(f"        fix: {c.fix}")
    say("")
    say(render_plan(plan))
    if not pf.ok:
        say("preflight failed: fix the items marked FAIL, then run `ralf bootstrap` again (nothing of Phase 1 ran)")
