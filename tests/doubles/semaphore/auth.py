"""The fake Semaphore's public and user endpoints: ping, login/logout, info, the user and the user's API tokens.

Auth as the real server checks it: ``Authorization: Bearer <token>`` (case-insensitive) of a token that is
not expired, or the ``semaphore`` session cookie a password login set.
"""

from __future__ import annotations

import re
import secrets
from typing import Any

from doubles.semaphore.bodies import BadRequest, check_body, now
from doubles.semaphore.routing import Answer, Request, Route

_SESSION = re.compile(r"(?:^|;\s*)semaphore=([^;]+)")


class AuthApi:
    """Mixed into :class:`~doubles.semaphore.server.FakeSemaphore`; the state lives there."""

    version: str
    user: str
    password: str
    url: str
    _tokens: dict[str, dict]
    _sessions: dict[str, int]

    def public_routes(self) -> list[Route]:
        return [
            Route(r"/ping", {"GET": self.ping, "HEAD": self.ping}, fallthrough=True),
            Route(r"/auth/login", {"GET": self.login_options, "POST": self.login}),
            Route(r"/auth/logout", {"POST": self.logout}, fallthrough=True),
        ]

    def user_routes(self) -> list[Route]:
        return [
            Route(r"/info", {"GET": self.info}, fallthrough=True),
            Route(r"/user", {"GET": self.get_user}, fallthrough=True),
            Route(r"/user/tokens", {"GET": self.list_tokens, "POST": self.create_token}, fallthrough=True),
            Route(r"/user/tokens/(?P<token>[^/]+)", {"DELETE": self.delete_token}, fallthrough=True),
        ]

    # ------------------------------------------------------------------ auth state

    def _new_token(self) -> str:
        tok = secrets.token_urlsafe(32).lower()
        self._tokens[tok] = {"id": tok, "created": now(), "expired": False, "user_id": 1}
        return tok

    def _authenticated(self, headers: Any) -> bool:
        h = (headers.get("Authorization") or "").lower()
        if "bearer" in h:
            info = self._tokens.get(h.replace("bearer ", "", 1).strip())
            return bool(info) and not info["expired"]
        m = _SESSION.search(headers.get("Cookie") or "")
        return bool(m) and m.group(1) in self._sessions

    # ------------------------------------------------------------------ handlers

    def ping(self, req: Request) -> Answer:
        return Answer(200, "pong", "text/plain; charset=utf-8")

    def login_options(self, req: Request) -> Answer:
        return Answer(200, {"oidc_providers": [], "login_with_password": True})

    def login(self, req: Request) -> Answer:
        body = check_body("login", req.body, self.version)
        if (body.get("auth") or "").lower() != self.user.lower() or body.get("password") != self.password:
            raise BadRequest(None, 401)
        session = secrets.token_hex(16)
        self._sessions[session] = 1
        return Answer(204, cookie=session)

    def logout(self, req: Request) -> Answer:
        return Answer(204)

    def info(self, req: Request) -> Answer:
        info: dict[str, Any] = {
            "version": "v2.10.32-d4a2713-1729850000" if self.version == "2.10" else "v2.16.14-013b450-1750000000",
            "ansible": "ansible [core 2.17.0]", "web_host": self.url, "use_remote_runner": False}
        if self.version == "2.16":
            info.update(auth_methods={"totp": {"enabled": False}}, git_client="cmd_git", schedule_timezone="UTC",
                        features={})
        return Answer(200, info)

    def get_user(self, req: Request) -> Answer:
        return Answer(200, {"id": 1, "username": self.user, "name": self.user, "email": "", "admin": True,
                            "can_create_project": True})

    def list_tokens(self, req: Request) -> Answer:
        return Answer(200, [dict(t) for t in self._tokens.values()])

    def create_token(self, req: Request) -> Answer:
        if req.body is not None:
            check_body("token", req.body, self.version)
        return Answer(201, dict(self._tokens[self._new_token()]))

    def delete_token(self, req: Request) -> Answer:
        info = self._tokens.get(req.params["token"].lower())
        if info is None:
            raise BadRequest(None, 404)
        info["expired"] = True
        return Answer(204)
