"""Fixtures for the lab tests: an isolated lab (own state dir, own 127.0.1x0.y addresses) and cleanup.

The lab under test is a copy of examples/lab/platform.yaml moved to other loopback addresses, so a
lab a developer has running on this machine is never touched; its stacks are the real ones.
"""

from __future__ import annotations

import os

import pytest

from .lab_support import MOVES, lab_processes, write_test_lab  # noqa: F401


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """An isolated lab environment (not started): yields (platform, state_dir); stops everything after."""
    from ralf.lab import supervisor
    from ralf.loader import load_platform

    base = tmp_path_factory.mktemp("lab")
    state = base / "state"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RALF_STATE_DIR", str(state))
        pfile = write_test_lab(base / "platform")
        mp.setenv("RALF_LAB_PLATFORM", str(pfile))
        mp.setenv("ANSIBLE_NOCOLOR", "1")
        try:
            yield load_platform(pfile), state
        finally:
            supervisor.stop_all()
            leftovers = lab_processes(state)
            for pid in leftovers:
                try:
                    os.killpg(pid, 9)
                except OSError:
                    pass
            assert not leftovers, f"lab processes left running: {leftovers}"


@pytest.fixture
def state(tmp_path, monkeypatch):
    """A fresh state directory for unit tests of the lab's pieces."""
    monkeypatch.setenv("RALF_STATE_DIR", str(tmp_path / "state"))
    yield tmp_path / "state"
    from ralf.lab import supervisor

    supervisor.stop_all()
