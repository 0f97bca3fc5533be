"""Real servers for the smoke tests, all on 127.0.0.1 with free ports, stopped afterwards.

- certificates made with ``cryptography``: a test CA, and leaf certificates that are good, expire
  soon, expired three days ago, or are issued for the wrong hostname;
- nginx serving each of those certificates on its own port;
- PostgreSQL (initdb/pg_ctl in a temp dir, run as ``nobody`` when we are root);
- moto's S3 server with the bucket ``tofu-state``;
- an accepting TCP port, a closed one, and a scriptable HTTP server (slow, failing N times, ...);
- tiny SMTP (with STARTTLS) and IMAPS stubs.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import socket
import socketserver
import ssl
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
import yaml
from doubles.http import serving
from ports import free_port

HOST = "127.0.0.1"
PG_BIN = max(Path("/usr/lib/postgresql").glob("*/bin"), default=Path("/usr/lib/postgresql/15/bin"),
             key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0)


def wait_port(port: int, timeout: float = 15.0, proc: subprocess.Popen | None = None) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection((HOST, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on {HOST}:{port} after {timeout} s")


# --------------------------------------------------------------------------- certificates


@dataclass
class Certs:
    dir: Path
    ca: Path

    def pair(self, name: str) -> tuple[Path, Path]:
        return self.dir / f"{name}.crt", self.dir / f"{name}.key"


def _key():
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1())


def _write(path: Path, cert, key=None) -> None:
    from cryptography.hazmat.primitives import serialization

    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    if key is not None:
        path.with_suffix(".key").write_bytes(
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption())
        )


@pytest.fixture(scope="session")
def certs(tmp_path_factory) -> Certs:
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    d = tmp_path_factory.mktemp("certs")
    now = dt.datetime.now(dt.UTC)
    ca_key = _key()
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ralf test CA")])
    ca = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=30)).not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    _write(d / "ca.pem", ca)

    def leaf(name: str, dns: list[str], ips: list[str], before: dt.datetime, after: dt.datetime) -> None:
        key = _key()
        san = [x509.DNSName(n) for n in dns] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, (dns or ips)[0])]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(before).not_valid_after(after)
            .add_extension(x509.SubjectAlternativeName(san), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        _write(d / f"{name}.crt", cert, key)

    # +12 h keeps the whole-day counts stable while the tests run.
    leaf("good", ["good.test", "localhost"], [HOST], now - dt.timedelta(days=1), now + dt.timedelta(days=90, hours=12))
    leaf("soon", ["good.test"], [HOST], now - dt.timedelta(days=80), now + dt.timedelta(days=5, hours=12))
    leaf("expired", ["good.test"], [HOST], now - dt.timedelta(days=90), now - dt.timedelta(days=3, hours=12))
    leaf("wronghost", ["other.test"], [], now - dt.timedelta(days=1), now + dt.timedelta(days=90, hours=12))
    return Certs(d, d / "ca.pem")


# --------------------------------------------------------------------------- nginx


@dataclass
class Nginx:
    ports: dict[str, int]  # cert name -> TLS port
    http_port: int


@pytest.fixture(scope="session")
def nginx(certs, tmp_path_factory):
    exe = shutil.which("nginx") or "/usr/sbin/nginx"
    if not os.path.exists(exe):
        pytest.fail("nginx is not installed (.ci/run installs it with apt-get)")
    d = tmp_path_factory.mktemp("nginx")
    ports = {name: free_port() for name in ("good", "soon", "expired", "wronghost")}
    http_port = free_port()
    locations = """
        location = / { return 200 "hello ralf\\n"; }
        location = /redirect { return 302 /; }
        location = /error { return 502 "bad gateway\\n"; }
    """
    servers = [f"server {{ listen {HOST}:{http_port}; {locations} }}"]
    for name, port in ports.items():
        crt, key = certs.pair(name)
        servers.append(
            f"server {{ listen {HOST}:{port} ssl; ssl_certificate {crt}; ssl_certificate_key {key}; {locations} }}"
        )
    temp = "\n".join(f"{k} {d}/{k.split('_')[0]};" for k in (
        "client_body_temp_path", "proxy_temp_path", "fastcgi_temp_path", "uwsgi_temp_path", "scgi_temp_path"))
    conf = d / "nginx.conf"
    conf.write_text(f"""
