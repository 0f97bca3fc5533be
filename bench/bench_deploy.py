"""Orchestration overhead of an 8-step deploy: ralf's executor vs a fixed 2-second polling loop.

Both run the runbook's standard order (8 templates) against the same FakeSemaphore on 127.0.0.1,
one after the other in this one run. Every task is scripted to take TASK_SECONDS; the fake queues
nothing (no start latency), so the overhead is

    wall time of the deploy - sum of the tasks' own run times (created → end, from the server)

The "original" loop is what `sem-run-template.sh` did per template: resolve the template id, start
the task, then GET the task every 2 s until it is finished, then fetch the output.

    python bench/bench_deploy.py [--task-seconds 0.7]
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from ralf.catalog import Catalog  # noqa: E402
from ralf.deploy import Reporter, SemaphoreExecutor, execute  # noqa: E402
from ralf.journal import Journal  # noqa: E402
from ralf.loader import load_platform  # noqa: E402
from ralf.planner import build_plan  # noqa: E402
from ralf.semaphore.client import SemaphoreClient  # noqa: E402
from ralf.semaphore.fake import FakeSemaphore  # noqa: E402

PROJECT = "RALF Bootstrap"


def _ts(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def task_seconds(srv: FakeSemaphore, ids: list[int]) -> float:
    return sum(_ts(srv.tasks[i]["end"]) - _ts(srv.tasks[i]["created"]) for i in ids)


def seeded(catalog: Catalog, plan, seconds: float) -> FakeSemaphore:
    srv = FakeSemaphore().start()
    pid = srv.add_project(PROJECT)
    for t in catalog.templates:
        srv.insert("templates", pid, name=t.name, app="bash", playbook="run.sh")
    for s in plan.steps:
        srv.script(s.template, "success", seconds, log=[f"{s.template}: line {i}" for i in range(5)])
    return srv


def run_ralf(catalog: Catalog, plan, seconds: float) -> tuple[float, float, int]:
    srv = seeded(catalog, plan, seconds)
    try:
        with tempfile.TemporaryDirectory() as tmp, SemaphoreClient(srv.url, token=srv.token) as client:
            journal = Journal(Path(tmp) / "journal.sqlite3")
            t0 = time.perf_counter()
            report = execute(plan, SemaphoreExecutor(client, PROJECT), journal, catalog=catalog,
                             reporter=Reporter(io.StringIO()), run_checks=False)
            wall = time.perf_counter() - t0
            journal.close()
            assert report.ok, report.to_dict()
            own = task_seconds(srv, [s.task_id for s in report.steps])
            return wall, own, len(srv.requests)
    finally:
        srv.stop()


def run_original(catalog: Catalog, plan, seconds: float, poll: float = 2.0) -> tuple[float, float, int]:
    """sem-run-template.sh, once per template: resolve, start, poll every `poll` s, fetch the output."""
    srv = seeded(catalog, plan, seconds)
    ids = []
    try:
        with SemaphoreClient(srv.url, token=srv.token) as client:
            t0 = time.perf_counter()
            for step in plan.steps:
                pid = client.find_project(PROJECT)["id"]
                tid = next(t["id"] for t in client.list_templates(pid) if t["name"] == step.template)
                task = client.start_task(pid, tid)
                while True:
                    status = client.get_task(pid, task["id"])["status"]
                    if status in ("success", "error", "stopped"):
                        break
                    time.sleep(poll)
                client.task_output(pid, task["id"])
                ids.append(task["id"])
            wall = time.perf_counter() - t0
        return wall, task_seconds(srv, ids), len(srv.requests)
    finally:
        srv.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task-seconds", type=float, default=0.7, help="how long each scripted task runs")
    args = ap.parse_args()
    catalog = Catalog(load_platform(ROOT / "platform.yaml"))
    plan = build_plan(catalog)
    n = len(plan.steps)
    print(f"8-step deploy ({n} steps: the standard order), each task scripted to {args.task_seconds:g} s, "
          "FakeSemaphore on 127.0.0.1, no queueing")
    rows = []
    for name, fn in (("ralf (adaptive polling)", run_ralf), ("original (fixed 2 s polling)", run_original)):
        wall, own, reqs = fn(catalog, plan, args.task_seconds)
        over = wall - own
        rows.append((name, wall, own, over, reqs))
        print(f"  {name:<30} wall {wall:6.2f} s  tasks {own:6.2f} s  overhead {over:6.2f} s "
              f"= {over / n:5.3f} s/step  ({reqs} requests)")
    ralf_over, orig_over = rows[0][3], rows[1][3]
    ratio = orig_over / ralf_over if ralf_over > 0 else float("inf")
    print(f"overhead per step: ralf {ralf_over / n:.3f} s vs original {orig_over / n:.3f} s "
          f"→ ralf's overhead is {ratio:.1f}x smaller (goal: < 0.2 s per step: "
          f"{'met' if ralf_over / n < 0.2 else 'NOT met'})")


if __name__ == "__main__":
    main()
