"""Where the lab keeps its files: everything under ``<state_dir>/lab/`` so one variable isolates it."""

from __future__ import annotations

from pathlib import Path

from ralf.paths import state_dir


def lab_dir() -> Path:
    return state_dir() / "lab"


def units_dir() -> Path:
    """Unit specs (JSON): what to run for each unit, written by the lab's playbooks."""
    return lab_dir() / "units"


def run_dir() -> Path:
    """Pid files of running units."""
    return lab_dir() / "run"


def log_dir() -> Path:
    return lab_dir() / "log"


def tls_dir() -> Path:
    return lab_dir() / "tls"


def ca_file() -> Path:
    """The lab CA's certificate (the platform file's ``ca_file: "{state_dir}/lab/ca.pem"``)."""
    return lab_dir() / "ca.pem"


def ca_key_file() -> Path:
    return lab_dir() / "ca-key.pem"


def nginx_dir() -> Path:
    return lab_dir() / "nginx"
