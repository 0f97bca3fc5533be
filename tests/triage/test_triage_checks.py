"""The runbook's first checks against small HTTP servers on 127.0.0.1 (MinIO, Proxmox API, Semaphore)."""

from __future__ import annotations

from http.server import BaseHTTPRequestHandler
from types import SimpleNamespace

import pytest
from doubles.http import serving
from ports import free_port

from ralf.triage.checks import Probes


class _Handler(BaseHTTPRequestHandler):
    routes: dict = {}

    def _answer(self, body: bool) -> None:
        status, text = self.routes.get((self.command, self.path), (404, "not found"))
        data = text.encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if body:
            self.wfile.write(data)

    def do_GET(self):  # noqa: N802
        self._answer(True)

    def do_HEAD(self):  # noqa: N802
        self._answer(False)

    def log_message(self, *a):
        pass


@pytest.fixture
def server():
    routes: dict = {}
    handler = type("H", (_Handler,), {"routes": routes})
    with serving(handler) as srv:
        yield srv.url, routes


def closed_port() -> int:
    return free_port()  # released at once: nothing listens there


def platform(url: str, **over):
    base = dict(
        state_backend=SimpleNamespace(endpoint=url, bucket="tofu-state"),
        proxmox=SimpleNamespace(api_url=url + "/api2/json", insecure_tls=False),
        semaphore=SimpleNamespace(url=url + "/", ca_file=None),
    )
    base.update(over)
    return SimpleNamespace(**base)


def test_minio_live_and_bucket_present(server):
    url, routes = server
    routes[("GET", "/minio/health/live")] = (200, "")
    routes[("HEAD", "/tofu-state")] = (403, "")
    c = Probes(platform(url)).minio()
    assert c.ok is True and "tofu-state" in c.detail


def test_minio_live_but_bucket_missing(server):
    url, routes = server
    routes[("GET", "/minio/health/live")] = (200, "")
    c = Probes(platform(url)).minio()
    assert c.ok is False and "does not exist" in c.detail


def test_minio_down():
    url = f"http://127.0.0.1:{closed_port()}"
    c = Probes(platform(url), timeout=1).minio()
    assert c.ok is False and "does not answer" in c.detail


def test_proxmox_401_means_the_api_answers(server):
    url, routes = server
    routes[("GET", "/api2/json/version")] = (401, "")
    assert Probes(platform(url)).proxmox().ok is True
    routes[("GET", "/api2/json/version")] = (503, "")
    c = Probes(platform(url)).proxmox()
    assert c.ok is False and "503" in c.detail


def test_semaphore_ping(server):
    url, routes = server
    routes[("GET", "/api/ping")] = (200, "pong")
    assert Probes(platform(url)).semaphore().ok is True
    routes[("GET", "/api/ping")] = (502, "bad gateway")
    assert Probes(platform(url)).semaphore().ok is False
    assert Probes(platform(url), semaphore_ping=lambda: True).semaphore().ok is True


def test_missing_sections_are_not_applicable():
    p = SimpleNamespace(state_backend=None, proxmox=None, semaphore=None)
    pr = Probes(p)
    assert pr.minio().ok is None and pr.proxmox().ok is None and pr.semaphore().ok is None
    assert pr.smoke(None).ok is None


def test_smoke_probe_reports_the_failing_layer():
    failed = SimpleNamespace(name="n8n", failed_layer="nginx/TLS", diagnosis="n8n: FAIL at nginx/TLS — certificate expired")
    report = SimpleNamespace(ok=False, failed=[failed])
    c = Probes(platform("http://127.0.0.1:1"), smoke=lambda target: report).smoke("n8n")
    assert c.ok is False and "certificate expired" in c.detail
    ok = Probes(platform("http://127.0.0.1:1"), smoke=lambda target: SimpleNamespace(ok=True, failed=[])).smoke("n8n")
    assert ok.ok is True

    def boom(target):
        raise RuntimeError("no transport")

    c = Probes(platform("http://127.0.0.1:1"), smoke=boom).smoke("n8n")
    assert c.ok is None and "could not run" in c.detail


def test_semaphore_check_names_the_url_in_use():
    """$SEMAPHORE_URL may point elsewhere than the platform file: the check says which server it asked."""
    p = SimpleNamespace(semaphore=SimpleNamespace(url="https://10.10.40.10/", ca_file=None))
    out = Probes(p, semaphore_ping=lambda: False, semaphore_url="http://127.0.0.1:3000/").semaphore()
    assert out.ok is False and out.detail == "http://127.0.0.1:3000/api/ping does not answer pong"
    assert "10.10.40.10" not in out.detail
