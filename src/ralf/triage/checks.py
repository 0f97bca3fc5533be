"""The runbook's first checks, run automatically after a failure, behind injectable probes.

- ``minio``: the state backend's ``/minio/health/live`` and whether the state bucket exists;
- ``proxmox``: the Proxmox API's ``/version`` (a 401 still proves the API answers);
- ``smoke``: the failing service's (or the step's target's) smoke layers through the smoke engine;
- ``semaphore``: Semaphore's ``/api/ping``.

Every network touch goes through :class:`Probes`, so tests hand in fakes or point the platform at
127.0.0.1. A check never raises: it reports ``ok`` True/False, or None when it could not run.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ralf.serial import Record

HttpGet = Callable[..., tuple[int, str]]


@dataclass
class CheckOutcome(Record):
    name: str
    ok: bool | None  # None: not configured / could not run
    detail: str

    def line(self) -> str:
        mark = {True: "ok", False: "FAIL", None: "n/a"}[self.ok]
        return f"{mark:<4} {self.name}: {self.detail}"


def http_get(url: str, *, method: str = "GET", verify: Any = True, timeout: float = 3.0) -> tuple[int, str]:
    """One HTTP request without retries; raises ``OSError``-like errors from httpx on no answer."""
    import httpx

    with httpx.Client(verify=verify, timeout=timeout, follow_redirects=False) as c:
        r = c.request(method, url)
        return r.status_code, r.text[:500]


class Probes:
    """The probes the first checks use; every one can be replaced (tests, other transports)."""

    def __init__(self, platform: Any, *, http: HttpGet | None = None,
                 smoke: Callable[[str], Any] | None = None,
                 semaphore_ping: Callable[[], bool] | None = None,
                 semaphore_url: str | None = None,
                 timeout: float = 3.0) -> None:
        self.platform = platform
        self.http = http or http_get
        self._smoke = smoke
        self._ping = semaphore_ping
        self._semaphore_url = semaphore_url  # the URL actually in use ($SEMAPHORE_URL may override the file)
        self.timeout = timeout

    # ------------------------------------------------------------------ checks

    def minio(self) -> CheckOutcome:
        sb = getattr(self.platform, "state_backend", None)
        if sb is None:
            return CheckOutcome("minio", None, "no state_backend in the platform file")
        base = sb.endpoint.rstrip("/")
        try:
            status, _ = self.http(f"{base}/minio/health/live", timeout=self.timeout)
        except Exception as e:  # noqa: BLE001 - any failure to answer is the finding
            return CheckOutcome("minio", False, f"{base} does not answer ({_short(e)})")
        if status != 200:
            return CheckOutcome("minio", False, f"{base}/minio/health/live answered {status}")
        # Anonymous HEAD on the bucket: 404 = missing; 403 (private) or 200 = it exists.
        try:
            bstatus, _ = self.http(f"{base}/{sb.bucket}", method="HEAD", timeout=self.timeout)
        except Exception as e:  # noqa: BLE001
            return CheckOutcome("minio", False, f"MinIO is live but the bucket check failed ({_short(e)})")
        if bstatus == 404:
            return CheckOutcome("minio", False, f"MinIO is live but the state bucket {sb.bucket!r} does not exist")
        if bstatus in (200, 403):
            return CheckOutcome("minio", True, f"MinIO is live at {base}; state bucket {sb.bucket!r} exists")
        return CheckOutcome("minio", False, f"MinIO is live; bucket {sb.bucket!r} answered {bstatus}")

    def proxmox(self) -> CheckOutcome:
        px = getattr(self.platform, "proxmox", None)
        if px is None:
            return CheckOutcome("proxmox", None, "no proxmox section in the platform file")
        url = px.api_url.rstrip("/") + "/version"
        try:
            status, _ = self.http(url, verify=self._proxmox_verify(px), timeout=self.timeout)
        except Exception as e:  # noqa: BLE001
            return CheckOutcome("proxmox", False, f"Proxmox API {px.api_url} does not answer ({_short(e)})")
        if status == 200:
            return CheckOutcome("proxmox", True, f"Proxmox API answers at {px.api_url}")
        if status == 401:
            return CheckOutcome("proxmox", True, f"Proxmox API answers at {px.api_url} (401 without a token)")
        return CheckOutcome("proxmox", False, f"Proxmox API {url} answered {status}")

    def _proxmox_verify(self, px) -> Any:
        """As the OpenTofu stacks verify the API: its CA file, no verification only when insecure_tls is set."""
        if px.insecure_tls:
            return False
        ca = getattr(px, "ca_file", None)
        if ca and hasattr(self.platform, "resolve_path"):
            ca = str(self.platform.resolve_path(ca))
        return ssl.create_default_context(cafile=ca) if ca else True

    def semaphore(self) -> CheckOutcome:
        sem = getattr(self.platform, "semaphore", None)
        if self._ping is None and sem is None:
            return CheckOutcome("semaphore", None, "no semaphore section in the platform file")
        where = (self._semaphore_url or (sem.url if sem is not None else "the server")).rstrip("/")
        try:
            if self._ping is not None:
                ok = bool(self._ping())
            else:
                assert sem is not None  # no ping function: the platform has a semaphore section (checked above)
                ca = sem.ca_file
                if ca and hasattr(self.platform, "resolve_path"):
                    ca = str(self.platform.resolve_path(ca))  # relative to the platform file
                verify: Any = ssl.create_default_context(cafile=ca) if ca else True
                status, body = self.http(where + "/api/ping", timeout=self.timeout, verify=verify)
                ok = status == 200 and body.strip().lower() == "pong"
        except Exception as e:  # noqa: BLE001
            return CheckOutcome("semaphore", False, f"{where} does not answer /api/ping ({_short(e)})")
        return CheckOutcome("semaphore", ok, f"{where}/api/ping " + ("answers pong" if ok else "does not answer pong"))

    def smoke(self, target: str | None) -> CheckOutcome:
        if not target:
            return CheckOutcome("smoke", None, "no service or target to check")
        try:
            if self._smoke is not None:
                report = self._smoke(target)
            else:
                from ralf.smoke import run_smoke

                report = run_smoke(target, self.platform)
        except Exception as e:  # noqa: BLE001 - the smoke engine may be missing or fail; say so
            return CheckOutcome("smoke", None, f"smoke {target} could not run ({_short(e)})")
        failed = list(getattr(report, "failed", []) or [])
        if getattr(report, "ok", False):
            return CheckOutcome("smoke", True, f"smoke {target}: every layer passes now")
        parts = [s.diagnosis or f"{s.name}: FAIL at {s.failed_layer or '?'}" for s in failed]
        return CheckOutcome("smoke", False, f"smoke {target}: " + "; ".join(parts or ["failed"]))

    def run(self, name: str, target: str | None = None) -> CheckOutcome:
        if name == "smoke":
            return self.smoke(target)
        return getattr(self, name)()


def _short(e: BaseException) -> str:
    text = str(e) or type(e).__name__
    return text if len(text) <= 160 else text[:157] + "..."
