"""`ralf deploy` and `ralf history` end to end through the CLI, against the fake Semaphore on 127.0.0.1."""

from __future__ import annotations

import json

import pytest


@pytest.fixture
def local_steps(local_stub) -> list[str]:
    """The local executor replaced by one that records the templates it runs and succeeds."""
    return local_stub["used"]


def test_dry_run_prints_the_plan_and_runs_nothing(run_cli, env, fake, platform_args, tmp_path):
    code, out, err = run_cli(*platform_args, "deploy", "vault", "--dry-run", env=env)
    assert code == 0, err
    assert "RALF Vault Apply" in out and "RALF Vault Smoke" in out
    assert fake.tasks == {}
    assert not (tmp_path / "state" / "journal.sqlite3").exists()
    code, out, _ = run_cli(*platform_args, "deploy", "--dry-run", "--json", env=env)
    data = json.loads(out)
    assert data["dry_run"] is True and len(data["steps"]) == 8


def test_deploy_json_and_history(run_cli, env, fake, platform_args):
    code, out, err = run_cli(*platform_args, "deploy", "n8n", "--json", "--no-checks", env=env)
    assert code == 0, err
    data = json.loads(out)
    assert data["result"] == "succeeded" and data["exit_code"] == 0
    assert [s["template"] for s in data["steps"]] == ["RALF N8N Apply", "RALF Automation Smoke"]
    assert all(s["result"] == "succeeded" and s["task_id"] and "?t=" in s["task_url"] for s in data["steps"])
    assert "step 1/2 RALF N8N Apply" in err  # progress goes to stderr with --json
    assert fake.token not in out + err

    code, out, _ = run_cli(*platform_args, "history", env=env)
    assert code == 0 and "n8n" in out and "succeeded" in out and "2/2" in out
    code, out, _ = run_cli(*platform_args, "history", str(data["run_id"]), env=env)
    assert "RALF N8N Apply" in out and "task" in out
    code, out, _ = run_cli(*platform_args, "history", "--json", env=env)
    assert json.loads(out)[0]["id"] == data["run_id"]
    code, _, err = run_cli(*platform_args, "history", "999", env=env)
    assert code == 2 and "no run 999" in err


def test_failure_exit_code_and_resume_through_the_cli(run_cli, env, fake, platform_args):
    fake.script("RALF Automation Apply", "error", 0.05, log=['fatal: [n8n]: FAILED! => {"msg": "x"}'])
    code, out, err = run_cli(*platform_args, "deploy", "--no-checks", env=env)
    assert code == 1
    assert "step 3/8 RALF Automation Apply failed" in out
    assert "ansible failed on n8n" in out
    assert "`ralf deploy --resume 1`" in out
    assert len(fake.tasks) == 3

    code, _, err = run_cli(*platform_args, "deploy", "vault", "--resume", env=env)
    assert code == 2 and "give no REQUEST" in err

    fake.script("RALF Automation Apply", "success", 0.05)
    code, out, err = run_cli(*platform_args, "deploy", "--resume", "--no-checks", env=env)
    assert code == 0, out + err
    assert "resuming run 1 at step 3" in out
    assert len(fake.tasks) == 3 + 6
    code, _, err = run_cli(*platform_args, "deploy", "--resume", "1", env=env)
    assert code == 2 and "resumed by run 2, which succeeded" in err
    code, _, err = run_cli(*platform_args, "deploy", "--resume", env=env)
    assert code == 2 and "no failed or stopped run" in err


def test_pattern_b_without_terminal_or_yes_is_refused(run_cli, env, fake, platform_args):
    code, out, err = run_cli(*platform_args, "deploy", "--changed", "src/ralf/smoke/engine.py", env=env)
    assert code == 2
    assert "shared base" in err and "--yes" in err
    assert fake.tasks == {}
    code, out, err = run_cli(*platform_args, "deploy", "cleanroom", env=env)
    assert code == 2 and "--yes" in err
    code, out, err = run_cli(*platform_args, "deploy", "--changed", "src/ralf/smoke/engine.py", "--yes",
                             "--no-checks", env=env)
    assert code == 0, err
    assert "RALF Phase1 Config Apply" in out and len(fake.tasks) >= 2


