"""Every environment variable ralf reads is read through ralf.settings, and the README's table says so."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ralf import settings
from ralf.errors import UsageError

SRC = Path(__file__).resolve().parents[2] / "src" / "ralf"
README = Path(__file__).resolve().parents[2] / "README.md"
# a direct read of the process environment (writes, such as the lab's save-and-restore, are not reads of a setting)
DIRECT_READ = re.compile(r"os\.getenv\(|os\.environ\.get\(|os\.environ\[\"[A-Z_]+\"\](?!\s*=)|env(iron)?\.get\(\"[A-Z_]+\"")


def test_the_readme_table_is_the_one_in_settings():
    text = README.read_text(encoding="utf-8")
    assert settings.markdown_table() in text
    start = text.index("| variable | what it sets | default |")
    listed = re.findall(r"^\| `([A-Z_]+)` \|", text[start:text.index("\n\n", start)], re.MULTILINE)
    assert listed == list(settings.VARIABLES)


def test_no_module_but_settings_reads_the_environment():
    offenders = []
    for path in sorted(SRC.rglob("*.py")):
        if path.name == "settings.py" or "callback_plugins" in path.parts:
            continue  # Ansible loads the callback plugins, in its own process, with the variable ralf set for it
        for no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if DIRECT_READ.search(line) and "env_before" not in line:
                offenders.append(f"{path.relative_to(SRC)}:{no}: {line.strip()}")
    assert offenders == []


def test_every_name_ralf_asks_for_is_in_the_table():
    asked = set()
    for path in SRC.rglob("*.py"):
        asked |= set(re.findall(r"settings\.(?:get|number)\(\"([A-Z_]+)\"", path.read_text(encoding="utf-8")))
    assert asked and asked <= set(settings.VARIABLES)
    with pytest.raises(KeyError, match="NOT_A_RALF_VARIABLE is not a variable ralf reads"):
        settings.get("NOT_A_RALF_VARIABLE", {})


def test_get_reads_the_given_mapping_else_the_process_environment(monkeypatch):
    monkeypatch.setenv("RALF_TOFU", "from-process")
    assert settings.get("RALF_TOFU") == "from-process"
    assert settings.get("RALF_TOFU", {"RALF_TOFU": "given"}) == "given"
    assert settings.get("RALF_TOFU", {}) is None


@pytest.mark.parametrize(("raw", "expected"), [(None, 3), ("", 3), ("0", 0), ("7", 7)])
def test_number(raw, expected):
    env = {} if raw is None else {"RALF_ANSIBLE_RETRIES": raw}
    assert settings.number("RALF_ANSIBLE_RETRIES", 3, env) == expected
    assert settings.number("RALF_ANSIBLE_RETRY_DELAY", 5.0, {"RALF_ANSIBLE_RETRY_DELAY": "0.5"}, cast=float) == 0.5


@pytest.mark.parametrize(("raw", "problem"), [("three", "is not a number"), ("-1", "must not be negative")])
def test_a_bad_number_is_one_usage_error(raw, problem):
    with pytest.raises(UsageError, match=f"RALF_ANSIBLE_RETRIES='{raw}' {problem}"):
        settings.number("RALF_ANSIBLE_RETRIES", 3, {"RALF_ANSIBLE_RETRIES": raw})
