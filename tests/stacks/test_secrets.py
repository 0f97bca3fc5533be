"""``ralf secrets``: generated files, modes, back-fill without touching values, check, no values shown."""

from __future__ import annotations

import os
import stat

import pytest

from ralf.envfile import parse
from ralf.errors import SecretError
from ralf.loader import load_platform
from ralf.secrets import check_secrets, init_secrets, load_secret, read_env_file

PLATFORM = """\
version: 1
name: t
network: {{cidr: 127.0.0.0/8}}
secrets: {{dir: {dir}}}
groups:
  - {{name: phase1, word: Phase1, phase1: true}}
services:
  app:
    word: App
    group: phase1
    ip: 127.0.0.10
    hostname: app.test
    stacks: [011-app-config]
    secrets:
      APP_USER: admin
      APP_PASSWORD: "@random"
      APP_LONG: "@random:48"
      APP_ADDR: ":9001"
{extra}
  plain:
    word: Plain
    group: phase1
    ip: 127.0.0.11
    hostname: plain.test
    stacks: [013-plain-config]
"""


@pytest.fixture
def make(tmp_path, write_platform):
    def _make(extra: str = ""):
        return load_platform(write_platform(PLATFORM.format(dir=tmp_path / "sec", extra=extra)))
    return _make


def mode(p) -> int:
    return stat.S_IMODE(os.stat(p).st_mode)


def test_init_creates_files_with_random_values_and_private_modes(make, tmp_path):
    p = make()
    report = init_secrets(p)
    assert [(f.file, f.status) for f in report.files] == [("app.env", "created")]
    assert mode(tmp_path / "sec") == 0o700 and mode(tmp_path / "sec" / "app.env") == 0o600
    values = read_env_file(tmp_path / "sec" / "app.env")
    assert values["APP_USER"] == "admin" and values["APP_ADDR"] == ":9001"
    assert len(values["APP_PASSWORD"]) == 32 and values["APP_PASSWORD"].isalnum()
    assert len(values["APP_LONG"]) == 48 and values["APP_LONG"].isalnum()
    assert not (tmp_path / "sec" / "plain.env").exists()  # no secrets: no file
    assert init_secrets(make()).files[0].status == "unchanged"
    assert read_env_file(tmp_path / "sec" / "app.env") == values
    assert init_secrets(make()).changed is False


def test_two_inits_do_not_share_random_values(make, tmp_path):
    init_secrets(make())
    first = read_env_file(tmp_path / "sec" / "app.env")["APP_PASSWORD"]
    (tmp_path / "sec" / "app.env").unlink()
    init_secrets(make())
    assert read_env_file(tmp_path / "sec" / "app.env")["APP_PASSWORD"] != first


def test_new_keys_are_added_and_existing_ones_untouched(make, tmp_path):
    init_secrets(make())
    path = tmp_path / "sec" / "app.env"
    path.write_text(path.read_text() + "# my note\nAPP_USER_EXTRA=kept\n")
    path.chmod(0o600)
    before = path.read_text()
    report = init_secrets(make("      APP_TOKEN: \"@random\"\n      APP_MODE: prod"))
    assert [(f.status, f.keys) for f in report.files] == [("updated", ["APP_TOKEN", "APP_MODE"])]
    after = path.read_text()
    assert after.startswith(before)
    values = read_env_file(path)
    assert values["APP_MODE"] == "prod" and len(values["APP_TOKEN"]) == 32 and values["APP_USER_EXTRA"] == "kept"
    assert mode(path) == 0o600


def test_user_edited_value_is_never_overwritten(make, tmp_path):
    init_secrets(make())
    path = tmp_path / "sec" / "app.env"
    path.write_text("APP_USER=someone-else\n")
    init_secrets(make())
    assert read_env_file(path)["APP_USER"] == "someone-else"


def test_check_reports_missing_files_and_keys(make, tmp_path):
    report = check_secrets(make(), environ={})
    assert not report.ok and [(f.file, f.status) for f in report.files] == [("app.env", "missing")]
    init_secrets(make())
    assert check_secrets(make(), environ={}).ok
    path = tmp_path / "sec" / "app.env"
    path.write_text("\n".join(line for line in path.read_text().splitlines() if not line.startswith("APP_LONG")))
    report = check_secrets(make(), environ={})
    assert [(f.status, f.keys) for f in report.files] == [("incomplete", ["APP_LONG"])]
    init_secrets(make())
    path.chmod(0o644)
    report = check_secrets(make(), environ={})
    assert not report.ok and report.files[0].status == "insecure"


def test_check_covers_proxmox_and_backend_credentials(default_copy, monkeypatch):
    assert check_secrets(default_copy, environ={}).ok
    (default_copy.secrets_path / "pve.env").unlink()
    report = check_secrets(default_copy, environ={})
    pve = [f for f in report.files if f.file == "pve.env"][0]
    assert pve.status == "missing" and pve.keys == ["PVE_TOKEN_ID", "PVE_TOKEN_SECRET"]
    assert check_secrets(default_copy, environ={"PVE_TOKEN_ID": "a", "PVE_TOKEN_SECRET": "b"}).ok


def test_load_secret_errors_name_file_and_key_not_value(make, tmp_path):
    p = make()
    with pytest.raises(SecretError, match="app.env does not exist"):
        load_secret(p, "app.env", "APP_PASSWORD")
    init_secrets(p)
    value = load_secret(p, "app.env", "APP_PASSWORD")
    with pytest.raises(SecretError) as e:
        load_secret(p, "app.env", "NOPE")
    assert "NOPE" in str(e.value) and "app.env" in str(e.value) and value not in str(e.value)


def test_a_literal_secret_with_a_line_break_is_refused_by_init(make):
    p = make('      APP_NOTE: "one\\nAPP_PASSWORD=injected"')
    assert p.services["app"].secrets["APP_NOTE"] == "one\nAPP_PASSWORD=injected"
    with pytest.raises(SecretError, match="app.env: APP_NOTE holds a line break") as e:
        init_secrets(p)
    assert "injected" not in str(e.value)


def test_env_file_parsing():
    text = "# c\n\nA=1\nB = two words \nC=x=y\nexport D=4\nE=\"quoted value\"\nF='s'\nbroken line\n"
    assert parse(text) == {"A": "1", "B": "two words", "C": "x=y", "D": "4", "E": "quoted value", "F": "s"}


def test_cli_never_prints_values(make, tmp_path, run_cli, write_platform):
    path = write_platform(PLATFORM.format(dir=tmp_path / "sec", extra=""))
    code, out, err = run_cli("secrets", "check", "--platform", str(path))
    assert code == 1 and "app.env" in out and "missing" in out
    code, out, err = run_cli("secrets", "init", "--platform", str(path))
    assert code == 0 and "created" in out
    values = read_env_file(tmp_path / "sec" / "app.env")
    code, out2, err2 = run_cli("secrets", "check", "--platform", str(path), "--json")
    assert code == 0
    for v in (values["APP_PASSWORD"], values["APP_LONG"]):
        assert v not in out + err + out2 + err2


def test_random_values_always_have_a_digit_and_both_cases(monkeypatch):
    from ralf import secrets as mod

    # Draws without a digit or an upper-case letter, without a lower-case one, then a good one.
    stream = iter("a" * 32 + "A1" * 16 + "aB3" + "x" * 29)
    monkeypatch.setattr(mod._random, "choice", lambda alphabet: next(stream))
    assert mod.random_value() == "aB3" + "x" * 29
    assert next(stream, None) is None
