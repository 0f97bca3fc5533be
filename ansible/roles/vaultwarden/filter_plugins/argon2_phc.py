"""``argon2id_phc``: a secret as the Argon2id PHC string Vaultwarden takes for ADMIN_TOKEN.

Runs on the control node (the plaintext never reaches the CT), with ``cryptography``'s Argon2id
(ansible-core's own dependency). The salt is derived from the secret, so the same secret always
gives the same string and a rerun changes nothing; the secret is a long random token, so two
installations never share a salt by chance. Parameters: OWASP's preset, as ``vaultwarden hash``.
"""

from __future__ import annotations

import base64
import hashlib

MEMORY_KIB = 19456
ITERATIONS = 2
LANES = 1
LENGTH = 32


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode().rstrip("=")


def argon2id_phc(secret: str, purpose: str = "vaultwarden-admin-token") -> str:
    from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

    salt = hashlib.sha256(f"{purpose}:{secret}".encode()).digest()[:16]
    digest = Argon2id(salt=salt, length=LENGTH, iterations=ITERATIONS, lanes=LANES,
                      memory_cost=MEMORY_KIB).derive(secret.encode())
    return f"$argon2id$v=19$m={MEMORY_KIB},t={ITERATIONS},p={LANES}${_b64(salt)}${_b64(digest)}"


class FilterModule:
    def filters(self):
        return {"argon2id_phc": argon2id_phc}