def test_bad_input_is_one_clear_message(run_cli, env, platform_args):
    code, _, err = run_cli(*platform_args, "deploy", "nosuchthing", env=env)
    assert code == 2 and "unknown request" in err and "Traceback" not in err
    code, _, err = run_cli(*platform_args, "deploy", "vault", "--timeout", "0", env=env)
    assert code == 2 and "--timeout" in err
    code, _, err = run_cli(*platform_args, "deploy", "--resume", env=env)
    assert code == 2 and "no failed or stopped run" in err


def test_dead_semaphore_is_one_clear_message(run_cli, env, platform_args):
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    dead = f"http://127.0.0.1:{port}"
    code, out, err = run_cli(*platform_args, "deploy", "vault", env={**env, "SEMAPHORE_URL": dead})
    assert code == 1 and "Traceback" not in out + err
    assert f"step 1/2 RALF Vault Apply failed (0.0 s) — not started: Semaphore at {dead} did not answer" in out
    assert "triage: semaphore — the Semaphore server itself failed or did not answer" in out
    assert f"check FAIL semaphore: {dead}/api/ping" in out  # the URL in use, not the platform file's 10.x one
    assert "re-roll 041-semaphore-config" in out and "`ralf deploy --resume 1`" in out
    code, out, _ = run_cli(*platform_args, "history", env=env)
    assert code == 0 and "failed" in out and "0/2" in out


def test_wrong_token_is_one_clear_message(run_cli, env, platform_args):
    bad = "tok-not-valid-4711"
    code, out, err = run_cli(*platform_args, "deploy", "vault", env={**env, "SEMAPHORE_TOKEN": bad})
    assert code == 1 and "401" in err and "Traceback" not in err
    assert bad not in out + err


class TtyInput:
    """A terminal on stdin that answers the confirmation prompt."""

    def __init__(self, answer: str):
        import io

        self._buf = io.StringIO(answer)

    def isatty(self):
        return True

    def readline(self, *a):
        return self._buf.readline(*a)

    def read(self, *a):
        return self._buf.read(*a)

    def fileno(self):
        raise OSError("no fd")


@pytest.mark.parametrize("answer,code,tasks", [("n\n", 2, 0), ("y\n", 0, 2)])
def test_pattern_b_asks_on_a_terminal(run_cli, env, fake, platform_args, monkeypatch, answer, code, tasks):
    import sys

    monkeypatch.setattr(sys, "stdin", TtyInput(answer))
    got, out, err = run_cli(*platform_args, "deploy", "--changed", "src/ralf/smoke/engine.py", "--no-checks", env=env)
    assert got == code, out + err
    assert "changes the shared base" in err
    assert len(fake.tasks) >= tasks and (tasks or not fake.tasks)
    if code == 2:
        assert "not confirmed" in err


def test_resume_keeps_the_runs_executor_unless_one_is_given(run_cli, env, fake, platform_args, local_steps,
                                                           default_catalog, tmp_path):
    """A break-glass (local) run resumes locally; `--executor semaphore` moves it back to Semaphore."""
    from ralf.journal import Journal
    from ralf.planner import build_plan

    used = local_steps
    plan = build_plan(default_catalog, "vault")
    with Journal(tmp_path / "state" / "journal.sqlite3") as j:
        for _ in range(2):
            rid = j.start_run(plan, executor="local", request_args={"request": "vault", "changed": None,
                                                                    "changed_from": None, "repo_root": None})
            j.update_step(rid, 0, result="failed")
            j.finish_run(rid, "failed")
    code, out, err = run_cli(*platform_args, "deploy", "--resume", "1", "--no-checks", env=env)
    assert code == 0, out + err
    assert "[run 3, local, resuming run 1 at step 1]" in out
    assert used == ["RALF Vault Apply", "RALF Vault Smoke"] and fake.tasks == {}
    code, out, err = run_cli(*platform_args, "deploy", "--resume", "2", "--executor", "semaphore", "--no-checks",
                             env=env)
    assert code == 0, out + err
    assert "[run 4, semaphore, resuming run 2 at step 1]" in out and len(fake.tasks) == 2


