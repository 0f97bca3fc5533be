"""Validation of the platform file: every kind of problem is one clear line, exit code 2, no traceback."""

from __future__ import annotations

import pytest

from ralf.errors import PlatformError
from ralf.loader import load_platform, parse_platform


def _edit(repo_root, *pairs):
    text = (repo_root / "platform.yaml").read_text()
    for old, new in pairs:
        assert old in text, old
        text = text.replace(old, new, 1)
    return text


def _problems(text, source="p.yaml"):
    with pytest.raises(PlatformError) as e:
        parse_platform(text, source=source)
    assert e.value.exit_code == 2
    return e.value.problems


def test_default_and_lab_platforms_are_valid(default_platform, lab_platform):
    assert default_platform.proxmox.api_url == "https://10.10.10.10:8006/api2/json"
    assert default_platform.proxmox.node == "pve-deploy"
    assert default_platform.state_backend.endpoint == "http://10.10.30.10:9000"
    assert default_platform.state_backend.bucket == "tofu-state"
    assert default_platform.state_backend.key_prefix == "ralf"
    assert default_platform.semaphore.url == "https://10.10.40.10/"
    assert default_platform.semaphore.project == "RALF Bootstrap"
    assert [g.name for g in default_platform.groups] == ["phase1", "vault", "automation", "communication", "ai"]
    svc = default_platform.services["synapse"]
    assert (svc.ct_id, svc.ip, svc.units, svc.app_port) == (11010, "10.10.110.10", ["matrix-synapse", "nginx"], 8008)
    assert svc.public_names == ["matrix.otta.zone", "otta.zone"]
    assert all(ip.startswith("127.") for ip in (s.ip for s in lab_platform.services.values()))


@pytest.mark.parametrize(
    "pairs, place, expected",
    [
        ([("    ip: 10.10.40.30", "    ip: 10.11.40.30")], "services.n8n.ip", "outside the network 10.10.0.0/16"),
        ([("ct_id: 4020", "ct_id: 4010")], "services.vaultwarden.ct_id", "CT id 4010 is already used"),
        ([("    ip: 10.10.40.30", "    ip: 10.10.40.20")], "services.n8n.ip", "IP '10.10.40.20' is already used"),
        ([("hostname: n8n", "hostname: vaultwarden")], "services.n8n.hostname", "hostname 'vaultwarden' is already used"),
        ([("[044-n8n-lxc, 045-n8n-config]", "[044-n8n-lxc, 043-vaultwarden-config]")], "services.n8n.stacks[1]",
         "stack name '043-vaultwarden-config' is already used"),
        ([("group: ai", "group: aii")], "services.exo.group", "unknown group 'aii'"),
        ([("group: ai", "group: automation")], "groups[4]", "group 'ai' has no services"),
        ([("    units: [n8n, nginx]", "    unitz: [n8n, nginx]")], "services.n8n.unitz", "unknown key"),
        ([("ct_id: 4030", "ct_id: many")], "services.n8n.ct_id", "valid integer"),
        ([("  node: pve-deploy\n", "")], "proxmox.node", "required key is missing"),
        ([("{kind: tcp, name: n8n-https, port: 443}", "{kind: ping, port: 443}")], "services.n8n.checks[4]",
         "unknown check kind 'ping'"),
        ([("{kind: tcp, name: n8n-https, port: 443}", "{kind: tcp, name: n8n-https, port: 99999}")],
         "services.n8n.checks[4].port", "less than or equal to 65535"),
        ([("[044-n8n-lxc, 045-n8n-config]", "[044-n8n-lxc, 045-n8n]")], "services.n8n.stacks[1]",
         "cannot tell the type of stack"),
        ([("local_state_stacks: [030-minio-lxc]", "local_state_stacks: [031-minio-lxc]")],
         "state_backend.local_state_stacks[0]", "unknown stack"),
        ([("    phase1: true\n", "")], "groups", "exactly one group with phase1: true"),
        ([("  cidr: 10.10.0.0/16", "  cidr: 10.10.0.0/33")], "network.cidr", "expected a network"),
        ([("    word: N8N", "    word: Vault")], "services.n8n.word", "template word 'vault' is already used"),
        # a name ends where the pattern ends: a trailing newline is not part of a valid name
        ([("  - name: ai\n", '  - name: "ai\\n"\n')], "groups[4].name", "expected a lower-case name"),
    ],
)
def test_each_problem_names_file_place_and_expectation(repo_root, pairs, place, expected):
    problems = _problems(_edit(repo_root, *pairs))
    hits = [p for p in problems if p.startswith(f"p.yaml: {place} (line ") and expected in p]
    assert hits, problems


