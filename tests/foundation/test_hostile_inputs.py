"""Values are data, never code: every platform field that reaches a command, an inventory or a generated
OpenTofu file is refused when it holds an injection payload, and the code that passes values on quotes them
anyway. Bad command-line inputs end in one line and a non-zero exit, never a traceback."""

from __future__ import annotations

import copy
import os
import subprocess

import pytest
import yaml

from ralf.errors import PlatformError
from ralf.loader import parse_platform

PAYLOADS = [
    "x; touch {marker}",
    "$(touch {marker})",
    "`touch {marker}`",
    "x\n[all:vars]\nansible_connection=local",
    "x ansible_host=127.0.0.1",
    'minio${{file("/etc/hostname")}}',
    "%{{ if true }}x%{{ endif }}",
    "x' || touch {marker} || '",
    "--output={marker}",
]

# (path in the platform data, how to set it); "S" = the first service with the field
FIELDS = [
    ("services.minio.hostname", lambda d, v: d["services"]["minio"].__setitem__("hostname", v)),
    ("services.minio.units[0]", lambda d, v: d["services"]["minio"].__setitem__("units", [v])),
    ("services.minio.endpoint", lambda d, v: d["services"]["minio"].__setitem__("endpoint", v)),
    ("check unit", lambda d, v: d["services"]["minio"]["checks"].append({"kind": "unit", "unit": v})),
    ("check app_port host", lambda d, v: d["services"]["minio"]["checks"].append(
        {"kind": "app_port", "port": 80, "host": v})),
    ("check tcp host", lambda d, v: d["services"]["minio"]["checks"].append({"kind": "tcp", "port": 80, "host": v})),
    ("check http url", lambda d, v: d["services"]["minio"]["checks"].append({"kind": "http", "url": f"http://{v}/"})),
    ("check https server_name", lambda d, v: d["services"]["minio"]["checks"].append(
        {"kind": "https", "url": "https://10.10.30.10/", "server_name": v})),
    ("check s3 endpoint", lambda d, v: d["services"]["minio"]["checks"].append({"kind": "s3", "endpoint": v})),
    ("check s3 bucket", lambda d, v: d["services"]["minio"]["checks"].append({"kind": "s3", "bucket": v})),
    ("proxmox.node", lambda d, v: d["proxmox"].__setitem__("node", v)),
    ("proxmox.ssh_host", lambda d, v: d["proxmox"].__setitem__("ssh_host", v)),
    ("proxmox.ssh_user", lambda d, v: d["proxmox"].__setitem__("ssh_user", v)),
    ("proxmox.storage", lambda d, v: d["proxmox"].__setitem__("storage", v)),
    ("proxmox.bridge", lambda d, v: d["proxmox"].__setitem__("bridge", v)),
    ("proxmox.api_url", lambda d, v: d["proxmox"].__setitem__("api_url", f"https://{v}:8006/")),
    ("state_backend.endpoint", lambda d, v: d["state_backend"].__setitem__("endpoint", v)),
    ("state_backend.bucket", lambda d, v: d["state_backend"].__setitem__("bucket", v)),
    ("state_backend.key_prefix", lambda d, v: d["state_backend"].__setitem__("key_prefix", v)),
    ("state_backend.region", lambda d, v: d["state_backend"].__setitem__("region", v)),
    ("semaphore.url", lambda d, v: d["semaphore"].__setitem__("url", f"https://{v}/")),
    ("exec.ssh_user", lambda d, v: d.setdefault("exec", {}).__setitem__("ssh_user", v)),
    ("ansible.user", lambda d, v: d.setdefault("ansible", {}).__setitem__("user", v)),
    ("ansible.python_interpreter", lambda d, v: d.setdefault("ansible", {}).__setitem__("python_interpreter", v)),
    # ssh options are split into argv by Ansible (no shell): only a line break could add inventory lines
    ("ansible.ssh_common_args (with a line break)",
     lambda d, v: d.setdefault("ansible", {}).__setitem__("ssh_common_args", v + "\n-o x=y")),
    ("domain", lambda d, v: d.__setitem__("domain", v)),
    ("internal_domain", lambda d, v: d.__setitem__("internal_domain", v)),
]


@pytest.fixture(scope="module")
def platform_data(repo_root):
    return yaml.safe_load((repo_root / "platform.yaml").read_text())


def _dump(data: dict) -> str:
    return yaml.dump(data, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper))  # the C emitter: 5× faster


@pytest.mark.slow  # 230 validations of the whole default platform: seconds of CPU
@pytest.mark.parametrize("field,setter", FIELDS, ids=[f[0] for f in FIELDS])
def test_each_field_refuses_every_injection_payload(platform_data, field, setter, tmp_path):
    marker = tmp_path / "pwned"
    for payload in PAYLOADS:
        data = copy.deepcopy(platform_data)
        setter(data, payload.format(marker=marker))
        with pytest.raises(PlatformError) as e:
            parse_platform(_dump(data), source="hostile.yaml")
        assert all(line.startswith("hostile.yaml") for line in e.value.problems), e.value.problems
    assert not marker.exists()


def test_the_default_platform_still_validates(platform_data):
    parse_platform(yaml.safe_dump(platform_data))


def test_command_templates_quote_every_value_even_unvalidated(tmp_path):
    """Validation is the first wall; the command template fills each value in as one shell word anyway."""
    from ralf.smoke.checks import shell_command

    marker = tmp_path / "pwned"
    for payload in PAYLOADS:
        value = payload.format(marker=marker)
        cmd = shell_command("printf '%s\\n' {unit}", unit=value)
        out = subprocess.run(["sh", "-c", cmd], capture_output=True, text=True, timeout=10).stdout
        assert out == value + "\n"
        cmd = shell_command("timeout 3 bash -c 'echo \"$1:$2\"' app_port {host} {port}", host=value, port=80)
        out = subprocess.run(["sh", "-c", cmd], capture_output=True, text=True, timeout=10).stdout
        assert out == f"{value}:80\n"
    assert not marker.exists()


