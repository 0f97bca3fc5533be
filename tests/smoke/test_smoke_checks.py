"""Each check kind against real servers on 127.0.0.1 (nginx, PostgreSQL, moto S3, stubs)."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from ralf.smoke.checks import Context, run_check
from ralf.smoke.layers import plan_service
from ralf.transport import NoTransport

HOST = "127.0.0.1"


@pytest.fixture
def run_one(make_platform):
    """Run one declared check of a one-service platform; returns the Outcome."""

    def _run(check: dict, *, extra: dict | None = None, retry_interval: float = 0.1):
        p = make_platform({"svc": {"checks": [check]}}, extra=extra)
        svc = p.services["svc"]
        (pc,) = plan_service("svc", svc, p, NoTransport())
        return run_check(pc, Context(svc, p, NoTransport(), retry_interval=retry_interval))

    return _run


# --------------------------------------------------------------------------- tcp


def test_tcp_open_port_is_ok(run_one, open_port):
    out = run_one({"kind": "tcp", "host": HOST, "port": open_port})
    assert out.status == "OK"


def test_tcp_closed_port_fails_as_refused(run_one, closed_port):
    out = run_one({"kind": "tcp", "host": HOST, "port": closed_port})
    assert (out.status, out.detail) == ("FAIL", "connection refused")


# --------------------------------------------------------------------------- http


def test_http_ok_and_redirect_not_followed(run_one, nginx):
    assert run_one({"kind": "http", "url": f"http://{HOST}:{nginx.http_port}/"}).status == "OK"
    out = run_one({"kind": "http", "url": f"http://{HOST}:{nginx.http_port}/redirect"})
    assert (out.status, out.detail) == ("OK", "status 302")


def test_http_expected_status_and_body(run_one, nginx):
    url = f"http://{HOST}:{nginx.http_port}/"
    out = run_one({"kind": "http", "url": url + "redirect", "expect_status": [200], "deadline": 0})
    assert out.status == "FAIL" and "status 302, expected 200" in out.detail
    out = run_one({"kind": "http", "url": url, "body_contains": "nope", "deadline": 0})
    assert out.status == "FAIL" and "lacks 'nope'" in out.detail
    assert run_one({"kind": "http", "url": url, "body_contains": "hello ralf"}).status == "OK"
    out = run_one({"kind": "http", "url": url + "error", "deadline": 0})
    assert out.status == "FAIL" and "status 502, expected 2xx/3xx" in out.detail


def test_http_slow_server_times_out(run_one, http_stub):
    out = run_one({"kind": "http", "url": http_stub.url("/sleep/2"), "timeout": 0.3, "deadline": 0})
    assert (out.status, out.detail) == ("FAIL", "no answer within 0.3 s")


def test_http_retries_until_the_endpoint_recovers(run_one, http_stub):
    out = run_one({"kind": "http", "url": http_stub.url("/flaky/3"), "deadline": 5}, retry_interval=0.05)
    assert out.status == "OK"
    assert http_stub.state.hits["/flaky/3"] == 4


def test_http_retries_stop_at_the_deadline(run_one, http_stub):
    start = time.monotonic()
    out = run_one({"kind": "http", "url": http_stub.url("/status/503"), "deadline": 0.6}, retry_interval=0.1)
    elapsed = time.monotonic() - start
    assert out.status == "FAIL" and "status 503" in out.detail and "attempts" in out.detail
    assert http_stub.state.hits["/status/503"] >= 3
    assert elapsed < 3


def test_http_sends_one_plain_get_straight_to_the_endpoint(run_one, http_stub, closed_port, monkeypatch):
    # A proxy from the environment is not used (it is dead here): the endpoints are the platform's own.
    monkeypatch.setenv("HTTP_PROXY", f"http://{HOST}:{closed_port}")
    monkeypatch.setenv("http_proxy", f"http://{HOST}:{closed_port}")
    out = run_one({"kind": "http", "url": http_stub.url("/ok?probe=1"), "body_contains": "ok ralf"})
    assert (out.status, out.detail) == ("OK", "status 200")
    ((path, headers),) = http_stub.state.headers
    assert path == "/ok?probe=1"
    assert headers["Host"] == f"{HOST}:{http_stub.port}" and headers["User-Agent"] == "ralf-smoke"


@pytest.mark.parametrize(("answer", "detail"), [
    (None, "no answer within 0.3 s"),  # accepts, never answers
    (b"", "the server closed the connection without an answer"),
    (b"SSH-2.0-OpenSSH_9.2\r\n", "not a valid HTTP answer (it began 'SSH-2.0-OpenSSH_9.2')"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", "not a valid HTTP answer (it began 'HTTP/1.1 200 OK')"),
])
def test_http_endpoint_that_does_not_answer_http_fails_clearly(run_one, answer, detail):
    out = _one_answer(run_one, answer, {"timeout": 0.3, "deadline": 0})
    assert (out.status, out.detail) == ("FAIL", detail)


@pytest.mark.parametrize(("content_type", "status", "detail"), [
    ("text/plain; charset=ISO-8859-1", "OK", "status 200"),  # the body decoded as its charset says
    ('text/plain; charset="x-no-such-charset"', "FAIL", "the body's charset is unknown"),
])
def test_http_body_is_read_in_its_charset(run_one, content_type, status, detail):
    answer = (f"HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: 4\r\n\r\n".encode()
              + "café".encode("latin-1"))
    out = _one_answer(run_one, answer, {"body_contains": "café", "deadline": 0})
    assert (out.status, out.detail) == (status, detail)


def _one_answer(run_one, answer: bytes | None, settings: dict):
    """An HTTP check against a server that reads the request, sends ``answer`` and closes (None: never answers)."""
    server = socket.socket()
    server.bind((HOST, 0))
    server.listen(8)

    def serve() -> None:
        conn, _ = server.accept()
        conn.recv(4096)
        if answer is not None:
            conn.sendall(answer)
            conn.close()
        else:
            time.sleep(1)

    threading.Thread(target=serve, daemon=True).start()
    try:
        return run_one({"kind": "http", "url": f"http://{HOST}:{server.getsockname()[1]}/", **settings})
    finally:
        server.close()


def test_http_closed_port_is_refused(run_one, closed_port):
    out = run_one({"kind": "http", "url": f"http://{HOST}:{closed_port}/", "deadline": 0})
    assert (out.status, out.detail) == ("FAIL", "connection refused")


def test_https_trust_ca_file_system_store_and_insecure(run_one, nginx, certs):
    url = f"https://{HOST}:{nginx.ports['good']}/"
    out = run_one({"kind": "https", "url": url, "ca_file": str(certs.ca)})
    assert out.status == "OK" and "trusted via CA file" in out.detail
    out = run_one({"kind": "https", "url": url, "deadline": 0})  # system store does not know the test CA
    assert out.status == "FAIL" and "certificate not trusted" in out.detail
    out = run_one({"kind": "https", "url": url, "insecure": True})
    assert out.status == "OK" and "NOT verified" in out.detail


def test_https_missing_ca_file_is_a_clear_failure(run_one, nginx, tmp_path):
    out = run_one({"kind": "https", "url": f"https://{HOST}:{nginx.ports['good']}/", "ca_file": str(tmp_path / "x.pem")})
    assert out.status == "FAIL" and "CA file" in out.detail and "not found" in out.detail


# --------------------------------------------------------------------------- tls


def _tls(nginx, certs, name: str, **kw) -> dict:
    return {"kind": "tls", "host": HOST, "port": nginx.ports[name], "server_name": "good.test",
            "ca_file": str(certs.ca), **kw}


def test_tls_good_certificate(run_one, nginx, certs):
    out = run_one(_tls(nginx, certs, "good"))
    assert out.status == "OK"
    assert out.cert_days_left == 90
    assert "trusted via CA file" in out.detail


def test_tls_certificate_expiring_soon_warns(run_one, nginx, certs):
    out = run_one(_tls(nginx, certs, "soon"))
    assert out.status == "WARN" and out.cert_days_left == 5
    assert "expires in 5 days" in out.detail
    assert run_one(_tls(nginx, certs, "soon", warn_days=3)).status == "OK"


def test_tls_expired_certificate_fails(run_one, nginx, certs):
    out = run_one(_tls(nginx, certs, "expired"))
    assert (out.status, out.detail) == ("FAIL", "certificate expired 3 days ago")
    assert out.cert_days_left == -3  # expired 3.5 days ago: "3 days ago", -3 whole days
    # expiry is checked even when trust is explicitly skipped
    assert run_one(_tls(nginx, certs, "expired", insecure=True)).status == "FAIL"


def test_tls_wrong_hostname_fails(run_one, nginx, certs):
    out = run_one(_tls(nginx, certs, "wronghost"))
    assert (out.status, out.detail) == ("FAIL", "certificate is for other.test, not good.test")
    assert run_one(_tls(nginx, certs, "wronghost", insecure=True)).status == "FAIL"


def test_tls_ip_address_is_matched_against_ip_names(run_one, nginx, certs):
    out = run_one({"kind": "tls", "host": HOST, "port": nginx.ports["good"], "ca_file": str(certs.ca)})
    assert out.status == "OK"


def test_tls_untrusted_without_ca_and_explicitly_insecure(run_one, nginx, certs):
    out = run_one(_tls(nginx, certs, "good", ca_file=None))
    assert out.status == "FAIL" and out.detail.startswith("certificate not trusted")
    out = run_one(_tls(nginx, certs, "good", ca_file=None, insecure=True))
    assert out.status == "OK" and "trust NOT verified (insecure: true)" in out.detail


def test_tls_against_plain_http_and_closed_port(run_one, nginx, closed_port):
    out = run_one({"kind": "tls", "host": HOST, "port": nginx.http_port, "insecure": True})
    assert out.status == "FAIL" and out.detail.startswith("TLS handshake failed")
    out = run_one({"kind": "tls", "host": HOST, "port": closed_port, "insecure": True})
    assert (out.status, out.detail) == ("FAIL", "connection refused")


# --------------------------------------------------------------------------- postgres


def test_postgres_real_protocol_exchange(run_one, postgres):
    out = run_one({"kind": "postgres", "host": HOST, "port": postgres})
    assert out.status == "OK"
    # trust auth and an unknown role: the server answers with an error message, which proves it alive
    assert 'role "ralf_smoke" does not exist' in out.detail and "28000" in out.detail


def test_postgres_check_is_not_just_a_tcp_connect(run_one, nginx, open_port, closed_port):
    out = run_one({"kind": "postgres", "host": HOST, "port": nginx.http_port})
    assert out.status == "FAIL" and out.detail.startswith("not a PostgreSQL server")
    out = run_one({"kind": "postgres", "host": HOST, "port": open_port, "timeout": 0.3})
    assert (out.status, out.detail) == ("FAIL", "no protocol answer within 0.3 s")
    out = run_one({"kind": "postgres", "host": HOST, "port": closed_port})
    assert (out.status, out.detail) == ("FAIL", "connection refused")


def test_postgres_with_a_ca_verifies_the_certificate_for_the_name(run_one, postgres_tls, certs):
    out = run_one({"kind": "postgres", "host": HOST, "port": postgres_tls("good"), "ca_file": str(certs.ca)})
    assert out.status == "OK" and f"TLS verified for {HOST}" in out.detail and "28000" in out.detail, out.detail
    assert out.cert_days_left == 90
    out = run_one({"kind": "postgres", "host": HOST, "port": postgres_tls("good"), "ca_file": str(certs.ca),
                   "server_name": "good.test"})
    assert out.status == "OK" and "TLS verified for good.test" in out.detail, out.detail


def test_postgres_with_a_ca_fails_on_a_foreign_expired_or_misnamed_certificate(run_one, postgres_tls, certs,
                                                                             tmp_path):
    from ralf.pki import CA

    other = CA(tmp_path / "ca.pem", tmp_path / "ca.key", common_name="not the test CA")
    other.ensure()
    out = run_one({"kind": "postgres", "host": HOST, "port": postgres_tls("good"), "ca_file": str(other.cert_file)})
    assert (out.status, out.detail) == ("FAIL", "certificate not trusted: unable to get local issuer certificate")
    out = run_one({"kind": "postgres", "host": HOST, "port": postgres_tls("expired"), "ca_file": str(certs.ca)})
    assert (out.status, out.detail) == ("FAIL", "certificate not trusted: certificate has expired")
    out = run_one({"kind": "postgres", "host": HOST, "port": postgres_tls("wronghost"), "ca_file": str(certs.ca)})
    assert out.status == "FAIL" and out.detail.startswith("certificate not trusted: IP address mismatch"), out.detail
    out = run_one({"kind": "postgres", "host": HOST, "port": postgres_tls("good"), "ca_file": str(certs.ca),
                   "server_name": "other.test"})
    assert out.status == "FAIL" and out.detail.startswith("certificate not trusted: Hostname mismatch"), out.detail


def test_postgres_with_a_ca_requires_tls(run_one, postgres, certs):
    out = run_one({"kind": "postgres", "host": HOST, "port": postgres, "ca_file": str(certs.ca)})
    assert (out.status, out.detail) == (
        "FAIL", f"server refuses TLS (answered N to SSLRequest); its certificate is to be verified against {certs.ca}")


def test_postgres_without_a_ca_takes_tls_unverified_and_says_so(run_one, postgres_tls, certs, tmp_path):
    out = run_one({"kind": "postgres", "host": HOST, "port": postgres_tls("expired")})
    assert out.status == "OK" and "TLS, not verified: no CA known" in out.detail, out.detail
    out = run_one({"kind": "postgres", "host": HOST, "port": postgres_tls("expired"), "ca_file": str(certs.ca),
                   "insecure": True})
    assert out.status == "OK" and "TLS, trust NOT verified (insecure: true)" in out.detail, out.detail
    out = run_one({"kind": "postgres", "host": HOST, "port": postgres_tls("good"), "ca_file": str(tmp_path / "none.pem")})
    assert (out.status, out.detail) == ("FAIL", f"CA file {tmp_path / 'none.pem'} not found")


# --------------------------------------------------------------------------- mail


def test_smtp_banner_and_starttls(run_one, smtp_stub, certs):
    out = run_one({"kind": "smtp", "host": HOST, "port": smtp_stub["with_tls"], "ca_file": str(certs.ca)})
    assert out.status == "OK" and "STARTTLS" in out.detail
    out = run_one({"kind": "smtp", "host": HOST, "port": smtp_stub["with_tls"]})
    assert out.status == "FAIL" and "not trusted" in out.detail


def test_smtp_without_starttls(run_one, smtp_stub):
    out = run_one({"kind": "smtp", "host": HOST, "port": smtp_stub["plain"], "insecure": True})
    assert (out.status, out.detail) == ("FAIL", "STARTTLS not offered")
    assert run_one({"kind": "smtp", "host": HOST, "port": smtp_stub["plain"], "starttls": False}).status == "OK"


def test_smtp_wrong_server(run_one, open_port, nginx):
    out = run_one({"kind": "smtp", "host": HOST, "port": open_port, "timeout": 0.3})
    assert out.status == "FAIL"
    out = run_one({"kind": "smtp", "host": HOST, "port": nginx.http_port, "timeout": 0.5})
    assert out.status == "FAIL"


def test_imaps(run_one, imaps_stub, certs, nginx):
    out = run_one({"kind": "imaps", "host": HOST, "port": imaps_stub, "ca_file": str(certs.ca)})
    assert out.status == "OK" and "IMAP greeting" in out.detail
    assert run_one({"kind": "imaps", "host": HOST, "port": imaps_stub}).status == "FAIL"
    out = run_one({"kind": "imaps", "host": HOST, "port": nginx.ports["good"], "insecure": True, "timeout": 0.5})
    assert (out.status, out.detail) == ("FAIL", "no IMAP greeting within 0.5 s")


# --------------------------------------------------------------------------- s3


def _s3_platform(s3, tmp_path, secret="s3cr3t-value-123"):
    (tmp_path / "secrets").mkdir(exist_ok=True)
    (tmp_path / "secrets" / "minio.env").write_text(f"MINIO_ROOT_USER=admin\nMINIO_ROOT_PASSWORD='{secret}'\n")
    return {"state_backend": {"endpoint": s3, "bucket": "tofu-state"}}


def test_s3_bucket_reachable_with_credentials_file(run_one, s3, tmp_path, monkeypatch):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID", raising=False)
    out = run_one({"kind": "s3"}, extra=_s3_platform(s3, tmp_path))
    assert out.status == "OK" and "bucket 'tofu-state' reachable" in out.detail


def test_s3_missing_bucket_fails(run_one, s3, tmp_path):
    out = run_one({"kind": "s3", "bucket": "nope"}, extra=_s3_platform(s3, tmp_path))
    assert (out.status, out.detail) == ("FAIL", "bucket 'nope' does not exist")


def test_s3_without_credentials_fails_without_leaking(run_one, s3, tmp_path, monkeypatch):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID", raising=False)
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY", raising=False)
    out = run_one({"kind": "s3"}, extra={"state_backend": {"endpoint": s3, "bucket": "tofu-state"}})
    assert out.status == "FAIL" and out.detail.startswith("no S3 credentials")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "env-user")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "env-secret-xyz")
    out = run_one({"kind": "s3"}, extra={"state_backend": {"endpoint": s3, "bucket": "nope"}})
    assert out.status == "FAIL" and "env-secret-xyz" not in out.detail


def test_s3_access_denied_is_named_and_the_request_is_signed(run_one, tmp_path):
    """A server that refuses the credentials (as MinIO does): the check says so; the HEAD carried SigV4."""
    from http.server import BaseHTTPRequestHandler

    from doubles.http import serving

    seen: list[tuple[str, str, str]] = []

    class Refusing(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - /minio/health/live
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_HEAD(self):  # noqa: N802 - HeadBucket
            seen.append((self.command, self.path, self.headers.get("Authorization", "")))
            self.send_response(403)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *a):
            pass

    with serving(Refusing) as srv:
        out = run_one({"kind": "s3"}, extra=_s3_platform(srv.url, tmp_path))
    assert (out.status, out.detail) == ("FAIL", "bucket 'tofu-state': access denied with the configured credentials")
    assert len(seen) == 1  # one attempt, no retries
    method, path, auth = seen[0]
    assert (method, path) == ("HEAD", "/tofu-state")
    assert auth.startswith("AWS4-HMAC-SHA256 Credential=admin/") and "/us-east-1/s3/aws4_request" in auth
    assert "s3cr3t-value-123" not in auth + out.detail


def test_s3_dead_endpoint(run_one, closed_port, tmp_path):
    out = run_one({"kind": "s3"}, extra=_s3_platform(f"http://{HOST}:{closed_port}", tmp_path))
    assert (out.status, out.detail) == ("FAIL", "connection refused")


def test_https_server_name_verifies_a_certificate_without_the_ip(run_one, nginx, certs):
    url = f"https://{HOST}:{nginx.ports['wronghost']}/"
    out = run_one({"kind": "https", "url": url, "ca_file": str(certs.ca), "deadline": 0})
    assert out.status == "FAIL" and "certificate not trusted" in out.detail  # the cert names other.test, not the IP
    out = run_one({"kind": "https", "url": url, "ca_file": str(certs.ca), "server_name": "other.test"})
    assert out.status == "OK" and "trusted via CA file" in out.detail
    out = run_one({"kind": "https", "url": url, "ca_file": str(certs.ca), "server_name": "good.test", "deadline": 0})
    assert out.status == "FAIL"


def test_smtp_starttls_verifies_against_server_name(run_one, smtp_stub, certs):
    check = {"kind": "smtp", "host": HOST, "port": smtp_stub["with_tls"], "ca_file": str(certs.ca)}
    assert run_one({**check, "server_name": "good.test"}).status == "OK"
    out = run_one({**check, "server_name": "other.test"})
    assert out.status == "FAIL" and "not trusted" in out.detail and "other.test" in out.detail


def test_imaps_verifies_against_server_name(run_one, imaps_stub, certs):
    check = {"kind": "imaps", "host": HOST, "port": imaps_stub, "ca_file": str(certs.ca)}
    assert run_one({**check, "server_name": "good.test"}).status == "OK"
    out = run_one({**check, "server_name": "other.test"})
    assert out.status == "FAIL" and "not trusted" in out.detail and "other.test" in out.detail


PROXMOX = {"proxmox": {"api_url": "https://127.0.0.1:8006/api2/json", "node": "pve", "lxc_template": "local:vztmpl/x"}}


def test_tls_checks_without_a_ca_file_verify_against_the_platforms_own_ca(run_one, nginx, certs, tmp_path):
    check = _tls(nginx, certs, "good", ca_file=None)
    out = run_one(check, extra=PROXMOX)  # the platform CA does not exist yet: the system store, which fails
    assert out.status == "FAIL" and out.detail.startswith("certificate not trusted")
    (tmp_path / "secrets" / "ca").mkdir(parents=True)
    (tmp_path / "secrets" / "ca" / "ca.pem").write_bytes(certs.ca.read_bytes())  # the CA that issued nginx's cert
    out = run_one(check, extra=PROXMOX)
    assert out.status == "OK" and "trusted via CA file" in out.detail and out.cert_days_left == 90
    url = f"https://{HOST}:{nginx.ports['good']}/"
    assert run_one({"kind": "https", "url": url}, extra=PROXMOX).status == "OK"
    # a platform without CTs (the loopback lab) keeps the system store
    assert run_one(check).status == "FAIL"
