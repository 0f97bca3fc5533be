"""The CLI as a user meets it: exit codes, JSON shapes, one-line errors, --platform before or after."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from runbook_expectations import ORIGINAL_28, STANDARD


def test_plan_json_standard_order(run_cli, repo_root):
    code, out, err = run_cli("--platform", str(repo_root / "platform.yaml"), "plan", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["pattern"] == "standard"
    assert [s["template"] for s in data["steps"]] == STANDARD
    assert data["steps"][1] == {"template": "RALF Vault Smoke", "kind": "smoke", "target": "vault",
                                "reason": "standard order: check group vault"}


def test_plan_exo_human_output_explains_each_step(run_cli, repo_root):
    code, out, _ = run_cli("plan", "exo", "--platform", str(repo_root / "platform.yaml"))
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("Plan (service)")
    assert "1. RALF Exo Apply" in out and "2. RALF AI Smoke" in out
    assert "why: exo belongs to group ai" in out


def test_plan_changed_shared_base_is_pattern_b(run_cli, repo_root):
    code, out, _ = run_cli("plan", "--platform", str(repo_root / "platform.yaml"), "--json",
                           "--changed", "src/ralf/stacks/runner.py", "README.md")
    assert code == 0
    data = json.loads(out)
    assert data["pattern"] == "B" and data["needs_confirmation"] is True
    assert data["steps"][0]["template"] == "RALF Phase1 Config Apply"


def test_catalog_templates_json_has_the_28(run_cli, repo_root):
    code, out, _ = run_cli("catalog", "templates", "--json", "--platform", str(repo_root / "platform.yaml"))
    assert code == 0
    data = json.loads(out)
    by_name = {t["name"]: t for t in data["templates"]}
    for name, meaning in ORIGINAL_28.items():
        t = by_name[name]
        if t["kind"] == "apply":
            assert set(t["stacks"]) == set(meaning.split())
        else:
            assert t["target"] == meaning
    assert data["service_to_group_smoke"]["exo"] == "RALF AI Smoke"


def test_catalog_stacks_and_targets(run_cli, repo_root):
    code, out, _ = run_cli("catalog", "stacks", "--json", "--platform", str(repo_root / "platform.yaml"))
    assert code == 0 and json.loads(out)[0] == {"name": "030-minio-lxc", "type": "tofu", "service": "minio",
                                                 "group": "phase1", "role": "infra", "local_state": True}
    code, out, _ = run_cli("catalog", "targets", "--platform", str(repo_root / "platform.yaml"))
    assert code == 0 and "communication" in out and "synapse, mail" in out


def test_validate_ok_and_bad(run_cli, repo_root, write_platform):
    code, out, _ = run_cli("validate", "--platform", str(repo_root / "platform.yaml"))
    assert code == 0 and "valid" in out and "9 services" in out
    bad = write_platform((repo_root / "platform.yaml").read_text().replace("ct_id: 4020", "ct_id: 4010"))
    line = [i for i, text in enumerate(bad.read_text().splitlines(), 1) if text.strip() == "ct_id: 4010"][1]
    code, out, err = run_cli("validate", "--platform", str(bad))
    assert code == 2
    assert err.strip().splitlines() == [
        f"ralf: {bad}: services.vaultwarden.ct_id (line {line}): CT id 4010 is already used by services.semaphore.ct_id"
    ]


def test_platform_from_environment(run_cli, repo_root):
    code, out, _ = run_cli("plan", "--json", env={"RALF_PLATFORM": str(repo_root / "examples/lab/platform.yaml")})
    assert code == 0
    assert [s["template"] for s in json.loads(out)["steps"]][:2] == ["RALF Web Apply", "RALF Web Smoke"]


def test_usage_errors_exit_2(run_cli, repo_root):
    p = str(repo_root / "platform.yaml")
    assert run_cli("plan", "nope", "--platform", p)[0] == 2
    assert run_cli("plan", "a", "b", "--platform", p)[0] == 2
    assert run_cli("no-such-command")[0] == 2
    code, _, err = run_cli("plan", "--platform", "/nonexistent/platform.yaml")
    assert code == 2 and "file not found" in err


def test_inventory_command(run_cli, repo_root):
    code, out, _ = run_cli("inventory", "--platform", str(repo_root / "platform.yaml"))
    assert code == 0 and "[exo]\nexo ansible_host=10.10.90.10" in out


@pytest.mark.slow  # starts ralf as a program, three times
def test_whole_process_version_help_and_module(repo_root, tmp_path):
    env = {**os.environ, "RALF_PLATFORM": str(tmp_path / "missing.yaml")}
    r = subprocess.run([sys.executable, "-m", "ralf", "--version"], capture_output=True, text=True, env=env)
    assert r.returncode == 0 and r.stdout.startswith("ralf, version ")
    r = subprocess.run([sys.executable, "-m", "ralf", "--help"], capture_output=True, text=True, env=env)
    assert r.returncode == 0 and "plan" in r.stdout and "validate" in r.stdout
    r = subprocess.run([sys.executable, "-m", "ralf", "plan"], capture_output=True, text=True, env=env)
    assert r.returncode == 2
    assert r.stderr.strip() == f"ralf: {tmp_path / 'missing.yaml'}: file not found (pass --platform FILE or set RALF_PLATFORM)"
    assert "Traceback" not in r.stderr


def test_catalog_paths_names_owners_and_shared_base(run_cli, repo_root):
    code, out, _ = run_cli("catalog", "paths", "--json", "--platform", str(repo_root / "platform.yaml"))
    assert code == 0
    data = json.loads(out)
    assert data["services"]["n8n"] == ["stacks/044-n8n-lxc/", "stacks/045-n8n-config/", "ansible/roles/n8n/"]
    assert {"path": "src/ralf/smoke/", "smokes": "all", "why": "smoke code runs for every group"} in data["shared_base"]
    assert "docs/" in data["ignore"]


def test_inventory_hands_every_ct_platform_its_certificates_from_the_platform_ca(default_platform, tmp_path,
                                                                                monkeypatch):
    from ralf.backends.lxc import tls
    from ralf.inventory import host_vars

    monkeypatch.setenv("RALF_SECRETS_DIR", str(tmp_path))
    assert host_vars(default_platform, "n8n") == {}
    issued = tls.ensure_certs(default_platform)
    assert "n8n" in issued and "minio" not in issued
    hv = host_vars(default_platform, "n8n")
    assert hv["nginx_tls_cert_src"] == str(tmp_path / "tls" / "n8n" / "cert.pem")
    assert hv["ralf_ca_cert_src"] == str(tmp_path / "ca" / "ca.pem")
    assert hv["ralf_tls_server_name"] == "n8n.homelab.lan"  # the certificate's name, for clients that connect by name
    # A CT that serves no TLS still trusts the CA: its services verify the others against it.
    assert host_vars(default_platform, "minio") == {"ralf_ca_cert_src": str(tmp_path / "ca" / "ca.pem")}
    assert oct((tmp_path / "ca" / "ca.key").stat().st_mode & 0o777) == "0o600"
    info = tls.ca(default_platform).info(tmp_path / "tls" / "n8n")
    assert info.names == ("n8n.homelab.lan", "10.10.40.30") and info.issuer_is_lab_ca
    assert tls.ensure_certs(default_platform) == []  # kept until it is due for renewal
    # Synapse's certificate carries its public names (nginx serves them) besides its own name.
    synapse = tls.ca(default_platform).info(tmp_path / "tls" / "synapse")
    assert synapse.names == ("matrix.otta.zone", "otta.zone", "10.10.110.10") and synapse.issuer_is_lab_ca
