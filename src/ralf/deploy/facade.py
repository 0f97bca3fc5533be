"""A deploy as a library call: plan a request (or a resume), then :func:`run` it — no CLI needed.

    from ralf.catalog import Catalog
    from ralf.loader import load_platform
    import ralf.deploy

    catalog = Catalog(load_platform("platform.yaml"))
    planned = ralf.deploy.plan_request(catalog, "vault")
    report = ralf.deploy.run(catalog, planned)        # a RunReport; report.exit_code is 0 when all succeeded

:func:`run` does the wiring ``ralf deploy`` does: it chooses the executor (Semaphore when the platform
file has a ``semaphore`` section, else local), builds the Semaphore client and checks that Semaphore would
run the operator's commit, sets up the first-check probes, opens the journal, turns SIGTERM into a stop
like Ctrl-C for the duration of the run, executes and closes what it opened. Each piece can be passed in
instead (an executor object, a journal, probes, a reporter). Confirmation of a plan that changes the
shared base is the caller's business (:attr:`Planned.needs_confirmation`).
"""

from __future__ import annotations

import logging
import math
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ralf.deploy.output import Reporter
from ralf.deploy.results import RunReport
from ralf.deploy.runner import DEFAULT_TIMEOUT, execute, resume_point
from ralf.errors import RalfError, UsageError
from ralf.states import Result

log = logging.getLogger(__name__)

EXECUTORS = ("semaphore", "local")


@dataclass
class Planned:
    """What :func:`run` runs: the plan, the request it was built from, and for a resume where to start."""

    plan: Any
    request_args: dict
    resume: dict | None = None  # {"run": the journaled run, "start_index": first step to run}
    executor: str | None = None  # a resumed run's executor (kept unless the caller picks another)

    @property
    def needs_confirmation(self) -> bool:
        return bool(self.plan.needs_confirmation)


def _builder(catalog: Any) -> Callable[[dict], Any]:
    from ralf.planner import build_plan

    def build(args: dict) -> Any:
        return build_plan(catalog, args.get("request"), changed=args.get("changed"),
                          changed_from=args.get("changed_from"), repo_root=args.get("repo_root"))

    return build


def plan_request(catalog: Any, request: str | None = None, *, changed: list[str] | None = None,
                 changed_from: str | None = None, repo_root: str | None = None) -> Planned:
    """The plan for a request, as ``ralf plan`` shows it (nothing runs)."""
    args = {"request": request, "changed": changed or None, "changed_from": changed_from, "repo_root": repo_root}
    return Planned(_builder(catalog)(args), args)


def plan_resume(catalog: Any, journal: Any, run_ref: str | None = "last", *, only_failed_step: bool = False) -> Planned:
    """Where a journaled run goes on: its plan rebuilt (refused if it changed) and the step to start at.

    After a failed Smoke the run restarts at the Apply that Smoke checks (the pair is the unit) unless
    ``only_failed_step``.
    """
    from ralf.deploy.pairs import restart_index

    run, plan, start = resume_point(journal, run_ref, _builder(catalog))
    if not only_failed_step and run["steps"][start]["result"] == Result.FAILED:
        start = restart_index(plan, start, catalog)
    return Planned(plan, run["request_args"], {"run": run, "start_index": start}, executor=run["executor"])


def default_executor(platform: Any) -> str:
    """Semaphore when the platform file names one, else local (the lab, break-glass)."""
    return "semaphore" if platform.semaphore is not None else "local"


def check_commit(client: Any, catalog: Any, repo_root: str | None, notice: Callable[[str], None]) -> None:
    """Refuse before the first step when Semaphore would run another commit than the operator's HEAD."""
    from ralf.deploy.commit_check import check_commit as compare
    from ralf.planner import _default_repo_root

    platform = catalog.platform
    try:
        project = client.find_project(platform.semaphore.project)
    except RalfError:
        return  # the run records Semaphore's outage as its first step
    if project is None:
        return  # the executor explains a missing project
    root = Path(repo_root) if repo_root else _default_repo_root(catalog)
    gitea = None
    if platform.mirror is not None:  # Semaphore clones the mirror in Gitea: ask Gitea for its branch
        from ralf.gitea.api import GiteaApi

        try:
            gitea = GiteaApi.from_platform(platform)
        except RalfError as e:
            notice(f"commit check: cannot ask Gitea for the mirror: {e}")
    try:
        result = compare(client, int(project["id"]), platform.semaphore.repository.name, root,
                         mirror=platform.mirror, gitea=gitea)
    finally:
        if gitea is not None:
            gitea.close()
    if result.refuses:
        raise RalfError(f"not deploying: {result.message} (or --no-commit-check to run Semaphore's commit)")
    notice(f"commit check: {result.message}")


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


