"""Start-up cost of the CLI as whole processes, side by side with importing the libraries it uses.

Runs ``python -c pass``, "libraries" (a process that imports exactly the third-party modules ``ralf plan``
ends up with: click, PyYAML, pydantic and theirs, found by running ``plan`` once in this process), ``ralf
--help``, ``ralf plan`` and ``ralf validate`` (default platform, nothing contacted) N times each,
alternating, and prints the median time of each and its ratio to the libraries' import.
Goal: ``ralf plan`` within 1.15x of importing its libraries (what is left is ralf's own work: its models,
the YAML parse, the catalog and the plan).

Fair to both sides: every process runs with its bytecode cached (as after ``pip install``; this
environment may set PYTHONDONTWRITEBYTECODE, which would make ralf compile its sources on every run
while the libraries' bytecode was written at install time), in a cache directory of the benchmark's own
(PYTHONPYCACHEPREFIX, nothing written into the tree). ``ralf`` is the installed console script, as a user
runs it. On a busy machine the medians of each side drift with the load, so the ratio reported is the
median of the per-round ratios (each round runs the commands back to back).

    python bench/bench_startup.py [N] [--cpu] [--instructions]
      --cpu: CPU seconds instead of wall time, for a busy machine
      --instructions: also count the instructions of one run of each side under valgrind (callgrind): the same
      on a quiet and a busy machine, though the libraries' file reads and loads weigh more in time than here
"""

from __future__ import annotations

import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PYCACHE = tempfile.mkdtemp(prefix="ralf-bench-pyc-")
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"} | {"PYTHONPYCACHEPREFIX": PYCACHE}


def timed(argv: list[str]) -> float:
    """Wall seconds; with CPU=True the process's CPU seconds (user + system), which other load on a shared
    machine hardly changes."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(argv, cwd=REPO, env=ENV, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime) if CPU else wall


CPU = "--cpu" in sys.argv


def plan_libraries() -> list[str]:
    """The third-party modules a ``ralf plan`` process has imported when it ends."""
    code = (
        "import sys, io, contextlib\n"
        f"sys.argv = ['ralf', '--platform', {str(REPO / 'platform.yaml')!r}, 'plan']\n"
        "from ralf.cli.main import main\n"
        "try:\n"
        "    with contextlib.redirect_stdout(io.StringIO()):\n"
        "        main()\n"
        "except SystemExit:\n"
        "    pass\n"
        "std = set(sys.stdlib_module_names)\n"
        "print(' '.join(m for m in sys.modules if m.split('.')[0] not in std | {'ralf'} and not m.startswith('_')\n"
        "               and m != 'cython_runtime'))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=ENV, check=True, capture_output=True,
                         text=True).stdout
    return out.split()


def instructions(argv: list[str]) -> int:
    """Instructions one run of ``argv`` executes (valgrind's callgrind count, load-independent)."""
    res = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *argv], cwd=REPO, env=ENV,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=True)
    return int(next(ln for ln in res.stderr.splitlines() if "Collected" in ln).split()[-1])


def ralf_command() -> list[str]:
    """The console script next to this Python (what a user runs), else ``python -m ralf``."""
    script = Path(sys.executable).parent / "ralf"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "ralf"]


def main() -> None:
    args = [a for a in sys.argv[1:] if a not in ("--cpu", "--instructions")]
    n = int(args[0]) if args else 21
    try:
        run(n)
    finally:
        shutil.rmtree(PYCACHE, ignore_errors=True)


def run(n: int) -> None:
    libs = plan_libraries()
    ralf = ralf_command()
    platform = ["--platform", str(REPO / "platform.yaml")]
    cases = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "libraries": [sys.executable, "-c", "import " + ", ".join(libs)],
        "ralf --help": [*ralf, "--help"],
        "ralf plan": [*ralf, *platform, "plan"],
        "ralf validate": [*ralf, *platform, "validate"],
    }
    for argv in cases.values():  # warm the page cache and write the bytecode
        timed(argv)
    samples: dict[str, list[float]] = {k: [] for k in cases}
    for _ in range(n):
        for name, argv in cases.items():
            samples[name].append(timed(argv))
    base = statistics.median(samples["libraries"])
    print(f"libraries: {len(libs)} modules of {', '.join(sorted({m.split('.')[0] for m in libs}))}")
    print(f"{n} rounds, {'CPU' if CPU else 'wall'} time; 'vs libraries' is the median of the per-round ratios")
    print(f"{'command':<20} {'median':>9} {'min':>9} {'vs libraries':>13}")
    for name, vals in samples.items():
        ratio = statistics.median(v / b for v, b in zip(vals, samples["libraries"], strict=True))
        print(f"{name:<20} {statistics.median(vals) * 1000:8.1f}ms {min(vals) * 1000:8.1f}ms {ratio:12.2f}x")
    plan = statistics.median(samples["ralf plan"])
    ratio = statistics.median(p / b for p, b in zip(samples["ralf plan"], samples["libraries"], strict=True))
    print(f"ralf plan: {plan:.3f} s vs its libraries {base:.3f} s (medians) = {ratio:.2f}x per round "
          f"(goal <= 1.15x: {'met' if ratio <= 1.15 else 'NOT met'})")
    if "--instructions" in sys.argv:
        if not shutil.which("valgrind"):
            print("instructions: valgrind is not installed")
            return
        lib_i, plan_i = instructions(cases["libraries"]), instructions(cases["ralf plan"])
        print(f"instructions (one run each under valgrind): ralf plan {plan_i / 1e6:.0f} M vs its libraries "
              f"{lib_i / 1e6:.0f} M = {plan_i / lib_i:.2f}x")


if __name__ == "__main__":
    main()
