"""The fake Semaphore's projects: list, create (with its ``None`` key and ``Empty`` environment), get, PUT, delete."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from doubles.semaphore.bodies import BadRequest, check_body, defaults, now
from doubles.semaphore.routing import Answer, Request, Route

#: the project's object collections, by their URL segment
KIND_SEGMENTS = ("keys", "repositories", "inventory", "environment", "templates", "views")


class ProjectsApi:
    """Mixed into :class:`~doubles.semaphore.server.FakeSemaphore`; the state lives there."""

    version: str
    projects: dict[int, dict]
    objects: dict[str, dict[int, dict]]
    _next: Callable[[str], int]

    def project_routes(self) -> list[Route]:
        return [
            Route(r"/projects", {"GET": self.list_projects, "POST": self.create_project}, fallthrough=True),
            Route(r"/project/(?P<pid>\d+)", {"GET": self.get_project, "PUT": self.update_project,
                                             "DELETE": self.delete_project}, guard=self.project_of),
        ]

    # ------------------------------------------------------------------ state

    def _project(self, pid: int) -> dict:
        proj = self.projects.get(pid)
        if proj is None:
            raise BadRequest(None, 404)
        return proj

    def project_of(self, req: Request) -> Answer:
        """Guard: the URL's project exists (else 404)."""
        self._project(req.int_param("pid"))
        return Answer(200)

    def _create_project(self, body: dict[str, Any]) -> dict:
        pid = self._next("project")
        proj = {"id": pid, "name": body.get("name") or "", "created": now(), "alert": False, "alert_chat": None,
                "max_parallel_tasks": 0, "type": body.get("type") or ""}
        if self.version == "2.16":
            proj["alert"] = bool(body.get("alert"))
            proj["alert_chat"] = body.get("alert_chat")
            proj["max_parallel_tasks"] = body.get("max_parallel_tasks") or 0
        self.projects[pid] = proj
        none_key = {"id": self._next("keys"), "project_id": pid, "name": "None", "type": "none"}
        self.objects["keys"][none_key["id"]] = none_key
        empty = {**defaults("environment", self.version), "id": self._next("environment"), "project_id": pid,
                 "name": "Empty", "json": "{}"}
        self.objects["environment"][empty["id"]] = empty
        return proj

    # ------------------------------------------------------------------ handlers

    def list_projects(self, req: Request) -> Answer:
        return Answer(200, [dict(x) for x in self.projects.values()])

    def create_project(self, req: Request) -> Answer:
        body = check_body("project", req.body, self.version)
        if not body.get("name"):
            raise BadRequest("Project name can not be empty")
        return Answer(201, dict(self._create_project(body)))

    def get_project(self, req: Request) -> Answer:
        return Answer(200, dict(self._project(req.int_param("pid"))))

    def update_project(self, req: Request) -> Answer:
        pid = req.int_param("pid")
        body = check_body("project", req.body, self.version)
        if body.get("id") != pid:
            raise BadRequest("Project ID in body and URL must be the same")
        self._project(pid).update(name=body.get("name") or "", alert=bool(body.get("alert")),
                                  alert_chat=body.get("alert_chat"), max_parallel_tasks=body.get("max_parallel_tasks") or 0)
        return Answer(204)

    def delete_project(self, req: Request) -> Answer:
        pid = req.int_param("pid")
        for kind in KIND_SEGMENTS:
            for oid in [o["id"] for o in self.objects[kind].values() if o["project_id"] == pid]:
                del self.objects[kind][oid]
        del self.projects[pid]
        return Answer(204)
