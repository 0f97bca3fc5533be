"""One function per check kind: ``run_check(planned, ctx) -> Outcome``.

Every function turns every failure it can meet (refused, timeout, bad certificate, wrong answer)
into an :class:`Outcome` with a one-line detail; nothing here raises for a dead server. The checks that
wait on the network or a CT (tcp, http/https, unit, app_port) are coroutines, run on the engine's event
loop (:func:`run_check_async`); the others use blocking libraries and run in its threads. Heavy imports
(ssl, minio, cryptography) happen inside the functions so ``ralf --help`` stays fast.
"""

from __future__ import annotations

import functools
import inspect
import math
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC
from typing import Any

from ralf import settings
from ralf.smoke.reasons import net_error, verify_message
from ralf.smoke.results import FAIL, OK, WARN, CheckStatus


@dataclass
class Outcome:
    status: CheckStatus
    detail: str = ""
    cert_days_left: int | None = None


@dataclass
class Context:
    """What a check may use besides its own settings."""

    service: Any  # ralf.model.Service
    platform: Any  # ralf.model.Platform
    transport: Any  # ralf.transport.Transport
    retry_interval: float = 1.0
    batcher: Any = None  # ralf.transport_batch.Batcher: the engine's, for commands in CTs


# --------------------------------------------------------------------------- helpers


def tls_context(platform, ca_file: str | None, insecure: bool):
    """A client context: explicitly insecure, else the CA file, else the system trust store.

    Contexts are cached (loading a trust store costs tens of milliseconds of CPU, which adds up
    when every service is checked at once); a CA file is keyed by its path and modification time.
    """
    if insecure:
        return _context(None, 0, True)
    ca_file = ca_file_of(platform, ca_file)
    if ca_file:
        path = platform.resolve_path(ca_file)
        try:
            mtime = path.stat().st_mtime_ns
        except OSError:
            raise FileNotFoundError(f"CA file {path} not found") from None
        return _context(str(path), mtime, False)
    return _context(None, 0, False)


def ca_file_of(platform, ca_file: str | None) -> str | None:
    """The check's CA file, else the platform's own CA (``<secrets>/ca/ca.pem``) on a platform with CTs."""
    if ca_file or platform is None or (platform.proxmox is None and platform.lxc_host is None):
        return ca_file
    from ralf.backends.lxc.tls import ca

    own = ca(platform).cert_file
    return str(own) if own.is_file() else None


@functools.lru_cache(maxsize=32)
def _context(ca_path: str | None, mtime: int, insecure: bool):
    import ssl

    if insecure:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    if ca_path:
        return ssl.create_default_context(cafile=ca_path)
    return ssl.create_default_context()


def _trust_label(ca_file: str | None, insecure: bool) -> str:
    if insecure:
        return "trust NOT verified (insecure: true)"
    return "trusted via CA file" if ca_file else "trusted via system store"


@dataclass
class CertInfo:
    not_after: Any  # datetime (UTC)
    dns_names: list[str]
    ip_addresses: list[str]

    @property
    def names(self) -> list[str]:
        return self.dns_names + self.ip_addresses


