"""``ralf history``: recent deploy runs from the journal, or one run's steps with their triage.

Reading the journal marks runs whose ralf process died (SIGKILL, power loss) ``interrupted``; see
:meth:`ralf.journal.Journal.reap_stale`.
"""

from __future__ import annotations

import click

from ralf.cli.common import emit_json, json_option, platform_option


@click.command()
@click.argument("run_id", required=False, type=int)
@click.option("--limit", "-n", default=20, show_default=True, type=click.IntRange(1, 10_000),
              help="How many runs to show.")
@platform_option
@json_option
def history(run_id: int | None, limit: int, as_json: bool) -> None:
    """Show recent runs (newest first), or the steps of run RUN_ID."""
    from ralf.deploy.output import fmt_duration
    from ralf.errors import UsageError
    from ralf.journal import Journal

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
                       + (f", ralf pid {run['owner_pid']} on {run['owner_host']}"
                          if run["result"] == "running" and run.get("owner_host") else ""))
            for s in run["steps"]:
                extra = f" task {s['task_id']}" if s["task_id"] is not None else ""
                src = f" (run {s['from_run']})" if s["from_run"] else ""
                click.echo(f"  {s['idx'] + 1:>2}. {s['template']:<34} {s['result'] + src:<18} "
                           f"{fmt_duration(s['duration']):>9}{extra}")
                if s["message"] and s["result"] != "succeeded":
                    click.echo(f"      {s['message']}")
                t = s["triage"]
                if t:
                    click.echo(f"      triage: {t['category']} — {t['summary']}")
                    click.echo(f"      next: {t['next_action']}")
            return
        runs = j.recent_runs(limit)
    if as_json:
        emit_json(runs)
        return
    if not runs:
        click.echo("no runs in the journal yet (`ralf deploy` records them)")
        return
    rows = [["run", "started", "request", "pattern", "executor", "result", "steps", "failed step", "duration"]]
    for r in runs:
        rows.append([str(r["id"]), r["started_at"], r["request"] or "(standard)", r["pattern"], r["executor"],
                     _result(r), f"{r['steps_succeeded']}/{r['steps_total']}", r["failed_step"] or "",
                     fmt_duration(r["duration"])])
    widths = [max(len(row[c]) for row in rows) for c in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip())


def _result(run: dict) -> str:
    """A run's result; a running one says where it runs (a run whose ralf died shows ``interrupted``)."""
    if run["result"] == "running" and run.get("owner_host"):
        return f"running (pid {run['owner_pid']} on {run['owner_host']})"
    return run["result"]
