"""Helpers for the lab tests: a test copy of the lab on other addresses, and finding its processes."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LAB = REPO / "examples" / "lab"
# default lab address -> test lab address
MOVES = {"127.0.10.10": "127.0.110.10", "127.0.20.10": "127.0.120.10", "127.0.30.10": "127.0.130.10"}


def write_test_lab(dest: Path) -> Path:
    text = (LAB / "platform.yaml").read_text()
    for old, new in MOVES.items():
        text = text.replace(old, new)
    text = text.replace("stacks_dir: stacks", f"stacks_dir: {LAB / 'stacks'}")
    dest.mkdir(parents=True, exist_ok=True)
    p = dest / "platform.yaml"
    p.write_text(text)
    return p


def lab_processes(state: Path) -> list[int]:
    """Pids of processes that belong to the test lab (its state dir or addresses in their argv)."""
    marks = [str(state).encode()] + [ip.encode() for ip in MOVES.values()]
    pids = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit() or int(d.name) == os.getpid():
            continue
        try:
            cmd = (d / "cmdline").read_bytes()
            stat = (d / "stat").read_text()
        except OSError:
            continue
        if stat[stat.rindex(")") + 2] == "Z":
            continue
        if b"pytest" not in cmd and any(m in cmd for m in marks):
            pids.append(int(d.name))
    return pids
