"""The real-container lab's bring-up and per-service converge, first run vs cached/second run.

Side by side in one run, on a private copy of examples/ctlab/platform.yaml (its own namespace and
CT directory; the shared template and package cache):

- bring-up: ``ralf lab prepare`` with a cold cache (``--cold``: a fresh cache directory, fetched from
  the registries) or the warm one, and the node plus Phase 1 (``ralf lab up``);
- per service: its Apply (``*-lxc`` + ``*-config`` stacks) on fresh CTs, then the same Apply again
  (nothing to change) — the ratio is what a converged platform costs to re-check;
- teardown (``ralf lab down``).

    sudo python bench/bench_ctlab.py [--cold]

Needs root, lxc and debootstrap; without ``--cold`` the cache must exist (``ralf lab prepare --real``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def main() -> None:
    cold = "--cold" in sys.argv
    tmp = Path(tempfile.mkdtemp(prefix="ralf-bench-ctlab-"))
    cache = tmp / "cache" if cold else Path("/var/cache/ralf/lxc")
    text = (REPO / "examples" / "ctlab" / "platform.yaml").read_text()
    text = (text.replace("name: ctlab ", "name: bench ").replace("bridge: ralfct0", "bridge: ralfbench0")
            .replace("  cache_dir: /var/cache/ralf/lxc", f"  cache_dir: {cache}\n  lxc_path: {tmp}/lxc")
            .replace("stacks_dir: ../../stacks", f"stacks_dir: {REPO}/stacks"))
    pf = tmp / "platform.yaml"
    pf.write_text(text)
    env = dict(os.environ, RALF_STATE_DIR=str(tmp / "state"))

    def ralf(*args: str) -> float:
        t0 = time.perf_counter()
        p = subprocess.run([sys.executable, "-m", "ralf", *args, "--platform", str(pf)], env=env, cwd=REPO,
                           capture_output=True, text=True)
        if p.returncode != 0:
            sys.exit(f"bench: ralf {' '.join(args)} failed:\n{(p.stdout + p.stderr)[-3000:]}")
        return time.perf_counter() - t0

    rows: list[tuple[str, float, float | None]] = []
    try:
        prep = ralf("lab", "prepare")
        rows.append((f"prepare ({'cold: fetched from the registries' if cold else 'warm cache'})", prep,
                     ralf("lab", "prepare")))
        rows.append(("node + Phase 1 (lab up)", ralf("lab", "up"), ralf("lab", "up")))
        for service, template in (("n8n", "RALF N8N Apply"), ("synapse", "RALF Synapse Apply"),
                                  ("mail", "RALF Mail Apply")):
            first = ralf("deploy", template, "--executor", "local", "--yes")
            again = ralf("deploy", template, "--executor", "local", "--yes")
            rows.append((f"{service}: Apply on a fresh CT vs again", first, again))
        rows.append(("lab down (CTs, namespace, processes)", ralf("lab", "down"), None))
    finally:
        subprocess.run([sys.executable, "-m", "ralf", "lab", "down", "--platform", str(pf)], env=env,
                       capture_output=True)
    print(f"{'step':<48} {'first':>9} {'again':>9} {'ratio':>7}")
    for name, first, again in rows:
        ratio = f"{first / again:6.1f}x" if again else ""
        print(f"{name:<48} {first:8.1f}s {'' if again is None else f'{again:8.1f}s':>9} {ratio:>7}")


if __name__ == "__main__":
    main()