def cert_info(der: bytes) -> CertInfo:
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    cert = x509.load_der_x509_certificate(der)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns = list(san.get_values_for_type(x509.DNSName))
        ips = [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
    except x509.ExtensionNotFound:
        dns = [str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
        ips = []
    return CertInfo(cert.not_valid_after_utc, list(dns), ips)


def hostname_matches(name: str, info: CertInfo) -> bool:
    import ipaddress

    try:
        ip = ipaddress.ip_address(name)
    except ValueError:
        ip = None
    if ip is not None:
        return any(ipaddress.ip_address(a) == ip for a in info.ip_addresses)
    name = name.lower().rstrip(".")
    for pattern in info.dns_names:
        pattern = pattern.lower().rstrip(".")
        if pattern == name:
            return True
        if pattern.startswith("*.") and "." in name and name.split(".", 1)[1] == pattern[2:]:
            return True
    return False


def _days_left(not_after) -> float:
    from datetime import datetime

    return (not_after - datetime.now(UTC)).total_seconds() / 86400


# --------------------------------------------------------------------------- check kinds


async def check_tcp(pc, ctx: Context) -> Outcome:
    from ralf.smoke.net import tcp_connect

    problem = await tcp_connect(pc.host, pc.port, pc.check.timeout)
    return Outcome(OK, "connected") if problem is None else Outcome(FAIL, problem)


async def check_http(pc, ctx: Context) -> Outcome:
    """GET the URL (redirects not followed; :mod:`ralf.smoke.net`) until it answers as expected or the
    check's deadline passes."""
    import asyncio
    from urllib.parse import urlsplit

    from ralf.smoke.net import get

    c = pc.check
    https = c.url.startswith("https://")
    try:
        # plain http never touches TLS (redirects are not followed): no context to build
        context = tls_context(ctx.platform, c.ca_file, c.insecure) if https else None
    except FileNotFoundError as e:
        return Outcome(FAIL, str(e))
    parts = urlsplit(c.url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    start = time.monotonic()
    attempts = 0
    problem = ""
    while True:
        attempts += 1
        answer = await get(pc.host, pc.port, target, c.timeout, context, c.server_name if https else None,
                           read_body=c.body_contains is not None)
        if isinstance(answer, str):
            problem = answer
        else:
            status, text = answer
            ok_status = (status in c.expect_status) if c.expect_status else 200 <= status < 400
            if not ok_status:
                want = "/".join(map(str, c.expect_status)) if c.expect_status else "2xx/3xx"
                problem = f"status {status}, expected {want}"
            elif c.body_contains is not None and c.body_contains not in text:
                problem = f"status {status} but the body lacks {c.body_contains!r}"
            else:
                note = f", {_trust_label(ca_file_of(ctx.platform, c.ca_file), c.insecure)}" if https else ""
                return Outcome(OK, f"status {status}{note}")
        elapsed = time.monotonic() - start
        if elapsed + ctx.retry_interval > c.deadline:
            break
        await asyncio.sleep(ctx.retry_interval)
    if attempts > 1:
        problem += f" ({attempts} attempts in {time.monotonic() - start:.0f} s)"
    return Outcome(FAIL, problem)


def _http_error(e: BaseException) -> str:
    text = str(e)
    cause = e.__context__ or e.__cause__
    import ssl

    while cause is not None:
        if isinstance(cause, (ssl.SSLError, OSError)):
            if isinstance(cause, ssl.SSLCertVerificationError):
                return f"certificate not trusted: {cause.verify_message}"
            if isinstance(cause, ConnectionRefusedError):
                return "connection refused"
        cause = cause.__context__ or cause.__cause__
    if "CERTIFICATE_VERIFY_FAILED" in text:
        return "certificate not trusted: " + text.split("certificate verify failed:")[-1].strip(" )")
    if "refused" in text.lower():
        return "connection refused"
    return text or type(e).__name__


def check_tls(pc, ctx: Context) -> Outcome:
    import ssl

    c = pc.check
    name = c.server_name or pc.host
    sni = name
    t = c.timeout
    # 1. Fetch the certificate without judging it, so an expired or foreign one can be described.
    raw = tls_context(ctx.platform, None, True)
    try:
        with socket.create_connection((pc.host, pc.port), timeout=t) as sock:
            with raw.wrap_socket(sock, server_hostname=sni) as tls:
                der = tls.getpeercert(binary_form=True)
    except ssl.SSLError as e:
        return Outcome(FAIL, f"TLS handshake failed: {e.reason or e}")
    except OSError as e:
        return Outcome(FAIL, net_error(e, t))
    if not der:
        return Outcome(FAIL, "TLS handshake gave no certificate")
    info = cert_info(der)
    days = _days_left(info.not_after)
    whole = math.trunc(days)  # whole days left; negative = whole days since expiry, as the message says
    if days < 0:
        ago = -whole
        when = f"{ago} day{'s' if ago != 1 else ''} ago" if ago else "less than a day ago"
        return Outcome(FAIL, f"certificate expired {when}", cert_days_left=whole)
    if not hostname_matches(name, info):
        return Outcome(
            FAIL,
            f"certificate is for {', '.join(info.names) or 'no name'}, not {name}",
            cert_days_left=whole,
        )
    # 2. Trust: the system store, a CA file, or explicitly nothing.
    if not c.insecure:
        try:
            ctx_v = tls_context(ctx.platform, c.ca_file, False)
            with socket.create_connection((pc.host, pc.port), timeout=t) as sock:
                with ctx_v.wrap_socket(sock, server_hostname=sni):
                    pass
        except FileNotFoundError as e:
            return Outcome(FAIL, str(e), cert_days_left=whole)
        except ssl.SSLError as e:
            return Outcome(FAIL, verify_message(e), cert_days_left=whole)
        except OSError as e:
            return Outcome(FAIL, net_error(e, t), cert_days_left=whole)
    trust = _trust_label(ca_file_of(ctx.platform, c.ca_file), c.insecure)
    if whole < c.warn_days:
        return Outcome(WARN, f"certificate expires in {whole} days (warn below {c.warn_days}), {trust}", whole)
    return Outcome(OK, f"certificate valid {whole} more days for {name}, {trust}", whole)


def shell_command(template: str, **values) -> str:
    """Fill a command template; each value becomes one shell word (quoted), whatever it holds."""
    import shlex

    return template.format_map({k: shlex.quote(str(v)) if v != "" else "" for k, v in values.items()})


async def in_ct(ctx: Context, command: str, timeout: float):
    """Run ``command`` in the service's CT: through the run's batcher (:mod:`ralf.transport_batch`) when the
    engine gave one, else straight through the transport."""
    if ctx.batcher is not None:
        return await ctx.batcher.run(ctx.service, command, timeout)
    return ctx.transport.run(ctx.service, command, timeout)


async def check_unit(pc, ctx: Context) -> Outcome:
    c = pc.check
    cmd = shell_command(ctx.platform.exec.unit_command, unit=c.unit, host=ctx.service.ip, port="")
    res = await in_ct(ctx, cmd, c.timeout)
    if res.transport_error:
        return Outcome(WARN, f"could not check: {res.transport_error}")
    if res.timed_out:
        return Outcome(FAIL, f"no answer from the CT within {c.timeout:g} s")
    state = _first(res.stdout)
    if res.rc == 0:
        return Outcome(OK, state or "active")
    if state:  # systemctl's own answer: inactive, failed, activating, ...
        return Outcome(FAIL, f"unit {c.unit} is {state} (exit {res.rc})")
    why = _first(res.stderr)  # e.g. pct: "CT 4020 not running"; systemctl missing in the CT
    return Outcome(FAIL, f"unit {c.unit} is not active: {why} (exit {res.rc})" if why
                   else f"unit {c.unit} is not active (exit {res.rc})")


async def check_app_port(pc, ctx: Context) -> Outcome:
    c = pc.check
    cmd = shell_command(ctx.platform.exec.port_command, host=c.host, port=c.port, unit="")
    res = await in_ct(ctx, cmd, c.timeout)
    if res.transport_error:
        return Outcome(WARN, f"could not check: {res.transport_error}")
    if res.timed_out:
        return Outcome(FAIL, f"no answer from the CT within {c.timeout:g} s")
    if res.rc == 0:
        return Outcome(OK, f"listening on {c.host}:{c.port}")
    return Outcome(FAIL, f"nothing listening on {c.host}:{c.port} inside the CT (exit {res.rc})")


def _first(text: str) -> str:
    return next((ln.strip() for ln in text.splitlines() if ln.strip()), "")


# PostgreSQL wire protocol: an SSLRequest, then a StartupMessage for a role that need not exist.
# Any authentication request or error message proves a live server; "starting up" does not.
_PG_SSL_REQUEST = struct.pack("!ii", 8, 80877103)
_PG_NOT_READY = {"57P03", "57P01", "57P02", "58000", "53100"}


def check_postgres(pc, ctx: Context) -> Outcome:
    """With a CA known (the check's ca_file, else the platform's own), TLS is required and the
    certificate verified for ``server_name`` (default: host), as PostgreSQL's clients with
    sslmode=verify-full do; without one, TLS is taken when offered, unverified."""
    import ssl

    c = pc.check
    t = c.timeout
    name = c.server_name or pc.host
    try:
        ca = None if c.insecure else ca_file_of(ctx.platform, c.ca_file)
        context = tls_context(ctx.platform, c.ca_file, False) if ca else tls_context(ctx.platform, None, True)
    except FileNotFoundError as e:
        return Outcome(FAIL, str(e))
    try:
        sock = socket.create_connection((pc.host, pc.port), timeout=t)
    except OSError as e:
        return Outcome(FAIL, net_error(e, t))
    days: int | None = None
    try:
        sock.sendall(_PG_SSL_REQUEST)
        answer = _recv_exact(sock, 1)
        if answer == b"S":
            sock = context.wrap_socket(sock, server_hostname=name)  # a refused certificate: the SSLError below
            der = sock.getpeercert(binary_form=True)
            days = math.trunc(_days_left(cert_info(der).not_after)) if der else None
        elif answer != b"N":
            return Outcome(FAIL, f"not a PostgreSQL server (answered {answer!r} to SSLRequest)")
        elif ca:
            return Outcome(FAIL, f"server refuses TLS (answered N to SSLRequest); its certificate is to be verified against {ca}")
        params = b"user\0ralf_smoke\0database\0postgres\0application_name\0ralf-smoke\0\0"
        sock.sendall(struct.pack("!ii", 8 + len(params), 196608) + params)
        tls = "no TLS" if answer == b"N" else f"TLS verified for {name}" if ca else (
            f"TLS, {_trust_label(None, True)}" if c.insecure else "TLS, not verified: no CA known")
        for _ in range(64):  # AuthenticationOk, ParameterStatus..., BackendKeyData, then ReadyForQuery
            tag = _recv_exact(sock, 1)
            length = struct.unpack("!i", _recv_exact(sock, 4))[0]
            if not 4 <= length <= 65536:
                return Outcome(FAIL, "not a PostgreSQL server (bad message length)")
            body = _recv_exact(sock, length - 4)
            if tag == b"R":
                code = struct.unpack("!i", body[:4])[0]
                if code != 0:
                    method = {3: "password", 5: "md5", 10: "SASL"}.get(code, f"method {code}")
                    return Outcome(OK, f"server asks for authentication ({method}, {tls})", days)
            elif tag == b"E":
                fields = {p[:1].decode(): p[1:].decode(errors="replace") for p in body.split(b"\0") if p}
                sqlstate, msg = fields.get("C", ""), fields.get("M", "")
                if sqlstate in _PG_NOT_READY:
                    return Outcome(FAIL, f"server not ready: {msg} ({sqlstate})", days)
                return Outcome(OK, f"server answered: {msg} ({sqlstate}, {tls})", days)
            elif tag == b"Z":
                return Outcome(OK, f"server accepted the session, ready for query ({tls})", days)
            elif tag not in (b"S", b"K", b"N"):
                return Outcome(FAIL, f"not a PostgreSQL server (unexpected message {tag!r})")
        return Outcome(FAIL, "no ReadyForQuery after 64 messages")
    except TimeoutError:
        return Outcome(FAIL, f"no protocol answer within {t:g} s")
    except ssl.SSLError as e:
        return Outcome(FAIL, verify_message(e), days)
    except (OSError, EOFError) as e:
        return Outcome(FAIL, f"protocol exchange failed: {net_error(e, t)}")
    finally:
        sock.close()


def _recv_exact(sock, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError("connection closed by the server")
        buf += chunk
    return buf


def _mail_server_name(pc) -> str:
    """The name the mail server's certificate must match: ``server_name`` when the check has one
    (the host is usually the CT's IP, the certificate is for its DNS name), else the host."""
    return pc.check.server_name or pc.host


def check_smtp(pc, ctx: Context) -> Outcome:
    import smtplib
    import ssl

    c = pc.check
    try:
        with smtplib.SMTP(pc.host, pc.port, timeout=c.timeout) as s:
            s.ehlo("ralf-smoke")
            if not c.starttls:
                return Outcome(OK, "banner and EHLO answered")
            if not s.has_extn("starttls"):
                return Outcome(FAIL, "STARTTLS not offered")
            # starttls() verifies against (and sends SNI for) the name it connected to, kept in _host.
            s._host = _mail_server_name(pc)  # type: ignore[attr-defined]
            s.starttls(context=tls_context(ctx.platform, c.ca_file, c.insecure))
            code, _ = s.ehlo("ralf-smoke")
            if code != 250:
                return Outcome(FAIL, f"EHLO after STARTTLS answered {code}")
            return Outcome(OK, f"banner, STARTTLS, {_trust_label(ca_file_of(ctx.platform, c.ca_file), c.insecure)}")
    except FileNotFoundError as e:
        return Outcome(FAIL, str(e))
    except smtplib.SMTPConnectError as e:
        err = e.smtp_error.decode(errors="replace") if isinstance(e.smtp_error, bytes) else str(e.smtp_error)
        return Outcome(FAIL, f"bad banner: {e.smtp_code} {err}")
    except smtplib.SMTPServerDisconnected:
        return Outcome(FAIL, "server closed the connection (no SMTP banner)")
    except smtplib.SMTPException as e:
        return Outcome(FAIL, f"SMTP error: {e}")
    except ssl.SSLError as e:
        return Outcome(FAIL, verify_message(e))
    except OSError as e:
        return Outcome(FAIL, net_error(e, c.timeout))


def check_imaps(pc, ctx: Context) -> Outcome:
    import ssl

    c = pc.check
    try:
        context = tls_context(ctx.platform, c.ca_file, c.insecure)
        with socket.create_connection((pc.host, pc.port), timeout=c.timeout) as sock:
            with context.wrap_socket(sock, server_hostname=_mail_server_name(pc)) as tls:
                try:
                    greeting = tls.recv(1024).decode(errors="replace").strip()
                except TimeoutError:
                    return Outcome(FAIL, f"no IMAP greeting within {c.timeout:g} s")
    except FileNotFoundError as e:
        return Outcome(FAIL, str(e))
    except ssl.SSLError as e:
        return Outcome(FAIL, verify_message(e))
    except OSError as e:
        return Outcome(FAIL, net_error(e, c.timeout))
    if greeting.startswith(("* OK", "* PREAUTH")):
        return Outcome(OK, f"IMAP greeting over TLS, {_trust_label(ca_file_of(ctx.platform, c.ca_file), c.insecure)}")
    return Outcome(FAIL, f"no IMAP greeting (got {greeting[:40]!r})")


def s3_credentials(platform) -> tuple[str, str] | None:
    """The state backend's keys from its credentials file, else AWS_* in the environment."""
    sb = platform.state_backend
    if sb is not None:
        path = platform.secrets_path / sb.credentials_file
        values = _read_env_file(path)
        if values.get(sb.access_key_var) and values.get(sb.secret_key_var):
            return values[sb.access_key_var], values[sb.secret_key_var]
    access, secret = settings.get("AWS_ACCESS_KEY_ID"), settings.get("AWS_SECRET_ACCESS_KEY")
    if access and secret:
        return access, secret
    return None


def _read_env_file(path) -> dict[str, str]:
    from ralf import envfile

    try:
        return envfile.read(path)
    except (OSError, UnicodeDecodeError):
        return {}


def check_s3(pc, ctx: Context) -> Outcome:
    import httpx

    c = pc.check
    sb = ctx.platform.state_backend
    endpoint = c.endpoint or (sb.endpoint if sb else None)
    bucket = c.bucket or (sb.bucket if sb else None)
    if not endpoint or not bucket:
        return Outcome(FAIL, "no S3 endpoint/bucket: set them on the check or in state_backend")
    endpoint = endpoint.rstrip("/")
    notes = []
    try:
        r = httpx.get(f"{endpoint}/minio/health/live", timeout=c.timeout)
    except httpx.TimeoutException:
        return Outcome(FAIL, f"no answer within {c.timeout:g} s")
    except httpx.HTTPError as e:
        return Outcome(FAIL, _http_error(e))
    if r.status_code == 200:
        notes.append("MinIO live")
    elif r.status_code == 404:
        notes.append("no MinIO health endpoint")
    else:
        return Outcome(FAIL, f"MinIO not live: /minio/health/live answered {r.status_code}")
    creds = s3_credentials(ctx.platform)
    if creds is None:
        where = f"{ctx.platform.secrets_path / sb.credentials_file}" if sb else "no state_backend"
        return Outcome(FAIL, f"no S3 credentials: none in {where}, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY unset")
    exists = _s3_bucket_exists(endpoint, bucket, creds, sb.region if sb else "us-east-1", c.timeout)
    if isinstance(exists, str):
        return Outcome(FAIL, exists)
    if not exists:
        return Outcome(FAIL, f"bucket {bucket!r} does not exist")
    return Outcome(OK, f"{', '.join(notes)}; bucket {bucket!r} reachable")


def _s3_bucket_exists(endpoint: str, bucket: str, creds: tuple[str, str], region: str, timeout: float) -> bool | str:
    """HEAD the bucket with MinIO's S3 client (signed, one attempt); True/False, or why it could not tell."""
    from urllib.parse import urlsplit

    import urllib3
    from minio import Minio
    from minio.error import MinioException, S3Error

    url = urlsplit(endpoint)
    if url.scheme not in ("http", "https") or not url.netloc or url.path not in ("", "/"):
        return f"S3 endpoint {endpoint!r}: expected http(s)://HOST[:PORT]"
    http = urllib3.PoolManager(timeout=urllib3.Timeout(connect=timeout, read=timeout),
                               retries=urllib3.Retry(total=0, redirect=0, raise_on_status=False))
    client = Minio(url.netloc, access_key=creds[0], secret_key=creds[1], secure=url.scheme == "https",
                   region=region, http_client=http)
    try:
        return client.bucket_exists(bucket)
    except S3Error as e:
        if e.code in ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "Forbidden"):
            return f"bucket {bucket!r}: access denied with the configured credentials"
        return f"bucket {bucket!r}: S3 error {e.code}"
    except MinioException as e:
        return f"S3 request failed: {type(e).__name__}"
    except urllib3.exceptions.HTTPError as e:
        return f"S3 request failed: {type(e).__name__}"
    finally:
        http.clear()


CHECKS: dict[str, Callable[[Any, Context], Any]] = {
    "tcp": check_tcp,
    "http": check_http,
    "https": check_http,
    "tls": check_tls,
    "unit": check_unit,
    "app_port": check_app_port,
    "postgres": check_postgres,
    "smtp": check_smtp,
    "imaps": check_imaps,
    "s3": check_s3,
}


def run_check(pc, ctx: Context) -> Outcome:
    """Run one planned check; an unexpected exception becomes a FAIL with its type, never a traceback."""
    import asyncio

    try:
        fn = CHECKS[pc.kind]
        return asyncio.run(fn(pc, ctx)) if inspect.iscoroutinefunction(fn) else fn(pc, ctx)
    except Exception as e:  # noqa: BLE001 - a smoke run must report, not crash
        return _crashed(e)


async def run_check_async(pc, ctx: Context, pool) -> Outcome:
    """:func:`run_check` on the engine's event loop: the network checks on the loop itself, the others
    (blocking libraries: ssl handshakes, minio, the PostgreSQL probe) in ``pool``."""
    import asyncio

    try:
        fn = CHECKS[pc.kind]
        if inspect.iscoroutinefunction(fn):
            return await fn(pc, ctx)
        return await asyncio.get_running_loop().run_in_executor(pool, fn, pc, ctx)
    except Exception as e:  # noqa: BLE001 - a smoke run must report, not crash
        return _crashed(e)


def _crashed(e: Exception) -> Outcome:
    return Outcome(FAIL, f"check crashed: {type(e).__name__}: {e}")
