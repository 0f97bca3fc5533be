"""Benchmark: the smoke engine at scale, with a silent endpoint, and a failing service vs the original's smoke.sh.

1. Scale: one service, then SERVICES (default 200) services whose endpoint answers after LATENCY
   (default 0.2 s; each service: a unit check through the local transport, a TCP connect, an HTTP check),
   on 127.0.0.1: the engine's default (every service at once) and the old fixed cap of 16 side by side.
   Goal: 200 services within 2x of one service's time.
2. A silent endpoint (accepts, never answers; the check's own timeout 5 s, deadline 10 s) among 50 healthy
   services, with a target deadline of 3 s: when the last healthy result arrived, with the silent one and
   without it (the same 50 alone), and when the run ended.
3. A failing service, against what the original ran (`bootstrap/smoke.sh`, its shell primitives run as
   written: `timeout 5 bash -lc "</dev/tcp/H/P"` first, then 15 tries of `curl -fsS -m 8` 2 s apart):
   - nothing listening: both stop at the TCP check;
   - port open, HTTP 502 (the fair case: both retry the HTTP check): ralf retries for the check's
     deadline (10 s), smoke.sh for 15 tries. Skip this ~40 s part with --quick.

    python bench/bench_smoke.py [--latency 0.2] [--services 200] [--repeat 5] [--quick]
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

HOST = "127.0.0.1"


SERVER = """
import asyncio, sys
from http import HTTPStatus
latency, status = float(sys.argv[1]), int(sys.argv[2])
body = b"ok\\n"
answer = (f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\\r\\nContent-Length: {len(body)}\\r\\n\\r\\n").encode() + body
async def handle(reader, writer):
    try:
        while True:
            head = await reader.readuntil(b"\\r\\n\\r\\n")
            await asyncio.sleep(latency)
            writer.write(answer)
            await writer.drain()
            if b"connection: close" in head.lower():
                break
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
        pass
    finally:
        writer.close()
async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=1024)  # no SYN dropped under a burst
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()
asyncio.run(main())
"""


class SlowServer:
    """Endpoints answering after ``latency`` seconds, in a process of their own (as the services are other
    machines: their work must not share ralf's interpreter), on one event loop: a fraction of a threaded
    server's CPU per request, which on this 2-core machine would otherwise be taken from ralf."""

    def __init__(self, latency: float, status: int = 200) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", SERVER, str(latency), str(status)],
                                     stdout=subprocess.PIPE, text=True)
        self.port = int(self.proc.stdout.readline())

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=5)


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
            "word": name.capitalize(), "group": "phase1" if i <= 4 else "apps",
            "ip": f"127.2.{i // 250}.{i % 250 + 1}", "hostname": f"{name}.bench",
            "stacks": [f"{100 + i % 900:03d}-{name}-config"], "checks": checks,
        }
    doc = {
        "version": 1, "name": "bench", "network": {"cidr": "127.0.0.0/8"}, "secrets": {"dir": str(d / "secrets")},
        "exec": {"transport": transport, "unit_command": "case {unit} in dead) exit 3;; *) exit 0;; esac"},
        "groups": groups, "services": svc,
    }
    path = d / f"platform-{len(services)}-{transport}-{time.monotonic_ns()}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def timed(fn) -> tuple[float, object]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def median_of(n: int, fn) -> tuple[float, object]:
    """The median time of ``n`` runs (a busy machine's noise) and the last run's result."""
    runs = [timed(fn) for _ in range(n)]
    return sorted(t for t, _ in runs)[n // 2], runs[-1][1]


def healthy(port: int, n: int, prefix: str = "svc") -> dict:
    return {
        f"{prefix}{i}": [
            {"kind": "unit", "unit": f"{prefix}{i}"},
            {"kind": "tcp", "host": HOST, "port": port},
            {"kind": "http", "url": f"http://{HOST}:{port}/{prefix}{i}"},
        ]
        for i in range(1, n + 1)
    }


def original_smoke(port: int) -> tuple[float, int]:
    """smoke.sh's primitives for one service, as written: TCP first (set -e stops there), then the HTTP tries."""
    script = f"""set -euo pipefail
tcp_check() {{ timeout 5 bash -lc "</dev/tcp/$1/$2" >/dev/null 2>&1 || {{ echo "[smoke] FAIL tcp"; return 1; }}; }}
http_check() {{
  for i in $(seq 1 15); do
    if curl -fsS -m 8 -o /dev/null "$1" 2>/dev/null; then echo "[smoke] OK http"; return 0; fi
    [ "$i" -lt 15 ] && sleep 2
  done
  echo "[smoke] FAIL http"; return 1
}}
tcp_check {HOST} {port}
http_check http://{HOST}:{port}/
"""
    t0 = time.perf_counter()
    res = subprocess.run(["bash", "-c", script], capture_output=True, text=True)
    return time.perf_counter() - t0, res.returncode


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--latency", type=float, default=0.2, help="seconds each service's endpoint takes (0.2)")
    ap.add_argument("--services", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=5, help="runs of each scale case; the median is shown (5)")
    ap.add_argument("--quick", action="store_true", help="skip the ~40 s comparison of the HTTP retries")
    args = ap.parse_args()

    from ralf.loader import load_platform
    from ralf.smoke import run_smoke

    server = SlowServer(args.latency)
    port = server.port
    with tempfile.TemporaryDirectory(prefix="ralf-bench-") as tmp:
        d = Path(tmp)
        one = load_platform(write_platform(d, healthy(port, 1)))
        many = load_platform(write_platform(d, healthy(port, args.services)))
        run_smoke("platform", one)  # warm-up: imports, first connections
        t_one, r_one = median_of(args.repeat, lambda: run_smoke("platform", one))
        t_many, r_many = median_of(args.repeat, lambda: run_smoke("platform", many))
        t_cap, r_cap = median_of(args.repeat, lambda: run_smoke("platform", many, concurrency=16))
        assert r_one.ok and r_many.ok and r_cap.ok, "benchmark services must be healthy"
        print(f"1. scale: services each with unit + tcp + http answering in {args.latency:g} s "
              f"(median of {args.repeat} runs each)")
        print(f"   1 service:                              {t_one:7.3f} s")
        print(f"   {args.services} services, all at once (default): {t_many:7.3f} s = {t_many / t_one:.2f}x one service "
              f"(goal <= 2x: {'met' if t_many / t_one <= 2 else 'NOT met'})")
        print(f"   {args.services} services, 16 at a time (old cap):  {t_cap:7.3f} s = {t_cap / t_one:.2f}x one service")

        silent = socket.socket()
        silent.bind((HOST, 0))
        silent.listen(64)
        healthy50 = healthy(port, 50)
        mixed = dict(healthy50)
        mixed["quiet"] = [{"kind": "http", "url": f"http://{HOST}:{silent.getsockname()[1]}/"}]

        def last_healthy(platform) -> tuple[float, float, object]:
            """When the last healthy service's last result arrived, when the run ended, and the report."""
            last = [0.0]
            t0 = time.perf_counter()

            def on_check(service: str, result) -> None:
                if service != "quiet":
                    last[0] = time.perf_counter() - t0

            t_run, report = timed(lambda: run_smoke("platform", platform, on_check=on_check, deadline=3.0))
            return last[0], t_run, report

        alone_p = load_platform(write_platform(d, healthy50))
        mixed_p = load_platform(write_platform(d, mixed))
        t_alone = sorted(last_healthy(alone_p)[0] for _ in range(3))[1]  # median of 3
        runs = [last_healthy(mixed_p) for _ in range(3)]
        t_with, t_mixed, r_mixed = sorted(runs, key=lambda r: r[0])[1]
        quiet = next(s for s in r_mixed.services if s.name == "quiet")
        print("2. a silent endpoint (accepts, never answers) among 50 healthy services, target deadline 3 s "
              "(median of 3 runs each):")
        print(f"   last healthy result: {t_with:.3f} s with the silent one vs {t_alone:.3f} s without it "
              f"= {t_with / t_alone:.2f}x (goal: not delayed)")
        print(f"   run ended after {t_mixed:.3f} s (the deadline) -> {quiet.diagnosis}")
        silent.close()

        def both(name: str, port: int) -> tuple[float, object, float]:
            """ralf's smoke of one service (TCP then HTTP on ``port``) and smoke.sh's primitives on it."""
            p = load_platform(write_platform(d, {name: [
                {"kind": "tcp", "host": HOST, "port": port},
                {"kind": "http", "url": f"http://{HOST}:{port}/"},
            ]}, "none"))
            t_ralf, report = timed(lambda: run_smoke(name, p))
            t_orig, code = original_smoke(port)
            assert code != 0 and not report.ok
            return t_ralf, report, t_orig

        t_ralf, r, t_orig = both("dead", closed_port())
        print("3. a failing service vs smoke.sh's primitives (run as written):")
        print(f"   nothing listening: ralf {t_ralf * 1000:.1f} ms vs smoke.sh {t_orig * 1000:.1f} ms "
              f"= {t_orig / t_ralf:.0f}x (both stop at the TCP check) -> {r.services[0].diagnosis}")
        if args.quick:
            print("   port open, HTTP 502: skipped (--quick)")
        else:
            bad = SlowServer(0.0, status=502)
            t_ralf, r, t_orig = both("bad", bad.port)
            print(f"   port open, HTTP 502: ralf {t_ralf:.1f} s (retries for the check's 10 s deadline) vs smoke.sh "
                  f"{t_orig:.1f} s (15 tries, 2 s apart) = {t_orig / t_ralf:.1f}x -> {r.services[0].diagnosis}")
            bad.stop()
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
