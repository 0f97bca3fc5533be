"""Orchestration overhead of an 8-step deploy: ralf (websocket; polling) vs a fixed 2-second polling loop.

All run the runbook's standard order (8 templates) against a FakeSemaphore on 127.0.0.1, one after the
other in this one run, for each task length given (default 0.7 s and 1.9 s: the overhead of a fixed poll
depends on where the task's end falls between two polls). The floor is the server's own time:

    overhead = wall time of the deploy - sum of the tasks' own times (created → end, from the server)

so it leaves out Semaphore's queue tick (a task waits up to 5 s for the pool's next tick, 2.5 s on
average), which a real deploy pays on every step whichever way it is followed and which dominates the
overhead of both. The "original" loop is what `sem-run-template.sh` did per template: resolve the
template id, start the task, then GET the task every 2 s until it is finished, then fetch the output.

    python bench/bench_deploy.py [--task-seconds 0.7,1.9]
"""

from __future__ import annotations

import argparse
import io
import tempfile
import time
from pathlib import Path

from fakesem import PROJECT, ROOT, FakeSemaphore, epoch
from fakesem import seeded as seeded_fake

from ralf.catalog import Catalog
from ralf.deploy import Reporter, SemaphoreExecutor, execute
from ralf.journal import Journal
from ralf.loader import load_platform
from ralf.planner import build_plan
from ralf.semaphore.client import SemaphoreClient


def task_seconds(srv: FakeSemaphore, ids: list[int]) -> float:
    return sum(epoch(srv.tasks[i]["end"]) - epoch(srv.tasks[i]["created"]) for i in ids)


def seeded(catalog: Catalog, plan, seconds: float, websocket: bool = True) -> FakeSemaphore:
    srv, _ = seeded_fake(catalog, websocket=websocket)
    for s in plan.steps:
        srv.script(s.template, "success", seconds, log=[f"{s.template}: line {i}" for i in range(5)])
    return srv


def run_ralf(catalog: Catalog, plan, seconds: float, websocket: bool = True) -> tuple[float, float, int]:
    srv = seeded(catalog, plan, seconds, websocket)
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
    ap.add_argument("--task-seconds", default="0.7,1.9", help="how long each scripted task runs (comma-separated)")
    args = ap.parse_args()
    catalog = Catalog(load_platform(ROOT / "platform.yaml"))
    plan = build_plan(catalog)
    n = len(plan.steps)
    ways = (("ralf, websocket", lambda c, p, s: run_ralf(c, p, s, True)),
            ("ralf, polling", lambda c, p, s: run_ralf(c, p, s, False)),
            ("original, 2 s polling", run_original))
    for seconds in (float(x) for x in args.task_seconds.split(",")):
        print(f"{n}-step deploy (the standard order), each task {seconds:g} s, FakeSemaphore on 127.0.0.1, "
              "no queue tick")
        over = {}
        for name, fn in ways:
            wall, own, reqs = fn(catalog, plan, seconds)
            over[name] = wall - own
            print(f"  {name:<22} wall {wall:6.2f} s  tasks {own:6.2f} s  overhead {over[name]:6.2f} s "
                  f"= {over[name] / n:5.3f} s/step  ({reqs} requests)")
        ws, orig = over["ralf, websocket"], over["original, 2 s polling"]
        print(f"  overhead per step: ralf {ws / n:.3f} s vs original {orig / n:.3f} s = "
              f"{orig / ws if ws > 0 else float('inf'):.1f}x; beside a 2.5 s average queue tick per step both are "
              f"{(2.5 + orig / n) / (2.5 + ws / n):.2f}x apart")


if __name__ == "__main__":
    main()
