"""`ralf semaphore ping` says why a server does not answer: TLS, refused connection, timeout, not Semaphore."""

from __future__ import annotations

import json
import socket
from http.server import BaseHTTPRequestHandler

import pytest
from doubles.http import serving
from ports import free_port

from ralf.errors import SemaphoreError
from ralf.semaphore.client import SemaphoreClient
from ralf.semaphore.errors import SemaphoreUnreachable


class _NginxDefault(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        body = b"<html><body><h1>404 Not Found</h1><hr>nginx</body></html>"
        self.send_response(404)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def not_semaphore():
    with serving(_NginxDefault) as server:
        yield server.url


@pytest.fixture
def silent():
    """Accepts connections (the kernel's backlog) and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    sock.close()


@pytest.fixture
def tls_fake(tmp_path, monkeypatch):
    from doubles.semaphore import FakeSemaphore

    from ralf.lab import certs

    monkeypatch.setenv("RALF_STATE_DIR", str(tmp_path / "state"))
    certs.issue(tmp_path / "tls", "semaphore.test", ["127.0.0.1"])
    with FakeSemaphore(tls=(str(tmp_path / "tls" / "cert.pem"), str(tmp_path / "tls" / "key.pem"))) as sem:
        yield sem


def _ping(run_cli, repo_root, url, token="t", *extra):
    return run_cli("semaphore", "ping", *extra, "--platform", str(repo_root / "platform.yaml"),
                   env={"SEMAPHORE_URL": url, "SEMAPHORE_TOKEN": token})


def test_refused_connection(run_cli, repo_root):
    port = free_port()
    code, out, err = _ping(run_cli, repo_root, f"http://127.0.0.1:{port}")
    assert code == 1 and "Traceback" not in err
    assert err.strip() == (f"ralf: Semaphore at http://127.0.0.1:{port} did not answer GET /api/ping: "
                           "connection refused (nothing listens on that address and port)")


def test_untrusted_certificate(tls_fake, run_cli, repo_root):
    code, _, err = _ping(run_cli, repo_root, tls_fake.url, tls_fake.token)
    assert code == 1 and "TLS certificate not trusted" in err and "semaphore.ca_file" in err
    assert "does not answer /api/ping" not in err and "refused" not in err


def test_https_to_a_plain_http_server_is_a_tls_failure(fake):
    with SemaphoreClient(fake.url.replace("http://", "https://"), token="t") as c:
        with pytest.raises(SemaphoreUnreachable) as e:
            c.check_ping()
    assert "did not answer GET /api/ping: TLS handshake failed" in str(e.value)
    assert "does the server speak https on that port?" in str(e.value)


def test_timeout(silent):
    with SemaphoreClient(silent, token="t", timeout=0.3) as c, pytest.raises(SemaphoreUnreachable) as e:
        c.check_ping()
    assert str(e.value).endswith("did not answer GET /api/ping: timed out waiting for the answer")


def test_an_answer_that_is_not_semaphore(not_semaphore, run_cli, repo_root):
    code, out, err = _ping(run_cli, repo_root, not_semaphore, "t", "--json")
    assert code == 1
    problem = json.loads(out)["problem"]
    assert problem == (f"{not_semaphore} answers, but not as Semaphore: GET /api/ping gave 404 (text/html) "
                       "'<html><body><h1>404 Not Found</h1><hr>nginx</body></html>' instead of 'pong'; "
                       "is semaphore.url the Semaphore server?")
    assert err.strip() == f"ralf: {problem}"
    with SemaphoreClient(not_semaphore, token="t") as c:
        assert c.ping() is False
        with pytest.raises(SemaphoreError, match="not as Semaphore"):
            c.check_ping()


def test_a_working_server_prints_its_version(fake, run_cli, repo_root):
    code, out, _ = _ping(run_cli, repo_root, fake.url, fake.token, "--json")
    assert code == 0 and json.loads(out) == {"url": fake.url, "alive": True,
                                             "version": "v2.10.32-d4a2713-1729850000" if fake.version == "2.10"
                                             else "v2.16.14-013b450-1750000000"}


def test_verbose_ping_logs_each_request_never_the_token(fake, run_cli, repo_root):
    code, out, err = _ping(run_cli, repo_root, fake.url, fake.token, "-vv")
    assert code == 0
    assert "ralf: DEBUG ralf.semaphore.client: GET /api/ping -> 200" in err.splitlines()
    assert len(fake.token) >= 8 and fake.token not in out + err
