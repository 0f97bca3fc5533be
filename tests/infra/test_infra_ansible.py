"""The Ansible side of the infrastructure: a playbook per *-config stack, roles, lint, check mode.

Nothing here changes this machine: playbooks are syntax-checked and linted, and the roles that can
run against localhost do so only with --check.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from ralf.inventory import inventory_ini

REPO = Path(__file__).resolve().parents[2]
ROLES = REPO / "ansible" / "roles"
ANSIBLE_ENV = {
    **os.environ,
    "ANSIBLE_NOCOLOR": "1",
    "ANSIBLE_LOCAL_TEMP": "/tmp/ralf-test-ansible-local",
    "ANSIBLE_HOST_KEY_CHECKING": "0",
    "ANSIBLE_RETRY_FILES_ENABLED": "0",
}
BIN = Path(sys.executable).parent


def _tool(name: str) -> str:
    path = BIN / name
    return str(path) if path.exists() else (shutil.which(name) or name)


def _config_stacks(platform):
    return [(n, r.name) for n, s in platform.services.items() for r in s.stack_refs if r.type == "ansible"]


def missing_config_stacks(platform, stacks_dir: Path) -> list[str]:
    """The *-config stacks the platform names that have no playbook in stacks_dir."""
    return [st for _, st in _config_stacks(platform) if not (stacks_dir / st / "playbook.yml").is_file()]


# ------------------------------------------------------------------ playbooks exist and are wired


def test_every_config_stack_has_a_playbook(default_platform):
    assert missing_config_stacks(default_platform, default_platform.stacks_path) == []


def test_a_missing_stack_is_reported(write_platform, repo_root, tmp_path):
    from ralf.loader import load_platform

    text = (repo_root / "platform.yaml").read_text().replace(
        "stacks: [090-exo-lxc, 091-exo-config]", "stacks: [090-exo-lxc, 091-exo-config, 093-exo-extra-config]")
    p = load_platform(write_platform(text))
    assert missing_config_stacks(p, repo_root / "stacks") == ["093-exo-extra-config"]


def test_playbooks_target_the_service_group_and_use_its_role(default_platform):
    for service, stack in _config_stacks(default_platform):
        d = default_platform.stacks_path / stack
        plays = yaml.safe_load((d / "playbook.yml").read_text())
        assert len(plays) == 1 and plays[0]["hosts"] == service
        roles = [r["role"] if isinstance(r, dict) else r for r in plays[0]["roles"]]
        assert roles == ["base", service]
        assert (d / "roles" / service / "tasks" / "main.yml").is_file(), "roles/ must resolve to ansible/roles"


@pytest.fixture(scope="module")
def inventory(tmp_path_factory, default_platform):
    p = tmp_path_factory.mktemp("inv") / "hosts.ini"
    p.write_text(inventory_ini(default_platform))
    return p


@pytest.mark.slow  # runs ansible
def test_syntax_check_every_playbook(default_platform, inventory):
    for _, stack in _config_stacks(default_platform):
        d = default_platform.stacks_path / stack
        r = subprocess.run([_tool("ansible-playbook"), "-i", str(inventory), "--syntax-check", "playbook.yml"],
                           cwd=d, env=ANSIBLE_ENV, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, f"{stack}:\n{r.stdout}\n{r.stderr}"


@pytest.mark.slow  # runs ansible
def test_ansible_lint_production_profile_is_clean():
    r = subprocess.run([_tool("ansible-lint"), "--offline", "-q", "--nocolor"], cwd=REPO,
                       env={**ANSIBLE_ENV, "ANSIBLE_LINT_NODEPS": "1"},
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    assert "production" in (REPO / ".ansible-lint").read_text()


# ------------------------------------------------------------------ units the smoke engine checks


def _tasks(path: Path) -> list[dict]:
    data = yaml.safe_load(path.read_text()) or []
    out = []
    for t in data:
        out.append(t)
        for key in ("block", "rescue", "always"):
            out += t.get(key, [])
    return out


def started_units(role: str, _seen: set | None = None) -> set[str]:
    """Units a role enables and starts, following include_role/import_role and include_tasks."""
    seen = _seen if _seen is not None else set()
    units: set[str] = set()
    tdir = ROLES / role / "tasks"
    queue = [tdir / "main.yml"]
    while queue:
        f = queue.pop()
        if f in seen or not f.is_file():
            continue
        seen.add(f)
        for t in _tasks(f):
            for mod in ("ansible.builtin.systemd_service", "ansible.builtin.systemd", "ansible.builtin.service"):
                args = t.get(mod)
                if isinstance(args, dict) and args.get("state") == "started" and args.get("enabled") is True:
                    names = t.get("loop") if args["name"] == "{{ item }}" else [args["name"]]
                    units.update(names)
            for mod in ("ansible.builtin.include_role", "ansible.builtin.import_role"):
                if mod in t and t[mod].get("tasks_from") is None:
                    units |= started_units(t[mod]["name"], seen)
            for mod in ("ansible.builtin.include_tasks", "ansible.builtin.import_tasks"):
                if mod in t:
                    queue.append(tdir / t[mod])
    return units


def test_each_service_role_starts_exactly_the_smoke_units(default_platform):
    for service, svc in default_platform.services.items():
        assert started_units(service) == set(svc.units), service


def test_custom_units_have_a_unit_file(default_platform):
    packaged = {"postgresql", "nginx", "postfix", "dovecot", "vaultwarden", "matrix-synapse"}
    for service, svc in default_platform.services.items():
        for unit in set(svc.units) - packaged:
            assert (ROLES / service / "templates" / f"{unit}.service.j2").is_file(), f"{service}: {unit}"


def test_unit_detection_notices_a_wrong_unit(tmp_path, monkeypatch):
    role = tmp_path / "roles" / "demo" / "tasks"
    role.mkdir(parents=True)
    role.joinpath("main.yml").write_text(textwrap.dedent("""\
        - name: Start it
          ansible.builtin.systemd_service: {name: demo-typo, enabled: true, state: started}
        """))
    monkeypatch.setattr(sys.modules[__name__], "ROLES", tmp_path / "roles")
    assert started_units("demo") == {"demo-typo"}


# ------------------------------------------------------------------ versions are pins, not moving targets

# Defaults that deliberately follow a branch: the ralf checkout on the Semaphore host follows the branch
# Semaphore's repository uses (the pushed commit; RALF_VERSION pins it).
FOLLOWS_A_BRANCH = {"semaphore_ralf_version"}
MOVING = re.compile(r"^(main|master|head|latest|stable|nightly|beta|trunk|develop)$", re.I)


def role_versions() -> dict[str, str]:
    out = {}
    for f in ROLES.glob("*/defaults/main.yml"):
        for key, value in (yaml.safe_load(f.read_text()) or {}).items():
            if re.search(r"_(version|toolchain)$", key) and key not in FOLLOWS_A_BRANCH:
                out[key] = str(value).strip()
    return out


def test_every_version_is_pinned():
    versions = role_versions()
    assert {"minio_version", "gitea_version", "semaphore_version", "exo_version", "exo_uv_version",
            "exo_rust_toolchain", "n8n_version", "synapse_version", "vaultwarden_version"} <= set(versions)
    moving = {k: v for k, v in versions.items() if not v or MOVING.match(v) or "{{" in v}
    assert moving == {}, f"not pinned: {moving}"


def test_exo_builds_once_per_commit_and_again_after_a_failed_build():
    """The build is keyed on a marker written last, not on the checkout's `changed` (a failed
    `uv sync` used to be skipped by every later run, leaving exo unbuildable until a new commit)."""
    tasks = yaml.safe_load((ROLES / "exo" / "tasks" / "main.yml").read_text())
    build = next(t for t in tasks if "block" in t)
    assert "exo_git.after" in build["when"] and ".changed" not in build["when"]
    names = [t["name"] for t in build["block"]]
    assert names[-1].startswith("Record the commit") and any("uv" in str(t) and "sync" in str(t) for t in build["block"])
    unit = (ROLES / "exo" / "templates" / "exo.service.j2").read_text()
    assert "--no-sync" in unit  # starting the service never rebuilds


# ------------------------------------------------------------------ roles run on localhost in check mode


def _run_local_check(tmp_path: Path, play: str, extra_env: dict | None = None):
    pb = tmp_path / "play.yml"
    pb.write_text(textwrap.dedent(play))
    (tmp_path / "roles").symlink_to(ROLES)
    env = {**ANSIBLE_ENV, **(extra_env or {})}
    return subprocess.run(
        [_tool("ansible-playbook"), "-i", "localhost,", "-c", "local", "--check",
         "-e", "ansible_python_interpreter=/usr/bin/python3", str(pb)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.slow  # runs ansible
@pytest.mark.skipif(not Path("/usr/bin/python3").exists(), reason="needs the system python3 with apt bindings")
def test_base_role_runs_in_check_mode_on_localhost(tmp_path):
    r = _run_local_check(tmp_path, """\
        - name: Base in check mode
          hosts: all
          gather_facts: true
          roles:
            - role: base
        """)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    assert "failed=0" in r.stdout


@pytest.mark.slow  # runs ansible
def test_secrets_are_parsed_and_never_printed(tmp_path):
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    secrets.joinpath("demo.env").write_text(
        "# comment\n\nDEMO_USER=ralf\nDEMO_PASSWORD=s3cr=et-value\nexport QUOTED=\"a b\"\n")
    r = _run_local_check(tmp_path, """\
        - name: Secrets
          hosts: all
          gather_facts: false
          vars:
            ralf_secrets_dir: "{{ lookup('ansible.builtin.env', 'RALF_SECRETS_DIR') }}"
          roles:
            - role: ralf_secrets
              ralf_secrets_files: [demo]
          tasks:
            - name: Check the parsed values
              ansible.builtin.assert:
                that:
                  - ralf_secrets_env.demo.DEMO_USER == 'ralf'
                  - ralf_secrets_env.demo.DEMO_PASSWORD == 's3cr=et-value'
                  - ralf_secrets_env.demo.QUOTED == 'a b'
                  - ralf_secrets_env.demo | length == 3
        """, {"RALF_SECRETS_DIR": str(secrets)})
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    assert "s3cr=et-value" not in r.stdout + r.stderr


@pytest.mark.slow  # runs ansible
def test_a_missing_secret_file_fails_with_its_name(tmp_path):
    r = _run_local_check(tmp_path, """\
        - name: Secrets
          hosts: all
          gather_facts: false
          vars:
            ralf_secrets_dir: /nonexistent/secrets
          roles:
            - role: ralf_secrets
              ralf_secrets_files: [minio]
        """)
    assert r.returncode != 0
    assert "/nonexistent/secrets/minio.env" in r.stdout


@pytest.mark.slow  # runs ansible
def test_the_roles_read_and_write_env_files_as_ralf_does(tmp_path):
    """Hostile values: ralf writes the secrets file, the role reads it and writes a unit's env file with
    the same module (ralf_env_parse / ralf_env_quote), and what comes back is what went in."""
    from ralf import envfile

    hostile = json.loads((REPO / "tests" / "data" / "env" / "hostile.json").read_text())

    secrets = tmp_path / "secrets"
    secrets.mkdir()
    secrets.joinpath("demo.env").write_text(envfile.render(hostile, header="demo.env"))
    secrets.joinpath("broken.env").write_text('MULTI="line1\nINJECTED=1"\n')  # edited by hand: a line break
    (tmp_path / "unit.env.j2").write_text(
        "# {{ ansible_managed }}\n{% for k, v in ralf_secrets_env.demo.items() %}{{ k }}={{ v | ralf_env_quote }}\n"
        "{% endfor %}")
    out = tmp_path / "unit.env"
    r = _run_local_check(tmp_path, f"""\
        - name: Env files
          hosts: all
          gather_facts: false
          vars:
            ralf_secrets_dir: "{secrets}"
          roles:
            - role: ralf_secrets
              ralf_secrets_files: [demo, broken]
          tasks:
            - name: Write a unit's env file
              ansible.builtin.template: {{src: unit.env.j2, dest: "{out}", mode: "0600"}}
              check_mode: false
            - name: A value with a line break cannot be written
              ansible.builtin.copy:
                content: "MULTI={{{{ ralf_secrets_env.broken.MULTI | ralf_env_quote }}}}\\n"
                dest: "{tmp_path}/broken.out"
              check_mode: false
        """)
    assert "holds a line break or NUL" in r.stdout, r.stdout[-4000:] + r.stderr[-2000:]
    assert envfile.read(out) == hostile
    assert not (tmp_path / "broken.out").exists()
    assert "INJECTED" not in r.stdout + r.stderr


@pytest.mark.slow  # runs ansible
def test_postgres_lets_the_network_in_over_tls_only_once_the_platform_ca_serves_it(tmp_path):
    """pg_hba.conf: ``hostssl`` for the platform network with the CA's certificate, ``host`` without one; an
    existing line for the network is replaced in place (an upgrade), and a second run changes nothing."""
    hba = tmp_path / "pg_hba.conf"
    local = "local   all   postgres   peer\nhost    all   all   127.0.0.1/32   scram-sha-256\n"
    hba.write_text(local + "host    all    all    172.31.0.0/16    scram-sha-256\n")

    def converge(cert: str):
        r = _run_hba(tmp_path, cert)
        assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
        return re.search(r"changed=(\d+)", r.stdout).group(1)

    assert converge("/etc/ralf/tls/cert.pem") == "1"
    assert hba.read_text() == local + "hostssl    all    all    172.31.0.0/16    scram-sha-256\n"
    assert converge("/etc/ralf/tls/cert.pem") == "0"
    assert converge("") == "1"
    assert hba.read_text() == local + "host    all    all    172.31.0.0/16    scram-sha-256\n"


def _run_hba(tmp_path: Path, cert: str):
    if not (tmp_path / "roles").exists():
        (tmp_path / "roles").symlink_to(ROLES)
    pb = tmp_path / "hba.yml"
    pb.write_text(textwrap.dedent(f"""\
        - name: The postgres role's pg_hba.conf task alone
          hosts: all
          gather_facts: false
          vars:
            postgres_config_dir: "{tmp_path}"
            postgres_allowed_cidr: 172.31.0.0/16
            postgres_auth_method: scram-sha-256
            postgres_tls_cert_src: "{cert}"
          tasks:
            - name: Allow the platform network
              ansible.builtin.include_tasks: roles/postgres/tasks/hba.yml
          handlers:
            - name: Reload postgresql
              ansible.builtin.debug: {{msg: reload}}
        """))
    return subprocess.run(
        [_tool("ansible-playbook"), "-i", "localhost,", "-c", "local",
         "-e", f"ansible_python_interpreter={sys.executable}", str(pb)],
        cwd=tmp_path, env=ANSIBLE_ENV, capture_output=True, text=True, timeout=300)
