"""`ralf validate` as a whole process at 10, 100, 1,000 and 3,000 services: does its time grow linearly?

Each platform has the default file's top sections, groups of 10 services, and per service two stacks (an
``-lxc`` and a ``-config`` one), a unit and three checks — the default platform's shape, repeated. The
median CPU time (user + system: on a shared machine the wall time mostly measures the other processes) of
REPEAT runs per size is printed with its time per service and the marginal cost of each added
service between sizes (equal when linear); then 1,000 services side by side with 10 × the 100-service time
(goal: within 2x), and the C YAML loader side by side with the pure
Python one on the 3,000-service file (same parse, same line numbers in errors).

    python bench/bench_validate.py [--repeat 3] [--sizes 10,100,1000,3000]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from itertools import pairwise
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))

HEAD = """version: 1
name: bench
domain: bench.zone
internal_domain: bench.lan
network: {cidr: 10.0.0.0/8, gateway: 10.0.0.1, dns: [10.0.0.1]}
secrets: {dir: secrets}
proxmox:
  api_url: https://127.0.0.1:8006/api2/json
  node: bench
  storage: local-lvm
  bridge: vmbr0
  lxc_template: local:vztmpl/ubuntu-24.04-standard_24.04-2_amd64.tar.zst
  ssh_host: 127.0.0.1
state_backend:
  kind: s3
  endpoint: http://127.0.0.1:9000
  bucket: tofu-state
  local_state_stacks: [001-store-lxc]
semaphore:
  url: http://127.0.0.1:1/
  project: Bench
  repository: {name: RALF Local, git_url: /srv/r}
"""


def platform_text(services: int) -> str:
    groups = max(1, services // 10)
    out = [HEAD, "groups:", "  - {name: base, word: Base, phase1: true}"]
    out += [f"  - {{name: g{g:04d}, word: G{g:04d}}}" for g in range(groups)]
    out.append("services:")
    out.append("  store: {word: Store, group: base, ct_id: 100, ip: 10.0.0.10, hostname: store, "
               "stacks: [001-store-lxc, 002-store-config]}")
    for i in range(services):
        ip = f"10.{1 + i // 62500}.{(i // 250) % 250}.{i % 250 + 1}"
        out += [
            f"  s{i:05d}:",
            f"    word: S{i:05d}",
            f"    group: g{i % groups:04d}",
            f"    ct_id: {1000 + i}",
            f"    ip: {ip}",
            f"    hostname: s{i:05d}",
            "    size: {cores: 1, memory_mb: 1024, disk_gb: 8}",
            f"    stacks: [{100 + i % 900:03d}-s{i:05d}-lxc, {100 + i % 900:03d}-s{i:05d}-config]",
            f"    units: [s{i:05d}]",
            "    app_port: 8080",
            "    checks:",
            f"      - {{kind: unit, unit: s{i:05d}}}",
            "      - {kind: tcp, name: app, port: 8080}",
            f"      - {{kind: http, name: health, url: \"http://{ip}:8080/health\"}}",
        ]
    return "\n".join(out) + "\n"


def timed(argv: list[str]) -> float:
    """CPU seconds (user + system) of the process: on a shared machine its wall time mostly measures the
    other processes' load, its CPU time what the command itself costs."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    res = subprocess.run(argv, cwd=REPO, capture_output=True, text=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if res.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{res.stdout}{res.stderr}")
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def parse_both(text: str, repeat: int) -> tuple[float, float]:
    import yaml

    from ralf.loader import _UniqueKeyLoader, _UniquePureLoader

    def best(loader) -> float:
        times = []
        for _ in range(repeat):
            t0 = time.process_time()
            yaml.load(text, Loader=loader)  # noqa: S506 - SafeLoader subclasses
            times.append(time.process_time() - t0)
        return min(times)

    return best(_UniqueKeyLoader), best(_UniquePureLoader)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--sizes", default="10,100,1000,3000")
    args = ap.parse_args()
    sizes = [int(x) for x in args.sizes.split(",")]
    medians: dict[int, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        files = {}
        for n in sizes:
            files[n] = Path(tmp) / f"platform-{n}.yaml"
            files[n].write_text(platform_text(n), encoding="utf-8")
        print(f"`ralf validate` as a process, CPU seconds (user + system), median of {args.repeat} "
              "(services in groups of 10, 2 stacks each)")
        for n in sizes:
            argv = [sys.executable, "-m", "ralf", "--platform", str(files[n]), "validate"]
            medians[n] = statistics.median(timed(argv) for _ in range(args.repeat))
            print(f"  {n:6d} services  {medians[n]:7.3f} s  ({medians[n] / n * 1000:7.3f} ms per service)")
        pairs = list(pairwise(sizes))
        if pairs:
            steps = [f"{a}->{b}: {(medians[b] - medians[a]) / (b - a) * 1000:.2f} ms" for a, b in pairs]
            print("marginal cost per added service (linear when about equal): " + ", ".join(steps))
        if 100 in medians and 1000 in medians:
            ratio = medians[1000] / (10 * medians[100])
            print(f"1,000 services {medians[1000]:.3f} s vs 10 x 100 services {10 * medians[100]:.3f} s: "
                  f"{ratio:.2f}x (goal <= 2x: {'met' if ratio <= 2 else 'NOT met'})")
        big = max(sizes)
        c, pure = parse_both(files[big].read_text(encoding="utf-8"), args.repeat)
        print(f"YAML parse of the {big}-service file (CPU): C loader {c:.3f} s vs pure Python {pure:.3f} s "
              f"= {pure / c:.1f}x faster")


if __name__ == "__main__":
    main()
