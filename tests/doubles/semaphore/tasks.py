"""The fake Semaphore's tasks: start, run as scripted, log, list, output, stop, delete; the events on ``/api/ws``.

``POST /project/<pid>/tasks`` queues a task that goes waiting → starting → running → success|error as scripted
per template name (:meth:`TasksApi.script`); a second task of the same template waits for the first;
``start_latency`` holds every task in ``waiting`` (the 5-second pool tick); stop → stopping → stopped. Log
lines reach ``/output`` only ``log_lag`` after they were written (the real server's asynchronous log
channel), while ``/api/ws`` gets each line and status change at once. An unknown task id is 400 (the real
``GetTaskMiddleware``), not 404; 2.10 has no ``raw_output`` and its ``stop`` needs a body.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from doubles.semaphore import ws
from doubles.semaphore.bodies import BadRequest, check_body, need_object, now
from doubles.semaphore.routing import Answer, Request, Route

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
FINISHED = ("success", "error", "stopped")
ACTIVE = ("waiting", "starting", "waiting_confirmation", "confirmed", "running", "stopping")
_TASK = r"/project/(?P<pid>\d+)/tasks/(?P<tid>\d+)"


@dataclass
class Script:
    outcome: str = "success"
    duration: float = 0.2
    log: list[str] = field(default_factory=list)


class TasksApi:
    """Mixed into :class:`~doubles.semaphore.server.FakeSemaphore`; the state lives there."""

    version: str
    user: str
    start_latency: float
    log_lag: float
    lock: threading.RLock
    objects: dict[str, dict[int, dict]]
    tasks: dict[int, dict]
    outputs: dict[int, list[dict]]
    subscribers: list[ws.Subscriber]
    _visible_at: dict[int, list[float]]
    _scripts: dict[str, Script]
    _stop_events: dict[int, threading.Event]
    _shutdown: threading.Event
    _lose_start: int
    _next: Callable[[str], int]
    _project: Callable[[int], dict]
    _object: Callable[[str, int, int], dict]
    find: Callable[[str, int, str], list[dict]]

    def task_routes(self) -> list[Route]:
        routes = [
            Route(r"/project/(?P<pid>\d+)/templates/(?P<oid>\d+)/tasks(?P<last>/last)?",
                  {"GET": self.template_tasks}),  # there is no POST .../templates/<id>/tasks
            Route(r"/project/(?P<pid>\d+)/tasks", {"GET": self.list_tasks, "POST": self.start_task}),
            Route(r"/project/(?P<pid>\d+)/tasks/last", {"GET": self.list_tasks}),
            Route(_TASK, {"GET": self.get_task, "DELETE": self.delete_task}, guard=self.task_of),
            Route(_TASK + "/output", {"GET": self.task_output}, guard=self.task_of),
            Route(_TASK + "/stop", {"POST": self.stop_task}, guard=self.task_of),
        ]
        if self.version == "2.16":
            routes += [
                Route(r"/project/(?P<pid>\d+)/templates/(?P<oid>\d+)/stop_all_tasks",
                      {"POST": self.stop_template_tasks}, fallthrough=True),
                Route(_TASK + "/raw_output", {"GET": self.task_raw_output}, guard=self.task_of),
            ]
        else:
            routes.append(Route(_TASK + "/raw_output", {"*": lambda req: Answer(404, ctype="text/plain")}))
        return routes

    # ------------------------------------------------------------------ test hooks

    def script(self, template_name: str, outcome: str = "success", duration: float = 0.2,
               log: list[str] | None = None) -> None:
        """How tasks of ``template_name`` run: ``success``, ``error`` or ``hang`` (until stopped)."""
        if outcome not in ("success", "error", "hang"):
            raise ValueError("outcome must be success, error or hang")
        self._scripts[template_name] = Script(outcome, duration, list(log or []))

    # ------------------------------------------------------------------ state: events and log

    def _task_with_tpl(self, task: dict) -> dict:
        out = dict(task)
        tpl = self.objects["templates"].get(task["template_id"]) or {}
        out.update(tpl_playbook=tpl.get("playbook", ""), tpl_alias=tpl.get("name", ""), tpl_type=tpl.get("type", ""),
                   tpl_app=tpl.get("app", ""), user_name=self.user, build_task=None)
        return out

    def _push(self, event: dict) -> None:
        """Send one event to every websocket (the fake's users are all admins, who get every project's)."""
        data = json.dumps(event, separators=(",", ":"), sort_keys=True).encode()  # as Go marshals a map
        with self.lock:
            self.subscribers = [s for s in self.subscribers if s.offer(data)]

    def _push_status(self, task: dict) -> None:
        self._push({"type": "update", "start": task["start"], "end": task["end"], "status": task["status"],
                    "task_id": task["id"], "template_id": task["template_id"], "project_id": task["project_id"],
                    "version": task.get("version")})

    def _log(self, tid: int, line: str) -> None:
        with self.lock:
            rec: dict[str, Any] = {"task_id": tid, "time": now(), "output": line}
            task = self.tasks.get(tid)
            self._push({"type": "log", "output": line, "time": rec["time"], "task_id": tid,
                        "project_id": task["project_id"] if task else None})
            if self.version == "2.16":
                rec["id"] = sum(len(v) for v in self.outputs.values()) + 1
            else:
                rec["task"] = ""
            self.outputs.setdefault(tid, []).append(rec)
            self._visible_at.setdefault(tid, []).append(time.monotonic() + self.log_lag)

    def _visible_output(self, tid: int) -> list[dict]:
        now_ = time.monotonic()
        records, times = self.outputs.get(tid, []), self._visible_at.get(tid, [])
        return [r for r, at in zip(records, times, strict=False) if at <= now_]

    # ------------------------------------------------------------------ state: a task's life

    def _start_task(self, pid: int, body: Any) -> dict:
        self._project(pid)
        check_body("task", body, self.version)
        tpl_id = body.get("template_id")
        if not tpl_id and self.version == "2.16" and body.get("template_name"):
            named = self.find("templates", pid, body["template_name"])
            tpl_id = named[0]["id"] if named else None
        tpl = self.objects["templates"].get(tpl_id or 0)
        if tpl is None or tpl["project_id"] != pid:
            raise BadRequest(None, 404)
        tid = self._next("task")
        task = {"id": tid, "template_id": tpl["id"], "project_id": pid, "status": "waiting",
                "debug": bool(body.get("debug")), "dry_run": bool(body.get("dry_run")), "diff": bool(body.get("diff")),
                "playbook": body.get("playbook") or "", "environment": body.get("environment") or "",
                "limit": body.get("limit") or "", "secret": "", "arguments": body.get("arguments"),
                "git_branch": body.get("git_branch"), "user_id": 1, "integration_id": None, "schedule_id": None,
                "created": now(), "start": None, "end": None, "message": body.get("message") or "",
                "commit_hash": None, "commit_message": "", "build_task_id": None, "version": None,
                "inventory_id": body.get("inventory_id")}
        if self.version == "2.16":
            task["params"] = body.get("params") or {}
        self.tasks[tid] = task
        self._stop_events[tid] = threading.Event()
        self._log(tid, f"Task {tid} added to queue")
        threading.Thread(target=self._run_task, args=(tid,), name=f"fake-task-{tid}", daemon=True).start()
        return dict(task)

    def _set_status(self, tid: int, status: str) -> None:
        with self.lock:
            task = self.tasks.get(tid)
            if task is None:
                return
            task["status"] = status
            if status == "running" and task["start"] is None:
                task["start"] = now()
            if status in FINISHED:
                task["end"] = now()
            self._push_status(task)

    def _wait_for_turn(self, tid: int, template_id: int, stop: threading.Event) -> bool:
        """Hold the task in ``waiting`` (start latency, an earlier task of its template); False when stopped."""
        if self.start_latency:
            stop.wait(self.start_latency)
        while not stop.is_set() and not self._shutdown.is_set():  # same-template tasks run one at a time
            with self.lock:
                blocked = any(t["template_id"] == template_id and t["id"] < tid and t["status"] in ACTIVE
                              for t in self.tasks.values())
            if not blocked:
                return True
            stop.wait(0.02)
        return False

    def _run_task(self, tid: int) -> None:
        stop = self._stop_events[tid]
        with self.lock:
            task = self.tasks[tid]
            tpl_name = (self.objects["templates"].get(task["template_id"]) or {}).get("name", "")
        script = self._scripts.get(tpl_name, Script())
        if not self._wait_for_turn(tid, task["template_id"], stop):
            self._finish_stopped(tid)
            return
        self._set_status(tid, "starting")
        self._log(tid, f"Started: {tid}")
        self._log(tid, f"Run TaskRunner with template: {tpl_name}")
        self._set_status(tid, "running")
        step = script.duration / max(1, len(script.log) + 1)
        for line in script.log:
            if stop.wait(step):
                self._finish_stopped(tid)
                return
            self._log(tid, line)
        if script.outcome == "hang":
            while not stop.wait(0.05):
                if self._shutdown.is_set():
                    return
            self._finish_stopped(tid)
            return
        if stop.wait(step):
            self._finish_stopped(tid)
            return
        ok = script.outcome == "success"
        if not ok:
            self._log(tid, "Command exited with status 1")
        self._set_status(tid, "success" if ok else "error")

    def _finish_stopped(self, tid: int) -> None:
        with self.lock:
            task = self.tasks.get(tid)
            if task is None or task["status"] in FINISHED:
                return
        time.sleep(0.02)  # "stopping" is visible for a moment
        self._log(tid, "Task stopped")
        self._set_status(tid, "stopped")

    def _stop_task(self, tid: int, force: bool) -> None:
        with self.lock:
            task = self.tasks[tid]
            if task["status"] in FINISHED or force:
                task["status"] = "stopped"
                task["end"] = task["end"] or now()
            else:
                task["status"] = "stopping"
            self._push_status(task)
        self._stop_events[tid].set()

    def _task(self, pid: int, tid: int) -> dict:
        self._project(pid)
        task = self.tasks.get(tid)
        if task is None or task["project_id"] != pid:
            raise BadRequest(None, 400)  # GetTaskMiddleware: 400, not 404
        return task

    def task_of(self, req: Request) -> Answer:
        """Guard: the URL's task exists in the URL's project."""
        self._task(req.int_param("pid"), req.int_param("tid"))
        return Answer(200)

    # ------------------------------------------------------------------ handlers

    def _listing(self, tasks: list[dict], limit: int) -> Answer:
        newest_first = sorted(tasks, key=lambda t: -t["id"])
        return Answer(200, [self._task_with_tpl(t) for t in newest_first[:limit]])

    def template_tasks(self, req: Request) -> Answer:
        pid, oid = req.int_param("pid"), req.int_param("oid")
        self._project(pid)
        self._object("templates", pid, oid)
        limit = min(200, req.query_int("limit", 200)) if "last" in req.params else 1000
        return self._listing([t for t in self.tasks.values() if t["template_id"] == oid], limit)

    def list_tasks(self, req: Request) -> Answer:
        pid = req.int_param("pid")
        self._project(pid)
        last = req.path.endswith("/last")  # ?limit=N, default and maximum 200
        limit = max(1, min(200, req.query_int("limit", 200))) if last else 1000
        return self._listing([t for t in self.tasks.values() if t["project_id"] == pid], limit)

    def start_task(self, req: Request) -> Answer:
        task = self._start_task(req.int_param("pid"), need_object(req.body))
        if self._lose_start:
            self._lose_start -= 1
            return Answer(0, ctype="")
        return Answer(201, task)

    def stop_template_tasks(self, req: Request) -> Answer:
        oid = req.int_param("oid")
        self._object("templates", req.int_param("pid"), oid)
        force = bool(req.body.get("force")) if isinstance(req.body, dict) else False
        for t in list(self.tasks.values()):
            if t["template_id"] == oid and t["status"] in ACTIVE:
                self._stop_task(t["id"], force)
        return Answer(204)

    def get_task(self, req: Request) -> Answer:
        return Answer(200, dict(self.tasks[req.int_param("tid")]))

    def delete_task(self, req: Request) -> Answer:
        tid = req.int_param("tid")
        if self.tasks[tid]["status"] in ACTIVE:
            raise BadRequest(None, 409)
        del self.tasks[tid]
        self.outputs.pop(tid, None)
        self._visible_at.pop(tid, None)
        return Answer(204)

    def task_output(self, req: Request) -> Answer:
        return Answer(200, [dict(r) for r in self._visible_output(req.int_param("tid"))])

    def task_raw_output(self, req: Request) -> Answer:
        records = self._visible_output(req.int_param("tid"))
        return Answer(200, "".join(ANSI.sub("", r["output"]) + "\n" for r in records), "text/plain; charset=utf-8")

    def stop_task(self, req: Request) -> Answer:
        if req.body is None and self.version == "2.10":
            raise BadRequest()  # 2.10: helpers.Bind on an empty body
        body = check_body("stop", req.body if req.body is not None else {}, self.version)
        self._stop_task(req.int_param("tid"), bool(body.get("force")))
        return Answer(204)
