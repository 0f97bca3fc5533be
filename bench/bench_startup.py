"""Start-up cost of the CLI as whole processes, side by side with a bare interpreter.

Runs ``python -c pass``, ``ralf --help`` and ``ralf plan`` (default platform, nothing contacted)
N times each, alternating, and prints the median wall time of each and the overhead ratio.
Goal: ``ralf plan`` under 0.3 s on the 2-core CI machine.

    python bench/bench_startup.py [N]
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def timed(argv: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(argv, cwd=REPO, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 15
    cases = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "ralf --help": [sys.executable, "-m", "ralf", "--help"],
        "ralf plan": [sys.executable, "-m", "ralf", "--platform", str(REPO / "platform.yaml"), "plan"],
        "ralf plan --json": [sys.executable, "-m", "ralf", "--platform", str(REPO / "platform.yaml"), "plan", "--json"],
    }
    for argv in cases.values():  # warm the page cache and .pyc files
        timed(argv)
    samples: dict[str, list[float]] = {k: [] for k in cases}
    for _ in range(n):
        for name, argv in cases.items():
            samples[name].append(timed(argv))
    base = statistics.median(samples["python -c pass"])
    print(f"{'command':<20} {'median':>9} {'min':>9} {'vs python -c pass':>18}")
    for name, vals in samples.items():
        med = statistics.median(vals)
        print(f"{name:<20} {med * 1000:8.1f}ms {min(vals) * 1000:8.1f}ms {med / base:17.1f}x")
    plan = statistics.median(samples["ralf plan"])
    print(f"ralf plan: {plan:.3f} s (goal < 0.300 s) -> {'OK' if plan < 0.3 else 'OVER'}")


if __name__ == "__main__":
    main()
