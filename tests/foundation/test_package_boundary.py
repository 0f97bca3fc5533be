"""The installed product carries no test doubles: importing ralf loads no fake server, and src/ imports none."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "ralf"

PROBE = ("import ralf.semaphore, ralf.bootstrap, ralf.cli.main, sys; "
         "print(','.join(sorted(m for m in sys.modules if 'fake' in m or m.split('.')[0] == 'doubles')))")


def test_importing_the_product_loads_no_fake_module(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""


def test_no_fake_module_is_shipped_and_no_product_module_imports_the_doubles():
    shipped = [p.relative_to(SRC) for p in SRC.rglob("*.py") if "fake" in p.name]
    assert shipped == []
    importers = [p.relative_to(SRC) for p in SRC.rglob("*.py")
                 if "import doubles" in p.read_text() or "from doubles" in p.read_text()]
    assert importers == []
