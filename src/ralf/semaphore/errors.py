"""Typed errors for talking to Semaphore, with messages that make sense even for empty-body answers.

The real server answers most failures (400/401/403/404/409) with an empty body, so the message is
built from the request (method, path), the status and what that status usually means there.
"""

from __future__ import annotations

import json
import re

from ralf.errors import SemaphoreError


class SemaphoreAuthError(SemaphoreError):
    """401/403: missing, wrong or expired token or password, or a role lacking the permission."""


class SemaphoreNotFound(SemaphoreError):
    """404: the object does not exist (or the user is not a member of the project)."""


class SemaphoreConflict(SemaphoreError):
    """409: the server refused the operation in the object's current state."""


class SemaphoreBadRequest(SemaphoreError):
    """400: the server rejected the request body or the referenced object."""


class SemaphoreServerError(SemaphoreError):
    """5xx: the server failed (after retries, for idempotent requests)."""


class SemaphoreUnreachable(SemaphoreError):
    """No HTTP answer at all: connection refused, timeout, TLS failure, dropped connection.

    ``sent`` is False only when the request certainly never reached the server (the connection could
    not be opened): only then may a non-idempotent request be sent again without looking first.
    """

    def __init__(self, message: str, *, sent: bool = True) -> None:
        super().__init__(message)
        self.sent = sent


class SemaphoreBadAnswer(SemaphoreError):
    """The server answered, but not with the shape the request promises (an HTML page, null, a list)."""


_MEANING = {
    400: "the server rejected the request (a field of the wrong JSON type, an invalid value, or an unknown task id)",
    401: "not authenticated: the token or password is wrong or expired",
    403: "forbidden: the user lacks the role for this (admin or project manager needed)",
    404: "not found: the object does not exist or the user is not a member of its project",
    409: "conflict: the operation is not allowed in the object's current state",
}


_TITLE = re.compile(rb"<title[^>]*>(.*?)</title>", re.I | re.S)
_TAG = re.compile(r"<[^>]+>")


def summarise_body(body: bytes, limit: int = 120) -> str:
    """One line describing an answer body: an HTML page by its title, other text by its first words."""
    if not body or not body.strip():
        return "an empty body"
    head = body[:4096]
    if head.lstrip()[:1] == b"<" or b"<html" in head.lower():
        m = _TITLE.search(head)
        title = " ".join(m.group(1).decode("utf-8", "replace").split()) if m else ""
        if not title:
            title = " ".join(_TAG.sub(" ", head.decode("utf-8", "replace")).split())
        return f"an HTML page ({title[:limit] or 'untitled'})"
    text = " ".join(head.decode("utf-8", "replace").split())
    return repr(text[:limit] + ("…" if len(text) > limit else ""))


def server_message(body: bytes) -> str | None:
    """The ``error`` text of a JSON error body (one line), or a one-line summary of any other body."""
    if not body or not body.strip():
        return None
    try:
        data = json.loads(body)
    except ValueError:
        return summarise_body(body)
    if isinstance(data, dict) and isinstance(data.get("error"), str):
        return " ".join(data["error"].split())[:300]
    return None


def error_for(method: str, path: str, status: int, body: bytes = b"", *, hint: str | None = None) -> SemaphoreError:
    """The typed error for an HTTP answer ``status`` to ``method path``."""
    detail = server_message(body)
    meaning = _MEANING.get(status) or ("server error" if status >= 500 else "unexpected answer")
    msg = f"Semaphore {method} {path} answered {status}: " + (f"{detail} ({meaning})" if detail else meaning)
    if hint:
        msg += f"; {hint}"
    if status in (401, 403):
        return SemaphoreAuthError(msg)
    if status == 404:
        return SemaphoreNotFound(msg)
    if status == 409:
        return SemaphoreConflict(msg)
    if status >= 500:
        return SemaphoreServerError(msg)
    return SemaphoreBadRequest(msg)
