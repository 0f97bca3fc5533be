"""Defects found by reading the roles, kept fixed: order and ownership that only a fresh CT shows."""

from __future__ import annotations

from pathlib import Path

import yaml

ROLES = Path(__file__).resolve().parents[2] / "ansible" / "roles"


def _tasks(role: str, name: str = "main.yml") -> list[dict]:
    return yaml.safe_load((ROLES / role / "tasks" / name).read_text())


def _index(tasks: list[dict], predicate) -> int:
    return next(i for i, t in enumerate(tasks) if predicate(t))


def test_vaultwarden_creates_etc_vaultwarden_before_writing_into_it():
    tasks = _tasks("vaultwarden")
    made = _index(tasks, lambda t: "/etc/vaultwarden" in str(t.get("ansible.builtin.file", {}).get("path", ""))
                  or any(i.get("path") == "/etc/vaultwarden" for i in t.get("loop", []) if isinstance(i, dict)))
    written = _index(tasks, lambda t: str(t.get("ansible.builtin.template", {}).get("dest", "")).startswith(
        "/etc/vaultwarden/"))
    assert made < written


def test_exo_git_runs_as_the_owner_of_the_checkout():
    # git refuses a repository owned by another user ("detected dubious ownership"): the exo user
    # owns /opt/exo from the start and runs git in it; nothing hands a root clone over afterwards.
    tasks = _tasks("exo")
    mkdir = _index(tasks, lambda t: t.get("ansible.builtin.file", {}).get("path") == "{{ exo_dir }}")
    assert tasks[mkdir]["ansible.builtin.file"]["owner"] == "{{ exo_user }}"
    clone = _index(tasks, lambda t: "ansible.builtin.git" in t)
    assert mkdir < clone
    assert tasks[clone].get("become_user") == "{{ exo_user }}" and tasks[clone].get("become") is True
    chowns = [t for t in yaml.safe_dump(tasks).split("\n- ") if "recurse: true" in t and "exo_dir" in t]
    assert chowns == []


def test_apps_end_their_role_only_when_they_answer():
    for role, unit in {"n8n": "n8n", "synapse": "matrix-synapse", "vaultwarden": "vaultwarden", "exo": "exo",
                       "gitea": "gitea", "minio": "minio", "semaphore": "semaphore"}.items():
        waits = [t for t in _tasks(role) if t.get("ansible.builtin.include_role", {}).get("name") == "ralf_ready"]
        assert [w["vars"]["ralf_ready_unit"] for w in waits] == [unit], role


def _argon2_filter():
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "argon2_phc", ROLES / "vaultwarden" / "filter_plugins" / "argon2_phc.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.FilterModule().filters()["argon2id_phc"]


def test_vaultwarden_admin_token_is_written_as_an_argon2id_phc_hash():
    import base64

    from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

    template = (ROLES / "vaultwarden" / "templates" / "vaultwarden.env.j2").read_text()
    assert "ADMIN_TOKEN='{{ ralf_secrets_env.vaultwarden.VAULTWARDEN_ADMIN_TOKEN | argon2id_phc }}'" in template
    token = "Xq7tokenFromTheSecretsDirectory0123456789"
    phc = _argon2_filter()(token)
    assert token not in phc
    algo, version, params, salt, digest = phc.split("$")[1:]
    assert (algo, version, params) == ("argon2id", "v=19", "m=19456,t=2,p=1")
    unb64 = lambda s: base64.b64decode(s + "=" * (-len(s) % 4))  # noqa: E731
    Argon2id(salt=unb64(salt), length=32, iterations=2, lanes=1, memory_cost=19456).verify(token.encode(), unb64(digest))
    # Same token, same string (a rerun changes nothing); another token, another salt and hash.
    assert _argon2_filter()(token) == phc
    other = _argon2_filter()(token + "x")
    assert other.split("$")[4] != salt and other != phc
