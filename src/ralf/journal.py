"""The journal: every deploy run and step, with task ids, outcomes, durations and triage, in SQLite.

Lives at ``<state_dir>/journal.sqlite3`` (see :func:`ralf.paths.state_dir`). It feeds ``ralf history``,
``ralf status`` (through :meth:`Journal.service_status`) and ``ralf deploy --resume``. Only what a
run did is stored — template names, task ids, results, log-derived triage — never a secret.

One journal serves every platform used from this state directory (the lab and the real one side by
side): each run records its platform's identity, a :class:`PlatformId` (the platform's name and its
file), and the readers take one to see only that platform's runs. A smoke run on its own
(``ralf smoke``) is journaled too, as a run of pattern ``smoke`` with one step (see
:meth:`Journal.record_smoke_run`); it counts on the board but is never resumed.

Each run records its owner: the ralf process's pid, host name and start time (boot id and
``/proc/<pid>/stat`` start ticks, so a reused pid is not taken for it). A run still marked
``running`` whose owner on this host is gone (SIGKILL, power loss) is marked ``interrupted`` (its
running step ``stopped``) whenever the journal is read, so ``--resume`` can continue it. A run owned
by another host is left alone: only that host can tell whether it still runs.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ralf import serial
from ralf.errors import RalfError
from ralf.states import Result

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    started_at    TEXT NOT NULL,
    finished_at   TEXT,
    request       TEXT,
    request_args  TEXT NOT NULL DEFAULT '{}',
    pattern       TEXT NOT NULL,
    fingerprint   TEXT NOT NULL,
    executor      TEXT NOT NULL,
    platform      TEXT,
    result        TEXT NOT NULL DEFAULT 'running',
    resumed_from  INTEGER,
    plan          TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS steps (
    run_id        INTEGER NOT NULL REFERENCES runs(id),
    idx           INTEGER NOT NULL,
    template      TEXT NOT NULL,
    kind          TEXT NOT NULL,
    stacks        TEXT NOT NULL DEFAULT '[]',
    target        TEXT,
    result        TEXT NOT NULL DEFAULT 'not run',
    started_at    TEXT,
    finished_at   TEXT,
    duration      REAL,
    task_id       INTEGER,
    task_url      TEXT,
    message       TEXT,
    triage        TEXT,
    from_run      INTEGER,
    PRIMARY KEY (run_id, idx)
);
CREATE TABLE IF NOT EXISTS smoke_results (
    run_id          INTEGER NOT NULL,
    idx             INTEGER NOT NULL,
    service         TEXT NOT NULL,
    status          TEXT NOT NULL,
    failed_layer    TEXT,
    diagnosis       TEXT,
    cert_days_left  INTEGER,
    at              TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS steps_by_kind ON steps(kind, finished_at);
CREATE INDEX IF NOT EXISTS smoke_by_service ON smoke_results(service, at);
"""

# Added after the first release: an older journal gets them with ALTER TABLE when opened.
ADDED_COLUMNS = (("owner_pid", "INTEGER"), ("owner_host", "TEXT"), ("owner_start", "TEXT"),
                 ("platform_name", "TEXT"))

SMOKE_PATTERN = "smoke"  # the pattern of a standalone smoke run (``ralf smoke``)

FINAL_STEP_RESULTS = (Result.SUCCEEDED, Result.FAILED, Result.STOPPED)


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def this_host() -> str:
    return socket.gethostname()


def process_start(pid: int) -> str | None:
    """``<boot id>:<start ticks>`` of process ``pid`` (``/proc/<pid>/stat`` field 22), None if unknown.

    The boot id makes a process of an earlier boot (power loss) differ from any process now.
    """
    try:
        stat = Path(f"/proc/{int(pid)}/stat").read_text(encoding="utf-8", errors="replace")
    except (OSError, ValueError):
        return None
    # field 2 (comm) is in parentheses and may hold spaces or ")": split after the last ")"
    rest = stat[stat.rfind(")") + 1:].split()
    if len(rest) < 20:
        return None
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text(encoding="utf-8").strip()
    except OSError:
        boot = "?"
    return f"{boot}:{rest[19]}"  # rest[0] is field 3 (state), so field 22 is rest[19]


def current_owner() -> dict:
    """This process as a run's owner: pid, host name and start time."""
    return {"pid": os.getpid(), "host": this_host(), "start": process_start(os.getpid())}


