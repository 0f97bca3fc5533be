"""ralf: run a Proxmox homelab platform Semaphore-first.

The package is a library first; :mod:`ralf.cli` is a thin layer over it. Its version is written once, in
``pyproject.toml``; ``ralf.__version__`` reads it from the installed distribution's metadata (on first use:
importing ralf stays cheap).
"""

from __future__ import annotations


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ralf")
    except PackageNotFoundError:  # a source tree on sys.path without an install: no metadata to read
        return "0+unknown"


def __getattr__(name: str) -> str:
    if name == "__version__":
        return _version()
    raise AttributeError(f"module 'ralf' has no attribute {name!r}")
