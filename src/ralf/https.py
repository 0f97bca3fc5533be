"""ralf's small HTTPS API clients (Proxmox, Gitea): whom they trust and how a failed request is told.

- :func:`trust`: httpx's ``verify=`` for a CA setting: the system store, a CA file (the platform's), or no
  verification; a CA file that cannot be used is one clear error naming the file and the service.
- :func:`request`: one request; no connection, an untrusted certificate or a broken exchange is one clear
  error naming the service (an untrusted certificate with the setting that fixes it), never a traceback.
- :class:`ApiClient`: the base of those clients: one connection pool, the (method, path) of every request in
  :attr:`~ApiClient.sent`, closed at the end of a ``with`` block.
"""

from __future__ import annotations

import os
import ssl
from typing import Any, ClassVar, Self

import httpx

from ralf.errors import RalfError


def trust(ca: bool | str | os.PathLike[str] | None, service: str,
          error: type[RalfError] = RalfError) -> bool | ssl.SSLContext:
    """``verify=`` for ``ca``: a path trusts that CA file, True or None the system store, False nothing."""
    if ca is None or isinstance(ca, bool):
        return ca is not False
    try:
        return ssl.create_default_context(cafile=os.fspath(ca))
    except (OSError, ssl.SSLError) as e:
        raise error(f"cannot use the CA file {os.fspath(ca)} for {service}: "
                    f"{getattr(e, 'strerror', None) or e}") from None


def request(http: httpx.Client, method: str, url: str, path: str, *, where: str, untrusted: str,
            error: type[RalfError] = RalfError, **kw: Any) -> httpx.Response:
    """``http.request(method, url)``; failures to connect say "no answer from ``where``" and why (``untrusted``:
    the hint for a certificate that is not trusted), other transport failures name ``method path``."""
    try:
        return http.request(method, url, **kw)
    except httpx.ConnectError as e:
        text = str(e)
        reason = (f"its TLS certificate is not trusted ({untrusted})" if "CERTIFICATE_VERIFY_FAILED" in text
                  else text or e.__class__.__name__)
        raise error(f"no answer from {where}: {reason}") from None
    except httpx.HTTPError as e:
        raise error(f"{method} {path} failed: {e.__class__.__name__}: {e}") from None


class ApiClient:
    """One service's API below ``base``; subclasses name the service, their error and the fix for an untrusted
    certificate, and read the answers :meth:`_send` returns."""

    service: ClassVar[str]  # as messages name it, e.g. "Gitea"
    error: ClassVar[type[RalfError]] = RalfError
    untrusted: ClassVar[str]  # the setting that makes an untrusted certificate trusted

    def __init__(self, base: str, *, ca: bool | str | os.PathLike[str] | None, timeout: float,
                 **client: Any) -> None:
        self.base = base.rstrip("/")
        self.sent: list[tuple[str, str]] = []  # (method, path) in order, for tests and messages
        self._http = httpx.Client(timeout=timeout, verify=trust(ca, self.service, self.error), **client)

    @property
    def where(self) -> str:
        """The server as a message names it."""
        return f"{self.service} at {self.base}"

    def _send(self, method: str, path: str, **kw: Any) -> httpx.Response:
        self.sent.append((method, path))
        return request(self._http, method, self.base + path, path, where=self.where, untrusted=self.untrusted,
                       error=self.error, **kw)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
