"""Secrets stay secret in what a stack run writes; the stack lock holds while a child of a killed run lives."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import textwrap
import time

import pytest

from ralf.stacks import run_stacks

LEAKY_PLAYBOOK_RUNNER = r'''#!{python}
# a stand-in ansible-playbook whose playbook prints every secret it can read (a debug task gone wrong)
import os, sys
if sys.argv[1:] == ["--version"]:
    print("ansible-playbook [core 2.18.6]")
    sys.exit(0)
d = {secrets!r}
for name in sorted(os.listdir(d)):
    if not os.path.isfile(os.path.join(d, name)):
        continue
    text = open(os.path.join(d, name)).read()
    for line in text.splitlines():
        print("ok: [minio] => " + line)
print("PLAY RECAP *********")
print("minio : ok=1    changed=0    unreachable=0    failed=0    skipped=0")
'''


def test_every_file_a_stack_run_writes_is_private_and_free_of_secret_values(default_copy, fakes, state):
    secrets_dir = default_copy.secrets_path
    (secrets_dir / "smtp.env").write_text("SMTP_RELAY_PASSWORD='relay-pw-7741'\n")
    (secrets_dir / "ralf_ed25519").write_text("-----BEGIN OPENSSH PRIVATE KEY-----\n"
                                              "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\n"
                                              "-----END OPENSSH PRIVATE KEY-----\n")
    runner = fakes.bin / "ansible-playbook"
    runner.write_text(LEAKY_PLAYBOOK_RUNNER.format(python=sys.executable, secrets=str(secrets_dir)))
    fakes.behave(echo_secret="apply")  # the tofu stand-in prints its credentials too
    result = run_stacks(default_copy, "031-minio-config", apply=True)
    assert result.ok, [r.note for r in result.results]

    from ralf.envfile import parse

    values = []
    for f in (p for p in secrets_dir.iterdir() if p.is_file()):
        text = f.read_text()
        env = parse(text)
        values += [v for v in env.values() if len(v) >= 6] if env else [
            ln for ln in text.splitlines() if len(ln) >= 8 and not ln.startswith("-----")]
    assert "relay-pw-7741" in values and len(values) > 5
    written = [p for p in state.rglob("*") if p.is_file()]
    assert any(p.name.endswith(".log") for p in written)
    log = next(p for p in written if p.name.endswith("031-minio-config.log")).read_text()
    assert "ok: [minio] => SMTP_RELAY_PASSWORD='***'" in log  # the line is kept, the value is not
    for p in written:
        data = p.read_bytes()
        leaked = [v for v in values if v.encode() in data]
        assert not leaked, f"{p} holds secret values"
    for p in result.run_dir.iterdir():
        if p.suffix in (".log", ".ini", ".json"):
            assert stat.S_IMODE(p.stat().st_mode) == 0o600, f"{p} is {oct(p.stat().st_mode)}"
    assert stat.S_IMODE(result.run_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE(result.run_dir.parent.stat().st_mode) == 0o700


HOLDER = textwrap.dedent('''
    import sys
    from pathlib import Path
    from ralf.stacks.lock import StackLock
    from ralf.stacks.process import run_streamed
    with StackLock(Path(sys.argv[1]), command="ralf stacks run --apply"):
        with open(sys.argv[2], "w") as log:
            # a child that outlives a SIGKILL of ralf (its own session, as ansible-playbook and tofu run)
            run_streamed(["sleep", "30"], cwd=".", env={"PATH": "/usr/bin:/bin"}, log=log)
''')


@pytest.mark.slow  # starts and kills programs
def test_lock_is_held_while_a_child_of_a_killed_run_lives(tmp_path):
    from ralf.errors import LockHeldError
    from ralf.stacks.lock import StackLock

    script = tmp_path / "holder.py"
    script.write_text(HOLDER)
    proc = subprocess.Popen([sys.executable, str(script), str(tmp_path), str(tmp_path / "log")])
    deadline = time.monotonic() + 20
    child = None
    while child is None:
        assert time.monotonic() < deadline, "the holder never started its child"
        out = subprocess.run(["pgrep", "-P", str(proc.pid), "-x", "sleep"], capture_output=True, text=True).stdout
        child = int(out.split()[0]) if out.split() else None
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    try:
        with pytest.raises(LockHeldError) as e:
            with StackLock(tmp_path):
                pass
        assert f"pid {proc.pid}" in str(e.value) and "still runs" in str(e.value)
    finally:
        os.kill(child, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while True:  # once nothing of that run remains, the lock is free (no stale lock to clean up)
        try:
            with StackLock(tmp_path):
                break
        except LockHeldError:
            assert time.monotonic() < deadline
            time.sleep(0.05)
