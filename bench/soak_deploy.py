"""Soak: many deploys against the fault-injecting FakeSemaphore, a user who resumes after every failure.

Each deploy gets one random fault (or none) at a random step, from the list issue 14 names:

    late-start       the server creates the task only after the client stopped waiting for the answer
    late-answer      the task is created at once, the answer comes after the client stopped waiting
    start-outage     the task is created, the answer lost, then Semaphore is unreachable (drop or HTML 502)
    token-expiry     the token expires while ralf follows the task (the user renews it, then resumes)
    stop-unconfirmed the step times out while Semaphore is unreachable: the stop never arrives
    garbage-once     a status poll answered 200 with null / an HTML portal page / a list, once or twice
    garbage-always   every status poll answered with garbage: the step ends, its task asked to stop
    ctrl-c-start     Ctrl-C while the start request is in flight, the server creating the task late
    kill             ralf killed with SIGKILL while a task runs (a forked child is the ralf process)

After a failed attempt the user runs `ralf deploy --resume` (up to MAX_ATTEMPTS attempts in all, faults may
strike again). At the end the server's task list is compared with the journal:

    duplicates   a step got a second task although its earlier one had succeeded or was still active
    unknown      tasks on the server no journaled step knows
    tracebacks   an exception other than ralf's own errors escaped (or a killed child died of one)
    hangs        an attempt that did not end within HANG_SECONDS

    python bench/soak_deploy.py [--deploys 200] [--seed 14]
"""

from __future__ import annotations

import argparse
import io
import multiprocessing
import os
import random
import re
import signal
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter
from itertools import pairwise
from pathlib import Path

from fakesem import PROJECT, ROOT, FakeSemaphore, epoch
from fakesem import seeded as seeded_fake

from ralf.catalog import Catalog
from ralf.deploy import Reporter, SemaphoreExecutor, execute, resume_point
from ralf.errors import RalfError
from ralf.journal import Journal
from ralf.loader import load_platform
from ralf.planner import build_plan
from ralf.semaphore.client import SemaphoreClient

FAULTS = ["none", "late-start", "late-answer", "start-outage", "token-expiry", "stop-unconfirmed",
          "garbage-once", "garbage-always", "ctrl-c-start", "kill"]
MAX_ATTEMPTS = 6
HANG_SECONDS = 60.0
TIMEOUT = 5.0  # a step's --timeout
PORTAL = "<html><head><title>Guest portal</title></head><body>Sign in</body></html>"
BAD_GATEWAY = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>nginx</body>\r\n</html>\r\n"
TAG = re.compile(r"ralf deploy: run (\d+), step (\d+)/(\d+)")


class FaultyClient:
    """A client that arms one server-side fault just before the chosen step's start or poll."""

    def __init__(self, inner: SemaphoreClient, fake: FakeSemaphore, fault: str, at_step: int, rng: random.Random):
        self.inner, self.fake, self.fault, self.at, self.rng = inner, fake, fault, at_step, rng
        self.starts = 0
        self.polls = 0
        self.armed = False
        self.step_started = 0.0

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def start_task(self, pid, tid, **kw):
        self.starts += 1
        self.polls = 0
        self.step_started = time.monotonic()
        if self.starts != self.at or self.armed:
            return self.inner.start_task(pid, tid, **kw)
        self.armed = True
        fake, rng = self.fake, self.rng
        if self.fault == "late-start":
            fake.slow_next(1, rng.uniform(1.2, 2.5), work="after", method="POST", path="/tasks")
        elif self.fault == "late-answer":
            fake.slow_next(1, rng.uniform(1.2, 2.5), work="before", method="POST", path="/tasks")
        elif self.fault == "start-outage":
            fake.lose_next_start_response()
            try:
                return self.inner.start_task(pid, tid, **kw)
            finally:
                fake.outage(rng.uniform(0.3, 1.5), status=rng.choice([0, 502]), body=BAD_GATEWAY)
        elif self.fault == "ctrl-c-start":
            fake.slow_next(1, rng.uniform(0.5, 1.5), work="after", method="POST", path="/tasks")
            threading.Thread(target=self._swallow, args=(pid, tid, kw), daemon=True).start()
            time.sleep(0.05)
            raise KeyboardInterrupt
        elif self.fault == "stop-unconfirmed":
            tpl = fake.objects["templates"][tid]["name"]
            fake.script(tpl, "success", TIMEOUT * 0.3)  # outlives the step's (shortened) timeout
            self.long_template = tpl
        return self.inner.start_task(pid, tid, **kw)

    def _swallow(self, pid, tid, kw):
        try:
            self.inner.start_task(pid, tid, **kw)
        except Exception:  # noqa: BLE001 - the interrupted ralf never reads this answer
            pass

    def get_task(self, pid, task_id):
        self.polls += 1
        if self.starts == self.at and self.armed:
            if self.fault == "token-expiry" and self.polls == 2:
                self.fake.expire_token(self.inner._token)
            elif self.fault == "garbage-once" and self.polls == 2:
                body = self.rng.choice([("null", "application/json"), (PORTAL, "text/html"), ("[]", "application/json")])
                self.fake.garble_next(self.rng.randint(1, 2), body[0], ctype=body[1], method="GET",
                                      path=f"/tasks/{task_id}")
            elif self.fault == "garbage-always" and self.polls == 2:
                self.fake.garble_next(1000, PORTAL, ctype="text/html", method="GET", path=f"/tasks/{task_id}")
            elif self.fault == "stop-unconfirmed" and time.monotonic() - self.step_started > TIMEOUT * 0.1:
                self.fault = "spent"
                self.fake.outage(TIMEOUT * 0.3 + 0.5)
                self.fake.script(self.long_template, "success", 0.05)  # the next run of it is quick again
        return self.inner.get_task(pid, task_id)


