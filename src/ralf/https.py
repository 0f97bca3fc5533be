"""ralf's small HTTPS API clients (Proxmox, Gitea): whom they trust and how a failed request is told.

- :func:`trust`: httpx's ``verify=`` for a CA setting: the system store, a CA file (the platform's), or no
  verification; a CA file that cannot be used is one clear error naming the file and the service.
- :func:`request`: one request; no connection, an untrusted certificate or a broken exchange is one clear
  error naming the service (an untrusted certificate with the setting that fixes it), never a traceback.
"""

from __future__ import annotations

import os
import ssl
from typing import Any

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
