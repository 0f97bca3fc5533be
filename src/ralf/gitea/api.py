"""The narrow seam to Gitea's API (``/api/v1``, httpx, basic auth) that the repository mirror needs.

Only these calls: ``GET /repos/{owner}/{repo}`` (404: no such repository), ``POST /repos/migrate``
(201 with the new repository; 409 when the name is taken; 422 when Gitea cannot clone the
source or refuses its address), ``PATCH /repos/{owner}/{repo}`` (the mirror interval),
``POST /repos/{owner}/{repo}/mirror-sync`` (200: queued; 400 when the repository is not a mirror)
and ``GET /repos/{owner}/{repo}/branches/{branch}`` (the commit a branch points at; 404 when it
does not exist). Error answers are Gitea's ``{"message": ..., "url": ...}``; the message is kept,
the password never reaches one. TLS is verified against the platform's CA unless
``mirror.ca_file`` names another PEM.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx

from ralf import https
from ralf.errors import RalfError
from ralf.model import Mirror, Platform

PREFIX = "/api/v1"


class GiteaError(RalfError):
    """Gitea refused or failed; ``status`` is the HTTP status (0: no answer)."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


def credentials_from(platform: Platform) -> tuple[str, str]:
    """``(user, password)`` for Gitea's API from the mirror's credentials file in the secrets directory."""
    from ralf.secrets import load_secret

    m = platform.mirror
    assert m is not None
    return load_secret(platform, m.credentials_file, m.user_var), load_secret(platform, m.credentials_file,
                                                                              m.password_var)


def ca_file_of(platform: Platform) -> str:
    """The PEM Gitea's certificate is verified with: ``mirror.ca_file``, else the platform's CA."""
    m = platform.mirror
    assert m is not None
    if m.ca_file:
        return str(platform.resolve_path(m.ca_file))
    from ralf.backends.lxc.tls import ca

    return str(ca(platform).cert_file)


class GiteaApi(https.ApiClient):
    service = "Gitea"
    error = GiteaError
    untrusted = "it should be the platform CA's; see mirror.ca_file"

    def __init__(self, base_url: str, user: str, password: str, *, ca_file: str | None = None,
                 timeout: float = 30.0) -> None:
        super().__init__(base_url.rstrip("/") + PREFIX, ca=ca_file or None, timeout=timeout, auth=(user, password))

    @classmethod
    def from_platform(cls, platform: Platform) -> GiteaApi:
        assert platform.mirror is not None
        user, password = credentials_from(platform)
        return cls(platform.mirror.url, user, password, ca_file=ca_file_of(platform))

    def _call(self, method: str, path: str, *, ok: tuple[int, ...] = (200,), missing_ok: bool = False,
              **kw: Any) -> Any:
        r = self._send(method, path, **kw)
        if r.status_code == 404 and missing_ok:
            return None
        if r.status_code not in ok:
            raise GiteaError(f"{method} {path}: {r.status_code} {_message(r)}", r.status_code)
        if not r.content:
            return {}
        try:
            return r.json()
        except ValueError:
            raise GiteaError(f"{method} {path}: not a Gitea API answer") from None

    # ------------------------------------------------------------------ the calls the mirror makes

    def repo(self, owner: str, name: str) -> dict | None:
        return self._call("GET", f"/repos/{quote(owner)}/{quote(name)}", missing_ok=True)

    def migrate_mirror(self, mirror: Mirror, description: str) -> dict:
        body = {"clone_addr": mirror.source_url, "repo_owner": mirror.owner, "repo_name": mirror.name,
                "mirror": True, "mirror_interval": mirror.interval, "private": mirror.private, "service": "git",
                "description": description}
        return self._call("POST", "/repos/migrate", ok=(201,), json=body)

    def edit_repo(self, owner: str, name: str, fields: dict[str, Any]) -> dict:
        return self._call("PATCH", f"/repos/{quote(owner)}/{quote(name)}", json=fields)

    def mirror_sync(self, owner: str, name: str) -> None:
        self._call("POST", f"/repos/{quote(owner)}/{quote(name)}/mirror-sync")

    def branch(self, owner: str, name: str, branch: str) -> dict | None:
        return self._call("GET", f"/repos/{quote(owner)}/{quote(name)}/branches/{quote(branch, safe='')}",
                          missing_ok=True)


def _message(r: httpx.Response) -> str:
    try:
        body = r.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and body.get("message"):
        return str(body["message"])
    return r.reason_phrase or r.text.strip()[:200]