def test_several_cross_problems_are_reported_together(repo_root):
    problems = _problems(_edit(repo_root, ("ct_id: 4020", "ct_id: 4010"), ("group: ai", "group: aii")))
    assert len(problems) >= 2


def test_duplicate_yaml_keys_are_rejected(repo_root):
    text = _edit(repo_root, ("    word: N8N\n", "    word: N8N\n    word: N9N\n"))
    problems = _problems(text)
    assert "duplicate key 'word'" in problems[0] and "line" in problems[0]


def test_line_numbers_point_at_the_key(repo_root):
    text = _edit(repo_root, ("    ip: 10.10.40.30", "    ip: 10.11.40.30"))
    line = next(i for i, ln in enumerate(text.splitlines(), 1) if "10.11.40.30" in ln)
    assert f"(line {line})" in _problems(text)[0]


@pytest.mark.parametrize(
    "content, expected",
    [
        ("", "the file is empty"),
        ("   \n# only a comment\n", "the file is empty"),
        ("services: [1,\n", "invalid YAML"),
        ("- a\n- b\n", "expected a mapping at the top level"),
        ("name: x\n", "required key is missing"),
        ("name: 'unterminated\n", "invalid YAML"),
        ("name: x\nwhen: [1, 2024-13-45]\n",
         "line 2, column 11: invalid YAML: 2024-13-45 is not a real date (month must be in 1..12); quote it"),
    ],
)
def test_broken_files_are_one_clear_error(write_platform, content, expected):
    with pytest.raises(PlatformError) as e:
        load_platform(write_platform(content))
    assert expected in str(e.value)
    assert "Traceback" not in str(e.value)


def test_missing_file_directory_and_binary(tmp_path):
    with pytest.raises(PlatformError, match="file not found"):
        load_platform(tmp_path / "nope.yaml")
    with pytest.raises(PlatformError, match="is a directory"):
        load_platform(tmp_path)
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"\xff\xfe\x00\x01")
    with pytest.raises(PlatformError, match="not a text file"):
        load_platform(binary)


def test_platform_env_variable_is_the_default(monkeypatch, repo_root):
    from ralf.loader import resolve_platform_path

    monkeypatch.setenv("RALF_PLATFORM", str(repo_root / "examples/lab/platform.yaml"))
    assert resolve_platform_path(None).name == "platform.yaml"
    assert "lab" in str(resolve_platform_path(None))
    assert str(resolve_platform_path("x.yaml")) == "x.yaml"
    monkeypatch.delenv("RALF_PLATFORM")
    assert str(resolve_platform_path(None)) == "platform.yaml"


def test_paths_resolve_relative_to_the_file_and_state_dir(lab_platform, monkeypatch, tmp_path):
    monkeypatch.setenv("RALF_STATE_DIR", str(tmp_path))
    assert lab_platform.secrets_path == tmp_path / "lab" / "secrets"
    assert lab_platform.stacks_path == lab_platform.source.parent / "stacks"


def test_random_secret_marker():
    from ralf.model import random_secret_length

    assert random_secret_length("@random") == 32
    assert random_secret_length("@random:64") == 64
    assert random_secret_length("@random:8") == 32  # never shorter than 32
    assert random_secret_length("minioadmin") is None


BROKEN = [
    ("services: [1,\n", None),
    ("name: 'unterminated\n", None),
    ("a: 1\n  b: 2\n", None),
    ("x:\n  - a\n  b: c\n", None),
    ("    word: N8N\n", "    word: N8N\n    word: N9N\n"),  # duplicate key, deep in the default file
    ("    ip: 10.10.40.30", "    ip: 10.11.40.30"),  # schema problem: line found on the composed tree
]


@pytest.mark.parametrize("old, new", BROKEN)
def test_the_c_and_the_pure_yaml_loader_report_the_same_problem_and_line(repo_root, monkeypatch, old, new):
    import yaml

    import ralf.loader as loader

    text = _edit(repo_root, (old, new)) if new is not None else old
    fast = _problems(text)
    monkeypatch.setattr(loader, "_UniqueKeyLoader", loader._UniquePureLoader)
    monkeypatch.setattr(loader, "_FastBase", yaml.SafeLoader)
    assert _problems(text) == fast
    assert any("line" in p for p in fast)


def test_the_fast_loader_is_the_c_one_where_libyaml_is_installed(repo_root):
    import yaml

    from ralf.loader import _UniqueKeyLoader

    assert issubclass(_UniqueKeyLoader, getattr(yaml, "CSafeLoader", ())) == bool(yaml.__with_libyaml__)
    assert "n8n" in parse_platform((repo_root / "platform.yaml").read_text()).services
