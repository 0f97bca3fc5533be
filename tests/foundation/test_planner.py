"""Every planner branch: standard order, group, service, Phase 1, platform, template, A, B, none, cleanroom."""

from __future__ import annotations

import subprocess

import pytest
from runbook_expectations import NEW_SERVICE_YAML, STANDARD

from ralf.errors import UsageError
from ralf.planner import build_plan


def names(plan):
    return [s.template for s in plan.steps]


def test_standard_order(default_catalog):
    p = build_plan(default_catalog)
    assert p.pattern == "standard"
    assert names(p) == STANDARD
    assert p.steps[0].stacks == ("042-vaultwarden-lxc", "043-vaultwarden-config")
    assert p.steps[1].kind == "smoke" and p.steps[1].target == "vault"
    assert not p.needs_confirmation


@pytest.mark.parametrize(
    "request_, pattern, expected",
    [
        ("exo", "service", ["RALF Exo Apply", "RALF AI Smoke"]),
        ("n8n", "service", ["RALF N8N Apply", "RALF Automation Smoke"]),
        ("mail", "service", ["RALF Mail Apply", "RALF Communication Smoke"]),
        ("vault", "group", ["RALF Vault Apply", "RALF Vault Smoke"]),
        ("communication", "group", ["RALF Communication Apply", "RALF Communication Smoke"]),
        ("postgres", "phase1", ["RALF Phase1 Config Apply", "RALF Phase1 Smoke"]),
        ("semaphore", "phase1", ["RALF Phase1 Config Apply", "RALF Phase1 Smoke"]),
        ("phase1", "phase1", ["RALF Phase1 Config Apply", "RALF Phase1 Smoke"]),
        ("platform", "platform", ["RALF Full Platform Apply", "RALF Full Platform Smoke"]),
        ("RALF AI Infra Apply", "template", ["RALF AI Infra Apply"]),
    ],
)
def test_requests(default_catalog, request_, pattern, expected):
    p = build_plan(default_catalog, request_)
    assert (p.pattern, names(p)) == (pattern, expected)
    assert all(s.reason for s in p.steps)


def test_unknown_request_is_a_usage_error(default_catalog):
    with pytest.raises(UsageError, match="unknown request 'nope'.*vault.*cleanroom"):
        build_plan(default_catalog, "nope")
    with pytest.raises(UsageError, match="not both"):
        build_plan(default_catalog, "vault", changed=["x"])


def test_cleanroom_pairs_then_smokes(default_catalog):
    p = build_plan(default_catalog, "cleanroom")
    assert names(p) == [
        "RALF MinIO Apply", "RALF MinIO Smoke", "RALF Postgres Apply", "RALF Postgres Smoke",
        "RALF Gitea Apply", "RALF Gitea Smoke", "RALF Semaphore Apply", "RALF Semaphore Smoke",
        "RALF Phase1 Smoke", "RALF Vault Smoke", "RALF Automation Smoke", "RALF Communication Smoke",
        "RALF AI Smoke",
    ]
    assert p.steps[0].stacks == ("030-minio-lxc", "031-minio-config")
    assert p.needs_confirmation


def test_pattern_a_one_service(default_catalog):
    p = build_plan(default_catalog, changed=["stacks/045-n8n-config/playbook.yml"])
    assert p.pattern == "A"
    assert names(p) == ["RALF N8N Apply", "RALF Automation Smoke"]
    assert "n8n changed (stacks/045-n8n-config/playbook.yml)" in p.steps[0].reason
    assert not p.needs_confirmation


def test_pattern_a_several_services_applies_then_each_group_smoke_once_in_standard_order(default_catalog):
    p = build_plan(default_catalog, changed=[
        "ansible/roles/exo/tasks/main.yml", "ansible/roles/mail/x", "ansible/roles/synapse/y",
        "stacks/043-vaultwarden-config/playbook.yml",
    ])
    assert names(p) == [
        "RALF Vaultwarden Apply", "RALF Synapse Apply", "RALF Mail Apply", "RALF Exo Apply",
        "RALF Vault Smoke", "RALF Communication Smoke", "RALF AI Smoke",
    ]


def test_pattern_a_for_a_phase1_service(default_catalog):
    p = build_plan(default_catalog, changed=["ansible/roles/gitea/defaults/main.yml"])
    assert p.pattern == "A"
    assert names(p) == ["RALF Phase1 Config Apply", "RALF Phase1 Smoke"]


