"""A certificate authority of a test's own and a certificate from it for a test double on 127.0.0.1."""

from __future__ import annotations

from pathlib import Path

from ralf.pki import CA


def local_tls(d: Path, common_name: str) -> tuple[str, tuple[str, str]]:
    """A CA under ``d/ca`` and a certificate from it for localhost and 127.0.0.1 under ``d/tls``:
    (the CA file a client trusts, (cert, key) for the double's ``tls=``)."""
    ca = CA(d / "ca" / "ca.pem", d / "ca" / "ca.key", common_name=common_name)
    ca.issue(d / "tls", "localhost", ["127.0.0.1"])
    return str(ca.cert_file), (str(d / "tls" / "cert.pem"), str(d / "tls" / "key.pem"))