@contextmanager
def sigterm_stops_like_ctrl_c() -> Iterator[None]:
    """SIGTERM (a service manager, ``kill``) ends the run like Ctrl-C: the running task is stopped and journaled.

    Only the main thread can own signal handlers; elsewhere this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def run(
    catalog: Any,
    planned: Planned,
    *,
    executor: str | Any | None = None,
    journal: Any = None,
    reporter: Reporter | None = None,
    timeout: float | None = None,
    checks: bool = True,
    probes: Any = None,
    commit_check: bool = True,
    show_log: bool = True,
    notice: Callable[[str], None] | None = None,
) -> RunReport:
    """Run a planned deploy to its end (or its first failure) and return the report.

    ``executor``: ``"semaphore"``, ``"local"``, an executor object, or None (a resume keeps its run's
    executor; otherwise :func:`default_executor`). ``checks=False`` classifies a failure without the first
    checks. ``notice`` receives one-line remarks for the operator (the executor chosen for them, the commit
    check's verdict); by default they are logged. Raises :class:`RalfError` for what stops a deploy before
    its first step (bad options, no Semaphore section, another commit in Semaphore).
    """
    from ralf.journal import Journal

    say = notice or log.warning
    if timeout is not None and not (math.isfinite(timeout) and timeout > 0):
        raise UsageError("--timeout must be a positive, finite number of seconds")
    platform = catalog.platform
    choice = executor if executor is not None else planned.executor
    if choice is None:
        choice = default_executor(platform)
        if choice == "local":
            say("the platform file has no semaphore section: running locally (--executor local)")
    if isinstance(choice, str) and choice not in EXECUTORS:
        raise UsageError(f"unknown executor {choice!r}; expected one of: {', '.join(EXECUTORS)}")
    log.info("deploy: %d step(s) with the %s executor", len(planned.plan.steps),
             choice if isinstance(choice, str) else getattr(choice, "name", type(choice).__name__))

    client = None
    own_journal = journal is None
    try:
        if choice == "semaphore":
            from ralf.deploy.semaphore_exec import SemaphoreExecutor
            from ralf.semaphore.settings import client_from_platform

            if platform.semaphore is None:
                raise UsageError("the platform file has no semaphore section; use --executor local")
            client = client_from_platform(platform)
            ex: Any = SemaphoreExecutor(client, platform.semaphore.project)
            if commit_check:
                check_commit(client, catalog, planned.request_args.get("repo_root"), say)
        elif choice == "local":
            import ralf.deploy

            ex = ralf.deploy.LocalExecutor(platform)  # looked up on the package: tests replace it there
        else:
            ex = choice
        if probes is None and checks:
            from ralf.triage import Probes

            probes = Probes(platform, semaphore_ping=client.ping if client is not None else None,
                            semaphore_url=client.base_url if client is not None else None)
        if own_journal:
            journal = Journal()
        with sigterm_stops_like_ctrl_c():
            return execute(
                planned.plan, ex, journal, catalog=catalog, reporter=reporter or Reporter(show_log=show_log),
                timeout=timeout or DEFAULT_TIMEOUT, probes=probes, run_checks=checks,
                request_args=planned.request_args,
                platform_file=str(platform.source) if platform.source else None, resume=planned.resume,
            )
    finally:
        if client is not None:
            client.close()
        if own_journal and journal is not None:
            journal.close()


__all__ = ["EXECUTORS", "Planned", "check_commit", "default_executor", "plan_request", "plan_resume", "run",
           "sigterm_stops_like_ctrl_c"]
