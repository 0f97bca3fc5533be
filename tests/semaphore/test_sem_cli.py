"""`ralf semaphore seed|templates|ping` end to end against the fake server, and connection settings."""

from __future__ import annotations

import json

import pytest

from ralf.errors import SecretError, UsageError
from ralf.semaphore.settings import settings_from_platform

PLATFORM = """\
version: 1
name: t
network: {cidr: 127.0.0.0/8}
secrets: {dir: secrets}
semaphore:
  url: http://127.0.0.1:9/
  project: Test Project
  template_prefix: T
  inventory_name: T Inventory
  repository: {name: T Local, git_url: /srv/repo}
  smoke_command: ralf smoke --platform lab.yaml {target}
  credentials_file: semaphore.env
groups:
  - {name: base, word: Base, phase1: true}
  - {name: web, word: Web}
services:
  store: {word: Store, group: base, ip: 127.0.10.10, hostname: store, stacks: [011-store-config]}
  site: {word: Site, group: web, ip: 127.0.20.10, hostname: site, stacks: [021-site-config]}
"""


@pytest.fixture
def env(fake):
    return {"SEMAPHORE_URL": fake.url, "SEMAPHORE_TOKEN": fake.token}


def test_seed_then_noop_then_check_after_manual_edit(fake, run_cli, env, repo_root):
    platform = str(repo_root / "platform.yaml")
    code, out, err = run_cli("semaphore", "seed", "--platform", platform, env=env)
    assert code == 0, err
    lines = out.strip().splitlines()
    assert lines[-1] == "CHANGED=1" and lines[-2] == "PROJECT_ID=1"
    assert "+ create template 'RALF Vault Apply'" in out

    fake.clear_requests()
    code, out, err = run_cli("semaphore", "seed", "--platform", platform, env=env)
    assert code == 0 and out.strip().splitlines()[-1] == "CHANGED=0"
    assert fake.writes == []

    tpl = fake.find("templates", 1, "RALF Automation Smoke")[0]
    fake.edit("templates", tpl["id"], arguments='["ralf smoke vault"]')
    code, out, err = run_cli("semaphore", "seed", "--check", "--platform", platform, env=env)
    assert code == 1
    assert f"~ update template 'RALF Automation Smoke' (id {tpl['id']})" in out
    assert 'arguments: ["ralf smoke vault"] → ["ralf smoke automation"]' in out
    assert out.strip().splitlines()[-2:] == ["DRIFT=1", "CHANGED=0"]
    assert fake.writes == []

    code, out, _ = run_cli("semaphore", "seed", "--json", "--platform", platform, env=env)
    data = json.loads(out)
    assert code == 0 and data["changed"] and data["writes"] == 1
    assert data["actions"][0]["diffs"][0]["field"] == "arguments"


def test_templates_lists_last_task(fake, run_cli, env, write_platform):
    path = str(write_platform(PLATFORM))
    assert run_cli("semaphore", "seed", "--platform", path, env=env)[0] == 0
    tpl = fake.find("templates", 1, "T Web Smoke")[0]
    assert json.loads(tpl["arguments"]) == ["ralf smoke --platform lab.yaml web"]  # command from the platform file
    fake.script("T Web Smoke", "error", duration=0.0)
    task_id = fake._start_task(1, {"template_id": tpl["id"]})["id"]
    import time

    deadline = time.monotonic() + 5
    while fake.tasks[task_id]["status"] != "error":
        assert time.monotonic() < deadline
        time.sleep(0.01)
    code, out, err = run_cli("semaphore", "templates", "--json", "--platform", path, env=env)
    assert code == 0, err
    rows = {r["name"]: r for r in json.loads(out)["templates"]}
    assert rows["T Web Smoke"]["last_status"] == "error" and rows["T Web Smoke"]["last_task_id"] == task_id
    assert rows["T Web Apply"]["last_status"] is None
    code, out, _ = run_cli("semaphore", "templates", "--platform", path, env=env)
    assert code == 0 and "T Web Smoke" in out and "never run" in out


def test_bad_token_is_one_message_and_exit_1(fake, run_cli, repo_root):
    code, out, err = run_cli("semaphore", "seed", "--platform", str(repo_root / "platform.yaml"),
                             env={"SEMAPHORE_URL": fake.url, "SEMAPHORE_TOKEN": "wrong-token-value"})
    assert code == 1
    assert err.startswith("ralf: Semaphore GET /api/info answered 401")
    assert "Traceback" not in err and "wrong-token-value" not in err + out


def test_ping(fake, run_cli, env, repo_root):
    code, out, _ = run_cli("semaphore", "ping", "--platform", str(repo_root / "platform.yaml"), env=env)
    assert code == 0 and f"v{fake.version}" in out and fake.token not in out


def test_credentials_file_login(fake, run_cli, write_platform, monkeypatch):
    path = write_platform(PLATFORM)
    (path.parent / "secrets").mkdir()
    (path.parent / "secrets" / "semaphore.env").write_text(
        f"SEMAPHORE_ADMIN_NAME={fake.user}\nSEMAPHORE_ADMIN_PASSWORD='{fake.password}'\n")
    monkeypatch.delenv("SEMAPHORE_TOKEN", raising=False)
    code, out, err = run_cli("semaphore", "seed", "--platform", str(path), env={"SEMAPHORE_URL": fake.url})
    assert code == 0, err
    assert fake.requests[0].path == "/api/auth/login" and fake.password not in out + err


def test_settings_precedence(write_platform, tmp_path):
    from ralf.loader import load_platform

    p = load_platform(write_platform(PLATFORM))
    s = settings_from_platform(p, {"SEMAPHORE_TOKEN": "s3cr3t-t0k"})
    assert (s.url, s.token, s.user) == ("http://127.0.0.1:9/", "s3cr3t-t0k", None)
    assert "s3cr3t" not in repr(s) and "s3cr3t" not in s.describe()
    s = settings_from_platform(p, {"SEMAPHORE_URL": "http://127.0.0.1:7", "SEMAPHORE_USER": "u",
                                   "SEMAPHORE_PASSWORD": "p4ssw0rd", "SEMAPHORE_TOKEN": ""})
    assert (s.url, s.user, s.password) == ("http://127.0.0.1:7", "u", "p4ssw0rd") and "p4ssw0rd" not in repr(s)
    with pytest.raises(UsageError, match="both SEMAPHORE_USER and SEMAPHORE_PASSWORD"):
        settings_from_platform(p, {"SEMAPHORE_USER": "u"})
    with pytest.raises(SecretError, match="semaphore.env"):
        settings_from_platform(p, {})
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "semaphore.env").write_text("SEMAPHORE_ADMIN_NAME=admin\n")
    with pytest.raises(SecretError, match="lacks SEMAPHORE_ADMIN_PASSWORD"):
        settings_from_platform(p, {})
    with pytest.raises(UsageError, match="CA file"):
        settings_from_platform(p, {"SEMAPHORE_TOKEN": "t", "SEMAPHORE_CA_FILE": str(tmp_path / "none.pem")})


def test_templates_without_a_semaphore_section_is_a_usage_error(fake, run_cli, env, repo_root):
    code, out, err = run_cli("semaphore", "templates", "--platform", str(repo_root / "examples/lab/platform.yaml"),
                             env=env)
    assert code == 2 and "no semaphore section" in err and fake.requests == []
