"""`ralf bootstrap` on the real-container lab: the local LXC node from nothing to a running Phase 1.

A copy of examples/ctlab/platform.yaml with a node of its own (name, bridge, CT directory), so a
developer's own lab is never touched. No Proxmox API here: the preflight brings up the local node
(namespace, bridge, package cache) and makes the secrets and the key pair; the Phase 1 pair runs
through the same stack runner and smoke as everywhere; there is no Semaphore in this lab, which the
plan says. A second run changes nothing and says so.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import network_guard
import pytest

from tests.lxc.conftest import lab_platform, require_lxc

pytestmark = [pytest.mark.slow, pytest.mark.timeout(2400)]

REPO = Path(__file__).resolve().parents[2]
NAME = f"b{os.getpid() % 100000}"


def _platform(tmp: Path) -> Path:
    return lab_platform(tmp, "b")


def ralf(env, *args, timeout=1800) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ralf", *args], env=env, cwd=REPO, capture_output=True,
                          text=True, timeout=timeout)


def test_bootstrap_brings_up_the_labs_phase1_and_a_rerun_changes_nothing(tmp_path):
    require_lxc()
    pf = _platform(tmp_path)
    network_guard.allow_namespace(f"ralf-{NAME}")
    env = dict(os.environ, RALF_STATE_DIR=str(tmp_path / "state"), COLUMNS="200", ANSIBLE_NOCOLOR="1",
               PATH=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}")
    env.pop("RALF_PLATFORM", None)
    # the platform file's own secrets directory ({state_dir}/ctlab/secrets, under this test's state dir):
    # its smoke checks name the platform CA there
    secrets = tmp_path / "state" / "ctlab" / "secrets"
    env.pop("RALF_SECRETS_DIR", None)
    try:
        first = ralf(env, "bootstrap", "--platform", str(pf))
        out = first.stdout + first.stderr
        assert first.returncode == 0, out[-6000:]
        assert re.search(r"ok\s+LXC node: namespace ralf-" + NAME, out), out[:3000]
        assert "no semaphore section: no seeding and no Semaphore smoke" in out
        assert re.search(r"RALF Postgres Apply\s+succeeded", out) and re.search(r"RALF Postgres Smoke\s+succeeded", out)
        assert (secrets / "postgres.env").is_file() and (secrets / "ralf_ed25519").is_file()
        assert "nothing changed" not in out

        again = ralf(env, "bootstrap", "--platform", str(pf))
        out2 = again.stdout + again.stderr
        assert again.returncode == 0, out2[-6000:]
        assert "bootstrap: the platform was already up — nothing changed" in out2, out2[-3000:]

        smoke = ralf(env, "smoke", "phase1", "--platform", str(pf), "--json")
        assert smoke.returncode == 0, smoke.stdout[-3000:] + smoke.stderr[-3000:]
        report = json.loads(smoke.stdout)
        kinds = {c["kind"] for s in report["services"] for c in s["checks"] if c["status"] == "OK"}
        assert {"unit", "tcp", "postgres"} <= kinds
    finally:
        ralf(env, "lab", "down", "--platform", str(pf), timeout=300)
        network_guard.forget_namespace(f"ralf-{NAME}")
    assert not Path(f"/run/netns/ralf-{NAME}").exists()
