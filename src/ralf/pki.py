"""The platform's own CA (``cryptography``): a CA key pair and the server certificates it issues.

A :class:`CA` is two files, a certificate and a 0600 key, in a directory of the caller's (the
secrets directory for a platform, the lab's state for the loopback lab). ``ensure_cert`` issues a
certificate once, as the real stacks do (``creates:`` on the key file): it reissues only when the
files are missing, unreadable, not signed by this CA, for other names, or within ``renew_days`` of
expiry. ``issue(..., expired=True)`` makes one that ran out 3 days ago (what ``lab break tls`` uses).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

VALID_DAYS = 365


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _write_key(path: Path, key) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(path, 0o600)


@dataclass(frozen=True)
class CertInfo:
    names: tuple[str, ...]
    not_after: dt.datetime
    issuer_is_lab_ca: bool  # signed by this CA

    @property
    def days_left(self) -> int:
        """Whole days left, rounded toward zero (expired 3.5 days ago → -3)."""
        seconds = (self.not_after - _now()).total_seconds()
        return int(seconds / 86400)

    @property
    def expired(self) -> bool:
        return self.not_after <= _now()


@dataclass(frozen=True)
class CA:
    cert_file: Path
    key_file: Path
    common_name: str = "ralf platform CA"

    def load(self):
        cert = x509.load_pem_x509_certificate(self.cert_file.read_bytes())
        key = serialization.load_pem_private_key(self.key_file.read_bytes(), None)
        return cert, key

    def ensure(self) -> bool:
        """Create the CA unless it exists; True when it was created."""
        try:
            self.load()
            return False
        except (OSError, ValueError):
            pass
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, self.common_name)])
        now = _now()
        cert = (
            x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        _write_key(self.key_file, key)
        self.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return True

    def issue(self, out_dir: Path, name: str, ips: list[str], *, aliases: Sequence[str] = (), expired: bool = False,
              days: int = VALID_DAYS) -> None:
        """Write ``cert.pem`` (leaf then CA) and ``key.pem`` for ``name``, ``aliases`` and ``ips`` into ``out_dir``."""
        self.ensure()
        ca_cert, ca_key = self.load()
        key = ec.generate_private_key(ec.SECP256R1())
        now = _now()
        if expired:
            not_before, not_after = now - dt.timedelta(days=33), now - dt.timedelta(days=3)
        else:
            not_before, not_after = now - dt.timedelta(hours=1), now + dt.timedelta(days=days)
        sans: list[x509.GeneralName] = [x509.DNSName(n) for n in dict.fromkeys([name, *aliases])]
        sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(ca_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before).not_valid_after(not_after)
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        out_dir.mkdir(parents=True, exist_ok=True)
        _write_key(out_dir / "key.pem", key)
        (out_dir / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM)
                                           + ca_cert.public_bytes(serialization.Encoding.PEM))

    def info(self, out_dir: Path) -> CertInfo | None:
        """What the certificate in ``out_dir`` says, or None when it is missing or unreadable."""
        try:
            cert = x509.load_pem_x509_certificate((out_dir / "cert.pem").read_bytes())
            serialization.load_pem_private_key((out_dir / "key.pem").read_bytes(), None)
        except (OSError, ValueError):
            return None
        try:
            san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            names = tuple(san.get_values_for_type(x509.DNSName)) + tuple(
                str(ip) for ip in san.get_values_for_type(x509.IPAddress))
        except x509.ExtensionNotFound:
            names = ()
        try:
            ca_cert, _ = self.load()
            if cert.signature_hash_algorithm is None:
                raise ValueError("no hash algorithm")
            ca_cert.public_key().verify(cert.signature, cert.tbs_certificate_bytes,
                                        ec.ECDSA(cert.signature_hash_algorithm))
            by_ca = True
        except Exception:  # noqa: BLE001 - any failure means "not ours"
            by_ca = False
        return CertInfo(names, cert.not_valid_after_utc, by_ca)

    def ensure_cert(self, out_dir: Path, name: str, ips: list[str], *, aliases: Sequence[str] = (),
                    renew_days: int | None = None) -> bool:
        """Issue the certificate unless a usable one exists (see the module docstring); True when issued."""
        created_ca = self.ensure()
        current = self.info(out_dir)
        if (not created_ca and current is not None and current.issuer_is_lab_ca
                and set(current.names) == {name, *aliases, *ips}
                and (renew_days is None or current.days_left > renew_days)):
            return False
        self.issue(out_dir, name, ips, aliases=aliases)
        return True
