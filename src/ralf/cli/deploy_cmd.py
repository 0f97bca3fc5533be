"""``ralf deploy``: plan, confirm when the shared base changes, run the steps, triage, journal, summarise."""

from __future__ import annotations

import math
import sys

import click

from ralf.cli.common import emit_json, json_option, load_catalog, platform_option, platform_path
from ralf.cli.plan_cmd import request_options


@click.command()
@request_options
@click.option("--executor", type=click.Choice(["semaphore", "local"]), default=None,
              help="semaphore (default when the platform file has a semaphore section): run the templates as "
                   "Semaphore tasks; local (the default otherwise): run stacks and smokes in-process (break-glass, "
                   "the local lab). --resume keeps the run's executor unless given.")
@click.option("--dry-run", is_flag=True, help="Print the plan only; run nothing.")
@click.option("--yes", "-y", "yes", is_flag=True, help="Do not ask before a plan that changes the shared base.")
@click.option("--resume", "resume", is_flag=False, flag_value="last", default=None, metavar="[RUN]",
              help="Continue a failed, stopped or interrupted run (default: this platform's newest) from its failed "
                   "step; after a failed Smoke from the Apply it checks. A run id resumes on that run's own "
                   "platform file.")
@click.option("--only-failed-step", is_flag=True,
              help="With --resume: restart at the failed step itself, even when it is a Smoke (its Apply is "
                   "not run again).")
@click.option("--timeout", "timeout", type=float, default=None, metavar="SECONDS",
              help="Stop a step after this long (default 3600): its Semaphore task is stopped, a local run "
                   "interrupted.")
@click.option("--no-checks", is_flag=True, help="After a failure, classify it but skip the automatic first checks.")
@click.option("--no-log", is_flag=True,
              help="Do not show the tasks' log lines (progress only); when following by polling, a step's log is "
                   "fetched only if the step fails.")
@click.option("--no-commit-check", is_flag=True,
              help="Through Semaphore: do not refuse when Semaphore would run another commit than your HEAD.")
@platform_option
@json_option
def deploy(request: tuple[str, ...], changed: tuple[str, ...], changed_from: str | None, repo_root: str | None,
           executor: str | None, dry_run: bool, yes: bool, resume: str | None, only_failed_step: bool,
           timeout: float | None, no_checks: bool, no_log: bool, no_commit_check: bool, as_json: bool) -> None:
    """Run the runbook's steps for REQUEST (same requests as `ralf plan`) and stop at the first failure.

    \b
    Each step is a Semaphore template started as a task; its log is streamed with the
    template's name in front, and a failed step is triaged (what failed, the runbook's first
    checks, what to do next). Every run is kept in the journal: `ralf history`, `ralf status`,
    and `ralf deploy --resume` continues from the failed step (refused if the plan changed).
    Exit 0 only when every step succeeded.
    """
    import ralf.deploy
    from ralf.cli.plan_cmd import render_plan, split_request
    from ralf.deploy import Reporter
    from ralf.errors import UsageError
    from ralf.hints import complete
    from ralf.journal import Journal

    if timeout is not None and not (math.isfinite(timeout) and timeout > 0):
        raise UsageError("--timeout must be a positive, finite number of seconds")
    if only_failed_step and resume is None:
        raise UsageError("--only-failed-step goes with --resume")
    journal: Journal | None = None
    try:
        if resume is not None:
            if request or changed or changed_from:
                raise UsageError("--resume takes the request from the journaled run; give no REQUEST or --changed")
            journal = Journal()
            catalog, resume = _resume_target(journal, resume)
            try:
                planned = ralf.deploy.plan_resume(catalog, journal, resume, only_failed_step=only_failed_step)
            except UsageError as e:
                raise UsageError(complete(str(e), catalog.platform.source)) from None
        else:
            catalog = load_catalog()
            request_name, paths = split_request(request, changed)
            planned = ralf.deploy.plan_request(catalog, request_name, changed=paths, changed_from=changed_from,
                                               repo_root=repo_root)
        plan = planned.plan
        if dry_run:
            if as_json:
                emit_json({"dry_run": True, **plan.to_dict()})
            else:
                click.echo(render_plan(plan))
            return
        if not plan.steps:
            if as_json:
                emit_json({"run_id": None, "result": "nothing to do", "exit_code": 0, "plan": plan.to_dict(),
                           "steps": []})
            else:
                click.echo(render_plan(plan))
            return

        out = sys.stderr if as_json else sys.stdout
        print(render_plan(plan), file=out, flush=True)
        if planned.needs_confirmation and not yes:
            what = "pattern B changes the shared base" if plan.pattern == "B" else "cleanroom re-converges Phase 1"
            if not sys.stdin.isatty():
                raise UsageError(f"{what}; there is no terminal to ask for confirmation — rerun with --yes to go ahead")
            if not click.confirm(f"{what}: run these {len(plan.steps)} steps?", default=False, err=True):
                raise UsageError("not confirmed; nothing was run")

        report = ralf.deploy.run(
            catalog, planned, executor=executor, journal=journal, reporter=Reporter(out, show_log=not no_log),
            timeout=timeout, checks=not no_checks, commit_check=not no_commit_check,
            notice=lambda message: click.echo(f"ralf: {message}", err=True),
        )
    finally:
        if journal is not None:
            journal.close()
    if as_json:
        emit_json(report.to_dict())
    if report.exit_code:
        sys.exit(report.exit_code)


def _resume_target(journal, ref: str) -> tuple:
    """The catalog to resume on and the run reference for :func:`resume_point`.

    A run id resumes on that run's own platform file (``--platform``, if given, must name the same file);
    a bare ``--resume`` picks the newest unfinished deploy run of the platform in use.
    """
    from pathlib import Path

    from ralf.catalog import Catalog
    from ralf.errors import UsageError
    from ralf.hints import shown_path
    from ralf.journal import SMOKE_PATTERN, PlatformId
    from ralf.loader import load_platform

    explicit = platform_path()
    if ref in (None, "", "last", "latest"):
        catalog = load_catalog()
        run = journal.latest_run(unfinished_only=True, platform=PlatformId.of(catalog.platform))
        if run is None:
            raise UsageError(f"no failed or stopped run of platform {catalog.platform.name} "
                             f"({shown_path(catalog.platform.source)}) in the journal to resume")
        return catalog, str(run["id"])
    try:
        run = journal.run(int(str(ref)))
    except ValueError:
        raise UsageError(f"--resume expects a run id (see `ralf history`), not {ref!r}") from None
    if run is None:
        return load_catalog(), ref  # resume_point says there is no such run
    if run["pattern"] == SMOKE_PATTERN:
        raise UsageError(f"run {run['id']} is a smoke run on its own (`ralf smoke {run['request']}`), "
                         "not a deploy; there is nothing to resume")
    own = run.get("platform")
    if not own:
        return load_catalog(), ref  # an older journal entry without its platform file
    if explicit is not None and Path(explicit).resolve() != Path(own).resolve():
        raise UsageError(f"run {run['id']} was for the platform file {shown_path(own)}, not {explicit}; "
                         f"resume it with --platform {shown_path(own)} (or without --platform)")
    return Catalog(load_platform(own)), ref