def owner_alive(pid: int, start: str | None) -> bool:
    """Whether the process that owned a run on this host still runs (True when it cannot be told)."""
    if start is not None:
        now = process_start(pid)
        if now is not None:
            return now == start
        if Path("/proc/self/stat").exists():
            return False  # /proc works, but there is no such process any more
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError, ValueError, OverflowError):
        return True
    return True


@dataclass(frozen=True)
class PlatformId:
    """Which platform a run was for: the platform's ``name`` and its file (resolved path).

    A run journaled before runs carried a name matches on its file alone.
    """

    name: str
    file: str | None

    @classmethod
    def of(cls, platform: Any) -> PlatformId:
        source = getattr(platform, "source", None)
        return cls(platform.name, str(Path(source).resolve()) if source else None)

    def where(self, alias: str = "runs") -> tuple[str, tuple]:
        """An SQL condition on the runs table (as ``alias``) selecting this platform's runs."""
        file_cond = f"{alias}.platform IS ?" if self.file is None else f"{alias}.platform = ?"
        return (f"({file_cond} AND ({alias}.platform_name = ? OR {alias}.platform_name IS NULL))",
                (self.file, self.name))


def default_path() -> Path:
    from ralf.paths import state_dir

    return state_dir() / "journal.sqlite3"


#: in the message of a step whose ralf died: without a task id, its start may have been in flight
REAPED = "ended without finishing the step"


def _check_schema(db: sqlite3.Connection, path: Path) -> None:
    """A journal whose tables lack the columns ralf writes is another program's (or a damaged) file."""
    import re

    for table, body in re.findall(r"CREATE TABLE IF NOT EXISTS (\w+) \((.*?)\n\);", SCHEMA, re.S):
        want = {m.group(1) for m in re.finditer(r"^\s{4}(\w+)\s+[A-Z]", body, re.M)} - {"PRIMARY"}
        have = {r[1] for r in db.execute(f"PRAGMA table_info({table})")}
        missing = sorted(want - have)
        if missing:
            raise RalfError(f"the journal {path} is not one ralf can use: its table {table} lacks "
                            f"{', '.join(missing)} (another program's file, or damaged) — move it aside")


MAX_ID = 2**63 - 1  # SQLite's largest integer: a larger run id names no run


def _guarded(method):
    """A journal that is damaged or of another schema is one clear error, never a traceback."""
    import functools

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except (sqlite3.Error, ValueError, KeyError, TypeError) as e:
            raise RalfError(f"the journal {self.path} cannot be used ({type(e).__name__}: {e}); it is damaged or "
                            "was written by another version — move it aside to start a new one") from None

    return wrapper


