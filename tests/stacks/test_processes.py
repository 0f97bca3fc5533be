"""Real processes: break-glass runs through the CLI, lock contention, Ctrl-C / SIGTERM, env errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
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
        out: list[str] = []  # the waiter's stdout, line by line as it comes
        reader = threading.Thread(target=lambda: out.extend(waiter.stdout), daemon=True)
        reader.start()
        # released only once the waiter is at the lock (on a loaded machine its start-up alone can take seconds)
        wait_for(lambda: any("waiting for the lock" in line for line in out), timeout=120, what="the waiter at the lock")
        assert waiter.poll() is None and len(list((state / "runs").iterdir())) == 1  # waiting, not running
        release.write_text("go")
        assert waiter.wait(timeout=120) == 0, waiter.stderr.read()
        reader.join(timeout=10)
        assert f"pid {first.pid}" in next(line for line in out if "waiting for the lock" in line)
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


# ---------------------------------------------------------------- interrupts around a child's start

# A child that loses an interrupt while it starts (as a Python program does when KeyboardInterrupt is raised
# where it gets swallowed), then stops on the next one; it reports every SIGINT it saw once ready.
STARTING_CHILD = r"""
import signal, sys, time
signal.signal(signal.SIGINT, signal.SIG_IGN)
print("starting", flush=True)
time.sleep(0.6)
seen = []
def stop(*_):
    seen.append(1)
    print(f"SIGINT {len(seen)}", flush=True)
signal.signal(signal.SIGINT, stop)
print("ready", flush=True)
end = time.monotonic() + 60
while time.monotonic() < end and not seen:
    time.sleep(0.02)
time.sleep(float(sys.argv[1]))  # a clean shutdown that takes a while (OpenTofu releasing its lock)
print(f"stopped after {len(seen)} SIGINT", flush=True)
sys.exit(130)
"""


def _run_child(guard, tmp_path, shutdown: float = 0.0, on_line=None, resend_on_startup: bool = True):
    import io

    from ralf.stacks.process import run_streamed

    t0 = time.monotonic()
    res = run_streamed([sys.executable, "-c", STARTING_CHILD, str(shutdown)], cwd=tmp_path, env=dict(os.environ),
                       log=io.StringIO(), on_line=on_line, guard=guard, resend_on_startup=resend_on_startup)
    return res, time.monotonic() - t0


def test_an_interrupt_before_the_child_pid_is_known_is_forwarded_and_repeated(tmp_path):
    from ralf.stacks.process import InterruptGuard

    guard = InterruptGuard(grace=30, resend=1.0, startup=3.0)
    child = subprocess.Popen([sys.executable, "-c", STARTING_CHILD, "0"], stdout=subprocess.PIPE, text=True,
                             start_new_session=True)
    try:
        assert child.stdout.readline().strip() == "starting"  # the child started; ralf does not know it yet
        t0 = time.monotonic()
        guard._handle(signal.SIGINT, None)  # Ctrl-C now: no child attached, nothing to forward to
        guard.attach(child)  # the pid becomes known: forwarded at once (and lost by the starting child)
        rest, _ = child.communicate(timeout=60)
        took = time.monotonic() - t0
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        guard.__exit__(None, None, None)
    assert child.returncode == 130 and "stopped after 1 SIGINT" in rest, rest
    assert took < 10, f"the lost SIGINT was not repeated: {took:.1f} s"  # was: SIGKILL only after the grace


def test_a_real_interrupt_right_after_the_spawn_is_not_lost(tmp_path):
    import threading

    from ralf.stacks.process import InterruptGuard

    main = threading.main_thread().ident

    def on_line(line: str) -> None:
        if line == "starting":
            signal.pthread_kill(main, signal.SIGINT)

    guard = InterruptGuard(grace=30, resend=1.0, startup=3.0)
    with guard:
        res, took = _run_child(guard, tmp_path, on_line=on_line)
    assert res.interrupted and res.returncode == 130 and guard.signum == signal.SIGINT, res.lines
    assert took < 10 and "stopped after 1 SIGINT" in res.lines


def test_an_interrupt_after_startup_is_sent_once(tmp_path):
    """A second SIGINT makes OpenTofu exit at once (state lock left behind): never repeat a delivered one."""
    import threading

    from ralf.stacks.process import InterruptGuard

    main = threading.main_thread().ident

    def on_line(line: str) -> None:
        if line == "ready":
            signal.pthread_kill(main, signal.SIGINT)

    guard = InterruptGuard(grace=30, resend=0.3, startup=0.2)  # "ready" comes 0.6 s after the spawn
    with guard:
        res, took = _run_child(guard, tmp_path, shutdown=1.5, on_line=on_line)
    assert res.interrupted and res.returncode == 130, res.lines
    assert "stopped after 1 SIGINT" in res.lines and "SIGINT 2" not in res.lines


def _interrupt_when_ready_within_the_startup_window(tmp_path, resend_on_startup: bool):
    import threading

    from ralf.stacks.process import InterruptGuard

    main = threading.main_thread().ident

    def on_line(line: str) -> None:
        if line == "ready":
            signal.pthread_kill(main, signal.SIGINT)

    guard = InterruptGuard(grace=30, resend=0.3, startup=5.0)  # "ready" comes well inside the startup window
    with guard:
        res, _ = _run_child(guard, tmp_path, shutdown=1.5, on_line=on_line, resend_on_startup=resend_on_startup)
    assert res.interrupted and res.returncode == 130, res.lines
    return res.lines


def test_the_startup_repeat_is_real_and_opentofu_opts_out_of_it(tmp_path):
    """Inside the startup window a delivered SIGINT is repeated, unless the program must get exactly one."""
    assert "SIGINT 2" in _interrupt_when_ready_within_the_startup_window(tmp_path, resend_on_startup=True)
    assert "SIGINT 2" not in _interrupt_when_ready_within_the_startup_window(tmp_path, resend_on_startup=False)


def test_a_signal_while_attach_holds_the_lock_does_not_deadlock():
    import threading

    from ralf.stacks.process import InterruptGuard

    guard = InterruptGuard()

    def inside_attach() -> None:
        with guard._lock:  # the handler runs on the thread that holds the lock, as inside attach()
            guard._handle(signal.SIGINT, None)

    t = threading.Thread(target=inside_attach, daemon=True)
    t.start()
    t.join(5)
    assert not t.is_alive() and guard.requested
