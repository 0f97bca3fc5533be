"""The lab CA and certificates: issued once, reissued only when unusable, expired on request."""

from __future__ import annotations

from ralf.lab import certs, paths


def test_issue_once_then_keep(state):
    d = paths.tls_dir() / "portal"
    assert certs.ensure_cert(d, "portal.lab.localhost", ["127.0.20.10"]) is True
    first = (d / "cert.pem").read_bytes()
    assert certs.ensure_cert(d, "portal.lab.localhost", ["127.0.20.10"]) is False
    assert (d / "cert.pem").read_bytes() == first
    info = certs.info(d)
    assert set(info.names) == {"portal.lab.localhost", "127.0.20.10"}
    assert info.issuer_is_lab_ca and not info.expired and info.days_left >= 364
    assert oct((d / "key.pem").stat().st_mode & 0o777) == "0o600"
    assert oct(paths.ca_key_file().stat().st_mode & 0o777) == "0o600"


def test_other_names_or_a_new_ca_reissue(state):
    d = paths.tls_dir() / "portal"
    certs.ensure_cert(d, "portal.lab.localhost", ["127.0.20.10"])
    assert certs.ensure_cert(d, "portal.lab.localhost", ["127.0.20.11"]) is True
    paths.ca_file().unlink()
    assert certs.ensure_cert(d, "portal.lab.localhost", ["127.0.20.11"]) is True
    assert certs.info(d).issuer_is_lab_ca


def test_expired_certificate_is_not_renewed_by_ensure(state):
    d = paths.tls_dir() / "portal"
    certs.issue(d, "portal.lab.localhost", ["127.0.20.10"], expired=True)
    info = certs.info(d)
    assert info.expired and info.days_left < 0
    assert certs.ensure_cert(d, "portal.lab.localhost", ["127.0.20.10"]) is False
    assert certs.info(d).expired
