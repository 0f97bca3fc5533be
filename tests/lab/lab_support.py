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
    """Pids of processes that belong to the test lab: its state dir in their argv or environment.

    Not its addresses: another test run on this machine may have a lab on the same ones, and the
    fixtures kill what this finds.
    """
    mark_argv = str(state).encode()
    mark_env = b"RALF_STATE_DIR=" + str(state).encode() + b"\0"
    pids = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit() or int(d.name) == os.getpid():
            continue
        try:
            cmd = (d / "cmdline").read_bytes()
            stat = (d / "stat").read_text()
            environ = (d / "environ").read_bytes() + b"\0"
        except OSError:
            continue
        if stat[stat.rindex(")") + 2] == "Z" or b"pytest" in cmd:
            continue
        if mark_argv in cmd or mark_env in environ:
            pids.append(int(d.name))
    return pids
