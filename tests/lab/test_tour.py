"""The newcomer's path as written: scripts/quickstart.sh, then the tour block of docs/lab-tour.md.

Runs the real commands (subprocesses, real Ansible, real smoke) against a test copy of the lab on other
loopback addresses, with its own state directory; nothing is left running afterwards.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from ralf.hints import commands_in

from .lab_support import REPO, lab_processes, write_test_lab

pytestmark = pytest.mark.timeout(600)  # quickstart, the tour and its pasted hints: real Ansible runs, slow on a loaded machine


def sh_blocks(doc: str) -> list[str]:
    return re.findall(r"```sh\n(.*?)```", (REPO / doc).read_text(), re.S)


def tour_commands(block: str | None = None) -> list[tuple[str, int]]:
    """(command, expected exit code) for each line of the ```sh block in docs/lab-tour.md."""
    block = sh_blocks("docs/lab-tour.md")[0] if block is None else block
    out = []
    for line in block.splitlines():
        if not line.strip():
            continue
        cmd, _, comment = line.partition("#")
        m = re.match(r"\s*exit (\d+)", comment)
        out.append((cmd.strip(), int(m.group(1)) if m else 0))
    return out


def test_the_readme_shows_the_same_commands():
    """README's two commands are the quickstart and the tests; its tour is the one run below."""
    first, tour = sh_blocks("README.md")[:2]
    assert [line.split("#")[0].strip() for line in first.splitlines()] == [
        "bash scripts/quickstart.sh", "bash scripts/test.sh"]
    assert tour_commands(tour) == tour_commands()


@pytest.fixture
def env(tmp_path):
    state = tmp_path / "state"
    platform = write_test_lab(tmp_path / "platform")
    e = dict(os.environ)
    e.update(RALF_STATE_DIR=str(state), RALF_LAB_PLATFORM=str(platform), ANSIBLE_NOCOLOR="1",
             PATH=f"{Path(sys.executable).parent}:{e.get('PATH', '')}", COLUMNS="200")
    e.pop("RALF_PLATFORM", None)
    yield e, platform, state
    subprocess.run([sys.executable, "-m", "ralf", "lab", "down"], env=e, capture_output=True, timeout=60)
    assert lab_processes(state) == []


def run(cmd: str, env: dict, platform: Path) -> subprocess.CompletedProcess:
    argv = [str(platform) if a == "examples/lab/platform.yaml" else a for a in shlex.split(cmd)]
    return subprocess.run(argv, env=env, cwd=REPO, capture_output=True, text=True, timeout=240)


@pytest.mark.slow
def test_quickstart_then_the_tour(env):
    e, platform, state = env

    # README's first command (installs are skipped: nginx and this checkout's ralf are already there)
    qs = subprocess.run(["bash", "scripts/quickstart.sh"], env=e, cwd=REPO, capture_output=True, text=True,
                        timeout=240)
    assert qs.returncode == 0, qs.stdout[-3000:] + qs.stderr[-3000:]
    out = qs.stdout + qs.stderr
    assert "apt-get" not in qs.stdout and "installing" not in qs.stdout
    assert "deploy succeeded: 2/2 steps" in out  # Phase 1
    assert "deploy succeeded: 4/4 steps" in out  # the standard order
    for template in ("RALF Web Apply", "RALF Web Smoke", "RALF API Apply", "RALF API Smoke"):
        assert re.search(rf"{template}\s+succeeded", out), template
    assert re.search(r"portal\s+│?\s*OK", out) or "3 OK" in out
    board = state / "lab" / "status.html"
    html = board.read_text()
    assert all(f'data-service="{s}" data-state="ok"' in html for s in ("store", "portal", "echo"))

    # the tour, line by line as written
    outputs = []
    for cmd, want in tour_commands():
        p = run(cmd, e, platform)
        outputs.append((cmd, p))
        assert p.returncode == want, f"{cmd}: exit {p.returncode}, expected {want}\n{p.stdout[-3000:]}\n{p.stderr[-2000:]}"

    (_, broke), (_, failed), (_, bad_status), (_, fixed), (_, resumed), (_, good_status) = outputs
    assert "nginx/TLS" in broke.stdout
    text = failed.stdout + failed.stderr
    assert re.search(r"RALF Web Smoke\s+failed", text)
    assert re.search(r"RALF API Apply\s+not run", text) and re.search(r"RALF API Smoke\s+not run", text)
    assert "triage" in text and "nginx/TLS" in text and "certificate expired" in text
    assert re.search(r"^web\s+portal\s+FAIL\s", bad_status.stdout, re.M), bad_status.stdout
    assert "certificate expired" in bad_status.stdout, bad_status.stdout  # the diagnosis reaches the board
    assert "issued a new certificate" in fixed.stdout
    assert re.search(r"RALF Web Smoke\s+succeeded", resumed.stdout + resumed.stderr)
    # after a failed Smoke the resume starts at the Apply it checks, so a pushed fix is applied
    assert re.search(r"step 1/4 RALF Web Apply succeeded", resumed.stdout), resumed.stdout
    assert "FAIL" not in good_status.stdout

    # every command the tour printed works when pasted as it is (no --platform added by hand)
    hints = commands_in(broke.stdout) + commands_in(text)
    flag = f"--platform {shlex.quote(str(platform))}"
    failed_run = int(re.search(r"deploy failed at step \d+/\d+ RALF Web Smoke: \d+/\d+ steps succeeded \(run (\d+)\)",
                               text).group(1))
    assert hints == ["ralf lab fix portal", f"ralf deploy --resume {flag}", f"ralf smoke portal {flag}",
                     f"ralf deploy portal {flag}", f"ralf deploy --resume {failed_run} {flag}"], hints
    pasted = {cmd: run(cmd, e, platform) for cmd in hints}
    assert pasted["ralf lab fix portal"].returncode == 0  # nothing left to fix
    assert pasted[f"ralf smoke portal {flag}"].returncode == 0, pasted[f"ralf smoke portal {flag}"].stdout
    deployed = pasted[f"ralf deploy portal {flag}"]
    assert deployed.returncode == 0 and "RALF Portal Apply" in deployed.stdout, deployed.stdout + deployed.stderr
    # the resume hints find the lab's run (resumed above), not a run of another platform or a changed plan
    for cmd in (f"ralf deploy --resume {flag}", f"ralf deploy --resume {failed_run} {flag}"):
        assert pasted[cmd].returncode == 2 and "which succeeded" in pasted[cmd].stderr \
            or "no failed or stopped run of platform ralf-lab" in pasted[cmd].stderr, pasted[cmd].stderr

    # the journal agrees
    js = run("ralf status --platform examples/lab/platform.yaml --json", e, platform)
    data = json.loads(js.stdout)
    assert data["counts"]["ok"] == 3 and data["counts"]["fail"] == 0
    portal = next(s for s in data["services"] if s["service"] == "portal")
    assert portal["last_smoke"]["result"] == "succeeded" and portal["cert_days_left"] > 300