daemon off;
master_process off;
pid {d}/nginx.pid;
error_log {d}/error.log;
events {{ worker_connections 64; }}
http {{
    access_log off;
    {temp}
    default_type text/plain;
    {' '.join(servers)}
}}
""")
    proc = subprocess.Popen([exe, "-p", str(d), "-e", str(d / "error.log"), "-c", str(conf)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        for p in [http_port, *ports.values()]:
            wait_port(p, proc=proc)
    except RuntimeError as e:
        proc.kill()
        raise RuntimeError(f"nginx did not start: {(d / 'error.log').read_text() if (d / 'error.log').exists() else ''}") from e
    yield Nginx(ports, http_port)
    proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()


# --------------------------------------------------------------------------- PostgreSQL


def _postgres(settings: dict[str, str] | None = None, files: dict[str, Path] | None = None):
    """A PostgreSQL server on 127.0.0.1 (a generator: yields its port, then stops it); ``files`` are
    copied into its directory, owned by the server's user, and named in ``settings`` as ``{dir}/<name>``."""
    if not (PG_BIN / "initdb").exists():
        pytest.fail(f"PostgreSQL binaries not found in {PG_BIN} (.ci/run installs postgresql)")
    d = Path(tempfile.mkdtemp(prefix="ralf-pg-"))
    prefix: list[str] = []
    for name, src in (files or {}).items():
        shutil.copy(src, d / name)
        (d / name).chmod(0o600)  # PostgreSQL refuses a key others can read
    if os.geteuid() == 0:  # postgres refuses to run as root
        for path in [d, *d.iterdir()]:
            shutil.chown(path, "nobody")
        prefix = ["runuser", "-u", "nobody", "--"]
    port = free_port()
    data = d / "data"
    run = lambda *args: subprocess.run(prefix + list(args), check=True, capture_output=True, text=True)  # noqa: E731
    run(str(PG_BIN / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync")
    extra = "".join(f" -c {k}={v.format(dir=d)}" for k, v in (settings or {}).items())
    run(str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(d / "log"), "-w", "-t", "30", "start",
        "-o", f"-p {port} -k {d} -c listen_addresses={HOST} -c fsync=off{extra}")
    try:
        yield port
    finally:
        subprocess.run(prefix + [str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                       capture_output=True)
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres():
    yield from _postgres()


@pytest.fixture(scope="session")
def postgres_tls(certs):
    """PostgreSQL with TLS on, one server per certificate of ``certs`` asked for: ``postgres_tls("good")``."""
    servers: dict[str, int] = {}
    running = []

    def port(cert: str) -> int:
        if cert not in servers:
            crt, key = certs.pair(cert)
            server = _postgres({"ssl": "on", "ssl_cert_file": "{dir}/server.crt", "ssl_key_file": "{dir}/server.key"},
                               {"server.crt": crt, "server.key": key})
            servers[cert] = next(server)
            running.append(server)
        return servers[cert]

    yield port
    for server in running:
        next(server, None)


# --------------------------------------------------------------------------- S3 (moto)


@pytest.fixture(scope="session")
def s3():
    import boto3
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address=HOST, port=port, verbose=False)
    server.start()
    wait_port(port)
    client = boto3.client("s3", endpoint_url=f"http://{HOST}:{port}", aws_access_key_id="test",
                          aws_secret_access_key="test", region_name="us-east-1")
    client.create_bucket(Bucket="tofu-state")
    yield f"http://{HOST}:{port}"
    server.stop()


# --------------------------------------------------------------------------- plain TCP


@pytest.fixture(scope="session")
def open_port():
    """A port that accepts connections and never says anything."""
    s = socket.socket()
    s.bind((HOST, 0))
    s.listen(64)
    yield s.getsockname()[1]
    s.close()


@pytest.fixture
def closed_port() -> int:
    return free_port()


# --------------------------------------------------------------------------- scriptable HTTP


class _State:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.in_flight = 0
        self.max_in_flight = 0
        self.hits: dict[str, int] = {}
        self.headers: list[tuple[str, dict[str, str]]] = []  # (path, headers) of each request


class _Handler(BaseHTTPRequestHandler):
    """``/ok``, ``/sleep/<s>``, ``/status/<code>``, ``/flaky/<n>`` (503 for the first n hits)."""

    state: _State

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        st = self.state
        with st.lock:
            st.in_flight += 1
            st.max_in_flight = max(st.max_in_flight, st.in_flight)
            st.hits[self.path] = st.hits.get(self.path, 0) + 1
            st.headers.append((self.path, dict(self.headers)))
            hits = st.hits[self.path]
        try:
            parts = self.path.split("?")[0].strip("/").split("/")
            code, body = 200, b"ok ralf\n"
            if parts[0] == "sleep":
                time.sleep(float(parts[1]))
            elif parts[0] == "status":
                code = int(parts[1])
            elif parts[0] == "flaky":
                code = 503 if hits <= int(parts[1]) else 200
        finally:
            with st.lock:  # done before answering: a client may send its next request the moment it has the answer
                st.in_flight -= 1
        try:
            self.send_response(code)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the check gave up waiting (its timeout) and closed the connection


@dataclass
class HttpStub:
    port: int
    state: _State

    def url(self, path: str) -> str:
        return f"http://{HOST}:{self.port}{path}"


@pytest.fixture
def http_stub():
    state = _State()
    handler = type("Handler", (_Handler,), {"state": state})
    with serving(handler) as server:
        yield HttpStub(server.server_address[1], state)


# --------------------------------------------------------------------------- SMTP / IMAPS stubs


def _server_ctx(certs: Certs, name: str = "good") -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    crt, key = certs.pair(name)
    ctx.load_cert_chain(str(crt), str(key))
    return ctx


def _serve(handler_cls) -> tuple[socketserver.ThreadingTCPServer, int]:
    server = socketserver.ThreadingTCPServer((HOST, 0), handler_cls)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server, server.server_address[1]


@pytest.fixture(scope="session")
def smtp_stub(certs):
    """Two SMTP stubs: ``with_tls`` offers STARTTLS, ``plain`` does not."""
    ctx = _server_ctx(certs)

    def make(offer_tls: bool):
        class H(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                conn = self.connection
                conn.sendall(b"220 stub.test ESMTP ralf-stub\r\n")
                f = conn.makefile("rb")
                while True:
                    line = f.readline().strip().upper()
                    if not line:
                        return
                    if line.startswith((b"EHLO", b"HELO")):
                        conn.sendall(b"250-stub.test\r\n" + (b"250-STARTTLS\r\n" if offer_tls else b"") + b"250 8BITMIME\r\n")
                    elif line == b"STARTTLS" and offer_tls:
                        conn.sendall(b"220 go ahead\r\n")
                        try:
                            conn = ctx.wrap_socket(conn, server_side=True)
                        except (ssl.SSLError, OSError):
                            return
                        f = conn.makefile("rb")
                    elif line == b"QUIT":
                        conn.sendall(b"221 bye\r\n")
                        return
                    else:
                        conn.sendall(b"502 not implemented\r\n")

        return _serve(H)

    (s1, p1), (s2, p2) = make(True), make(False)
    yield {"with_tls": p1, "plain": p2}
    for s in (s1, s2):
        s.shutdown()
        s.server_close()


@pytest.fixture(scope="session")
def imaps_stub(certs):
    ctx = _server_ctx(certs)

    class H(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            try:
                with ctx.wrap_socket(self.request, server_side=True) as tls:
                    tls.sendall(b"* OK [CAPABILITY IMAP4rev1] ralf stub ready\r\n")
                    tls.recv(64)
            except (ssl.SSLError, OSError):
                pass

    server, port = _serve(H)
    yield port
    server.shutdown()
    server.server_close()


# --------------------------------------------------------------------------- test platforms


@pytest.fixture
def make_platform(write_platform, tmp_path):
    """Build a platform from service dicts (YAML-able), write it, load it; returns the Platform.

    Each service gets a distinct 127.0.1.x IP (the platform requires unique IPs); checks name their
    host (127.0.0.1) explicitly. ``exec_`` is the ``exec`` section; ``extra`` merges top-level keys.
    """
    from ralf.loader import load_platform

    def _make(services: dict, *, groups: list | None = None, exec_: dict | None = None, extra: dict | None = None):
        svc = {}
        for i, (name, s) in enumerate(services.items(), start=1):
            base = {
                "word": name.capitalize(),
                "group": "phase1",
                "ip": f"127.0.1.{i}",
                "hostname": f"{name}.test",
                "stacks": [f"{100 + i:03d}-{name}-config"],
            }
            base.update(s)
            svc[name] = base
        doc = {
            "version": 1,
            "name": "smoke-test",
            "network": {"cidr": "127.0.0.0/8"},
            "secrets": {"dir": str(tmp_path / "secrets")},
            "exec": exec_ or {"transport": "none"},
            "groups": groups or [{"name": "phase1", "word": "Phase1", "phase1": True}],
            "services": svc,
        }
        doc.update(extra or {})
        return load_platform(write_platform(yaml.safe_dump(doc, sort_keys=False)))

    return _make
