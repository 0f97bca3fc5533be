"""The narrow seam to the Proxmox VE API that the bootstrap's preflight needs (httpx, token auth).

Only what the preflight asks: ``/version``, ``/access/permissions``, ``/nodes``, a node's storages,
bridges and template list, the appliance index and its download (``POST /nodes/{node}/aplinfo``,
which answers with a task UPID), and that task's status. Every answer is unwrapped from the API's
``{"data": ...}`` envelope. The token goes in ``Authorization: PVEAPIToken=USER@REALM!ID=SECRET``
and never into a message. TLS is verified (the system store or a CA file) unless the platform
file says ``insecure_tls: true``.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote

from ralf import https
from ralf.errors import RalfError, SecretError
from ralf.model import Platform

TOKEN_ID_VAR = "PVE_TOKEN_ID"
TOKEN_SECRET_VAR = "PVE_TOKEN_SECRET"


class ProxmoxError(RalfError):
    """The Proxmox API refused or failed; ``status`` is the HTTP status (0: no answer)."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


def token_from(platform: Platform, environ: dict[str, str] | None = None) -> tuple[str, str]:
    """``(token id, secret)`` from the environment, else the credentials file in the secrets directory."""
    from ralf import settings
    from ralf.secrets import read_env_file

    token_id, secret = settings.get(TOKEN_ID_VAR, environ), settings.get(TOKEN_SECRET_VAR, environ)
    if token_id and secret:
        return token_id, secret
    assert platform.proxmox is not None
    path = platform.secrets_path / platform.proxmox.credentials_file
    values = read_env_file(path)
    missing = [k for k in (TOKEN_ID_VAR, TOKEN_SECRET_VAR) if not values.get(k)]
    if missing:
        raise SecretError(f"{path} lacks {', '.join(missing)} (the Proxmox API token ralf uses)")
    return values[TOKEN_ID_VAR], values[TOKEN_SECRET_VAR]


def verify_setting(platform: Platform) -> bool | str:
    """What httpx verifies the API's certificate against: a CA file, the system store, or nothing."""
    pm = platform.proxmox
    assert pm is not None
    ca_file = getattr(pm, "ca_file", None)
    if ca_file:
        return str(platform.resolve_path(ca_file))
    return not pm.insecure_tls


class ProxmoxApi(https.ApiClient):
    service = "the Proxmox API"
    error = ProxmoxError
    untrusted = "set proxmox.ca_file to the node's CA, or insecure_tls: true to skip the check"

    def __init__(self, api_url: str, token_id: str, token_secret: str, *, verify: bool | str = True,
                 timeout: float = 10.0, sleep=time.sleep) -> None:
        super().__init__(api_url, ca=verify, timeout=timeout,
                         headers={"Authorization": f"PVEAPIToken={token_id}={token_secret}"})
        self.verify = verify  # a CA file, True (system store) or False (insecure_tls)
        self._sleep = sleep

    @property
    def where(self) -> str:
        return self.base

    @classmethod
    def from_platform(cls, platform: Platform, environ: dict[str, str] | None = None) -> ProxmoxApi:
        assert platform.proxmox is not None
        tid, secret = token_from(platform, environ)
        return cls(platform.proxmox.api_url, tid, secret, verify=verify_setting(platform))

    def _call(self, method: str, path: str, **kw: Any) -> Any:
        r = self._send(method, path, **kw)
        if r.status_code >= 400:
            # Proxmox puts its reason into the HTTP status line ("401 authentication failure")
            reason = r.reason_phrase or r.text.strip()[:200]
            raise ProxmoxError(f"{method} {path}: {r.status_code} {reason}", r.status_code)
        try:
            return r.json()["data"]
        except (ValueError, KeyError, TypeError):
            raise ProxmoxError(f"{method} {path}: not a Proxmox API answer") from None

    # ------------------------------------------------------------------ the calls the preflight makes

    def version(self) -> dict:
        return self._call("GET", "/version")

    def permissions(self) -> dict[str, dict[str, int]]:
        return self._call("GET", "/access/permissions") or {}

    def nodes(self) -> list[dict]:
        return self._call("GET", "/nodes") or []

    def storages(self, node: str) -> list[dict]:
        return self._call("GET", f"/nodes/{quote(node)}/storage") or []

    def bridges(self, node: str) -> list[dict]:
        return self._call("GET", f"/nodes/{quote(node)}/network", params={"type": "any_bridge"}) or []

    def templates(self, node: str, storage: str) -> list[dict]:
        return self._call("GET", f"/nodes/{quote(node)}/storage/{quote(storage)}/content",
                          params={"content": "vztmpl"}) or []

    def appliances(self, node: str) -> list[dict]:
        return self._call("GET", f"/nodes/{quote(node)}/aplinfo") or []

    def download_appliance(self, node: str, storage: str, template: str) -> str:
        """Start the download; returns the task's UPID."""
        return str(self._call("POST", f"/nodes/{quote(node)}/aplinfo", data={"storage": storage, "template": template}))

    def wait_task(self, node: str, upid: str, *, timeout: float = 900.0, poll: float = 1.0) -> dict:
        """Poll the task until it has stopped; returns its status (``exitstatus`` "OK" on success)."""
        deadline = time.monotonic() + timeout
        while True:
            st = self._call("GET", f"/nodes/{quote(node)}/tasks/{quote(upid, safe='')}/status")
            if st.get("status") == "stopped":
                return st
            if time.monotonic() > deadline:
                raise ProxmoxError(f"task {upid} still running after {timeout:g} s")
            self._sleep(poll)