def test_sigterm_stops_the_task_and_records_the_run(run_cli, env, fake, platform_args):
    import signal
    import threading

    fake.script("RALF Vault Apply", "hang", 0.05)
    before = signal.getsignal(signal.SIGTERM)
    done = threading.Event()

    def term_once_the_task_runs() -> None:  # not a fixed delay: under load the task may start late
        while not done.is_set() and not fake.tasks:
            done.wait(0.05)
        if not done.wait(0.3):
            signal.pthread_kill(threading.main_thread().ident, signal.SIGTERM)

    timer = threading.Thread(target=term_once_the_task_runs, daemon=True)
    timer.start()
    try:
        code, out, err = run_cli(*platform_args, "deploy", "vault", "--timeout", "20", "--no-checks", env=env)
    finally:
        done.set()
        timer.join()
    assert code == 130, out + err
    [task] = fake.tasks.values()
    assert task["status"] in ("stopping", "stopped")
    assert "step 1/2 RALF Vault Apply stopped" in out and "deploy interrupted" in out
    assert signal.getsignal(signal.SIGTERM) is before  # the handler was put back
    code, out, _ = run_cli(*platform_args, "history", env=env)
    assert "interrupted" in out


def test_a_platform_without_semaphore_runs_locally_by_default(run_cli, env, local_steps, repo_root):
    """The lab has no semaphore section: `ralf deploy` says it runs locally instead of failing."""

    used = local_steps
    code, out, err = run_cli("--platform", str(repo_root / "examples/lab/platform.yaml"), "deploy", "web",
                             "--no-checks", env=env)
    assert code == 0, out + err
    assert "no semaphore section: running locally (--executor local)" in err
    assert used == ["RALF Web Apply", "RALF Web Smoke"]


def test_a_killed_deploy_shows_interrupted_and_resumes(run_cli, env, fake, platform_args, tmp_path):
    """SIGKILL (or a power cut) leaves no chance to journal the end: the next reader notices the dead process."""
    import os
    import signal
    import sqlite3
    import subprocess
    import sys
    import time

    fake.script("RALF Vault Apply", "hang", 0.05)
    proc = subprocess.Popen([sys.executable, "-m", "ralf", *platform_args, "deploy", "vault", "--no-checks"],
                            env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    db = tmp_path / "state" / "journal.sqlite3"
    end = time.monotonic() + 60
    try:
        while time.monotonic() < end:
            try:
                with sqlite3.connect(db) as c:
                    row = c.execute("SELECT result, task_id FROM steps WHERE run_id = 1 AND idx = 0").fetchone()
            except sqlite3.Error:
                row = None
            if row and row[0] == "running" and row[1] is not None:
                break
            time.sleep(0.1)
        else:
            raise AssertionError("the deploy never reached its first task")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    code, out, err = run_cli(*platform_args, "history", env=env)
    assert code == 0 and "interrupted" in out and "running" not in out, out + err
    code, out, _ = run_cli(*platform_args, "history", "1", env=env)
    assert "stopped" in out and f"pid {proc.pid}" in out and "task 1 may still be running" in out
    fake._stop_task(1, force=True)  # the orphaned task, stopped as the message asks (else task 2 queues behind it)
    fake.script("RALF Vault Apply", "success", 0.05)
    code, out, err = run_cli(*platform_args, "deploy", "--resume", "--no-checks", env=env)
    assert code == 0, out + err
    assert "resuming run 1 at step 1" in out
