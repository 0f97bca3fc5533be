"""The lab's TCP key-value store (group ``phase1``): ``python -m ralf.lab.store --host H --port P``.

Line protocol: ``PING`` → ``PONG``; ``GET key`` → ``VALUE v`` / ``NONE``; ``SET key value`` → ``OK``,
which needs ``AUTH token`` first when a token file is given (``STORE_TOKEN=...`` in the env-file form of :mod:`ralf.envfile`).
"""

from __future__ import annotations

import argparse
import socketserver
import threading

from ralf import envfile
from ralf.lab.serve import run


def read_token(path: str | None) -> str | None:
    if not path:
        return None
    return envfile.read(path).get("STORE_TOKEN")


def make_server(host: str, port: int, token: str | None) -> socketserver.ThreadingTCPServer:
    data: dict[str, str] = {}
    lock = threading.Lock()

    class Handler(socketserver.StreamRequestHandler):
        timeout = 30

        def handle(self) -> None:
            authed = token is None
            for raw in self.rfile:
                parts = raw.decode(errors="replace").strip().split(" ", 2)
                cmd = parts[0].upper()
                if cmd == "PING":
                    reply = "PONG"
                elif cmd == "AUTH" and len(parts) == 2:
                    authed = token is not None and parts[1] == token
                    reply = "OK" if authed else "ERR bad token"
                elif cmd == "GET" and len(parts) == 2:
                    with lock:
                        value = data.get(parts[1])
                    reply = "NONE" if value is None else f"VALUE {value}"
                elif cmd == "SET" and len(parts) == 3:
                    if not authed:
                        reply = "ERR auth required"
                    else:
                        with lock:
                            data[parts[1]] = parts[2]
                        reply = "OK"
                elif cmd == "QUIT":
                    return
                else:
                    reply = "ERR unknown command"
                self.wfile.write((reply + "\n").encode())

    socketserver.ThreadingTCPServer.allow_reuse_address = True
    server = socketserver.ThreadingTCPServer((host, port), Handler)
    server.daemon_threads = True
    return server


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m ralf.lab.store")
    ap.add_argument("--host", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--token-file")
    args = ap.parse_args(argv)
    run(make_server(args.host, args.port, read_token(args.token_file)), "lab-store")


if __name__ == "__main__":
    main()
