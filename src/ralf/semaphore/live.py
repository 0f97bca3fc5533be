"""Semaphore's live event stream (``GET /api/ws``): each task's log lines and status changes, pushed once.

What the server sends (the same in 2.10 and 2.16, ``services/tasks/TaskRunner*.go``), one JSON text message
per event, to every connection of the project's users and of the admins:

- ``{"type": "log", "output": <one line>, "time": ..., "task_id": N, "project_id": P}`` for each log line,
  at the moment it is written (before the line reaches ``/output``);
- ``{"type": "update", "status": ..., "start": ..., "end": ..., "task_id": N, "template_id": T,
  "project_id": P, "version": ...}`` for each status change.

Nothing is replayed: only events after the connection opened arrive, so the stream is opened before a task
is started. A reader thread files each event of the project under its task id; the server closes a
connection whose reader falls 256 messages behind, which the thread turns into :class:`StreamClosed`.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from typing import Any

#: events kept for a task nobody follows (yet) before its oldest are dropped
_UNCLAIMED_CAP = 200_000


class StreamClosed(Exception):
    """The server (or the network) closed the event stream; follow by polling from here on."""


class TaskEvents:
    """One open ``/api/ws`` connection; :meth:`next` hands out the events of one task in order."""

    def __init__(self, conn: Any, project_id: int) -> None:
        self._conn = conn
        self._project_id = project_id
        self._events: dict[int, deque[dict]] = {}
        self._cond = threading.Condition()
        self._closed: str | None = None
        self._thread = threading.Thread(target=self._read, name="semaphore-ws", daemon=True)
        self._thread.start()

    @classmethod
    def open(cls, client: Any, project_id: int, *, timeout: float = 5.0) -> TaskEvents | None:
        """Connect to the server's websocket; None when it offers none (any failure to upgrade)."""
        from websockets.sync.client import connect  # only a deploy through Semaphore needs it

        try:
            url, headers, ctx = client.websocket_target()
            conn = connect(url, additional_headers=headers, ssl=ctx, open_timeout=timeout,
                           close_timeout=1.0, max_size=16 * 2**20, compression=None)
        except Exception:  # noqa: BLE001 - no stream is a normal answer: the caller polls instead
            return None
        return cls(conn, project_id)

    # ------------------------------------------------------------------ reader thread

    def _read(self) -> None:
        reason = "the server closed the event stream"
        try:
            with self._conn:  # the context form closes it at the end (websockets ≥ 17.1 expects it)
                self._read_all()
        except Exception as e:  # noqa: BLE001 - any end of the connection ends the stream
            reason = f"the event stream broke ({type(e).__name__})"
        with self._cond:
            self._closed = reason
            self._cond.notify_all()

    def _read_all(self) -> None:
        for raw in self._conn:
            try:
                ev = json.loads(raw)
                tid = int(ev["task_id"])
            except (ValueError, TypeError, KeyError):
                continue
            if not isinstance(ev, dict) or ev.get("project_id") not in (None, self._project_id):
                continue
            with self._cond:
                q = self._events.setdefault(tid, deque())
                if len(q) >= _UNCLAIMED_CAP:
                    q.popleft()
                q.append(ev)
                self._cond.notify_all()

    # ------------------------------------------------------------------ consumer side

    @property
    def closed(self) -> bool:
        return self._closed is not None

    def next(self, task_id: int, timeout: float) -> dict | None:
        """The task's next event, or None when none came within ``timeout``; StreamClosed once the stream ended
        and the task's buffered events are used up."""
        with self._cond:
            q = self._events.setdefault(task_id, deque())
            if not q and self._closed is None:
                self._cond.wait_for(lambda: q or self._closed is not None, timeout=max(0.0, timeout))
            if q:
                return q.popleft()
            if self._closed is not None:
                raise StreamClosed(self._closed)
            return None

    def forget(self, task_id: int) -> None:
        """Drop the task's buffer and those of older tasks: they were not ours (ours start in order)."""
        with self._cond:
            for tid in [t for t in self._events if t <= task_id]:
                del self._events[tid]

    def close(self) -> None:
        try:
            self._conn.close()
        except Exception:  # noqa: BLE001
            pass
        self._thread.join(timeout=2.0)
