"""Where ralf keeps its state: runs, logs, the journal, locks, tofu work directories, the lab.

``$RALF_STATE_DIR`` wins; else ``$XDG_STATE_HOME/ralf``; else ``~/.local/state/ralf``.
"""

from __future__ import annotations

import os
from pathlib import Path


def state_dir() -> Path:
    explicit = os.environ.get("RALF_STATE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_STATE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".local" / "state"
    return base / "ralf"
