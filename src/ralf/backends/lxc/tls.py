"""Certificates from the platform's own CA for the CTs of a local LXC node.

The CA lives in the secrets directory (``ca/ca.pem``, ``ca/ca.key`` 0600); each service that
serves TLS (nginx in front of it, or an smtp/imaps check) gets ``tls/<service>/cert.pem`` and
``key.pem`` for its name (the ``server_name`` its checks verify, else ``<hostname>.<internal
domain>``), its public names (``public_names``: what its reverse proxy serves), the other names its
checks verify, and its IP, renewed within 30 days of expiry on each Apply. The inventory hands them
to the roles (``nginx_tls_cert_src``, ``ralf_tls_cert_src``, and the name it is issued for,
``ralf_tls_server_name``, for clients that must connect by name) and every CT the CA itself
(``ralf_ca_cert_src``: the base role puts it into the system trust store, so services that talk TLS
to each other verify against it); the smoke verifies against the CA.
"""

from __future__ import annotations

from pathlib import Path

from ralf.model import Platform, Service
from ralf.pki import CA

RENEW_DAYS = 30


def ca(platform: Platform) -> CA:
    d = platform.secrets_path / "ca"
    return CA(d / "ca.pem", d / "ca.key", common_name=f"{platform.name} CA")


def cert_dir(platform: Platform, service: str) -> Path:
    return platform.secrets_path / "tls" / service


def serves_tls(svc: Service) -> bool:
    """nginx in front of it, or a check of a protocol it serves with TLS (PostgreSQL: to its clients)."""
    return "nginx" in svc.units or any(c.kind in ("smtp", "imaps", "tls", "https", "postgres") for c in svc.checks)


def server_name(platform: Platform, svc: Service) -> str:
    for c in svc.checks:
        name = getattr(c, "server_name", None)
        if name:
            return name
    if "." in svc.hostname or not platform.internal_domain:
        return svc.hostname
    return f"{svc.hostname}.{platform.internal_domain}"


def aliases(platform: Platform, svc: Service) -> list[str]:
    """The certificate's other DNS names: the public names, then the other names its checks verify."""
    primary = server_name(platform, svc)
    names = [*svc.public_names, *(getattr(c, "server_name", None) for c in svc.checks)]
    return [n for n in dict.fromkeys(names) if n and n != primary]


def issue(platform: Platform, service: str, *, expired: bool = False) -> None:
    """(Re)issue the service's certificate now (``expired``: one that ran out 3 days ago)."""
    svc = platform.services[service]
    ca(platform).issue(cert_dir(platform, service), server_name(platform, svc), [svc.ip],
                       aliases=aliases(platform, svc), expired=expired)


def ensure_certs(platform: Platform) -> list[str]:
    """Create the CA, issue or renew what is missing; returns the services whose certificate was (re)issued."""
    authority = ca(platform)
    authority.ensure()
    issued = []
    for name, svc in platform.services.items():
        if serves_tls(svc) and authority.ensure_cert(cert_dir(platform, name), server_name(platform, svc), [svc.ip],
                                                     aliases=aliases(platform, svc), renew_days=RENEW_DAYS):
            issued.append(name)
    return issued


def host_vars(platform: Platform, service: str) -> dict[str, str]:
    """Inventory variables: the CA for every CT, the service's certificate where it has one."""
    out: dict[str, str] = {}
    if ca(platform).cert_file.is_file():
        out["ralf_ca_cert_src"] = str(ca(platform).cert_file)
    d = cert_dir(platform, service)
    if (d / "cert.pem").is_file():
        out.update(nginx_tls_cert_src=str(d / "cert.pem"), nginx_tls_key_src=str(d / "key.pem"),
                   ralf_tls_cert_src=str(d / "cert.pem"), ralf_tls_key_src=str(d / "key.pem"),
                   ralf_tls_server_name=server_name(platform, platform.services[service]))
    return out
