"""What following one long task costs Semaphore: live over its websocket vs polling, in bytes and in delay.

One task of SECONDS (default 60) writing LINES log lines (default 20,000, ~85 bytes each) evenly over
its run, on a FakeSemaphore on 127.0.0.1 — once on a server that offers ``/api/ws`` (ralf follows live),
once on one that does not (ralf polls). Both runs print

- bytes Semaphore sent to follow the task (its status and output answers + websocket frames) ÷ the log's size
  (one read of the whole ``/output``, the least any client that shows the whole log must fetch);
- requests sent, and how long after the task's end ralf reported it (the follow's own delay).

The original's way (`sem-run-template.sh`: a status GET every 2 s, the output once at the end, nothing
shown while it runs) is printed for reference: 1.0x the log plus one status answer per 2 s, and up to
2 s of delay.

    python bench/bench_follow.py [--seconds 60] [--lines 20000]
"""

from __future__ import annotations

import argparse
import io
import tempfile
import time
from pathlib import Path

from fakesem import PROJECT, ROOT, epoch, seeded

from ralf.catalog import Catalog
from ralf.deploy import Reporter, SemaphoreExecutor, execute
from ralf.journal import Journal
from ralf.loader import load_platform
from ralf.planner import build_plan
from ralf.semaphore.client import SemaphoreClient

TEMPLATE = "RALF Vault Apply"


def follow(catalog: Catalog, seconds: float, lines: int, websocket: bool) -> dict:
    plan = build_plan(catalog, TEMPLATE)
    log = [f"ok: [vaultwarden] => (item=/etc/vaultwarden/conf.d/{i:06d}.env) changed=false" for i in range(lines)]
    srv, pid = seeded(catalog, websocket=websocket)
    with srv, tempfile.TemporaryDirectory() as tmp, SemaphoreClient(srv.url, token=srv.token) as client:
        srv.script(TEMPLATE, "success", seconds, log=log)
        journal = Journal(Path(tmp) / "journal.sqlite3")
        out = io.StringIO()
        report = execute(plan, SemaphoreExecutor(client, PROJECT), journal, catalog=catalog,
                         reporter=Reporter(out), timeout=seconds * 3, run_checks=False)
        noticed = time.time()
        journal.close()
        assert report.ok, report.to_dict()
        task_id = report.steps[0].task_id
        sent = srv.bytes_sent(f"/tasks/{task_id}") + srv.ws_bytes()  # the follow's share: status, log, events
        requests = len(srv.requests)
        shown = out.getvalue().count(f"  [{TEMPLATE}] ok: [vaultwarden]")
        assert shown == lines, f"{shown} of {lines} log lines shown"
        ended = epoch(srv.tasks[task_id]["end"])
        srv.clear_requests()
        client.task_output(pid, task_id)
        log_size = srv.bytes_sent("/output")
    return {"bytes": sent, "log": log_size, "requests": requests, "delay": noticed - ended}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0, help="how long the task runs")
    ap.add_argument("--lines", type=int, default=20_000, help="log lines it writes, evenly over its run")
    args = ap.parse_args()
    catalog = Catalog(load_platform(ROOT / "platform.yaml"))
    print(f"one task of {args.seconds:g} s writing {args.lines} log lines, FakeSemaphore on 127.0.0.1")
    rows = {}
    for name, ws in (("websocket", True), ("polling", False)):
        r = rows[name] = follow(catalog, args.seconds, args.lines, ws)
        print(f"  {name:<10} {r['bytes'] / 1e6:7.2f} MB sent for a {r['log'] / 1e6:.2f} MB log = "
              f"{r['bytes'] / r['log']:4.2f}x the log   {r['requests']:4d} requests   "
              f"end reported {r['delay']:.2f} s after the task ended")
    polls = args.seconds / 2
    print(f"  original   1.00x the log + {polls:.0f} status answers, no line shown before the end, "
          "up to 2 s of delay (status GET every 2 s)")
    ws, poll = rows["websocket"], rows["polling"]
    print(f"bytes read / log size: websocket {ws['bytes'] / ws['log']:.2f} (goal <= 1.2), "
          f"polling {poll['bytes'] / poll['log']:.2f} (goal <= 3); "
          f"polling costs Semaphore {poll['bytes'] / ws['bytes']:.1f}x the websocket's bytes")


if __name__ == "__main__":
    main()