def seeded(catalog: Catalog) -> FakeSemaphore:
    srv, _ = seeded_fake(catalog)
    for t in catalog.templates:
        srv.script(t.name, "success", 0.05, log=[f"{t.name}: working"])
    return srv


def executor(client) -> SemaphoreExecutor:
    return SemaphoreExecutor(client, PROJECT, stop_grace=0.5, start_wait=4.0, interrupt_wait=0.3, lost_after=4.0,
                             complain_every=5.0, log_settle=0.05)


def attempt(plan, client, journal_path, catalog, timeout, resume=None):
    """One `ralf deploy` (or `--resume`): returns the run's exit code."""
    with Journal(journal_path) as journal:
        report = execute(plan, executor(client), journal, catalog=catalog, reporter=Reporter(io.StringIO()),
                         timeout=timeout, run_checks=False, request_args={"request": plan.request}, resume=resume)
    return report.exit_code


def killed_attempt(plan, fake, journal_path, catalog, rng) -> bool:
    """Run the attempt in a forked ralf and SIGKILL it while a task runs; True when it died of an exception."""
    ctx = multiprocessing.get_context("fork")
    before = set(fake.tasks)
    token = fake.new_token()

    def child():
        try:
            with SemaphoreClient(fake.url, token=token, timeout=1.0, backoff=0.02) as c:
                attempt(plan, c, journal_path, catalog, TIMEOUT)
        except RalfError:
            os._exit(1)
        except BaseException:  # noqa: BLE001
            traceback.print_exc()
            os._exit(70)
        os._exit(0)

    proc = ctx.Process(target=child)
    proc.start()
    end = time.monotonic() + 10
    while time.monotonic() < end and proc.is_alive():
        if any(t["status"] == "running" for i, t in list(fake.tasks.items()) if i not in before):
            time.sleep(rng.uniform(0.0, 0.05))
            break
        time.sleep(0.01)
    if proc.is_alive():
        os.kill(proc.pid, signal.SIGKILL)
    proc.join()
    return proc.exitcode == 70