class Journal:
    """A handle on the journal database; cheap to open, safe to use from one thread at a time."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else default_path()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(self.path, timeout=10, check_same_thread=False)
            self.db.row_factory = sqlite3.Row
            # WAL + NORMAL: a commit per step event stays cheap, and readers (ralf status) never block a deploy.
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.executescript(SCHEMA)
            _check_schema(self.db, self.path)
            have = {r["name"] for r in self.db.execute("PRAGMA table_info(runs)")}
            for name, kind in ADDED_COLUMNS:
                if name not in have:
                    self.db.execute(f"ALTER TABLE runs ADD COLUMN {name} {kind}")
            self.db.commit()
        except (OSError, sqlite3.Error) as e:
            raise RalfError(f"cannot open the journal {self.path}: {e}") from None
        try:
            self.path.chmod(0o600)
        except OSError:
            pass

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ------------------------------------------------------------------ writing

    @_guarded
    def start_run(self, plan: Any, *, executor: str, request_args: dict | None = None,
                  platform: str | PlatformId | None = None, resumed_from: int | None = None,
                  owner: dict | None = None) -> int:
        """Record a new run and its planned steps (all ``not run``); returns the run id.

        ``platform``: the run's :class:`PlatformId` (a bare file path is accepted, without a name).
        ``owner`` (``pid``, ``host``, ``start``) defaults to this process (see :func:`current_owner`).
        """
        owner = owner if owner is not None else current_owner()
        pid = platform if isinstance(platform, PlatformId) else PlatformId("", platform) if platform else None
        with self.db:
            cur = self.db.execute(
                "INSERT INTO runs (started_at, request, request_args, pattern, fingerprint, executor, platform,"
                " platform_name, resumed_from, plan, owner_pid, owner_host, owner_start)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (now_iso(), plan.request, json.dumps(request_args or {}), plan.pattern, plan.fingerprint(),
                 executor, pid.file if pid else None, (pid.name or None) if pid else None, resumed_from,
                 serial.dumps(plan, indent=None), owner.get("pid"), owner.get("host"), owner.get("start")),
            )
            run_id = int(cur.lastrowid or 0)  # set by every INSERT
            for i, s in enumerate(plan.steps):
                self.db.execute(
                    "INSERT INTO steps (run_id, idx, template, kind, stacks, target) VALUES (?,?,?,?,?,?)",
                    (run_id, i, s.template, s.kind, json.dumps(list(s.stacks)), s.target),
                )
        return run_id

    @_guarded
    def update_step(self, run_id: int, idx: int, **fields: Any) -> None:
        """Set columns of one step: result, started_at, finished_at, duration, task_id, task_url, message,
        triage (a dict, stored as JSON), from_run."""
        allowed = {"result", "started_at", "finished_at", "duration", "task_id", "task_url", "message", "triage",
                   "from_run"}
        unknown = set(fields) - allowed
        if unknown:
            raise ValueError(f"unknown step fields: {sorted(unknown)}")
        if "triage" in fields and fields["triage"] is not None and not isinstance(fields["triage"], str):
            fields["triage"] = serial.dumps(fields["triage"], indent=None)
        if not fields:
            return
        cols = ", ".join(f"{k} = ?" for k in fields)
        with self.db:
            self.db.execute(f"UPDATE steps SET {cols} WHERE run_id = ? AND idx = ?", (*fields.values(), run_id, idx))

    @_guarded
    def record_smoke(self, run_id: int, idx: int, service: str, status: str, *, failed_layer: str | None = None,
                     diagnosis: str | None = None, cert_days_left: int | None = None, at: str | None = None) -> None:
        with self.db:
            self.db.execute(
                "INSERT INTO smoke_results (run_id, idx, service, status, failed_layer, diagnosis, cert_days_left, at)"
                " VALUES (?,?,?,?,?,?,?,?)",
                (run_id, idx, service, status, failed_layer, diagnosis, cert_days_left, at or now_iso()),
            )

    @_guarded
    def finish_run(self, run_id: int, result: str) -> None:
        with self.db:
            self.db.execute("UPDATE runs SET result = ?, finished_at = ? WHERE id = ?", (result, now_iso(), run_id))

    def record_smoke_run(self, target: str, results: list[dict], *, platform: PlatformId | None,
                         started_at: str, duration: float | None = None) -> int:
        """Journal a smoke run on its own (``ralf smoke TARGET``): one run of pattern ``smoke``, one step, and
        a result per service (``service``, ``status``, ``failed_layer``, ``diagnosis``, ``cert_days_left``).

        The run succeeded unless a service FAILed. Returns the run id.
        """
        failed = any(_smoke_result(r["status"]) == Result.FAILED for r in results)
        result = Result.FAILED if failed else Result.SUCCEEDED
        at = now_iso()
        with self.db:
            cur = self.db.execute(
                "INSERT INTO runs (started_at, finished_at, request, request_args, pattern, fingerprint, executor,"
                " platform, platform_name, result, plan) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (started_at, at, target, json.dumps({"target": target}), SMOKE_PATTERN, "", "local",
                 platform.file if platform else None, platform.name if platform else None, result, "{}"),
            )
            run_id = int(cur.lastrowid or 0)  # set by every INSERT
            self.db.execute(
                "INSERT INTO steps (run_id, idx, template, kind, target, result, started_at, finished_at, duration)"
                " VALUES (?,?,?,?,?,?,?,?,?)",
                (run_id, 0, f"ralf smoke {target}", "smoke", target, result, started_at, at,
                 None if duration is None else round(duration, 3)),
            )
            for r in results:
                self.db.execute(
                    "INSERT INTO smoke_results (run_id, idx, service, status, failed_layer, diagnosis,"
                    " cert_days_left, at) VALUES (?,?,?,?,?,?,?,?)",
                    (run_id, 0, r["service"], r["status"], r.get("failed_layer"), r.get("diagnosis"),
                     r.get("cert_days_left"), at),
                )
        return run_id

    def reap_stale(self) -> list[int]:
        """Mark ``interrupted`` every ``running`` run whose owner on this host is gone; returns their ids.

        Its ``running`` step becomes ``stopped``; steps not reached stay ``not run``. Runs of another
        host, and runs without a recorded owner (older journals), are left as they are. A journal that
        cannot be written (read-only) is left as it is too.
        """
        host = this_host()
        try:
            rows = self.db.execute(
                "SELECT id, owner_pid, owner_start FROM runs WHERE result = 'running' AND owner_host = ?"
                " AND owner_pid IS NOT NULL", (host,)).fetchall()
        except sqlite3.Error:
            return []
        reaped: list[int] = []
        for r in rows:
            if owner_alive(r["owner_pid"], r["owner_start"]):
                continue
            at = now_iso()
            why = f"interrupted: its ralf process (pid {r['owner_pid']} on {host}) {REAPED}"
            try:
                with self.db:
                    cur = self.db.execute("UPDATE runs SET result = 'interrupted', finished_at = ?"
                                          " WHERE id = ? AND result = 'running'", (at, r["id"]))
                    if cur.rowcount:
                        for step in self.db.execute("SELECT idx, task_id FROM steps WHERE run_id = ?"
                                                    " AND result = 'running'", (r["id"],)).fetchall():
                            msg = why + (f"; Semaphore task {step['task_id']} may still be running — `ralf deploy"
                                         " --resume` follows it instead of starting another"
                                         if step["task_id"] is not None else "")
                            self.db.execute("UPDATE steps SET result = 'stopped', finished_at = ?, message = ?"
                                            " WHERE run_id = ? AND idx = ?", (at, msg, r["id"], step["idx"]))
            except sqlite3.Error:
                return reaped
            if cur.rowcount:
                reaped.append(int(r["id"]))
        return reaped

    # ------------------------------------------------------------------ reading

    def _run_dict(self, row: sqlite3.Row, with_steps: bool) -> dict:
        d = dict(row)
        d["request_args"] = json.loads(d.get("request_args") or "{}")
        d.pop("plan", None)
        steps = [self._step_dict(r) for r in self.db.execute(
            "SELECT * FROM steps WHERE run_id = ? ORDER BY idx", (row["id"],))]
        d["steps_total"] = len(steps)
        d["steps_succeeded"] = sum(1 for s in steps if s["result"] == Result.SUCCEEDED)
        d["duration"] = round(sum(s["duration"] or 0 for s in steps if not s["from_run"]), 3)
        failed = next((s for s in steps if s["result"] in (Result.FAILED, Result.STOPPED)), None)
        d["failed_step"] = failed["template"] if failed else None
        if with_steps:
            d["steps"] = steps
        return d

    @staticmethod
    def _step_dict(row: sqlite3.Row) -> dict:
        d = dict(row)
        d["stacks"] = json.loads(d.get("stacks") or "[]")
        d["triage"] = json.loads(d["triage"]) if d.get("triage") else None
        d.pop("run_id", None)
        return d

    @_guarded
    def recent_runs(self, limit: int = 20, *, platform: PlatformId | None = None) -> list[dict]:
        """The newest runs first (only ``platform``'s when given), each with a step count and the failed
        step's template, if any."""
        self.reap_stale()
        cond, args = platform.where() if platform is not None else ("1", ())
        rows = self.db.execute(f"SELECT * FROM runs WHERE {cond} ORDER BY id DESC LIMIT ?",
                               (*args, int(limit))).fetchall()
        return [self._run_dict(r, with_steps=False) for r in rows]

    @_guarded
    def run(self, run_id: int) -> dict | None:
        """One run with its steps (``None`` if there is no such run)."""
        self.reap_stale()
        if not 0 < int(run_id) <= MAX_ID:
            return None
        row = self.db.execute("SELECT * FROM runs WHERE id = ?", (int(run_id),)).fetchone()
        return self._run_dict(row, with_steps=True) if row else None

    @_guarded
    def latest_run(self, *, unfinished_only: bool = False, platform: PlatformId | None = None) -> dict | None:
        """The newest deploy run (only ``platform``'s when given); with ``unfinished_only`` the newest one that
        did not succeed. Standalone smoke runs are not deploy runs."""
        self.reap_stale()
        cond, args = platform.where() if platform is not None else ("1", ())
        q = f"SELECT * FROM runs WHERE pattern != '{SMOKE_PATTERN}' AND {cond}"
        if unfinished_only:
            q += (" AND result != 'succeeded' AND id NOT IN"
                  " (SELECT resumed_from FROM runs WHERE resumed_from IS NOT NULL)")
        row = self.db.execute(q + " ORDER BY id DESC LIMIT 1", args).fetchone()
        return self._run_dict(row, with_steps=True) if row else None

    @_guarded
    def resumed_by(self, run_id: int) -> int | None:
        """The newest run that resumed ``run_id``, if any."""
        if not 0 < int(run_id) <= MAX_ID:
            return None
        row = self.db.execute("SELECT MAX(id) FROM runs WHERE resumed_from = ?", (int(run_id),)).fetchone()
        return row[0] if row and row[0] is not None else None

    @_guarded
    def service_status(self, catalog: Any, *, platform: PlatformId | None = None) -> list[dict]:
        """Per group and service, in runbook order: the last apply and the last smoke that covered it.

        With ``platform``, only that platform's runs count (a lab run says nothing about the real platform).

        ``last_apply``: the newest finished apply step whose stacks include one of the service's stacks.
        ``last_smoke``: the newest per-service smoke result, else the newest finished smoke step whose
        target covers the service (its result then stands for every service of the target).
        """
        self.reap_stale()
        if platform is not None:
            cond, args = platform.where("runs")
            ours = f"run_id IN (SELECT id FROM runs WHERE {cond})"
        else:
            ours, args = "1", ()
        applies = self.db.execute(
            "SELECT run_id, template, stacks, result, finished_at FROM steps WHERE kind = 'apply'"
            f" AND from_run IS NULL AND result IN ('succeeded','failed','stopped') AND {ours}"
            " ORDER BY finished_at DESC, run_id DESC", args
        ).fetchall()
        smoke_steps = self.db.execute(
            "SELECT run_id, idx, template, target, result, finished_at FROM steps WHERE kind = 'smoke'"
            f" AND from_run IS NULL AND result IN ('succeeded','failed','stopped') AND {ours}"
            " ORDER BY finished_at DESC, run_id DESC", args
        ).fetchall()
        per_service = self.db.execute(
            "SELECT r.*, s.template FROM smoke_results r LEFT JOIN steps s ON s.run_id = r.run_id AND s.idx = r.idx"
            f" WHERE {ours.replace('run_id', 'r.run_id', 1)} ORDER BY r.at DESC, r.rowid DESC", args
        ).fetchall()
        out: list[dict] = []
        for group in catalog.group_names:
            for service in catalog.services_of(group):
                stacks = {st.name for st in catalog.stacks if st.service == service}
                last_apply = None
                for r in applies:
                    if stacks & set(json.loads(r["stacks"] or "[]")):
                        last_apply = {"result": r["result"], "at": r["finished_at"], "run_id": r["run_id"],
                                      "template": r["template"]}
                        break
                last_smoke = None
                svc_row = next((r for r in per_service if r["service"] == service), None)
                step_row = None
                for r in smoke_steps:
                    target = catalog.targets.get(r["target"]) if r["target"] else None
                    if target is not None and service in target.services:
                        step_row = r
                        break
                # The per-service row wins when it belongs to the same step (its time is written just before the
                # step's finish time, one-second resolution) or is newer than the step.
                same_step = (svc_row is not None and step_row is not None
                             and (svc_row["run_id"], svc_row["idx"]) == (step_row["run_id"], step_row["idx"]))
                if svc_row is not None and (step_row is None or same_step
                                            or (svc_row["at"] or "") >= (step_row["finished_at"] or "")):
                    last_smoke = {"result": _smoke_result(svc_row["status"]), "at": svc_row["at"],
                                  "status": svc_row["status"], "run_id": svc_row["run_id"], "template": svc_row["template"],
                                  "diagnosis": svc_row["diagnosis"], "cert_days_left": svc_row["cert_days_left"],
                                  "failed_layer": svc_row["failed_layer"]}
                elif step_row is not None:
                    last_smoke = {"result": step_row["result"], "at": step_row["finished_at"],
                                  "run_id": step_row["run_id"], "template": step_row["template"],
                                  "diagnosis": None, "cert_days_left": None, "failed_layer": None}
                out.append({"group": group, "service": service, "last_apply": last_apply, "last_smoke": last_smoke})
        return out


def _smoke_result(status: str) -> str:
    s = (status or "").lower()
    if s in ("ok", "pass", "passed", "succeeded", "success", "warn", "warning"):
        return Result.SUCCEEDED
    if s in ("skipped", "unknown"):
        return s
    return Result.FAILED
