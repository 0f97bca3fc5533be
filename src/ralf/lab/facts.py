"""What a lab playbook needs to know, read from the platform file: one JSON object per service.

The playbooks ask ``ralf lab facts SERVICE`` instead of repeating addresses and ports, so the
platform file stays the single source of truth (a test copy on other addresses just works).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from urllib.parse import urlsplit

from ralf.errors import UsageError
from ralf.lab import paths
from ralf.lab.supervisor import LabError
from ralf.model import Platform, TlsCheck


def nginx_binary() -> str:
    """nginx's path: on $PATH, else /usr/sbin/nginx (not on a normal user's PATH on Debian)."""
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if not found:
        raise LabError("nginx is not installed; run scripts/quickstart.sh or `sudo apt-get install nginx`")
    return found


def tls_port(platform: Platform, service: str) -> int | None:
    svc = platform.services[service]
    for check in svc.checks:
        if isinstance(check, TlsCheck):
            return check.port
    if svc.endpoint and svc.endpoint.startswith("https://"):
        return urlsplit(svc.endpoint).port or 443
    return None


def service_facts(platform: Platform, service: str) -> dict:
    if service not in platform.services:
        raise UsageError(f"unknown service {service!r}; the lab has: {', '.join(platform.services)}")
    svc = platform.services[service]
    out: dict[str, object] = {
        "python": sys.executable,
        "lab_dir": str(paths.lab_dir()),
        "units_dir": str(paths.units_dir()),
        "run_dir": str(paths.run_dir()),
        "log_dir": str(paths.log_dir()),
        "tls_dir": str(paths.tls_dir() / service),
        "nginx_dir": str(paths.nginx_dir()),
        "ca_file": str(paths.ca_file()),
        "secrets_dir": str(platform.secrets_path),
        "service": {
            "name": service,
            "ip": svc.ip,
            "hostname": svc.hostname,
            "app_port": svc.app_port,
            "tls_port": tls_port(platform, service),
            "units": list(svc.units),
        },
    }
    if tls_port(platform, service) is not None:
        out["nginx"] = nginx_binary()
    return out
