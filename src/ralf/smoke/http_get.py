"""One plain GET for the smoke's HTTP check, with the standard library's ``http.client``.

A request costs a fraction of an ``httpx`` one's CPU (no client, pool, cookies or auth machinery), and
that CPU decides a smoke run's time when every service of a target is checked at once under one
interpreter lock. One connection per request; redirects are never followed; like curl in the original's
smoke.sh, and unlike httpx, no ``*_PROXY`` from the environment is used: the endpoints are the platform's
own. Every failure comes back as a one-line reason, never an exception.
"""

from __future__ import annotations

import http.client
import ssl
from urllib.parse import urlsplit

from ralf.smoke.reasons import net_error, verify_message

HEADERS = {"Accept": "*/*", "User-Agent": "ralf-smoke"}


class HttpsConnection(http.client.HTTPSConnection):
    """HTTPS to an address whose certificate is verified for ``server_name``, which is also sent as SNI."""

    def __init__(self, host: str, port: int, *, timeout: float, context: ssl.SSLContext, server_name: str) -> None:
        super().__init__(host, port, timeout=timeout, context=context)
        self.server_name = server_name

    def connect(self) -> None:
        http.client.HTTPConnection.connect(self)
        self.sock = self._context.wrap_socket(self.sock, server_hostname=self.server_name)  # type: ignore[attr-defined]


def get(url: str, timeout: float, context: ssl.SSLContext | None, server_name: str | None = None, *,
        read_body: bool = False) -> tuple[int, str] | str:
    """GET ``url``: (status, body text, empty unless ``read_body``), or why there was no answer.

    ``context``: the TLS client context for an https URL (None for http). ``timeout`` bounds the connect
    and each read. ``server_name`` (https): the name the certificate must be valid for, sent as SNI and
    Host while the connection goes to the URL's address.
    """
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if context is not None else 80)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    headers = dict(HEADERS)
    conn: http.client.HTTPConnection
    if context is None:
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
    else:
        conn = HttpsConnection(host, port, timeout=timeout, context=context, server_name=server_name or host)
        if server_name:
            headers["Host"] = server_name if port == 443 else f"{server_name}:{port}"
    try:
        conn.request("GET", target, headers=headers)
        r = conn.getresponse()
        body = r.read()  # the whole answer, as a browser would, before the connection is closed
        return r.status, body.decode(r.headers.get_content_charset() or "utf-8", errors="replace") if read_body else ""
    except ssl.SSLError as e:
        return verify_message(e)
    except http.client.RemoteDisconnected:  # a ConnectionResetError too: before the network errors
        return "the server closed the connection without an answer"
    except http.client.HTTPException as e:
        return f"not a valid HTTP answer ({type(e).__name__})"
    except LookupError:
        return "the body's charset is unknown"
    except OSError as e:
        return net_error(e, timeout)
    finally:
        conn.close()
