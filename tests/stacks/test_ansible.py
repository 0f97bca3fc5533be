"""Ansible stacks with real ansible-core (connection: local), plus retry rules with a stand-in."""

from __future__ import annotations

import pytest

from ralf.stacks import run_stacks
from ralf.stacks.ansible import retry_delay

pytestmark = pytest.mark.slow


def copy_play(host: str, dest) -> str:
    return f"""\
    - hosts: {host}
      gather_facts: false
      tasks:
        - name: write the file
          ansible.builtin.copy:
            content: "hello from {host}\\n"
            dest: "{dest}"
    """


def test_apply_runs_for_real_and_second_run_changes_nothing(local_platform, tmp_path, state):
    out = tmp_path / "out"
    out.mkdir()
    p = local_platform({"011-app-config": copy_play("app", out / "app.txt"),
                        "021-web-config": copy_play("web", out / "web.txt")})
    lines: list[str] = []
    first = run_stacks(p, apply=True, on_output=lines.append)
    assert first.ok and first.exit_code == 0
    assert (out / "app.txt").read_text() == "hello from app\n" and (out / "web.txt").exists()
    assert [(r.stack, r.result, r.changed) for r in first.results] == [
        ("011-app-config", "succeeded", 1), ("021-web-config", "succeeded", 1)]
    assert any("TASK [write the file]" in line for line in lines)  # streamed live through on_output
    assert "PLAY RECAP" in first.results[0].log_path.read_text()
    second = run_stacks(p, apply=True)
    assert second.ok and second.changed == 0
    assert [r.changed for r in second.results] == [0, 0]
    assert second.run_dir != first.run_dir


def test_plan_is_syntax_check_only(local_platform, tmp_path, state):
    p = local_platform({"011-app-config": copy_play("app", tmp_path / "app.txt")})
    result = run_stacks(p, "011-app-config", apply=False)
    assert result.ok and result.results[0].action == "plan" and result.results[0].changed is None
    assert not (tmp_path / "app.txt").exists()
    log = result.results[0].log_path.read_text()
    assert "--syntax-check playbook.yml" in log


def test_syntax_error_fails_the_plan(local_platform, tmp_path, state):
    p = local_platform({"011-app-config": "- hosts: app\n  tasks:\n    - no_such_module_xyz: {}\n"})
    result = run_stacks(p, "011-app-config", apply=False)
    assert not result.ok and result.results[0].note == "syntax check failed"


def test_failed_task_is_not_retried(local_platform, tmp_path, state):
    p = local_platform({"011-app-config": "- hosts: app\n  gather_facts: false\n  tasks:\n"
                                          "    - ansible.builtin.fail: {msg: boom}\n"})
    result = run_stacks(p, "011-app-config", apply=True, ansible_retries=3, ansible_retry_delay=0.01)
    r = result.results[0]
    assert r.result == "failed" and r.note == "failed on app.test (task 'ansible.builtin.fail': boom)"
    assert r.log_path.read_text().count("$ ") == 1
    assert not list(result.run_dir.rglob("*.events.jsonl"))  # read, then removed: a message may quote a secret


def test_unreachable_host_is_retried_with_limit_then_fails(local_platform, tmp_path, state, dead_port):
    play = f"""\
    - hosts: app
      gather_facts: false
      vars:
        ansible_connection: ssh
        ansible_host: 127.0.0.1
        ansible_port: {dead_port}
        ansible_ssh_common_args: "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o ConnectTimeout=3"
      tasks:
        - ansible.builtin.ping:
    """
    p = local_platform({"011-app-config": play})
    result = run_stacks(p, "011-app-config", apply=True, ansible_retries=2, ansible_retry_delay=0.05)
    r = result.results[0]
    assert r.result == "failed" and r.note == "unreachable after 3 attempts: app.test"
    log = r.log_path.read_text()
    commands = [line for line in log.splitlines() if line.startswith("$ ")]
    assert len(commands) == 3
    assert "--limit" not in commands[0]
    assert all("--limit app.test playbook.yml" in c for c in commands[1:])
    assert "UNREACHABLE!" in log
    assert "retry 1/2 in 0.05s" in log and "retry 2/2 in 0.1s" in log


def test_unreachable_then_reachable_succeeds(default_copy, fakes, state):
    fakes.install("ansible-playbook")
    fakes.behave(unreachable_times=2)
    result = run_stacks(default_copy, "031-minio-config", apply=True, ansible_retries=3, ansible_retry_delay=0.01)
    r = result.results[0]
    assert r.result == "succeeded" and "after 2 retries" in r.note
    argvs = [c["argv"] for c in fakes.calls("ansible-playbook")]
    assert len(argvs) == 3
    assert argvs[1][-3:] == ["--limit", "host2", "playbook.yml"] and argvs[2][-3:] == ["--limit", "host2", "playbook.yml"]
    assert r.changed == 1  # host1 changed in the first attempt; the retries ran for host2 only


def test_unreachable_with_failed_host_is_not_retried(default_copy, fakes, state):
    fakes.install("ansible-playbook")
    fakes.behave(unreachable_times=5, failed=True)
    result = run_stacks(default_copy, "031-minio-config", apply=True, ansible_retries=3, ansible_retry_delay=0.01)
    r = result.results[0]
    assert r.result == "failed" and r.note == "failed on host1 (task 'configure': boom)"
    assert len(fakes.calls("ansible-playbook")) == 1


def test_failure_message_is_redacted_in_the_note(default_copy, fakes, state):
    from ralf.secrets import read_env_file

    password = read_env_file(default_copy.secrets_path / "minio.env")["MINIO_ROOT_PASSWORD"]
    fakes.install("ansible-playbook")
    fakes.behave(failed=True, failed_msg=f"login with {password} refused\nsecond line")
    r = run_stacks(default_copy, "031-minio-config", apply=True).results[0]
    assert r.note == "failed on host1 (task 'configure': login with *** refused)"


def test_decisions_come_from_the_events_not_the_recap_text(default_copy, fakes, state):
    # a run that printed a PLAY RECAP but wrote no events ended before its stats as far as ralf knows
    fakes.install("ansible-playbook")
    fakes.behave(failed=True)
    runner = fakes.bin / "ansible-playbook"
    runner.write_text(runner.read_text().replace('events = os.environ.get("RALF_ANSIBLE_EVENTS")', "events = None"))
    r = run_stacks(default_copy, "031-minio-config", apply=True).results[0]
    assert r.result == "failed" and r.note == "ansible-playbook exited 2 before running (see the log)"
    assert "failed=1" in r.log_path.read_text()


def test_ansible_environment(default_copy, fakes, state):
    fakes.install("ansible-playbook")
    result = run_stacks(default_copy, "031-minio-config", apply=False)
    env = set(fakes.calls("ansible-playbook")[0]["env"])
    assert {"ANSIBLE_CALLBACK_PLUGINS", "ANSIBLE_CALLBACKS_ENABLED", "RALF_ANSIBLE_EVENTS"} <= env
    assert {"ANSIBLE_LOCAL_TEMP", "ANSIBLE_HOME", "ANSIBLE_NOCOLOR", "ANSIBLE_FORCE_COLOR",
            "ANSIBLE_RETRY_FILES_ENABLED", "ANSIBLE_COLLECTIONS_PATH", "RALF_SECRETS_DIR"} <= env
    inv = (result.run_dir / "inventory.ini").read_text()
    assert "[minio]\nminio ansible_host=10.10.30.10" in inv


def test_backoff():
    assert [retry_delay(i, 5) for i in (1, 2, 3, 4, 5)] == [5, 10, 20, 40, 60]
