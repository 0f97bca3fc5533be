"""The lab CA and its server certificates: the platform CA (``ralf.pki``) kept in the lab's state.

``ensure_cert`` issues a certificate once and does not renew an expired one on its own: an expiring
certificate is what the smoke's TLS layer exists to find. ``issue(..., expired=True)`` makes one
that ran out 3 days ago, for ``ralf lab break … tls``.
"""

from __future__ import annotations

from pathlib import Path

from ralf.lab import paths
from ralf.pki import CA, VALID_DAYS, CertInfo

__all__ = ["VALID_DAYS", "CertInfo", "ensure_ca", "issue", "info", "ensure_cert"]


def _ca() -> CA:
    return CA(paths.ca_file(), paths.ca_key_file(), common_name="ralf lab CA")


def ensure_ca() -> bool:
    """Create the lab CA unless it exists; True when it was created."""
    return _ca().ensure()


def issue(out_dir: Path, name: str, ips: list[str], *, expired: bool = False, days: int = VALID_DAYS) -> None:
    _ca().issue(out_dir, name, ips, expired=expired, days=days)


def info(out_dir: Path) -> CertInfo | None:
    return _ca().info(out_dir)


def ensure_cert(out_dir: Path, name: str, ips: list[str]) -> bool:
    return _ca().ensure_cert(out_dir, name, ips)
