"""The fake Semaphore's route table: which handler answers a method on a path, in the real router's order.

A :class:`Route` maps a path pattern (under ``/api``, named groups become :attr:`Request.params`) to one handler
per method. A method the route does not serve is answered 405 (the real router's ``MethodNotAllowed``), or
``fallthrough=True`` lets the request go on to later routes and end in 404 as the real server does for paths
it only serves with some methods. ``guard`` runs before the method is looked at (a project or task that must
exist first: 404 / 400 win over 405).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

JSON = "application/json"


class Answer(NamedTuple):
    """One answer: ``payload`` None is an empty body; a ``cookie`` is set as Semaphore's session cookie."""

    status: int
    payload: Any = None
    ctype: str = JSON
    cookie: str | None = None


@dataclass
class Request:
    method: str
    path: str  # below /api, without a trailing slash
    query: dict[str, list[str]]
    headers: Any
    body: Any  # the decoded JSON body, None when empty
    params: dict[str, str] = field(default_factory=dict)

    def int_param(self, name: str) -> int:
        return int(self.params[name])

    def query_int(self, name: str, default: int) -> int:
        try:
            return int((self.query.get(name) or [str(default)])[0])
        except ValueError:
            return default


Handler = Callable[[Request], Answer]


@dataclass
class Route:
    pattern: str
    methods: dict[str, Handler]  # "*" serves every method
    fallthrough: bool = False
    guard: Handler | None = None  # raises to refuse; its answer is ignored
    regex: re.Pattern[str] = field(init=False)

    def __post_init__(self) -> None:
        self.regex = re.compile(self.pattern)


def dispatch(routes: list[Route], request: Request) -> Answer | None:
    """The answer of the first route whose pattern matches and that serves (or refuses) the method; None when
    no route takes the request."""
    for route in routes:
        m = route.regex.fullmatch(request.path)
        if m is None:
            continue
        handler = route.methods.get(request.method) or route.methods.get("*")
        if handler is None and route.fallthrough:
            continue
        request.params = {k: v for k, v in m.groupdict().items() if v is not None}
        if route.guard is not None:
            route.guard(request)
        if handler is None:
            return Answer(405)
        return handler(request)
    return None
