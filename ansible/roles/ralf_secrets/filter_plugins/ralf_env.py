"""``ralf_env_parse`` / ``ralf_env_quote``: the roles read and write env files with ralf's own module.

The code is :mod:`ralf.envfile` itself (the file in this checkout's ``src/``, else the installed
``ralf``), so a secrets file ralf wrote reads the same here, and a unit's ``EnvironmentFile=`` a role
writes reads the same in systemd. ``ralf_env_parse``: file text to a dict; ``ralf_env_quote``: a value
as it goes after ``KEY=`` (a line break in it fails the task, naming no value).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

_SOURCE = Path(__file__).resolve().parents[4] / "src" / "ralf" / "envfile.py"


def _envfile():
    if _SOURCE.is_file():
        spec = importlib.util.spec_from_file_location("_ralf_envfile", _SOURCE)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    from ralf import envfile

    return envfile


FilterModule = _envfile().FilterModule
