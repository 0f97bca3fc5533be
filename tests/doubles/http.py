"""The HTTP(S) server under the test doubles: threaded, on 127.0.0.1, TLS handshakes off the accept loop.

Wrapping the listening socket would run every TLS handshake inside ``accept()`` on the serving thread, so one
client that stalls or aborts its handshake (a client that does not trust the certificate) could hold up every
other; here each connection is wrapped after accept and shakes hands in its own request thread.
"""

from __future__ import annotations

import ssl
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, Self


class LocalServer(ThreadingHTTPServer):
    """``LocalServer(handler, tls=(cert, key))``: listens on 127.0.0.1, a free port; :attr:`url` once bound."""

    daemon_threads = True
    # a real server's backlog (nginx: 511), not socketserver's 5: the smoke connects to every service at once
    request_queue_size = 512

    def __init__(self, handler: type[BaseHTTPRequestHandler], tls: tuple[str, str] | None = None) -> None:
        super().__init__(("127.0.0.1", 0), handler)
        self.tls: ssl.SSLContext | None = None
        if tls is not None:
            self.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.tls.load_cert_chain(*tls)
        host, port = self.server_address[:2]
        self.url = f"{'https' if tls else 'http'}://{host}:{port}"
        self._thread: threading.Thread | None = None

    def get_request(self) -> tuple[Any, Any]:
        sock, addr = super().get_request()
        if self.tls is not None:
            sock = self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, addr

    def finish_request(self, request: Any, client_address: Any) -> None:
        if isinstance(request, ssl.SSLSocket):
            request.do_handshake()  # in this connection's thread
        super().finish_request(request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that gives up and closes its connection is normal here, not an error worth a traceback."""
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)

    def start(self, name: str) -> None:
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, name=name,
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None


@contextmanager
def serving(handler: type[BaseHTTPRequestHandler], tls: tuple[str, str] | None = None,
            name: str = "test-http") -> Iterator[LocalServer]:
    """A :class:`LocalServer` answering with ``handler`` for the ``with`` block; stopped at its end (in
    a twentieth of a second: http.server's default poll interval made every stop cost up to half a second)."""
    server = LocalServer(handler, tls=tls)
    server.start(name)
    try:
        yield server
    finally:
        server.stop()


class ServedDouble:
    """Base of the HTTP test doubles: ``start()``/``stop()`` or a ``with`` block serve the double on a
    :class:`LocalServer`; its ``handler`` sees the double as ``server_fake``, :attr:`url` is set while it runs."""

    handler: ClassVar[type[BaseHTTPRequestHandler]]
    thread_name: ClassVar[str]
    url_path: ClassVar[str] = ""  # appended to the server's address in :attr:`url`
    tls: tuple[str, str] | None = None
    url = ""
    _server: LocalServer | None = None

    def start(self) -> Self:
        handler = type("Handler", (self.handler,), {"server_fake": self})
        self._server = LocalServer(handler, tls=self.tls)
        self.url = self._server.url + self.url_path
        self._server.start(self.thread_name)
        return self

    def stopping(self) -> None:
        """What the double ends before its server stops (timers, waiting requests)."""

    def stop(self) -> None:
        self.stopping()
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
