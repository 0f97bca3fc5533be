"""One-line reasons for the smoke's network failures (a refused connection, a timeout, an untrusted
certificate), the same words whichever check or client met them."""

from __future__ import annotations

import socket


def net_error(e: BaseException, timeout: float) -> str:
    """Why a connection or exchange failed, ``timeout`` being the bound that was reached."""
    if isinstance(e, ConnectionRefusedError):
        return "connection refused"
    if isinstance(e, (socket.timeout, TimeoutError)):
        return f"no answer within {timeout:g} s"
    if isinstance(e, ConnectionResetError):
        return "connection reset by peer"
    if isinstance(e, OSError) and e.strerror:
        return e.strerror.lower()
    return str(e) or type(e).__name__


def verify_message(e: BaseException) -> str:
    """Why a TLS handshake failed: a certificate not trusted (with OpenSSL's reason), or the handshake's error."""
    import ssl  # lazily: not every smoke run speaks TLS

    if isinstance(e, ssl.SSLCertVerificationError):
        return f"certificate not trusted: {e.verify_message}"
    if isinstance(e, ssl.SSLError):
        return f"TLS handshake failed: {e.reason or e}"
    return str(e)
