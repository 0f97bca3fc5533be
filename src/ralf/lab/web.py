"""The lab's HTTP apps: ``python -m ralf.lab.web --name NAME --host H --port P``.

``/health`` answers ``ok``; ``/`` answers a small HTML page naming the app (the portal's page is
what the https check through nginx looks for). Binding makes no name lookup (see :class:`NoLookupHTTPServer`).
"""

from __future__ import annotations

import argparse
import html
import socketserver
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from ralf.lab.serve import run


def make_server(name: str, host: str, port: int) -> ThreadingHTTPServer:
    page = (f"<!doctype html><title>{html.escape(name)}</title>"
            f"<h1>{html.escape(name)}</h1><p>ralf lab app {html.escape(name)} is up.</p>\n").encode()

    class Handler(BaseHTTPRequestHandler):
        server_version = f"ralf-lab-{name}"

        def do_GET(self) -> None:  # noqa: N802
            if self.path.split("?")[0] == "/health":
                body, ctype, status = b"ok\n", "text/plain", 200
            elif self.path.split("?")[0] == "/":
                body, ctype, status = page, "text/html; charset=utf-8", 200
            else:
                body, ctype, status = b"not found\n", "text/plain", 404
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_HEAD(self) -> None:  # noqa: N802
            self.send_response(200)
            self.end_headers()

        def log_message(self, fmt: str, *args) -> None:
            print(f"{self.address_string()} {fmt % args}", flush=True)

    server = NoLookupHTTPServer((host, port), Handler)
    server.daemon_threads = True
    return server


class NoLookupHTTPServer(ThreadingHTTPServer):
    """An HTTP server that binds without asking DNS for its name.

    ``HTTPServer.server_bind`` sets ``server_name`` from ``socket.getfqdn(host)``, a reverse lookup that
    sends a query to the system resolver; the lab must not touch any network, so the name is the address.
    """

    allow_reuse_address = True

    def server_bind(self) -> None:
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = port


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m ralf.lab.web")
    ap.add_argument("--name", required=True)
    ap.add_argument("--host", required=True)
    ap.add_argument("--port", type=int, required=True)
    args = ap.parse_args(argv)
    run(make_server(args.name, args.host, args.port), f"lab-{args.name}")


if __name__ == "__main__":
    main()