def soak(n: int, seed: int) -> dict:
    rng = random.Random(seed)
    catalog = Catalog(load_platform(ROOT / "platform.yaml"))
    fake = seeded(catalog)
    plans = {r: build_plan(catalog, r) for r in ("vault", "n8n", "minio")}
    full = build_plan(catalog)
    counts = Counter(tracebacks=0, hangs=0, gave_up=0, attempts=0, resumes=0)
    faults = Counter()
    tb_samples: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        journal_path = Path(tmp) / "journal.sqlite3"
        for d in range(n):
            plan = full if rng.random() < 0.1 else plans[rng.choice(sorted(plans))]
            resume = None
            ok = False
            fresh = True  # nothing journaled yet: the next attempt is a plain `ralf deploy`
            for a in range(MAX_ATTEMPTS):
                fault = rng.choice(FAULTS) if a == 0 or rng.random() < 0.3 else "none"
                faults[fault] += 1
                counts["attempts"] += 1
                counts["resumes"] += not fresh
                if not fresh:
                    with Journal(journal_path) as j:
                        try:
                            old, plan, start = resume_point(j, None, lambda args: build_plan(catalog, args["request"]))
                        except RalfError as e:
                            tb_samples.append(f"deploy {d}: resume refused: {e}")
                            break
                    resume = {"run": old, "start_index": start}
                if fault == "kill" and fresh:
                    counts["tracebacks"] += killed_attempt(plan, fake, journal_path, catalog, rng)
                    fresh = False
                    continue
                token = fake.new_token()  # the user's current token (a fault may have expired the last one)
                at = rng.randint(1, len(plan.steps) - (start if resume else 0))
                result: dict = {}

                def one(token=token, fault=fault, at=at, plan=plan, resume=resume, result=result):
                    try:
                        with SemaphoreClient(fake.url, token=token, timeout=1.0, backoff=0.02) as c:
                            faulty = FaultyClient(c, fake, fault, at, rng)
                            timeout = TIMEOUT * 0.2 if fault == "stop-unconfirmed" else TIMEOUT
                            result["code"] = attempt(plan, faulty, journal_path, catalog, timeout, resume)
                    except RalfError as e:
                        result["code"] = e.exit_code
                        result["error"] = str(e)
                    except BaseException:  # noqa: BLE001
                        result["traceback"] = traceback.format_exc()

                t = threading.Thread(target=one, daemon=True)
                t.start()
                t.join(HANG_SECONDS)
                if t.is_alive():
                    counts["hangs"] += 1
                    break
                if "traceback" in result:
                    counts["tracebacks"] += 1
                    tb_samples.append(result["traceback"])
                    break
                if result.get("code") == 0:
                    ok = True
                    break
                fresh = "error" in result  # refused before a run was journaled: the user deploys again
                if fresh:
                    tb_samples.append(f"deploy {d}, attempt {a + 1} ({fault}): {result['error']}")
                    resume = None
                time.sleep(0.05)
            counts["gave_up"] += not ok
            if (d + 1) % 25 == 0:
                print(f"  {d + 1}/{n} deploys", flush=True)
        time.sleep(1.0)  # let late starts land and tasks finish before counting
        with Journal(journal_path) as j:
            runs = {r["id"]: j.run(r["id"]) for r in j.recent_runs(100000)}
    tasks = dict(fake.tasks)
    fake.stop()
    return {"counts": counts, "faults": faults, "runs": runs, "tasks": tasks, "samples": tb_samples}


def judge(runs: dict, tasks: dict) -> tuple[int, int, list[str]]:
    """(duplicates, unknown tasks, descriptions) from the server's tasks and the journal's runs."""
    def root(rid: int) -> int:
        while runs.get(rid, {}).get("resumed_from"):
            rid = runs[rid]["resumed_from"]
        return rid

    journaled = {s["task_id"] for r in runs.values() for s in r["steps"] if s["task_id"] is not None}
    unknown = sorted(set(tasks) - journaled)
    by_step: dict[tuple[int, int], list[dict]] = {}
    for t in tasks.values():
        m = TAG.fullmatch(t.get("message") or "")
        if m:
            by_step.setdefault((root(int(m.group(1))), int(m.group(2))), []).append(t)
    dups = []
    for key, ts in by_step.items():
        ts.sort(key=lambda t: t["id"])
        for a, b in pairwise(ts):
            if a["status"] == "success" or epoch(a["end"]) > epoch(b["created"]):
                dups.append(f"step {key}: task {b['id']} started while task {a['id']} was {a['status']}")
    notes = dups + [f"task {i} ({tasks[i]['message']!r}, {tasks[i]['status']}) is not in the journal" for i in unknown]
    return len(dups), len(unknown), notes


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--deploys", type=int, default=200)
    ap.add_argument("--seed", type=int, default=14)
    args = ap.parse_args(argv)
    t0 = time.monotonic()
    res = soak(args.deploys, args.seed)
    dups, unknown, notes = judge(res["runs"], res["tasks"])
    c = res["counts"]
    print(f"soak: {args.deploys} deploys, {c['attempts']} attempts ({c['resumes']} resumes), "
          f"{len(res['tasks'])} tasks, {time.monotonic() - t0:.0f} s")
    print("faults: " + ", ".join(f"{k} {v}" for k, v in sorted(res["faults"].items())))
    print(f"duplicates {dups}\nunknown tasks {unknown}\ntracebacks {c['tracebacks']}\nhangs {c['hangs']}\n"
          f"not finished after {MAX_ATTEMPTS} attempts {c['gave_up']}")
    for line in (notes + res["samples"])[:20]:
        print("  " + line.rstrip().replace("\n", "\n  "))
    return 1 if dups or unknown or c["tracebacks"] or c["hangs"] else 0


if __name__ == "__main__":
    sys.exit(main())