def test_pattern_b_smoke_code_runs_all_group_smokes(default_catalog):
    p = build_plan(default_catalog, changed=["src/ralf/smoke/engine.py"])
    assert p.pattern == "B"
    assert names(p) == ["RALF Phase1 Config Apply", "RALF Phase1 Smoke", "RALF Vault Smoke",
                        "RALF Automation Smoke", "RALF Communication Smoke", "RALF AI Smoke"]
    assert p.needs_confirmation
    assert "smoke code runs for every group" in p.steps[2].reason


def test_pattern_b_seeder_only_needs_phase1_plus_touched_groups(default_catalog):
    p = build_plan(default_catalog, changed=["src/ralf/semaphore/reconcile.py", "ansible/roles/exo/x.yml"])
    assert p.pattern == "B"
    assert names(p) == ["RALF Phase1 Config Apply", "RALF Phase1 Smoke", "RALF Exo Apply", "RALF AI Smoke"]


def test_unknown_paths_are_treated_as_shared_base(default_catalog):
    p = build_plan(default_catalog, changed=["somewhere/new.sh"])
    assert p.pattern == "B"
    assert len([s for s in p.steps if s.kind == "smoke"]) == 5


def test_docs_only_is_an_empty_plan_with_a_message(default_catalog):
    p = build_plan(default_catalog, changed=["README.md", "docs/runbook.md", "tests/x.py"])
    assert p.pattern == "none" and p.steps == []
    assert "nothing deployable changed" in p.message


def test_fingerprint_follows_the_steps(default_catalog):
    a = build_plan(default_catalog)
    assert a.fingerprint() == build_plan(default_catalog).fingerprint()
    assert a.fingerprint() != build_plan(default_catalog, "vault").fingerprint()
    d = a.to_dict()
    assert d["steps"][0] == {"template": "RALF Vault Apply", "kind": "apply",
                             "stacks": ["042-vaultwarden-lxc", "043-vaultwarden-config"],
                             "reason": "standard order: group vault"}
    assert d["steps"][1]["target"] == "vault"


@pytest.fixture
def git_repo(tmp_path):
    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q", "-b", "main")
    git("config", "user.email", "t@example.invalid")
    git("config", "user.name", "t")
    (tmp_path / "stacks/045-n8n-config").mkdir(parents=True)
    (tmp_path / "stacks/045-n8n-config/playbook.yml").write_text("- hosts: n8n\n")
    (tmp_path / "README.md").write_text("x\n")
    git("add", "-A")
    git("commit", "-qm", "base")
    return tmp_path


def test_changed_from_git_ref_sees_modified_and_untracked_files(default_catalog, git_repo):
    (git_repo / "stacks/045-n8n-config/playbook.yml").write_text("- hosts: n8n\n  roles: [n8n]\n")
    (git_repo / "ansible/roles/exo").mkdir(parents=True)
    (git_repo / "ansible/roles/exo/new.yml").write_text("{}\n")
    p = build_plan(default_catalog, changed_from="HEAD", repo_root=git_repo)
    assert names(p) == ["RALF N8N Apply", "RALF Exo Apply", "RALF Automation Smoke", "RALF AI Smoke"]


def test_changed_from_bad_ref_is_a_usage_error(default_catalog, git_repo):
    with pytest.raises(UsageError, match="cannot compare with 'nope'"):
        build_plan(default_catalog, changed_from="nope", repo_root=git_repo)


def test_changed_from_docs_only(default_catalog, git_repo):
    (git_repo / "README.md").write_text("y\n")
    p = build_plan(default_catalog, changed_from="HEAD", repo_root=git_repo)
    assert p.pattern == "none"


@pytest.fixture
def platform_repo(git_repo, repo_root):
    """A git repository holding a copy of the default platform file, committed."""
    (git_repo / "platform.yaml").write_text((repo_root / "platform.yaml").read_text())
    subprocess.run(["git", "add", "-A"], cwd=git_repo, check=True, capture_output=True)
    subprocess.run(["git", "commit", "-qm", "platform"], cwd=git_repo, check=True, capture_output=True)
    return git_repo


def _catalog_after_edit(repo, old: str, new: str):
    from ralf.catalog import Catalog
    from ralf.loader import load_platform

    path = repo / "platform.yaml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    return Catalog(load_platform(path))


def test_editing_one_service_in_the_platform_file_is_pattern_a_for_it(platform_repo):
    c = _catalog_after_edit(platform_repo, "size: {cores: 1, memory_mb: 2048, disk_gb: 16}\n    stacks: [044-n8n-lxc",
                            "size: {cores: 2, memory_mb: 4096, disk_gb: 16}\n    stacks: [044-n8n-lxc")
    p = build_plan(c, changed_from="HEAD", repo_root=platform_repo)
    assert p.pattern == "A"
    assert names(p) == ["RALF N8N Apply", "RALF Automation Smoke"]
    assert "platform.yaml: services.n8n" in p.steps[0].reason


