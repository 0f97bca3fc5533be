"""What the Semaphore benchmarks share: ralf's sources and the test doubles on the path, a FakeSemaphore on
127.0.0.1 holding the platform's project with every template of its catalog, and the server's times as seconds.

Imported first by each benchmark script (``bench/`` is on the path of a script run from it).
"""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
for _p in (ROOT / "tests", ROOT / "src"):  # src first: this checkout's ralf, not another install
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

from doubles.semaphore import FakeSemaphore  # noqa: E402

PROJECT = "RALF Bootstrap"


def seeded(catalog: Any, **fake: Any) -> tuple[FakeSemaphore, int]:
    """A started FakeSemaphore (``fake``: its options) with :data:`PROJECT` and the catalog's templates, and the
    project's id; stop it with ``stop()`` or a ``with`` block."""
    srv = FakeSemaphore(**fake).start()
    pid = srv.add_project(PROJECT)
    for t in catalog.templates:
        srv.insert("templates", pid, name=t.name, app="bash", playbook="run.sh")
    return srv, pid


def epoch(stamp: str | None) -> float:
    """A server timestamp (``2026-01-01T00:00:00Z``) as seconds since the epoch; none: infinitely late."""
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() if stamp else float("inf")


__all__ = ["PROJECT", "ROOT", "FakeSemaphore", "epoch", "seeded"]
