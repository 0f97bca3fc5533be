"""``ralf history``: recent runs of the platform in use (``--all``: of every platform), or one run's steps.

Deploy runs and smoke runs on their own (``ralf smoke``, pattern ``smoke``) are listed alike.

Reading the journal marks runs whose ralf process died (SIGKILL, power loss) ``interrupted``; see
:meth:`ralf.journal.Journal.reap_stale`.
"""

from __future__ import annotations

import click

from ralf.cli.common import emit_json, json_option, load, platform_option
from ralf.states import Result


@click.command()
@click.argument("run_id", required=False, type=int)
@click.option("--limit", "-n", default=20, show_default=True, type=click.IntRange(1, 10_000),
              help="How many runs to show.")
@click.option("--all", "all_platforms", is_flag=True, help="Runs of every platform in the journal, not only this one.")
@platform_option
@json_option
def history(run_id: int | None, limit: int, all_platforms: bool, as_json: bool) -> None:
    """Show recent runs of this platform (newest first), or the steps of run RUN_ID."""
    from ralf.deploy.output import fmt_duration
    from ralf.errors import UsageError
    from ralf.journal import Journal, PlatformId
    from ralf.tables import plain_table

    with Journal() as j:
        if run_id is not None:
            run = j.run(run_id)
            if run is None:
                raise UsageError(f"no run {run_id} in the journal {j.path}")
            if as_json:
                emit_json(run)
                return
            click.echo(f"run {run['id']}: {run['result']} — {run['pattern']} {run['request'] or '(standard order)'}, "
                       f"{run['executor']}, started {run['started_at']}"
                       + (f", resumed from run {run['resumed_from']}" if run["resumed_from"] else "")
                       + (f", platform {_platform_text(run)}" if run.get("platform") else "")
                       + (f", ralf pid {run['owner_pid']} on {run['owner_host']}"
                          if run["result"] == Result.RUNNING and run.get("owner_host") else ""))
            for s in run["steps"]:
                extra = f" task {s['task_id']}" if s["task_id"] is not None else ""
                src = f" (run {s['from_run']})" if s["from_run"] else ""
                click.echo(f"  {s['idx'] + 1:>2}. {s['template']:<34} {s['result'] + src:<18} "
                           f"{fmt_duration(s['duration']):>9}{extra}")
                if s["message"] and s["result"] != Result.SUCCEEDED:
                    click.echo(f"      {s['message']}")
                t = s["triage"]
                if t:
                    click.echo(f"      triage: {t['category']} — {t['summary']}")
                    click.echo(f"      next: {t['next_action']}")
            return
        platform = None if all_platforms else load()
        runs = j.recent_runs(limit, platform=None if platform is None else PlatformId.of(platform))
    if as_json:
        emit_json(runs)
        return
    if not runs:
        where = "" if platform is None else f" of platform {platform.name}"
        click.echo(f"no runs{where} in the journal yet (`ralf deploy` and `ralf smoke` record them)"
                   + ("" if platform is None else "; `ralf history --all` lists every platform's"))
        return
    columns = ["run", "started", "request", "pattern", "executor", "result", "steps", "failed step", "duration"]
    rows = []
    for r in runs:
        rows.append([str(r["id"]), r["started_at"], r["request"] or "(standard)", r["pattern"], r["executor"],
                     _result(r), f"{r['steps_succeeded']}/{r['steps_total']}", r["failed_step"] or "",
                     fmt_duration(r["duration"])] + ([_platform_text(r)] if platform is None else []))
    click.echo(plain_table(columns + (["platform"] if platform is None else []), rows), nl=False)


def _platform_text(run: dict) -> str:
    from ralf.hints import shown_path

    if not run.get("platform"):
        return "-"
    name = run.get("platform_name")
    return f"{name} ({shown_path(run['platform'])})" if name else shown_path(run["platform"])


def _result(run: dict) -> str:
    """A run's result; a running one says where it runs (a run whose ralf died shows ``interrupted``)."""
    if run["result"] == Result.RUNNING and run.get("owner_host"):
        return f"running (pid {run['owner_pid']} on {run['owner_host']})"
    return run["result"]