def test_adding_a_service_to_the_platform_file_deploys_it(platform_repo):
    c = _catalog_after_edit(platform_repo, "  exo:\n", NEW_SERVICE_YAML + "\n  exo:\n")
    p = build_plan(c, changed_from="HEAD", repo_root=platform_repo)
    assert names(p) == ["RALF Grafana Apply", "RALF Automation Smoke"]


def test_a_shared_section_of_the_platform_file_is_pattern_b(platform_repo):
    c = _catalog_after_edit(platform_repo, "  gateway: 10.10.0.1", "  gateway: 10.10.0.254")
    p = build_plan(c, changed_from="HEAD", repo_root=platform_repo)
    assert p.pattern == "B"
    # every CT is made from the network settings: each service's Apply, then every group's smoke
    assert [s.template for s in p.steps if s.kind == "apply"][1:] == [
        c.service_apply(s) for s in c.platform.services if c.group_of(s) != "phase1"]
    assert "vaultwarden: its CT is made from the network settings (platform.yaml: network)" in p.steps[2].reason
    assert "network changed in the platform file" in p.steps[-1].reason
    assert len([s for s in p.steps if s.kind == "smoke"]) == 5


def test_only_planning_rules_changed_in_the_platform_file_deploys_nothing(platform_repo):
    c = _catalog_after_edit(platform_repo, "    - LICENSE\n", "    - LICENSE\n    - notes/\n")
    p = build_plan(c, changed_from="HEAD", repo_root=platform_repo)
    assert p.pattern == "none" and p.steps == []


def test_an_unreadable_old_platform_file_falls_back_to_shared_base(platform_repo):
    subprocess.run(["git", "rm", "-q", "--cached", "platform.yaml"], cwd=platform_repo, check=True)
    subprocess.run(["git", "commit", "-qm", "drop"], cwd=platform_repo, check=True, capture_output=True)
    c = _catalog_after_edit(platform_repo, "  gateway: 10.10.0.1", "  gateway: 10.10.0.1")
    p = build_plan(c, changed_from="HEAD", repo_root=platform_repo)
    assert p.pattern == "B"


def test_pattern_b_a_changed_nginx_tls_role_applies_every_service_behind_nginx(default_catalog):
    p = build_plan(default_catalog, changed=["ansible/roles/nginx_tls/templates/site.conf.j2"])
    assert p.pattern == "B"
    behind_nginx = [n for n, s in default_catalog.platform.services.items() if "nginx" in s.units]
    phase1 = set(default_catalog.services_of("phase1"))
    applies = [s.template for s in p.steps if s.kind == "apply"]
    assert applies == ["RALF Phase1 Config Apply"] + [default_catalog.service_apply(s) for s in behind_nginx
                                                      if s not in phase1]
    assert applies[1:] == ["RALF Vaultwarden Apply", "RALF N8N Apply", "RALF Synapse Apply", "RALF Exo Apply"]
    config = set(p.steps[0].stacks)  # Phase 1's services behind nginx are re-converged by its Config Apply
    assert {st for s in behind_nginx if s in phase1 for st in default_catalog.stacks_of_services([s], "config")} <= config
    assert "n8n: uses the role nginx_tls" in p.steps[3].reason
    assert [s.template for s in p.steps if s.kind == "smoke"][1:] == [
        "RALF Vault Smoke", "RALF Automation Smoke", "RALF Communication Smoke", "RALF AI Smoke"]


def test_pattern_b_roles_pulled_in_by_other_roles_and_the_tofu_module_are_traced(default_catalog):
    nodejs = build_plan(default_catalog, changed=["ansible/roles/nodejs/tasks/main.yml"])
    assert [s.template for s in nodejs.steps if s.kind == "apply"][1:] == ["RALF N8N Apply", "RALF Exo Apply"]
    module = build_plan(default_catalog, changed=["tofu/modules/lxc/main.tf"])
    assert [s.template for s in module.steps if s.kind == "apply"][1:] == [
        default_catalog.service_apply(s) for s in default_catalog.platform.services
        if default_catalog.group_of(s) != "phase1"]
    smoke_only = build_plan(default_catalog, changed=["src/ralf/smoke/engine.py"])
    assert [s.kind for s in smoke_only.steps].count("apply") == 1  # ralf's own code: no service uses it as a role
