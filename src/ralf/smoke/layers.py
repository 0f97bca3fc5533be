"""Which layer each check belongs to, and the default checks of a service that declares none.

The runbook's triage order for a smoke failure is the layer order here: the service inside the
CT, then nginx/TLS, then the app port, then the public endpoint. The first failing layer is the
diagnosis. Unit and app-port checks need the exec transport (``ralf.transport``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

from ralf.model import AppPortCheck, HttpCheck, TcpCheck, TlsCheck, UnitCheck

SERVICE = "service in CT"
TLS = "nginx/TLS"
APP_PORT = "app port"
ENDPOINT = "public endpoint"
LAYERS = (SERVICE, TLS, APP_PORT, ENDPOINT)

_LAYER_OF = {"unit": SERVICE, "tls": TLS, "app_port": APP_PORT}
NEEDS_TRANSPORT = {"unit", "app_port"}


@dataclass(frozen=True)
class PlannedCheck:
    """One check of one service, resolved: its layer, name, host/port and the declared settings."""

    service: str
    layer: str
    kind: str
    name: str
    endpoint: str
    check: Any  # the model's check (TcpCheck, HttpCheck, ...)
    host: str | None = None
    port: int | None = None

    @property
    def needs_transport(self) -> bool:
        return self.kind in NEEDS_TRANSPORT


def layer_of(kind: str) -> str:
    return _LAYER_OF.get(kind, ENDPOINT)


def url_host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return parts.hostname or "", port


def default_server_name(service, platform) -> str:
    """The name a service's certificate is issued for: ``<hostname>.<internal_domain>``."""
    if "." not in service.hostname and platform.internal_domain:
        return f"{service.hostname}.{platform.internal_domain}"
    return service.hostname


def default_checks(service, platform) -> list:
    """Checks derived from a service's units, app_port and endpoint (used when ``checks`` is empty)."""
    out: list = [UnitCheck(kind="unit", unit=u) for u in service.units]
    host, port = url_host_port(service.endpoint) if service.endpoint else (service.ip, 0)  # 0: used only with one
    if service.endpoint and service.endpoint.startswith("https://"):
        out.append(TlsCheck(kind="tls", host=host, port=port, server_name=default_server_name(service, platform)))
    if service.app_port:
        out.append(AppPortCheck(kind="app_port", port=service.app_port))
    if service.endpoint:
        out.append(TcpCheck(kind="tcp", host=host, port=port))
        kind: Literal["http", "https"] = "https" if service.endpoint.startswith("https://") else "http"
        out.append(HttpCheck(kind=kind, url=service.endpoint))
    elif service.app_port:
        out.append(TcpCheck(kind="tcp", port=service.app_port))
    return out


def plan_service(name: str, service, platform, transport) -> list[PlannedCheck]:
    """The service's checks in layer order (declaration order within a layer)."""
    checks = list(service.checks) or default_checks(service, platform)
    planned = [_plan(name, service, platform, transport, c) for c in checks]
    return sorted(planned, key=lambda p: LAYERS.index(p.layer))


def _plan(name: str, service, platform, transport, c) -> PlannedCheck:
    kind = c.kind
    host = getattr(c, "host", None) or service.ip
    port = getattr(c, "port", None)
    where = transport.where(service)
    if kind == "unit":
        default, endpoint, host, port = f"{name}-{c.unit}", f"{c.unit}@{where}", None, None
    elif kind == "app_port":
        default, endpoint = f"{name}-app", f"{host}:{port}@{where}"
    elif kind in ("http", "https"):
        host, port = url_host_port(c.url)
        default, endpoint = f"{name}-{kind}", c.url
    elif kind == "s3":
        sb = platform.state_backend
        ep = c.endpoint or (sb.endpoint if sb else "")
        bucket = c.bucket or (sb.bucket if sb else "")
        host, port = (url_host_port(ep) if ep else (None, None))
        default, endpoint = f"{name}-s3", f"{ep.rstrip('/')}/{bucket}"
    else:
        default, endpoint = f"{name}-{kind}-{port}", f"{host}:{port}"
    return PlannedCheck(
        service=name, layer=layer_of(kind), kind=kind, name=c.name or default, endpoint=endpoint,
        check=c, host=host, port=port,
    )
