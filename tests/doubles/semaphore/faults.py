"""The fake Semaphore's request log and fault injection: the failures a real server, its proxy or the network produce.

:meth:`FaultsApi.fail_next` (an error status, empty body), :meth:`~FaultsApi.drop_next` (connection closed),
:meth:`~FaultsApi.garble_next` (200 with a non-object: ``null``, an HTML portal page), :meth:`~FaultsApi.slow_next`
(an answer later than the client waits, the work done before or after the wait), :meth:`~FaultsApi.hang_next`
(accepts, never answers), :meth:`~FaultsApi.outage` (every request dropped or answered by a proxy's error page
for a while), :meth:`~FaultsApi.lose_next_start_response`, :meth:`~FaultsApi.expire_token`. Every request is
logged in :attr:`FaultsApi.requests` with its answer.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from doubles.semaphore import ws


@dataclass
class Logged:
    """One request the server received, and its answer status (0 = connection dropped)."""

    method: str
    path: str
    query: str = ""
    body: Any = None
    status: int = 0
    size: int = 0  # bytes of the answer's body

    @property
    def is_write(self) -> bool:
        return self.method not in ("GET", "HEAD")


@dataclass
class Rule:
    count: int
    status: int | None  # 0 = drop the connection; None = the normal answer
    method: str | None
    path: str | None
    body: bytes | None = None  # answered instead of the normal payload (with ``ctype``)
    ctype: str = "application/json"
    delay: float = 0.0  # seconds the answer is held back
    process: str = "no"  # "no": the request has no effect; "before"/"after": it is handled before/after the delay

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method == method) and (self.path is None or self.path in path)


class FaultsApi:
    """Mixed into :class:`~doubles.semaphore.server.FakeSemaphore`; the state lives there."""

    lock: threading.RLock
    requests: list[Logged]
    subscribers: list[ws.Subscriber]
    ws_history: list[ws.Subscriber]
    token: str
    _rules: list[Rule]
    _outage: tuple[float, int, bytes | None, str] | None
    _lose_start: int
    _tokens: dict[str, dict]
    _new_token: Callable[[], str]

    def log_request(self, entry: Logged) -> Rule | None:
        """Log the request; the fault that decides its fate, if any (used up as it matches)."""
        with self.lock:
            self.requests.append(entry)
            rule = next((r for r in self._rules if r.count > 0 and r.matches(entry.method, entry.path)), None)
            if rule is not None:
                rule.count -= 1
                self._rules = [r for r in self._rules if r.count > 0]
            elif self._outage is not None and time.monotonic() < self._outage[0]:
                _, status, data, ctype = self._outage
                rule = Rule(1, status, None, None, body=data, ctype=ctype)
            return rule

    # ------------------------------------------------------------------ faults

    def fail_next(self, n: int = 1, status: int = 500, *, method: str | None = None, path: str | None = None) -> None:
        """Answer the next ``n`` matching requests with ``status`` and an empty body, doing nothing else."""
        with self.lock:
            self._rules.append(Rule(n, status, method, path))

    def drop_next(self, n: int = 1, *, method: str | None = None, path: str | None = None) -> None:
        """Close the connection of the next ``n`` matching requests without answering (nothing is done)."""
        with self.lock:
            self._rules.append(Rule(n, 0, method, path))

    def garble_next(self, n: int = 1, body: bytes | str = b"null", *, ctype: str = "application/json",
                    status: int = 200, method: str | None = None, path: str | None = None) -> None:
        """Answer the next ``n`` matching requests with ``status`` and ``body`` (nothing is done)."""
        data = body.encode() if isinstance(body, str) else body
        with self.lock:
            self._rules.append(Rule(n, status, method, path, body=data, ctype=ctype))

    def slow_next(self, n: int = 1, delay: float = 1.0, *, work: str = "before", method: str | None = None,
                  path: str | None = None, drop: bool = False) -> None:
        """Hold the answer of the next ``n`` matching requests ``delay`` seconds; the request takes effect
        ``work="before"`` the wait (a late answer) or ``"after"`` it (a server slow to process); with
        ``drop`` the connection is then closed instead of answered."""
        if work not in ("before", "after"):
            raise ValueError("work must be 'before' or 'after'")
        with self.lock:
            self._rules.append(Rule(n, 0 if drop else None, method, path, delay=delay, process=work))

    def hang_next(self, n: int = 1, *, method: str | None = None, path: str | None = None,
                  seconds: float = 3600.0) -> None:
        """Accept the next ``n`` matching requests and never answer them (until ``seconds`` or shutdown)."""
        with self.lock:
            self._rules.append(Rule(n, 0, method, path, delay=seconds))

    def outage(self, seconds: float, *, status: int = 0, body: bytes | str | None = None,
               ctype: str = "text/html") -> None:
        """For the next ``seconds`` every request is dropped (``status`` 0) or answered ``status`` + ``body``
        (a reverse proxy's error page) without reaching the server."""
        data = body.encode() if isinstance(body, str) else body
        with self.lock:
            self._outage = (time.monotonic() + seconds, status, data, ctype)

    def drop_websockets(self) -> None:
        """Close every open ``/api/ws`` connection (as a server restart or a proxy timeout would)."""
        with self.lock:
            subs, self.subscribers = self.subscribers, []
        for s in subs:
            s.close()

    def lose_next_start_response(self) -> None:
        """The next ``POST .../tasks`` creates the task, then drops the connection before answering."""
        with self.lock:
            self._lose_start += 1

    def expire_token(self, token: str | None = None) -> None:
        with self.lock:
            self._tokens[(token or self.token).lower()]["expired"] = True

    def new_token(self) -> str:
        with self.lock:
            return self._new_token()

    # ------------------------------------------------------------------ the request log

    def clear_requests(self) -> None:
        with self.lock:
            self.requests.clear()

    def count(self, method: str | None = None, path: str | None = None) -> int:
        """Requests received, optionally only one method and/or paths containing ``path``."""
        with self.lock:
            return sum(1 for r in self.requests
                       if (method is None or r.method == method) and (path is None or path in r.path))

    def bytes_sent(self, path: str | None = None) -> int:
        """Body bytes answered to requests whose path contains ``path``, plus every websocket byte when None."""
        with self.lock:
            http = sum(r.size for r in self.requests if path is None or path in r.path)
            return http + (sum(s.sent_bytes for s in self.ws_history) if path is None else 0)

    def ws_bytes(self) -> int:
        with self.lock:
            return sum(s.sent_bytes for s in self.ws_history)

    @property
    def writes(self) -> list[Logged]:
        with self.lock:
            return [r for r in self.requests if r.is_write]
