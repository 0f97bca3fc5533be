"""Fixtures shared by every test: the repository's platform files and a writer for test platforms.

Tests never send traffic anywhere but 127.0.0.1 / localhost; the default platform (10.10.0.0/16)
is only loaded and planned, never contacted.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import network_guard
import pytest

REPO = Path(__file__).resolve().parent.parent
DEFAULT_PLATFORM = REPO / "platform.yaml"
LAB_PLATFORM = REPO / "examples" / "lab" / "platform.yaml"


# Fixtures that start real servers or programs: nginx, PostgreSQL, moto's S3, the lab through real Ansible,
# headless Chromium, the fake Semaphore and Proxmox HTTP servers with their scripted tasks (real time), the
# stand-in tofu/ansible programs, the deliberately slow HTTP stub. A test that uses one (directly or through
# another fixture) belongs to the slow tier, so `pytest -m "not slow"` stays a fast loop (README, Development).
SLOW_FIXTURES = frozenset({"nginx", "postgres", "postgres_tls", "s3", "lab", "lab_up", "pages", "fake", "fake216", "tls_fake", "sem",
                           "pve", "fakes", "http_stub", "server"})


def pytest_collection_modifyitems(config, items):
    for item in items:
        if SLOW_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session", autouse=True)
def _ctrl_c_raises_keyboard_interrupt():
    """Ctrl-C behaves as in a terminal, however the suite was started.

    A shell that starts the suite in the background ignores SIGINT for it, and Python then installs no
    handler: the tests of Ctrl-C and of step timeouts (which interrupt like Ctrl-C) would see nothing.
    """
    import signal

    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, old)


@pytest.fixture(scope="session", autouse=True)
def _loopback_only(tmp_path_factory):
    """Every test runs behind the network guard (see tests/network_guard.py)."""
    network_guard.install(tmp_path_factory.mktemp("network-guard-bin"))
    yield
    network_guard.uninstall()


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def default_platform():
    from ralf.loader import load_platform

    return load_platform(DEFAULT_PLATFORM)


@pytest.fixture(scope="session")
def default_catalog(default_platform):
    from ralf.catalog import Catalog

    return Catalog(default_platform)


@pytest.fixture(scope="session")
def lab_platform():
    from ralf.loader import load_platform

    return load_platform(LAB_PLATFORM)


@pytest.fixture
def write_platform(tmp_path):
    """Write YAML text (dedented) to a temporary platform file and return its path."""

    def _write(text: str, name: str = "platform.yaml") -> Path:
        p = tmp_path / name
        p.write_text(textwrap.dedent(text))
        return p

    return _write


@pytest.fixture
def run_cli(monkeypatch):
    """Run the ralf CLI in-process: returns (exit_code, stdout, stderr)."""
    import io
    import sys

    from ralf.cli.main import main

    def _run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
        for k, v in (env or {}).items():
            monkeypatch.setenv(k, v)
        out, err = io.StringIO(), io.StringIO()
        monkeypatch.setattr(sys, "stdout", out)
        monkeypatch.setattr(sys, "stderr", err)
        try:
            main(list(args))
            code = 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        return code, out.getvalue(), err.getvalue()

    return _run
