"""The project's templates with their last task's status and time (``ralf semaphore templates``)."""

from __future__ import annotations

from ralf.errors import SemaphoreError
from ralf.semaphore.client import SemaphoreClient


def template_status(client: SemaphoreClient, project: str) -> tuple[int, list[dict]]:
    """(project id, one row per template: id, name, app, last task id/status/time), sorted by name.

    The template list carries each template's ``last_task`` on the real server; only when a server
    leaves it out is the template's last task asked for separately.
    """
    found = client.find_project(project)
    if found is None:
        raise SemaphoreError(f"Semaphore has no project named {project!r} (run `ralf semaphore seed`)")
    pid = int(found["id"])
    rows = []
    for t in sorted(client.list_templates(pid), key=lambda t: str(t.get("name"))):
        if "last_task" in t:
            last = t.get("last_task")
        else:
            tasks = client.last_tasks(pid, t["id"], limit=1)
            last = tasks[0] if tasks else None
        last = last or {}
        rows.append({
            "id": t.get("id"),
            "name": t.get("name"),
            "app": t.get("app"),
            "last_task_id": last.get("id"),
            "last_status": last.get("status"),
            "last_time": last.get("end") or last.get("start") or last.get("created"),
        })
    return pid, rows
