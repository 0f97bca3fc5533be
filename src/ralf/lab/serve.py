"""Run a socketserver in a background thread with the lab's signal contract.

SIGTERM/SIGINT end the process. SIGUSR1 makes the app *hang*: it stops listening but the process
stays alive, the way a wedged application looks to a service manager (unit active, port closed).
"""

from __future__ import annotations

import signal
import socketserver
import sys
import threading


def run(server: socketserver.TCPServer, name: str) -> None:
    done = threading.Event()

    def _term(signum, frame):  # noqa: ARG001
        done.set()

    def _hang(signum, frame):  # noqa: ARG001
        threading.Thread(target=_close, daemon=True).start()

    def _close():
        server.shutdown()
        server.server_close()
        print(f"{name}: SIGUSR1, stopped listening (hung on purpose)", flush=True)

    signal.signal(signal.SIGTERM, _term)
    signal.signal(signal.SIGINT, _term)
    signal.signal(signal.SIGUSR1, _hang)
    host, port = server.socket.getsockname()[:2]
    print(f"{name}: listening on {host}:{port}", flush=True)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True).start()
    while not done.wait(1.0):
        pass
    print(f"{name}: stopping", flush=True)
    sys.exit(0)
