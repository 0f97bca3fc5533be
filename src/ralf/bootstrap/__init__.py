"""``ralf bootstrap``: preflight of the node, then Phase 1 pair by pair, the seeding, Semaphore's Phase 1 smoke.

:func:`bootstrap` is the library entry the CLI calls; the parts are :mod:`.preflight` (checks and
the fixes ralf can make), :mod:`.proxmox_api` (the seam to the Proxmox VE API) and :mod:`.run`
(the plan and the executor that runs it through the deploy machinery).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ralf.bootstrap.preflight import Preflight, run_preflight
from ralf.bootstrap.run import COMMAND, REQUEST, BootstrapExecutor, bootstrap_plan, find_resumable, summary_line
from ralf.catalog import Catalog
from ralf.serial import Record


@dataclass
class BootstrapResult(Record):
    json_fields = ("preflight", "plan", "run=report", "note", "exit_code")

    preflight: Preflight
    plan: Any
    report: Any = None  # the deploy RunReport; None when the preflight failed or on a dry run
    note: str = ""

    @property
    def exit_code(self) -> int:
        if not self.preflight.ok:
            return 1
        return self.report.exit_code if self.report is not None else 0


def bootstrap(catalog: Catalog, journal: Any, *, dry_run: bool = False, resume: str | None = None,
              reporter: Any = None, executor: BootstrapExecutor | None = None, api: Any = None,
              make_node: Callable | None = None, probes: Any = None, timeout: float | None = None,
              on_output: Callable[[str], None] = print,
              show: Callable[[Preflight, Any], None] | None = None,
              node_runner: Callable | None = None) -> BootstrapResult:
    """Preflight, then (unless ``dry_run`` or a failed check) the plan; ``show`` sees both before the run."""
    from ralf.deploy import DEFAULT_TIMEOUT, Reporter, execute, resume_point

    platform = catalog.platform
    plan = bootstrap_plan(catalog)
    resume_info = None
    if resume is not None:
        run, plan, start = resume_point(journal, find_resumable(journal, resume), lambda _args: bootstrap_plan(catalog))
        resume_info = {"run": run, "start_index": start}
    pf = run_preflight(platform, dry_run=dry_run, api=api, make_node=make_node, on_output=on_output,
                       node_runner=node_runner)
    result = BootstrapResult(pf, plan)
    if show is not None:
        show(pf, plan)
    if dry_run or not pf.ok:
        return result
    ex = executor or BootstrapExecutor(platform)
    try:
        result.report = execute(
            plan, ex, journal, catalog=catalog, reporter=reporter or Reporter(command=COMMAND),
            timeout=timeout or DEFAULT_TIMEOUT, probes=probes, run_checks=probes is not None,
            request_args={"request": REQUEST}, platform_file=str(platform.source) if platform.source else None,
            resume=resume_info)
    finally:
        ex.close()
    result.note = summary_line(ex.changes, pf.actions, result.report.ok and resume_info is None)
    return result


__all__ = ["bootstrap", "bootstrap_plan", "BootstrapResult", "BootstrapExecutor", "run_preflight", "REQUEST"]
