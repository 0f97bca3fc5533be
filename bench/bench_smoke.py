"""Benchmark: the smoke engine's ``platform`` target, parallel vs one by one, and a dead service.

Nine services with equal latency (each: a unit check through the local transport, a TCP connect,
and an HTTP endpoint that answers after LATENCY seconds) on 127.0.0.1. The same engine runs them
once with its default concurrency and once with ``concurrency=1`` (services and checks strictly
one after another, the original smoke.sh's way); both times and the ratio are printed.

Then the time to report a dead service (nothing listening), in three ways:
  - layered, with the exec transport: the unit check inside the "CT" fails first;
  - layered, without a transport: the TCP connect is refused and the HTTP retries are skipped;
  - the original's way, measured: the HTTP check alone, retried every 2 s within a 30 s deadline
    (smoke.sh: 15 tries of curl with 2 s sleeps). Skip this 30 s part with --quick.

    python bench/bench_smoke.py [--latency 0.3] [--services 9] [--quick]
"""

from __future__ import annotations

import argparse
import socket
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import yaml

HOST = "127.0.0.1"


def slow_server(latency: float) -> ThreadingHTTPServer:
    class H(BaseHTTPRequestHandler):
        def log_message(self, *a) -> None:
            pass

        def do_GET(self) -> None:
            time.sleep(latency)
            body = b"ok\n"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        request_queue_size = 128  # listen() backlog; the default 5 drops SYNs under a burst

    server = Server((HOST, 0), H)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def closed_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def write_platform(d: Path, services: dict, transport: str = "local") -> Path:
    groups = [{"name": "phase1", "word": "Phase1", "phase1": True}]
    if len(services) > 4:
        groups.append({"name": "apps", "word": "Apps"})
    svc = {}
    for i, (name, checks) in enumerate(services.items(), start=1):
        svc[name] = {
            "word": name.capitalize(), "group": "phase1" if i <= 4 else "apps", "ip": f"127.0.2.{i}",
            "hostname": f"{name}.bench", "stacks": [f"{100 + i:03d}-{name}-config"], "checks": checks,
        }
    doc = {
        "version": 1, "name": "bench", "network": {"cidr": "127.0.0.0/8"}, "secrets": {"dir": str(d / "secrets")},
        "exec": {"transport": transport, "unit_command": "case {unit} in dead) exit 3;; *) exit 0;; esac"},
        "groups": groups, "services": svc,
    }
    path = d / f"platform-{len(services)}-{transport}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def timed(fn) -> tuple[float, object]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--latency", type=float, default=0.3, help="seconds each service's endpoint takes (0.3)")
    ap.add_argument("--services", type=int, default=9)
    ap.add_argument("--quick", action="store_true", help="skip the 30 s measurement of the original's retries")
    args = ap.parse_args()

    from ralf.loader import load_platform
    from ralf.smoke import run_smoke
    from ralf.smoke.engine import DEFAULT_CONCURRENCY
    from ralf.smoke.checks import Context, run_check
    from ralf.smoke.layers import plan_service
    from ralf.transport import NoTransport

    server = slow_server(args.latency)
    port = server.server_address[1]
    with tempfile.TemporaryDirectory(prefix="ralf-bench-") as tmp:
        d = Path(tmp)
        services = {
            f"svc{i}": [
                {"kind": "unit", "unit": f"svc{i}"},
                {"kind": "tcp", "host": HOST, "port": port},
                {"kind": "http", "url": f"http://{HOST}:{port}/svc{i}"},
            ]
            for i in range(1, args.services + 1)
        }
        platform = load_platform(write_platform(d, services))
        run_smoke("platform", platform)  # warm-up: imports, first connections
        t_par, rep_par = timed(lambda: run_smoke("platform", platform))
        t_ser, rep_ser = timed(lambda: run_smoke("platform", platform, concurrency=1))
        assert rep_par.ok and rep_ser.ok, "benchmark services must be healthy"

        print(f"smoke 'platform': {args.services} services, each unit + tcp + http answering in {args.latency:g} s")
        print(f"  one by one (original's way, concurrency=1): {t_ser:7.3f} s")
        print(f"  parallel engine (default concurrency={DEFAULT_CONCURRENCY}):   {t_par:7.3f} s")
        print(f"  speed-up: {t_ser / t_par:.1f}x (goal: at least 5x for 9 services)")

        dead_port = closed_port()
        dead_checks = [
            {"kind": "unit", "unit": "dead"},
            {"kind": "tcp", "host": HOST, "port": dead_port},
            {"kind": "http", "url": f"http://{HOST}:{dead_port}/", "deadline": 30},
        ]
        dead_local = load_platform(write_platform(d, {"dead": dead_checks}, "local"))
        dead_none = load_platform(write_platform(d, {"dead": dead_checks}, "none"))
        t_unit, r1 = timed(lambda: run_smoke("dead", dead_local))
        t_tcp, r2 = timed(lambda: run_smoke("dead", dead_none))
        print("time to report a dead service (nothing listening):")
        print(f"  layered, exec transport (unit check fails):     {t_unit * 1000:8.1f} ms  -> {r1.services[0].diagnosis}")
        print(f"  layered, no transport (TCP refused, http skipped): {t_tcp * 1000:5.1f} ms  -> {r2.services[0].diagnosis}")
        if args.quick:
            print("  original's way (http retried for 30 s):          skipped (--quick); smoke.sh needed over 30 s")
        else:
            svc = dead_none.services["dead"]
            none = NoTransport()
            (pc,) = [p for p in plan_service("dead", svc, dead_none, none) if p.kind == "http"]
            t_orig, out = timed(lambda: run_check(pc, Context(svc, dead_none, none, retry_interval=2.0)))
            print(f"  original's way (http retried every 2 s, 30 s):   {t_orig * 1000:8.1f} ms  -> {out.detail}")
    server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
