"""Real processes: break-glass runs through the CLI, lock contention, Ctrl-C / SIGTERM, env errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def ralf(*args: str, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "ralf", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=kw.pop("env", dict(os.environ)), **kw)


def wait_for(pred, timeout: float = 30.0, what: str = "condition") -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def lock_holder(state: Path) -> dict:
    try:
        text = (state / "stacks.lock").read_text().strip()
        return json.loads(text) if text else {}
    except (OSError, ValueError):
        return {}


def procs_with(marker: str) -> list[int]:
    found = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if marker in (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"):
                    found.append(int(d.name))
            except OSError:
                pass
    return found


def test_break_glass_apply_twice(local_platform, tmp_path, state):
    out = tmp_path / "out"
    p = local_platform({
        "011-app-config": f"- hosts: app\n  gather_facts: false\n  tasks:\n"
                          f"    - ansible.builtin.copy: {{content: \"x\\n\", dest: '{out}/app.txt'}}\n",
        "021-web-config": f"- hosts: web\n  gather_facts: false\n  tasks:\n"
                          f"    - ansible.builtin.file: {{path: '{out}', state: directory}}\n",
    })
    # web's directory must exist before app writes into it: run web first via ONLY_STACKS order
    env = dict(os.environ, ONLY_STACKS="021-web-config,011-app-config", AUTO_APPLY="0")
    first = ralf("stacks", "run", "--apply", "--platform", str(p.source), env=env)
    so, se = first.communicate(timeout=120)
    assert first.returncode == 0, se
    assert "TASK [" in so and "Summary" in so and "succeeded" in so
    assert (out / "app.txt").read_text() == "x\n"
    second = ralf("stacks", "run", "--apply", "--json", "--platform", str(p.source), env=env)
    so2, se2 = second.communicate(timeout=120)
    assert second.returncode == 0, se2
    data = json.loads(so2)  # stdout is pure JSON; the live output went to stderr
    assert "PLAY RECAP" in se2
    assert data["ok"] is True and data["changed"] == 0 and data["mode"] == "apply"
    assert [(s["stack"], s["result"], s["changed"]) for s in data["stacks"]] == [
        ("021-web-config", "succeeded", 0), ("011-app-config", "succeeded", 0)]
    assert all(Path(s["log_path"]).is_file() for s in data["stacks"])
    third = ralf("stacks", "run", "--apply", "--platform", str(p.source), env=env)
    so3, _ = third.communicate(timeout=120)
    assert third.returncode == 0 and "nothing changed" in so3


def blocking_platform(local_platform, tmp_path):
    release = tmp_path / "release"
    return local_platform({
        "011-app-config": f"- hosts: app\n  gather_facts: false\n  tasks:\n"
                          f"    - ansible.builtin.wait_for: {{path: '{release}', timeout: 90}}\n",
    }), release


def test_second_run_is_refused_while_the_first_holds_the_lock(local_platform, tmp_path, state):
    p, release = blocking_platform(local_platform, tmp_path)
    first = ralf("stacks", "run", "--apply", "--platform", str(p.source))
    try:
        wait_for(lambda: lock_holder(state).get("pid") == first.pid, what="the first run's lock")
        second = ralf("stacks", "run", "--apply", "--platform", str(p.source))
        so, se = second.communicate(timeout=60)
        assert second.returncode == 1
        assert f"pid {first.pid}" in se and "another stack run holds" in se and "--wait" in se
        assert "Traceback" not in se
        waiter = ralf("stacks", "run", "--apply", "--wait", "--platform", str(p.source))
        wait_for(lambda: len(list((state / "runs").iterdir())) == 1, what="only one run directory")
        time.sleep(1.0)
        assert waiter.poll() is None  # still waiting
        release.write_text("go")
        so_w, se_w = waiter.communicate(timeout=120)
        assert waiter.returncode == 0, se_w
        assert "waiting for the lock" in so_w and f"pid {first.pid}" in so_w
        assert first.wait(timeout=60) == 0
        assert len(list((state / "runs").iterdir())) == 2
        assert lock_holder(state) == {}  # released and emptied
    finally:
        release.write_text("go")
        for proc in (first,):
            if proc.poll() is None:
                proc.kill()
                proc.wait()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupt_stops_the_child_and_records_it(local_platform, tmp_path, state, sig):
    marker = f"47.{os.getpid()}{int(sig)}"
    p = local_platform({
        "011-app-config": f"- hosts: app\n  gather_facts: false\n  tasks:\n"
                          f"    - ansible.builtin.command: sleep {marker}\n",
        "021-web-config": "- hosts: web\n  gather_facts: false\n  tasks: []\n",
    })
    run = ralf("stacks", "run", "--apply", "--platform", str(p.source))
    try:
        wait_for(lambda: procs_with(f"sleep {marker}"), what="the playbook's sleep")
        run.send_signal(sig)
        so, se = run.communicate(timeout=60)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    assert run.returncode == 130, se
    assert "interrupted" in so and "Traceback" not in se
    wait_for(lambda: not procs_with(f"sleep {marker}"), timeout=10, what="the child to be gone")
    summary = json.loads(next((state / "runs").iterdir()).joinpath("summary.json").read_text())
    assert summary["interrupted"] is True and summary["exit_code"] == 130
    assert [s["result"] for s in summary["stacks"]] == ["interrupted", "not run"]
    assert summary["stacks"][0]["note"] == f"stopped by {sig.name}"
    log = Path(summary["stacks"][0]["log_path"]).read_text()
    assert log.rstrip().splitlines()[-1].startswith("# 011-app-config: interrupted after")


@pytest.mark.parametrize("env,message", [
    ({"START_AT": "abc"}, "START_AT='abc' is not a stack prefix"),
    ({"ONLY_STACKS": "011-app-config 012-nope-config"}, "unknown stack 012-nope-config in ONLY_STACKS; valid stacks: 011-app-config"),
    ({"START_AT": "500"}, "no stacks selected"),
])
def test_bad_environment_fails_before_anything_runs(local_platform, tmp_path, state, env, message):
    p = local_platform({"011-app-config": "- hosts: app\n  tasks: []\n"})
    proc = ralf("stacks", "run", "--platform", str(p.source), env=dict(os.environ, **env))
    so, se = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert se.startswith("ralf: ") and message in se and "Traceback" not in se
    assert not (state / "runs").exists()
