"""The destroy guard, the version check and Proxmox TLS with a stand-in ``tofu`` (exact command lines)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ralf.errors import ExternalToolError, SecretError, UsageError
from ralf.stacks import run_stacks

REPO = Path(__file__).resolve().parents[2]
CT = "module.lxc.proxmox_virtual_environment_container.this"
REPLACE = [{
    "address": CT, "mode": "managed", "type": "proxmox_virtual_environment_container",
    "change": {"actions": ["delete", "create"], "replace_paths": [["vm_id"]]},
    "action_reason": "replace_because_cannot_update",
}]
DELETE_OLD = [{
    "address": "proxmox_virtual_environment_container.vaultwarden", "mode": "managed",
    "change": {"actions": ["delete"]}, "action_reason": "delete_because_no_resource_config",
}, {"address": CT, "mode": "managed", "change": {"actions": ["create"]}}]


def _tofu(fakes):
    return [c["argv"][0] for c in fakes.calls("tofu")]


def test_a_plan_that_replaces_the_ct_is_refused_before_apply(default_copy, fakes, state):
    fakes.behave(plan_changes=REPLACE)
    lines: list[str] = []
    result = run_stacks(default_copy, "042-vaultwarden-lxc,043-vaultwarden-config", apply=True, repo_root=REPO,
                        on_output=lines.append)
    assert result.exit_code == 1
    assert [r.result for r in result.results] == ["failed", "not run"]
    assert _tofu(fakes) == ["init", "plan", "show"]  # never apply
    note = result.results[0].note
    assert note.startswith(f"refused: the plan destroys data (replace {CT}: a changed argument cannot be updated "
                           "in place (forced by: vm_id)); nothing was applied.")
    assert "--allow-destroy 042-vaultwarden-lxc" in note and "Semaphore's Apply templates never destroy" in note
    guard = f"[ralf] destroy guard: replace {CT}: a changed argument cannot be updated in place (forced by: vm_id)"
    assert guard in lines and guard in result.results[0].log_path.read_text()


def test_allow_destroy_names_the_stack_whose_plan_may_destroy(default_copy, fakes, state):
    fakes.behave(plan_changes=REPLACE)
    result = run_stacks(default_copy, "042-vaultwarden-lxc", apply=True, repo_root=REPO,
                        allow_destroy=["042-vaultwarden-lxc"])
    assert result.ok and result.results[0].changed == 2  # one added, one destroyed
    assert _tofu(fakes) == ["init", "plan", "show", "apply"]
    assert fakes.calls("tofu")[-1]["argv"] == ["apply", "-input=false", "-json", "ralf.tfplan"]


def test_allowing_another_stack_does_not_allow_this_one(default_copy, fakes, state):
    fakes.behave(plan_changes=DELETE_OLD)
    result = run_stacks(default_copy, "042-vaultwarden-lxc,044-n8n-lxc", apply=True, repo_root=REPO,
                        allow_destroy=["044-n8n-lxc"])
    assert [r.result for r in result.results] == ["failed", "not run"]
    assert ("delete proxmox_virtual_environment_container.vaultwarden: it is no longer in the configuration "
            "(no moved block matches it)") in result.results[0].note


def test_plan_mode_reports_what_would_be_destroyed_without_failing(default_copy, fakes, state):
    fakes.behave(plan_changes=REPLACE)
    result = run_stacks(default_copy, "042-vaultwarden-lxc", apply=False, repo_root=REPO)
    assert result.ok and result.results[0].changed == 2
    assert result.results[0].note.startswith(f"the plan destroys: replace {CT}")
    assert _tofu(fakes) == ["init", "plan", "show"]


def test_after_an_import_the_new_plan_is_guarded_too(default_copy, fakes, state):
    fakes.behave(already_exists=True, after_import=REPLACE)
    result = run_stacks(default_copy, "042-vaultwarden-lxc", apply=True, repo_root=REPO)
    assert result.results[0].result == "failed" and result.results[0].note.startswith("refused:")
    assert _tofu(fakes) == ["init", "plan", "show", "apply", "plan", "show"]


def test_allow_destroy_for_a_stack_that_is_not_run_is_a_usage_error(default_copy, fakes, state):
    with pytest.raises(UsageError, match=r"--allow-destroy 043-vaultwarden-config: not an OpenTofu stack of this run"):
        run_stacks(default_copy, "042-vaultwarden-lxc,043-vaultwarden-config", apply=True, repo_root=REPO,
                   allow_destroy=["043-vaultwarden-config"])
    assert fakes.calls() == []


def test_the_saved_plan_never_stays_behind(default_copy, fakes, state):
    # it holds every variable's value, the Proxmox token included
    run_stacks(default_copy, "042-vaultwarden-lxc", apply=True, repo_root=REPO)
    fakes.behave(plan_changes=REPLACE)
    run_stacks(default_copy, "042-vaultwarden-lxc", apply=True, repo_root=REPO)
    assert not (state / "tofu" / "042-vaultwarden-lxc" / "ralf.tfplan").exists()


def test_cli_flag_and_no_variable(run_cli, default_copy, fakes, state):
    fakes.behave(plan_changes=REPLACE)
    env = {"AUTO_APPLY": "1", "ONLY_STACKS": "042-vaultwarden-lxc", "ALLOW_DESTROY": "042-vaultwarden-lxc",
           "RALF_ALLOW_DESTROY": "042-vaultwarden-lxc"}
    code, out, err = run_cli("stacks", "run", "--platform", str(default_copy.source), env=env)
    assert code == 1 and "refused: the plan destroys data" in out and "Traceback" not in err
    code, out, err = run_cli("stacks", "run", "--allow-destroy", "042-vaultwarden-lxc",
                             "--platform", str(default_copy.source), env=env)
    assert code == 0, out + err
    assert _tofu(fakes)[-1] == "apply"


def test_semaphore_apply_command_cannot_allow_destroy(write_platform, repo_root):
    from ralf.errors import PlatformError
    from ralf.loader import load_platform

    text = (repo_root / "platform.yaml").read_text()
    text = text.replace("apply_command: ralf stacks run ", "apply_command: ralf stacks run --allow-destroy 042-vaultwarden-lxc ")
    with pytest.raises(PlatformError, match="semaphore.apply_command.*must not pass --allow-destroy"):
        load_platform(write_platform(text))


# --------------------------------------------------------------------------- versions


@pytest.mark.parametrize("version", ["1.9.1", "1.6.0"])
def test_too_old_opentofu_is_refused_before_init(default_copy, fakes, state, version):
    fakes.behave(version=version)
    with pytest.raises(ExternalToolError) as e:
        run_stacks(default_copy, "042-vaultwarden-lxc", apply=True, repo_root=REPO)
    assert str(e.value).startswith(f"{fakes.bin / 'tofu'} is version {version}, but ralf's OpenTofu stacks need "
                                   ">= 1.10.0 (the S3 state backend is configured with use_lockfile")
    assert [c["argv"] for c in fakes.calls(versions=True)] == [["version", "-json"]]
    assert not (state / "runs").exists()


def test_too_old_ansible_core_is_refused(default_copy, fakes, state):
    fakes.behave(ansible_version="2.14.3")
    with pytest.raises(ExternalToolError, match=r"ansible-core 2.14.3, but ralf's playbooks need >= 2.16.0"):
        run_stacks(default_copy, "043-vaultwarden-config", apply=True, repo_root=REPO)
    assert [c["argv"] for c in fakes.calls(versions=True)] == [["--version"]]


def test_too_old_version_through_the_cli_is_one_clear_message(run_cli, default_copy, fakes, state):
    fakes.behave(version="1.9.1")
    code, out, err = run_cli("stacks", "run", "--plan", "--only", "042-vaultwarden-lxc",
                             "--platform", str(default_copy.source))
    assert code != 0 and "Traceback" not in err
    assert "is version 1.9.1, but ralf's OpenTofu stacks need >= 1.10.0" in err


# Options each subcommand has in OpenTofu 1.10 (its `tofu <cmd> -help`), and the S3 backend's
# arguments as of 1.10 (use_lockfile is new in 1.10; endpoints/use_path_style since 1.6).
OPTIONS_1_10 = {
    "version": {"-json"},
    "init": {"-input", "-reconfigure", "-backend-config", "-upgrade", "-lockfile", "-json"},
    "plan": {"-input", "-json", "-out", "-refresh", "-lock", "-lock-timeout", "-var", "-var-file"},
    "show": {"-json"},
    "apply": {"-input", "-json", "-auto-approve", "-lock", "-lock-timeout"},
}
S3_BACKEND_1_10 = {"bucket", "key", "region", "endpoints", "use_path_style", "skip_credentials_validation",
                   "skip_region_validation", "skip_requesting_account_id", "skip_metadata_api_check",
                   "skip_s3_checksum", "use_lockfile", "encrypt", "workspace_key_prefix"}


def test_default_platform_passes_only_what_opentofu_1_10_knows(default_copy, fakes, state):
    fakes.behave(already_exists=True)  # the import path too
    for apply in (False, True):
        assert run_stacks(default_copy, apply=apply, repo_root=REPO).ok
    calls = fakes.calls("tofu", versions=True)
    assert {c["argv"][0] for c in calls} == set(OPTIONS_1_10)
    for c in calls:
        cmd, *rest = c["argv"]
        options = {a.split("=", 1)[0] for a in rest if a.startswith("-")}
        assert options <= OPTIONS_1_10[cmd], (cmd, options - OPTIONS_1_10[cmd])
    for hcl in (state / "tofu").glob("*/backend.hcl"):
        keys = {line.split("=")[0].strip() for line in hcl.read_text().splitlines() if "=" in line and not line.startswith("#")}
        assert keys <= S3_BACKEND_1_10, keys - S3_BACKEND_1_10


def test_pins_and_required_version_agree_with_the_check():
    import re

    import yaml

    from ralf import tofu_config
    from ralf.stacks.versions import ANSIBLE_CORE_MIN, TOFU_MIN, parse_version

    defaults = yaml.safe_load((REPO / "ansible/roles/semaphore/defaults/main.yml").read_text())
    pinned = parse_version(defaults["semaphore_tofu_version"])
    assert pinned is not None and pinned >= TOFU_MIN  # what 041 installs passes ralf's own check
    assert parse_version(defaults["semaphore_ansible_core_version"]) >= ANSIBLE_CORE_MIN
    assert defaults["semaphore_tofu_checksum"].startswith("sha256:")  # never an unverified download
    minimum = ".".join(map(str, TOFU_MIN))
    assert tofu_config.REQUIRED_VERSION == f">= {minimum}"
    versions_tf = (REPO / "tofu/modules/lxc/versions.tf").read_text()
    assert re.search(r'required_version\s*=\s*">= ' + re.escape(minimum) + '"', versions_tf)


# --------------------------------------------------------------------------- TLS to Proxmox


def test_ca_file_reaches_the_provider_as_ssl_cert_file(default_copy, fakes, state, monkeypatch):
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    lines: list[str] = []
    result = run_stacks(default_copy, "042-vaultwarden-lxc", apply=False, repo_root=REPO, on_output=lines.append)
    assert result.ok
    assert all("SSL_CERT_FILE" in c["env"] for c in fakes.calls("tofu"))
    from ralf.catalog import Catalog
    from ralf.stacks.tofu import credentials

    stack = next(s for s in Catalog(default_copy).stacks if s.name == "042-vaultwarden-lxc")
    env = credentials(default_copy, [stack], {})
    assert env["SSL_CERT_FILE"] == str(default_copy.secrets_path / "pve-root-ca.pem")
    assert not any("insecure_tls" in line for line in lines)
    import json

    main = json.loads((state / "tofu" / "042-vaultwarden-lxc" / "main.tf.json").read_text())
    assert main["provider"]["proxmox"]["insecure"] is False


def test_missing_ca_file_stops_before_anything_runs(default_copy, fakes, state):
    (default_copy.secrets_path / "pve-root-ca.pem").unlink()
    with pytest.raises(SecretError, match=r"Proxmox CA file missing: .*pve-root-ca.pem .*scp root@<node>:/etc/pve/pve-root-ca.pem"):
        run_stacks(default_copy, "042-vaultwarden-lxc", apply=False, repo_root=REPO)
    assert fakes.calls() == []
    (default_copy.secrets_path / "pve-root-ca.pem").write_text("not a certificate")
    with pytest.raises(SecretError, match="holds no PEM certificate"):
        run_stacks(default_copy, "042-vaultwarden-lxc", apply=False, repo_root=REPO)


def test_insecure_tls_only_when_set_and_warned_on_every_run(default_copy, fakes, state, monkeypatch):
    from ralf.loader import load_platform

    monkeypatch.delenv("SSL_CERT_FILE", raising=False)  # this machine may set one for everything

    src = default_copy.source
    src.write_text(src.read_text().replace("  ca_file: ", "  insecure_tls: true\n  ca_file: ", 1))
    insecure = load_platform(src)
    for _ in range(2):
        lines: list[str] = []
        assert run_stacks(insecure, "042-vaultwarden-lxc", apply=False, repo_root=REPO, on_output=lines.append).ok
        warnings = [line for line in lines if line.startswith("[ralf] warning: proxmox.insecure_tls is true")]
        assert len(warnings) == 1 and "NOT verified" in warnings[0]
    assert not any("SSL_CERT_FILE" in c["env"] for c in fakes.calls("tofu"))


def test_default_platform_file_verifies_tls():
    import yaml

    raw = yaml.safe_load((REPO / "platform.yaml").read_text())
    assert "insecure_tls" not in raw["proxmox"] and raw["proxmox"]["ca_file"].endswith("pve-root-ca.pem")
