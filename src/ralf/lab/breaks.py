"""Break one layer of a lab service on purpose, and repair it: the tour's failure and its fix.

Layers, in the smoke engine's order:

- ``unit`` (alias ``service``): stop the service's main unit → fails at "service in the CT";
- ``nginx``: stop the service's nginx unit → also the first layer (nginx is a unit in the CT);
- ``tls``: swap in a certificate that expired 3 days ago and reload nginx → fails at nginx/TLS;
- ``app``: the app hangs (process alive, port closed) → fails at the app port (behind nginx) or
  the endpoint.

Re-applying the stacks restarts stopped units but, like the real stacks, neither renews an
expired certificate nor notices a hung process: those breaks survive an Apply, so ``ralf deploy``
fails at the smoke. ``fix`` repairs all of them.
"""

from __future__ import annotations

import signal
import socket
import ssl
import time
from dataclasses import dataclass, field
from pathlib import Path

from ralf.errors import UsageError
from ralf.lab import certs, paths, supervisor
from ralf.lab.facts import tls_port
from ralf.model import Platform
from ralf.serial import Record
from ralf.smoke.layers import APP_PORT, ENDPOINT, SERVICE, TLS

LAYERS = ("unit", "service", "nginx", "tls", "app")


@dataclass
class Outcome(Record):
    service: str
    actions: list[str] = field(default_factory=list)
    expect: str = ""  # the smoke layer that should now fail (break) or "" (fix)


def _units(platform: Platform, service: str) -> tuple[str, str | None]:
    """(main unit, nginx unit or None) of a lab service."""
    if service not in platform.services:
        raise UsageError(f"unknown service {service!r}; the lab has: {', '.join(platform.services)}")
    units = platform.services[service].units
    nginx = next((u for u in units if "nginx" in u), None)
    main = next((u for u in units if u != nginx), None)
    if main is None:
        raise UsageError(f"service {service!r} has no unit to break")
    return main, nginx


def _served_cert(host: str, port: int) -> bytes | None:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        with socket.create_connection((host, port), timeout=2) as raw, ctx.wrap_socket(raw) as tls:
            return tls.getpeercert(binary_form=True)
    except OSError:
        return None


def _wait_served(host: str, port: int, cert_file: Path, timeout: float = 15.0, in_a_row: int = 3) -> None:
    """Wait until nginx serves the certificate now in ``cert_file`` (a reload is asynchronous).

    Several handshakes in a row must see it: just after a reload the old worker may still accept a
    connection or two with the old certificate while the new worker already answers."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    want = x509.load_pem_x509_certificate(cert_file.read_bytes()).public_bytes(Encoding.DER)
    deadline = time.monotonic() + timeout
    seen = 0
    while seen < in_a_row and time.monotonic() < deadline:
        seen = seen + 1 if _served_cert(host, port) == want else 0
        time.sleep(0.05)


def _require_running(unit: str) -> None:
    # Breaking a stopped lab would prove nothing (and a TLS break would quietly start nginx).
    if not supervisor.is_active(unit):
        raise UsageError(f"unit {unit} is not running; start the lab first (`ralf lab up`)")


def break_service(platform: Platform, service: str, layer: str) -> Outcome:
    main, nginx = _units(platform, service)
    svc = platform.services[service]
    out = Outcome(service)
    if layer not in LAYERS:
        raise UsageError(f"unknown layer {layer!r}; expected one of: {', '.join(LAYERS)}")
    if layer == "nginx" and nginx is None:
        raise UsageError(f"service {service!r} has no nginx; break one of: unit, app")
    port = tls_port(platform, service)
    if layer == "tls" and (nginx is None or port is None):
        raise UsageError(f"service {service!r} has no TLS endpoint; break one of: unit, app")
    _require_running(nginx if layer in ("nginx", "tls") and nginx else main)
    if layer in ("unit", "service"):
        supervisor.stop(main)
        out.actions.append(f"stopped unit {main}")
        out.expect = SERVICE
    elif layer == "nginx":
        assert nginx is not None
        supervisor.stop(nginx)
        out.actions.append(f"stopped unit {nginx}")
        out.expect = SERVICE
    elif layer == "tls":
        assert nginx is not None and port is not None
        tdir = paths.tls_dir() / service
        certs.issue(tdir, svc.hostname, [svc.ip], expired=True)
        supervisor.reload(nginx)
        _wait_served(svc.ip, port, tdir / "cert.pem")
        out.actions.append(f"swapped in a certificate for {svc.hostname} that expired 3 days ago; reloaded {nginx}")
        out.expect = TLS
    else:  # app
        if not supervisor.send_signal(main, signal.SIGUSR1):
            _require_running(main)  # it stopped in between
        spec = supervisor.load_spec(main)
        ready = spec.get("ready")
        deadline = time.monotonic() + 5
        while ready and supervisor.listening(ready[0], int(ready[1]), 0.2) and time.monotonic() < deadline:
            time.sleep(0.05)
        out.actions.append(f"{main} hangs: process alive, port closed")
        out.expect = APP_PORT if nginx else ENDPOINT
    return out


def fix_service(platform: Platform, service: str) -> Outcome:
    """Undo any break: renew a bad certificate, restart a hung app, start stopped units."""
    main, nginx = _units(platform, service)
    svc = platform.services[service]
    out = Outcome(service)
    reload_nginx = False
    if nginx is not None and tls_port(platform, service) is not None:
        tdir = paths.tls_dir() / service
        current = certs.info(tdir)
        if current is None or current.expired or not current.issuer_is_lab_ca:
            certs.issue(tdir, svc.hostname, [svc.ip])
            out.actions.append(f"issued a new certificate for {svc.hostname}")
            reload_nginx = True
    for unit in [main] + ([nginx] if nginx else []):
        st = supervisor.state(unit)
        if not st.active:
            supervisor.start(unit)
            out.actions.append(f"started {unit}")
            if unit == nginx:
                reload_nginx = False
        elif st.ready and not supervisor.listening(*st.ready):
            supervisor.restart(unit)
            out.actions.append(f"restarted {unit} (it was not listening on {st.ready[0]}:{st.ready[1]})")
    if reload_nginx and nginx:
        supervisor.reload(nginx)
        port = tls_port(platform, service)
        if port is not None:
            _wait_served(svc.ip, port, paths.tls_dir() / service / "cert.pem")
        out.actions.append(f"reloaded {nginx}")
    return out
