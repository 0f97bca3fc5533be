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


def test_aliases_are_names_of_the_certificate_and_a_changed_list_reissues(tmp_path):
    import socket
    import ssl
    import threading

    from ralf.pki import CA

    ca = CA(tmp_path / "ca.pem", tmp_path / "ca.key")
    d = tmp_path / "synapse"
    assert ca.ensure_cert(d, "matrix.example.test", ["127.0.0.1"], aliases=["example.test"]) is True
    assert ca.info(d).names == ("matrix.example.test", "example.test", "127.0.0.1")
    assert ca.ensure_cert(d, "matrix.example.test", ["127.0.0.1"], aliases=["example.test"]) is False
    assert ca.ensure_cert(d, "matrix.example.test", ["127.0.0.1"]) is True  # the alias was dropped
    assert ca.info(d).names == ("matrix.example.test", "127.0.0.1")
    ca.issue(d, "matrix.example.test", ["127.0.0.1"], aliases=["example.test", "matrix.example.test"])
    assert ca.info(d).names == ("matrix.example.test", "example.test", "127.0.0.1")  # each name once
    # A TLS client that wants the alias accepts the certificate (verified by the CA, name in the SANs).
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(d / "cert.pem", d / "key.pem")
    client_ctx = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
    left, right = socket.socketpair()
    with left, right:
        accepted = threading.Thread(target=lambda: server_ctx.wrap_socket(right, server_side=True).close())
        accepted.start()
        with client_ctx.wrap_socket(left, server_hostname="example.test") as tls:
            assert ("DNS", "example.test") in tls.getpeercert()["subjectAltName"]
        accepted.join(10)
