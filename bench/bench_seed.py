"""Benchmark: a no-op reseed, ralf's read-once reconcile vs the original seeder's per-object strategy.

Both run in one process against the same FakeSemaphore (127.0.0.1, 2.16 behaviour) that was seeded
first, so neither makes a write. The original ``semaphore_seed.sh`` fetched an object's whole
collection again for every object it ensured (project list, inventory, repository, each environment,
each template); that strategy is replayed here with the same client, counting one GET per object —
a lower bound for the original, which also logged in with a cookie on every run.

Measured: requests (from the server's own log) and wall time, for the default platform and for a
generated platform with 500 templates.

    python bench/bench_seed.py [--repeat N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from fakesem import ROOT, FakeSemaphore

from ralf.catalog import Catalog
from ralf.loader import load_platform, parse_platform
from ralf.semaphore.client import SemaphoreClient
from ralf.semaphore.desired import DesiredState, desired_state
from ralf.semaphore.reconcile import compare, name_of, seed


def ralf_noop(client: SemaphoreClient, desired: DesiredState) -> None:
    result = seed(client, desired)
    assert not result.changed, "the reseed was expected to be a no-op"


def per_object_noop(client: SemaphoreClient, desired: DesiredState) -> None:
    """The original's strategy: for every object, GET its collection, pick by name, compare."""
    project = next(p for p in client.list_projects() if p["name"] == desired.project)
    pid = project["id"]
    ids: dict[tuple[str, str], int] = {}
    for d in desired.objects:
        found = next(o for o in client.list_objects(d.kind, pid) if name_of(d.kind, o) == d.name)
        ids[(d.kind, d.name)] = found["id"]
        if d.kind != "keys":
            assert not compare(d, found, ids), f"{d.label} drifted"


def big_platform(services: int) -> str:
    lines = [
        "version: 1", "name: bench", "network: {cidr: 127.0.0.0/8}", "secrets: {dir: secrets}",
        "semaphore:", "  url: http://127.0.0.1:1/", "  project: Bench", "  repository: {name: RALF Local, git_url: /srv/r}",
        "groups:", "  - {name: base, word: Base, phase1: true}", "  - {name: web, word: Web}", "services:",
        "  store: {word: Store, group: base, ip: 127.0.0.10, hostname: store, stacks: [010-store-config]}",
    ]
    for i in range(services):
        lines.append(f"  s{i:03d}: {{word: S{i:03d}, group: web, ip: 127.1.{i // 250}.{i % 250 + 1}, "
                     f"hostname: s{i:03d}, stacks: [500-s{i:03d}-config]}}")
    return "\n".join(lines) + "\n"


def measure(fake: FakeSemaphore, client: SemaphoreClient, fn, desired: DesiredState, repeat: int) -> dict:
    times, counts, writes = [], [], []
    for _ in range(repeat):
        fake.clear_requests()
        t0 = time.perf_counter()
        fn(client, desired)
        times.append(time.perf_counter() - t0)
        counts.append(fake.count())
        writes.append(len(fake.writes))
    return {"requests": counts[-1], "writes": max(writes), "seconds": statistics.median(times)}


def run(label: str, desired: DesiredState, repeat: int) -> None:
    with FakeSemaphore("2.16") as fake, SemaphoreClient(fake.url, token=fake.token) as client:
        seed(client, desired)  # set up: the server holds exactly the desired state
        ralf = measure(fake, client, ralf_noop, desired, repeat)
        orig = measure(fake, client, per_object_noop, desired, repeat)
    n_tpl = len(desired.templates)
    print(f"\n{label}: {n_tpl} templates, {len(desired.of('environment'))} environments (median of {repeat})")
    print(f"  {'strategy':<28}{'requests':>10}{'writes':>8}{'wall time':>12}")
    print(f"  {'ralf (read each list once)':<28}{ralf['requests']:>10}{ralf['writes']:>8}{ralf['seconds'] * 1000:>10.1f}ms")
    print(f"  {'original (list per object)':<28}{orig['requests']:>10}{orig['writes']:>8}{orig['seconds'] * 1000:>10.1f}ms")
    print(f"  ratio original/ralf: requests x{orig['requests'] / ralf['requests']:.1f}, "
          f"wall time x{orig['seconds'] / ralf['seconds']:.1f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    default = load_platform(ROOT / "platform.yaml")
    secrets = tempfile.TemporaryDirectory(prefix="bench-seed-")  # removed when main returns
    if default.mirror is not None:  # the set-up creates the Gitea key, whose secret it reads once
        m = default.mirror
        Path(secrets.name, m.credentials_file).write_text(f"{m.user_var}=ralf\n{m.password_var}=bench-only\n")
        os.environ["RALF_SECRETS_DIR"] = secrets.name
    run("default platform", desired_state(Catalog(default)), args.repeat)
    big = parse_platform(big_platform(490), "<bench>")
    desired = desired_state(Catalog(big))
    assert len(desired.templates) == 500, len(desired.templates)
    run("generated platform", desired, max(1, args.repeat // 3) if args.repeat > 1 else 1)
    secrets.cleanup()


if __name__ == "__main__":
    main()