def test_default_port_command_passes_host_and_port_as_arguments():
    from ralf.model import Exec
    from ralf.smoke.checks import shell_command

    cmd = shell_command(Exec().port_command, host="127.0.0.1", port=8080, unit="")
    assert cmd == "timeout 3 bash -c '</dev/tcp/$1/$2' app_port 127.0.0.1 8080"


def test_opentofu_literals_escape_interpolation():
    from ralf.tofu_config import literal

    assert literal('minio${file("/etc/hostname")}') == 'minio$${file("/etc/hostname")}'
    assert literal({"a": ["%{ if x }"], "n": 3}) == {"a": ["%%{ if x }"], "n": 3}


def test_git_revision_is_never_an_option(tmp_path, repo_root):
    from ralf.changes import git_changed_files
    from ralf.errors import UsageError

    target = tmp_path / "truncated"
    target.write_text("keep me")
    with pytest.raises(UsageError, match="expects a git revision"):
        git_changed_files(f"--output={target}", repo_root)
    assert target.read_text() == "keep me"


# ---------------------------------------------------------------------- bad command-line inputs


def one_line_error(code, out, err):
    assert code not in (0, None), (out, err)
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) >= 1 and all(line.startswith("ralf: ") for line in lines), err
    assert "Traceback" not in out + err


def test_platform_file_that_is_not_a_file(run_cli, tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for path in ("/dev/zero", str(fifo)):
        code, out, err = run_cli("--platform", path, "validate")
        one_line_error(code, out, err)
        assert "not a regular file" in err


@pytest.mark.slow  # the pure YAML parser through 5,000 levels: a second of CPU
def test_yaml_nested_too_deeply(run_cli, tmp_path, repo_root):
    deep = tmp_path / "deep.yaml"
    deep.write_text((repo_root / "platform.yaml").read_text() + "\nextra: " + "[" * 5000 + "]" * 5000 + "\n")
    code, out, err = run_cli("--platform", str(deep), "validate")
    one_line_error(code, out, err)
    assert "nested too deeply" in err


@pytest.mark.parametrize("edit,expect", [
    (lambda d: d["services"]["minio"]["checks"].append({"kind": "http", "url": "http://10.10.30.10:99999/"}),
     "Port out of range"),
    (lambda d: d["services"]["minio"].__setitem__("endpoint", "not a url"), "must not contain"),
    (lambda d: d["services"]["minio"]["checks"].append({"kind": "http", "url": "http://10.10.30.10/",
                                                         "deadline": float("inf")}), "finite"),
])
def test_bad_values_are_one_line_each(run_cli, tmp_path, platform_data, edit, expect):
    data = copy.deepcopy(platform_data)
    edit(data)
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(data))
    code, out, err = run_cli("--platform", str(path), "validate")
    one_line_error(code, out, err)
    assert expect in err


@pytest.mark.parametrize("args,expect", [
    (["deploy", "vault", "--timeout", "nan"], "finite"),
    (["deploy", "vault", "--timeout", "inf"], "finite"),
    (["history", str(2**70)], "no run"),
    (["deploy", "--resume", str(2**70)], "no run"),
    (["plan", "--changed-from=--output=/tmp/ralf-x"], "expects a git revision"),
])
def test_bad_command_line_values(run_cli, repo_root, tmp_path, args, expect):
    env = {"RALF_STATE_DIR": str(tmp_path / "state")}
    (tmp_path / "state").mkdir()
    from ralf.journal import Journal

    Journal(tmp_path / "state" / "journal.sqlite3").close()
    code, out, err = run_cli("--platform", str(repo_root / "platform.yaml"), *args, env=env)
    one_line_error(code, out, err)
    assert expect in err


@pytest.mark.parametrize("url,expect", [
    ("http://10.10.40.10:3000/", "unencrypted"),
    ("https://10.10.40.10:99999/", "Port out of range"),
    ("semaphore.example", "expected a http:// or https:// URL"),
    ("https://exa mple/", "must not contain"),
])
def test_bad_semaphore_url_is_one_line(run_cli, repo_root, tmp_path, url, expect):
    env = {"RALF_STATE_DIR": str(tmp_path), "SEMAPHORE_URL": url, "SEMAPHORE_TOKEN": "t0ken-abc"}
    code, out, err = run_cli("--platform", str(repo_root / "platform.yaml"), "semaphore", "ping", env=env)
    one_line_error(code, out, err)
    assert expect in err and "t0ken-abc" not in err


def test_damaged_journal_is_one_line_for_history_and_status(run_cli, repo_root, tmp_path):
    import sqlite3

    state = tmp_path / "state"
    state.mkdir()
    db = sqlite3.connect(state / "journal.sqlite3")
    db.execute("CREATE TABLE runs (id INTEGER PRIMARY KEY, something TEXT)")  # another schema
    db.execute("INSERT INTO runs (something) VALUES ('x')")
    db.commit()
    db.close()
    env = {"RALF_STATE_DIR": str(state)}
    for args in (["history"], ["status"], ["history", "1"]):
        code, out, err = run_cli("--platform", str(repo_root / "platform.yaml"), *args, env=env)
        one_line_error(code, out, err)
        assert "journal" in err and "NEVER RUN" not in out
