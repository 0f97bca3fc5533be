"""Certificates from the platform's own CA for the CTs of a local LXC node.

The CA lives in the secrets directory (``ca/ca.pem``, ``ca/ca.key`` 0600); each service that
serves TLS (nginx in front of it, or an smtp/imaps check) gets ``tls/<service>/cert.pem`` and
``key.pem`` for its name (the ``server_name`` its checks verify, else ``<hostname>.<internal
domain>``) and its IP, renewed within 30 days of expiry on each Apply. The inventory hands them
to the roles (``nginx_tls_cert_src``, ``ralf_tls_cert_src``); the smoke verifies against the CA.
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
    return "nginx" in svc.units or any(c.kind in ("smtp", "imaps", "tls", "https") for c in svc.checks)


def server_name(platform: Platform, svc: Service) -> str:
    for c in svc.checks:
        name = getattr(c, "server_name", None)
        if name:
            return name
    if "." in svc.hostname or not platform.internal_domain:
        return svc.hostname
    return f"{svc.hostname}.{platform.internal_domain}"


def ensure_certs(platform: Platform) -> list[str]:
    """Issue or renew what is missing; returns the services whose certificate was (re)issued."""
    authority = ca(platform)
    issued = []
    for name, svc in platform.services.items():
        if serves_tls(svc) and authority.ensure_cert(cert_dir(platform, name), server_name(platform, svc),
                                                     [svc.ip], renew_days=RENEW_DAYS):
            issued.append(name)
    return issued


def host_vars(platform: Platform, service: str) -> dict[str, str]:
    """Inventory variables pointing the roles at the service's certificate (empty when it has none)."""
    d = cert_dir(platform, service)
    if not (d / "cert.pem").is_file():
        return {}
    return {
        "nginx_tls_cert_src": str(d / "cert.pem"), "nginx_tls_key_src": str(d / "key.pem"),
        "ralf_tls_cert_src": str(d / "cert.pem"), "ralf_tls_key_src": str(d / "key.pem"),
        "ralf_ca_cert_src": str(ca(platform).cert_file),
    }
