"""``ralf smoke TARGET``: what Semaphore's Smoke templates run.

A thin layer over :func:`ralf.smoke.run_smoke`: progress on stderr while checks run (a rich bar
on a terminal, one plain line per finished service otherwise), then the report on stdout as
human lines, or ``--json``; ``--junit FILE`` also writes JUnit XML. Exit 0 when nothing failed
(WARN allowed), 1 when a check failed, 2 for usage errors, unknown targets or a bad platform file.
Every finished smoke is journaled for its platform, so ``ralf status`` and ``ralf history`` show it.
"""

from __future__ import annotations

import os
import sqlite3
import sys
import threading
import time

import click

from ralf.cli.common import emit_json, json_option, load, platform_option
from ralf.journal import now_iso


@click.command("smoke")
@click.argument("target", default="phase1")
@json_option
@click.option("--junit", "junit_file", metavar="FILE", type=click.Path(dir_okay=False, writable=True),
              help="Also write the results as JUnit XML to FILE (for CI systems).")
@click.option("--concurrency", type=click.IntRange(1, 1024), default=None,
              help="How many services are checked at once (default: all of the target's, up to 256; 1 = one by one).")
@click.option("--deadline", type=click.FloatRange(min=0, min_open=True), default=None, metavar="SECONDS",
              help="Time for the whole target: services without a result by then are FAIL, the others are "
                   "reported (default: each check's own timeouts).")
@platform_option
def smoke(target: str, as_json: bool, junit_file: str | None, concurrency: int | None,
          deadline: float | None) -> None:
    """Smoke-check TARGET: a service, a group, phase1 (default) or platform.

    Per service the layers run in the runbook's triage order (service in the CT, nginx/TLS, app
    port, public endpoint); the first failing layer is the diagnosis and later layers are skipped.
    All services of the target run at once, and every failing service is reported.
    """
    from ralf.catalog import Catalog
    from ralf.smoke import run_smoke
    from ralf.smoke.layers import plan_service
    from ralf.smoke.report import human_lines, junit_xml
    from ralf.transport import transport_for

    platform = load()
    services = Catalog(platform).target(target).services  # unknown target: UsageError, exit 2
    if junit_file:
        _check_writable(junit_file)
    transport = transport_for(platform)
    planned = {n: len(plan_service(n, platform.services[n], platform, transport)) for n in services}
    progress = _Progress(target, planned)
    started_at, t0 = now_iso(), time.monotonic()
    try:
        report = run_smoke(target, platform, transport=transport, concurrency=concurrency, deadline=deadline,
                           on_check=progress.on_check)
    except KeyboardInterrupt:
        progress.close()
        click.echo("ralf: interrupted; smoke stopped before all checks finished, no report", err=True)
        sys.stdout.flush()
        sys.stderr.flush()
        # Check threads still blocked on sockets would hold a normal exit until their deadlines.
        os._exit(130)
    finally:
        progress.close()

    _journal(report, platform, started_at, time.monotonic() - t0)
    # The report comes first: a JUnit file that cannot be written must not hide the results.
    if as_json:
        emit_json(report.to_dict())
    else:
        for line in human_lines(report):
            click.echo(line)
    if junit_file:
        try:
            with open(junit_file, "w", encoding="utf-8") as f:
                f.write(junit_xml(report))
        except OSError as e:
            from ralf.errors import RalfError

            raise RalfError(f"cannot write JUnit file {junit_file}: {e.strerror or e}", exit_code=2) from None
    if report.exit_code:
        # SystemExit, not ctx.exit(): main() runs click with standalone_mode=False, which turns
        # ctx.exit(1) into a return value that is not propagated.
        sys.exit(report.exit_code)


def _journal(report, platform, started_at: str, duration: float) -> None:
    """Record the smoke for ``ralf status``; a journal that cannot be written costs a warning, not the report."""
    from ralf.errors import RalfError
    from ralf.journal import Journal, PlatformId

    try:
        with Journal() as j:
            j.record_smoke_run(report.target, report.journal_rows(), platform=PlatformId.of(platform),
                               started_at=started_at, duration=duration)
    except (RalfError, sqlite3.Error) as e:
        click.echo(f"ralf: warning: this smoke is not journaled ({e})", err=True)


def _check_writable(path: str) -> None:
    """Refuse a JUnit FILE whose directory is missing or read-only before any check runs."""
    from ralf.errors import UsageError

    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise UsageError(f"cannot write JUnit file {path}: directory {parent} does not exist")
    if not os.access(parent, os.W_OK) or (os.path.exists(path) and not os.access(path, os.W_OK)):
        raise UsageError(f"cannot write JUnit file {path}: permission denied")


class _Progress:
    """Counts finished checks per service; a rich bar on a terminal, plain lines otherwise."""

    def __init__(self, target: str, planned: dict[str, int]) -> None:
        self.planned = planned
        self.done = {n: 0 for n in planned}
        self.failed: set[str] = set()
        self.lock = threading.Lock()
        self.finished = 0
        self.bar = None
        if sys.stderr.isatty():
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            from ralf.cli.common import console

            self.bar = Progress(TextColumn(f"smoke {target}"), BarColumn(), MofNCompleteColumn(),
                                TextColumn("{task.description}"), TimeElapsedColumn(),
                                console=console(stderr=True), transient=True)
            self.task = self.bar.add_task("", total=sum(planned.values()))
            self.bar.start()

    def on_check(self, service: str, result) -> None:
        with self.lock:
            self.done[service] += 1
            if result.status == "FAIL":
                self.failed.add(service)
            complete = self.done[service] == self.planned.get(service)
            if complete:
                self.finished += 1
            if self.bar is not None:
                self.bar.update(self.task, advance=1,
                                description=f"{self.finished}/{len(self.planned)} services, {len(self.failed)} failed")
            elif complete:
                state = "FAIL" if service in self.failed else "done"
                click.echo(f"[smoke] … {service} {state} ({self.finished}/{len(self.planned)} services)", err=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
