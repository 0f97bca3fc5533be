"""OpenTofu stacks with a stand-in ``tofu``: exact command lines, backend files, import, locks, secrets."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from ralf.errors import ExternalToolError, SecretError
from ralf.stacks import run_stacks
from ralf.stacks.tofu import backend_config, backend_stub

REPO = Path(__file__).resolve().parents[2]
PVE_SECRET = "pve-secret-Zq81xY"  # what the default_copy fixture writes into pve.env

INIT_LOCAL = ["init", "-input=false", "-json"]
INIT_S3 = ["init", "-input=false", "-json", "-reconfigure", "-backend-config=backend.hcl"]
PLAN = ["plan", "-input=false", "-json", "-out=ralf.tfplan"]
SHOW = ["show", "-json", "ralf.tfplan"]
APPLY = ["apply", "-input=false", "-json", "ralf.tfplan"]
ANSIBLE_PLAN = ["-i", "{inv}", "--syntax-check", "playbook.yml"]
ANSIBLE_APPLY = ["-i", "{inv}", "playbook.yml"]

# Every default-platform stack, in run order: (stack, program, working dir, command lines for plan / apply).
DEFAULT_PINNED = [
    ("030-minio-lxc", "tofu", [INIT_LOCAL, PLAN, SHOW], [INIT_LOCAL, PLAN, SHOW, APPLY]),
    ("031-minio-config", "ansible-playbook", [ANSIBLE_PLAN], [ANSIBLE_APPLY]),
    ("020-postgres-lxc", "tofu", [INIT_S3, PLAN, SHOW], [INIT_S3, PLAN, SHOW, APPLY]),
    ("021-postgres-config", "ansible-playbook", [ANSIBLE_PLAN], [ANSIBLE_APPLY]),
    ("034-gitea-lxc", "tofu", [INIT_S3, PLAN, SHOW], [INIT_S3, PLAN, SHOW, APPLY]),
    ("035-gitea-config", "ansible-playbook", [ANSIBLE_PLAN], [ANSIBLE_APPLY]),
    ("040-semaphore-lxc", "tofu", [INIT_S3, PLAN, SHOW], [INIT_S3, PLAN, SHOW, APPLY]),
    ("041-semaphore-config", "ansible-playbook", [ANSIBLE_PLAN], [ANSIBLE_APPLY]),
    ("042-vaultwarden-lxc", "tofu", [INIT_S3, PLAN, SHOW], [INIT_S3, PLAN, SHOW, APPLY]),
    ("043-vaultwarden-config", "ansible-playbook", [ANSIBLE_PLAN], [ANSIBLE_APPLY]),
    ("044-n8n-lxc", "tofu", [INIT_S3, PLAN, SHOW], [INIT_S3, PLAN, SHOW, APPLY]),
    ("045-n8n-config", "ansible-playbook", [ANSIBLE_PLAN], [ANSIBLE_APPLY]),
    ("090-exo-lxc", "tofu", [INIT_S3, PLAN, SHOW], [INIT_S3, PLAN, SHOW, APPLY]),
    ("091-exo-config", "ansible-playbook", [ANSIBLE_PLAN], [ANSIBLE_APPLY]),
    ("110-synapse-lxc", "tofu", [INIT_S3, PLAN, SHOW], [INIT_S3, PLAN, SHOW, APPLY]),
    ("111-synapse-config", "ansible-playbook", [ANSIBLE_PLAN], [ANSIBLE_APPLY]),
    ("112-mail-lxc", "tofu", [INIT_S3, PLAN, SHOW], [INIT_S3, PLAN, SHOW, APPLY]),
    ("113-mail-config", "ansible-playbook", [ANSIBLE_PLAN], [ANSIBLE_APPLY]),
]


@pytest.mark.parametrize("apply", [False, True], ids=["plan", "apply"])
def test_default_platform_command_lines_are_pinned(default_copy, fakes, state, apply):
    fakes.install("ansible-playbook")  # never run the real one against the 10.10.x.x network
    result = run_stacks(default_copy, apply=apply, repo_root=REPO)
    assert result.ok, [r.to_dict() for r in result.results]
    inv = str(result.run_dir / "inventory.ini")
    expected = []
    for stack, prog, plan_cmds, apply_cmds in DEFAULT_PINNED:
        cwd = state / "tofu" / stack if prog == "tofu" else default_copy.stacks_path / stack
        for argv in apply_cmds if apply else plan_cmds:
            expected.append((prog, [a.replace("{inv}", inv) for a in argv], str(cwd)))
    got = [(c["prog"], c["argv"], c["cwd"]) for c in fakes.calls()]
    assert got == expected
    # before anything runs, each program is asked for its version (machine output for tofu)
    asked = [(c["prog"], c["argv"]) for c in fakes.calls(versions=True)[:2]]
    assert asked == [("tofu", ["version", "-json"]), ("ansible-playbook", ["--version"])]
    assert len(fakes.calls(versions=True)) == len(expected) + 2
    assert [r.stack for r in result.results] == [row[0] for row in DEFAULT_PINNED]
    assert all(r.action == ("apply" if apply else "plan") for r in result.results)


def test_backend_files_match_opentofu_s3_options(default_copy, fakes, state):
    run_stacks(default_copy, "042-vaultwarden-lxc", apply=False, repo_root=REPO)
    wd = state / "tofu" / "042-vaultwarden-lxc"
    assert json.loads((wd / "backend.tf.json").read_text()) == {"terraform": {"backend": {"s3": {}}}}
    hcl = (wd / "backend.hcl").read_text()
    body = [line for line in hcl.splitlines() if not line.startswith("#")]
    assert body == [
        'bucket                      = "tofu-state"',
        'key                         = "ralf/042-vaultwarden-lxc/terraform.tfstate"',
        'region                      = "us-east-1"',
        'endpoints                   = { s3 = "http://10.10.30.10:9000" }',
        "use_path_style              = true",
        "skip_credentials_validation = true",
        "skip_region_validation      = true",
        "skip_requesting_account_id  = true",
        "skip_metadata_api_check     = true",
        "skip_s3_checksum            = true",
        "use_lockfile                = true",
    ]
    assert hcl == backend_config(default_copy, "042-vaultwarden-lxc")
    assert backend_stub() == (wd / "backend.tf.json").read_text()
    # the root module rendered from the platform sits next to it
    main = json.loads((wd / "main.tf.json").read_text())
    assert main["module"]["lxc"]["vm_id"] == 4020


def test_local_state_stack_has_no_backend_and_no_minio_credentials(default_copy, fakes, state):
    wd = state / "tofu" / "030-minio-lxc"
    wd.mkdir(parents=True)
    (wd / "backend.hcl").write_text("stale")  # left over from an older configuration: must go
    run_stacks(default_copy, "030-minio-lxc", apply=True, repo_root=REPO)
    assert not (wd / "backend.hcl").exists() and not (wd / "backend.tf.json").exists()
    init = fakes.calls("tofu")[0]
    assert init["argv"] == INIT_LOCAL
    assert "AWS_ACCESS_KEY_ID" not in init["env"]
    assert {"TF_VAR_pm_api_url", "TF_VAR_pm_api_token_id", "TF_VAR_pm_api_token_secret",
            "TF_VAR_ssh_public_key"} <= set(init["env"])


def test_credentials_go_in_as_environment_only(default_copy, fakes, state):
    fakes.behave(echo_secret="apply")
    result = run_stacks(default_copy, "020-postgres-lxc", apply=True, repo_root=REPO)
    assert result.ok
    minio = (default_copy.secrets_path / "minio.env").read_text()
    minio_password = [line.split("=", 1)[1] for line in minio.splitlines() if line.startswith("MINIO_ROOT_PASSWORD=")][0]
    for call in fakes.calls("tofu"):
        assert {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "TF_VAR_pm_api_token_secret"} <= set(call["env"])
        assert not any(PVE_SECRET in a or minio_password in a for a in call["argv"])
    files = [p for p in (state / "tofu").rglob("*") if p.is_file()] + [p for p in result.run_dir.rglob("*") if p.is_file()]
    for p in files:
        text = p.read_text()
        assert PVE_SECRET not in text and minio_password not in text, p
    log = result.results[0].log_path.read_text()
    assert "token is ***" in log and "aws is ***" in log  # the stand-in printed them; the log redacts


def test_already_exists_imports_and_applies_again(default_copy, fakes, state):
    fakes.behave(already_exists=True)
    result = run_stacks(default_copy, "042-vaultwarden-lxc", apply=True, repo_root=REPO)
    assert result.ok
    calls = fakes.calls("tofu")
    assert [c["argv"] for c in calls] == [INIT_S3, PLAN, SHOW, APPLY, PLAN, SHOW, APPLY]
    # the adoption is an import block in the root module while it is planned and applied, and only then
    block = {"import": [{"to": "module.lxc.proxmox_virtual_environment_container.this", "id": "pve-deploy/4020"}]}
    assert [c["import_block"] for c in calls] == [None] * 4 + [block] * 3
    assert not (state / "tofu" / "042-vaultwarden-lxc" / "ralf_import.tf.json").exists()
    r = result.results[0]
    assert r.result == "succeeded" and r.note == "imported existing container pve-deploy/4020"
    assert r.changed == 2  # the apply's change_summary: 1 imported + 1 changed in place


def test_failed_import_fails_the_stack_and_stops_the_run(default_copy, fakes, state):
    fakes.behave(already_exists=True, import_fails=True)
    result = run_stacks(default_copy, "042-vaultwarden-lxc,043-vaultwarden-config", apply=True, repo_root=REPO,
                        import_retries=2, import_retry_delay=0.01)
    assert not result.ok and result.exit_code == 1
    assert [r.result for r in result.results] == ["failed", "not run"]
    note = result.results[0].note
    assert note.startswith("import of pve-deploy/4020 failed: Cannot import non-existent remote object: While ")
    assert note.endswith(" after 3 attempts")
    assert [c["argv"][0] for c in fakes.calls("tofu")] == ["init", "plan", "show", "apply", "plan", "plan", "plan"]
    assert not (state / "tofu" / "042-vaultwarden-lxc" / "ralf_import.tf.json").exists()


def test_import_waits_for_a_container_proxmox_is_still_creating(default_copy, fakes, state, monkeypatch):
    # the original polled until the CT appeared; the import plan is retried with a growing pause
    monkeypatch.setenv("RALF_IMPORT_RETRY_DELAY", "0.01")
    fakes.behave(already_exists=True, import_missing_times=2)
    lines: list[str] = []
    result = run_stacks(default_copy, "042-vaultwarden-lxc", apply=True, repo_root=REPO, on_output=lines.append)
    assert result.ok, result.results[0].note
    assert [c["argv"][0] for c in fakes.calls("tofu")] == [
        "init", "plan", "show", "apply", "plan", "plan", "plan", "show", "apply"]
    retries = [line for line in lines if "not importable yet" in line]
    assert retries == [
        "[ralf] container pve-deploy/4020 not importable yet (Cannot import non-existent remote object); retry 1/3 in 0.01s",
        "[ralf] container pve-deploy/4020 not importable yet (Cannot import non-existent remote object); retry 2/3 in 0.02s",
    ]
    assert retries[0] in result.results[0].log_path.read_text()
    assert result.results[0].note == "imported existing container pve-deploy/4020"


def test_import_error_that_waiting_cannot_fix_is_not_retried(default_copy, fakes, state):
    fakes.behave(already_exists=True, import_error="HTTP 401 Unauthorized: invalid token")
    result = run_stacks(default_copy, "042-vaultwarden-lxc", apply=True, repo_root=REPO, import_retry_delay=0.01)
    assert result.results[0].note == "import of pve-deploy/4020 failed: HTTP 401 Unauthorized: invalid token"
    assert [c["argv"][0] for c in fakes.calls("tofu")] == ["init", "plan", "show", "apply", "plan"]


def test_a_killed_runs_import_block_does_not_outlive_it(default_copy, fakes, state):
    wd = state / "tofu" / "042-vaultwarden-lxc"
    wd.mkdir(parents=True)
    (wd / "ralf_import.tf.json").write_text('{"import": [{"to": "x.y", "id": "stale"}]}')
    assert run_stacks(default_copy, "042-vaultwarden-lxc", apply=True, repo_root=REPO).ok
    assert [c["import_block"] for c in fakes.calls("tofu")] == [None] * 4


def test_plan_never_imports(default_copy, fakes, state):
    fakes.behave(already_exists=True)
    result = run_stacks(default_copy, "042-vaultwarden-lxc", apply=False, repo_root=REPO)
    assert result.ok and result.results[0].changed == 1
    assert [c["argv"][0] for c in fakes.calls("tofu")] == ["init", "plan", "show"]


def test_state_lock_held_is_reported(default_copy, fakes, state):
    fakes.behave(lock="apply")
    result = run_stacks(default_copy, "044-n8n-lxc", apply=True, repo_root=REPO)
    r = result.results[0]
    assert r.result == "failed" and "state is locked" in r.note
    assert "Error acquiring the state lock" in r.log_path.read_text()
    assert [c["argv"][0] for c in fakes.calls("tofu")] == ["init", "plan", "show", "apply"]  # no import for a lock


def test_other_apply_error_is_not_imported(default_copy, fakes, state):
    fakes.behave(fail="apply")
    result = run_stacks(default_copy, "044-n8n-lxc", apply=True, repo_root=REPO)
    assert result.results[0].result == "failed" and result.results[0].note == "apply failed: something else broke"
    assert [c["argv"][0] for c in fakes.calls("tofu")] == ["init", "plan", "show", "apply"]


def test_missing_tofu_is_one_clear_error(default_copy, tmp_path, state, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(ExternalToolError, match="OpenTofu binary 'tofu' not found on PATH.*--tofu-binary"):
        run_stacks(default_copy, "044-n8n-lxc", apply=False, repo_root=REPO)
    assert not (state / "runs").exists()


def test_terraform_is_selectable(default_copy, fakes, state, monkeypatch):
    fakes.install("terraform")
    run_stacks(default_copy, "044-n8n-lxc", apply=False, repo_root=REPO, tofu_binary="terraform")
    assert {c["prog"] for c in fakes.calls()} == {"terraform"}
    monkeypatch.setenv("RALF_TOFU", "terraform")
    run_stacks(default_copy, "044-n8n-lxc", apply=False, repo_root=REPO)
    assert {c["prog"] for c in fakes.calls()} == {"terraform"}


def test_missing_proxmox_credentials_fail_before_anything_runs(default_copy, fakes, state):
    (default_copy.secrets_path / "pve.env").unlink()
    with pytest.raises(SecretError) as e:
        run_stacks(default_copy, "044-n8n-lxc", apply=True, repo_root=REPO)
    assert "PVE_TOKEN_ID" in str(e.value) and "pve.env" in str(e.value)
    assert fakes.calls() == []


def test_proxmox_credentials_from_environment(default_copy, fakes, state, monkeypatch):
    (default_copy.secrets_path / "pve.env").unlink()
    monkeypatch.setenv("PVE_TOKEN_ID", "id@pve!x")
    monkeypatch.setenv("PVE_TOKEN_SECRET", "from-env-secret")
    result = run_stacks(default_copy, "044-n8n-lxc", apply=False, repo_root=REPO)
    assert result.ok


def test_missing_minio_credentials_name_file_and_key(default_copy, fakes, state):
    p = default_copy.secrets_path / "minio.env"
    p.write_text("\n".join(line for line in p.read_text().splitlines() if not line.startswith("MINIO_ROOT_PASSWORD")))
    with pytest.raises(SecretError, match="MINIO_ROOT_PASSWORD in .*minio.env"):
        run_stacks(default_copy, "044-n8n-lxc", apply=False, repo_root=REPO)
    # the local-state stack does not need them
    assert run_stacks(default_copy, "030-minio-lxc", apply=False, repo_root=REPO).ok


def test_run_directory_has_a_log_per_stack_and_a_summary(default_copy, fakes, state):
    fakes.install("ansible-playbook")
    result = run_stacks(default_copy, "044-n8n-lxc 045-n8n-config", apply=True, repo_root=REPO)
    assert result.run_dir.parent == state / "runs"
    logs = sorted(p.name for p in result.run_dir.glob("*.log"))
    assert logs == ["01-044-n8n-lxc.log", "02-045-n8n-config.log"]
    summary = json.loads((result.run_dir / "summary.json").read_text())
    assert summary == result.to_dict()
    assert [s["result"] for s in summary["stacks"]] == ["succeeded", "succeeded"]
    assert "$ " in (result.run_dir / "01-044-n8n-lxc.log").read_text()
    assert stat.S_IMODE(os.stat(state / "stacks.lock").st_mode) == 0o600


def test_tofu_commands_run_without_the_startup_sigint_repeat(default_copy, fakes, state, monkeypatch):
    """OpenTofu must get exactly one SIGINT (a second one drops its state lock); Ansible gets the repeat."""
    import ralf.stacks.ansible
    import ralf.stacks.tofu
    from ralf.stacks import process

    seen: list[tuple[str, bool]] = []

    def recording(argv, **kw):
        seen.append((Path(argv[0]).name, kw.get("resend_on_startup", True)))
        return process.run_streamed(argv, **kw)

    monkeypatch.setattr(ralf.stacks.tofu, "run_streamed", recording)
    monkeypatch.setattr(ralf.stacks.ansible, "run_streamed", recording)
    result = run_stacks(default_copy, "042-vaultwarden-lxc,043-vaultwarden-config", apply=True, repo_root=REPO)
    assert result.ok
    assert {repeat for name, repeat in seen if name == "tofu"} == {False}
    assert {repeat for name, repeat in seen if name == "ansible-playbook"} == {True}
