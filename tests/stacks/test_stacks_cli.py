"""``ralf stacks list|run`` in-process: selection from env, exit codes, JSON, clear errors."""

from __future__ import annotations

import json
import os

import pytest


def test_list_json_shows_selection_from_env(run_cli, default_copy, state):
    code, out, err = run_cli("stacks", "list", "--json", "--platform", str(default_copy.source),
                             env={"ONLY_STACKS": "045-n8n-config 044-n8n-lxc", "AUTO_APPLY": "1"})
    assert code == 0, err
    data = json.loads(out)
    assert data["mode"] == "apply" and data["only"] == ["045-n8n-config", "044-n8n-lxc"]
    selected = {r["name"]: r["position"] for r in data["stacks"] if r["selected"]}
    assert selected == {"045-n8n-config": 1, "044-n8n-lxc": 2}
    state_of = {r["name"]: r["state"] for r in data["stacks"]}
    assert state_of["030-minio-lxc"] == "local" and state_of["044-n8n-lxc"] == "s3"


def test_run_reads_auto_apply_from_env(run_cli, default_copy, fakes, state):
    code, out, err = run_cli("stacks", "run", "--json", "--platform", str(default_copy.source),
                             env={"ONLY_STACKS": "044-n8n-lxc", "AUTO_APPLY": "1", "START_AT": "000"})
    assert code == 0, err
    assert json.loads(out)["mode"] == "apply"
    assert [c["argv"][0] for c in fakes.calls("tofu")] == ["init", "plan", "show", "apply"]
    code, out, err = run_cli("stacks", "run", "--plan", "--json", "--platform", str(default_copy.source))
    assert json.loads(out)["mode"] == "plan"


def test_failed_stack_exits_1_with_summary(run_cli, default_copy, fakes, state):
    fakes.behave(fail="plan")
    code, out, err = run_cli("stacks", "run", "--only", "044-n8n-lxc,045-n8n-config", "--platform",
                             str(default_copy.source))
    assert code == 1
    assert "Summary" in out and "failed" in out and "not run" in out and "plan failed" in out


def test_missing_playbook_is_a_clear_error(run_cli, default_copy, fakes, state):
    (default_copy.stacks_path / "045-n8n-config" / "playbook.yml").unlink()
    code, out, err = run_cli("stacks", "run", "--only", "045-n8n-config", "--platform", str(default_copy.source))
    assert code == 2 and "stack playbook missing" in err and "045-n8n-config/playbook.yml" in err


def test_missing_ansible_is_a_clear_error(run_cli, default_copy, tmp_path, state, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))
    code, out, err = run_cli("stacks", "run", "--only", "045-n8n-config", "--platform", str(default_copy.source))
    assert code == 1 and "ansible-playbook not found on PATH" in err


def test_lock_held_in_process(run_cli, default_copy, fakes, state):
    from ralf.stacks.lock import StackLock

    with StackLock(state, command="ralf stacks run --apply"):
        code, out, err = run_cli("stacks", "run", "--only", "044-n8n-lxc", "--platform", str(default_copy.source))
    assert code == 1 and f"pid {os.getpid()}" in err and "ralf stacks run --apply" in err
    assert fakes.calls() == []


@pytest.mark.parametrize("args,msg", [
    (["--start-at", "abc"], "--start-at='abc'"),
    (["--only", "nope"], "unknown stack nope in --only"),
])
def test_bad_flags_exit_2(run_cli, default_copy, state, args, msg):
    code, out, err = run_cli("stacks", "run", *args, "--platform", str(default_copy.source))
    assert code == 2 and msg in err


def test_generated_secret_printed_by_a_playbook_is_redacted(default_copy, fakes, state, tmp_path):
    from ralf.secrets import read_env_file
    from ralf.stacks import run_stacks

    password = read_env_file(default_copy.secrets_path / "minio.env")["MINIO_ROOT_PASSWORD"]
    pb = default_copy.stacks_path / "031-minio-config"
    fake = fakes.bin / "ansible-playbook"
    fake.write_text(f"#!/bin/sh\n[ \"$1\" = --version ] && {{ echo 'ansible-playbook [core 2.18.6]'; exit 0; }}\n"
                    f"echo 'leaked {password}'\n")
    fake.chmod(0o755)
    lines: list[str] = []
    result = run_stacks(default_copy, "031-minio-config", apply=True, on_output=lines.append)
    assert result.ok and pb.exists(), result.results[0].note
    assert "leaked ***" in result.results[0].log_path.read_text()
    assert not any(password in line for line in lines)


def test_unusable_state_directory_is_one_clear_error(run_cli, default_copy, fakes, state, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    code, out, err = run_cli("stacks", "run", "--only", "044-n8n-lxc", "--state-dir", str(blocker / "state"),
                             "--platform", str(default_copy.source))
    assert code == 1 and "Traceback" not in err
    assert err.strip() == (f"ralf: cannot use the state directory {blocker / 'state'}: Not a directory "
                           "(set RALF_STATE_DIR or --state-dir to a writable directory)")
    assert fakes.calls() == []


def test_list_with_an_empty_selection_lists_everything_unselected(run_cli, default_copy, fakes, state):
    env = {"ONLY_STACKS": "020-postgres-lxc", "START_AT": "030"}
    code, out, err = run_cli("stacks", "list", "--json", "--platform", str(default_copy.source), env=env)
    assert code == 0, err
    data = json.loads(out)
    assert len(data["stacks"]) > 10 and not any(r["selected"] for r in data["stacks"])
    assert "no stacks selected (ONLY_STACKS=020-postgres-lxc, START_AT=030)" in data["note"]
    code, out, err = run_cli("stacks", "list", "--start-at", "999", "--platform", str(default_copy.source),
                             env={"ONLY_STACKS": ""})
    assert code == 0, err
    assert "113-mail-config" in out and "yes (#" not in out
    assert "note: no stacks selected (--start-at=999)" in out
    # running it is still refused before anything runs
    code, out, err = run_cli("stacks", "run", "--platform", str(default_copy.source), env=env)
    assert code == 2 and "no stacks selected" in err and "nothing to run" in err
    assert fakes.calls("tofu") == [] and fakes.calls("ansible-playbook") == []


def test_unknown_stack_names_the_flag_or_the_variable(run_cli, default_copy, state):
    code, _, err = run_cli("stacks", "run", "--only", "044-n8n", "--platform", str(default_copy.source),
                           env={"ONLY_STACKS": "044-n8n-lxc"})
    assert code == 2 and "unknown stack 044-n8n in --only" in err
    code, _, err = run_cli("stacks", "list", "--platform", str(default_copy.source), env={"ONLY_STACKS": "044-n8n"})
    assert code == 2 and "unknown stack 044-n8n in ONLY_STACKS" in err
    code, _, err = run_cli("stacks", "list", "--start-at", "abc", "--platform", str(default_copy.source))
    assert code == 2 and "--start-at='abc' is not a stack prefix" in err
