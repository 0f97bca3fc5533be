"""The catalog derived from the default platform: stacks, targets, the user's 28 templates."""

from __future__ import annotations

import pytest
from runbook_expectations import NEW_SERVICE_YAML, ORIGINAL_28


def test_the_original_28_templates_with_their_meaning(default_catalog):
    assert len(ORIGINAL_28) == 28
    for name, meaning in ORIGINAL_28.items():
        t = default_catalog.template(name)
        if t.kind == "apply":
            # stack sets match; the All Config order is ours (execution order), the rest match exactly
            assert set(t.stacks) == set(meaning.split()), name
            assert t.env["AUTO_APPLY"] == "1" and t.env["START_AT"] == "000"
            assert t.env["ONLY_STACKS"] == " ".join(t.stacks)
        else:
            assert t.target == meaning, name
            assert t.env == {}


@pytest.mark.parametrize("name", [n for n in ORIGINAL_28 if n != "RALF All Config Apply" and "Smoke" not in n])
def test_apply_templates_keep_the_originals_stack_order(default_catalog, name):
    assert " ".join(default_catalog.template(name).stacks) == ORIGINAL_28[name]


def test_template_names_are_unique_and_environments_are_shared(default_catalog):
    names = [t.name for t in default_catalog.templates]
    assert len(names) == len(set(names))
    assert default_catalog.template("RALF Vault Apply").environment == "RALF Vault Env"
    assert default_catalog.template("RALF Exo Apply").environment == "RALF Exo Only Env"
    assert default_catalog.template("RALF Full Platform Apply").environment == "RALF All Apply Env"
    smokes = {t.environment for t in default_catalog.templates if t.kind == "smoke"}
    assert smokes == {"RALF Smoke Env"}
    assert default_catalog.environments["RALF Smoke Env"] == {}
    assert default_catalog.environments["RALF AI Env"]["ONLY_STACKS"] == "090-exo-lxc 091-exo-config"


def test_stack_order_phase1_first_then_by_name(default_catalog):
    names = [s.name for s in default_catalog.stacks]
    assert names[:8] == [
        "030-minio-lxc", "031-minio-config", "020-postgres-lxc", "021-postgres-config",
        "034-gitea-lxc", "035-gitea-config", "040-semaphore-lxc", "041-semaphore-config",
    ]
    assert names[8:] == sorted(names[8:])
    types = {s.name: s.type for s in default_catalog.stacks}
    assert all(t == ("tofu" if n.endswith("-lxc") else "ansible") for n, t in types.items())
    assert [s.name for s in default_catalog.stacks if s.local_state] == ["030-minio-lxc"]


def test_targets_cover_services_groups_phase1_and_platform(default_catalog):
    t = default_catalog.targets
    assert t["communication"].services == ("synapse", "mail")
    assert t["phase1"].services == ("minio", "postgres", "gitea", "semaphore")
    assert t["exo"].kind == "service"
    assert len(t["platform"].services) == 9
    assert set(t) == {*default_catalog.platform.services, "phase1", "vault", "automation", "communication", "ai",
                      "platform"}


def test_unknown_target_lists_the_valid_ones(default_catalog):
    from ralf.errors import UsageError

    with pytest.raises(UsageError) as e:
        default_catalog.target("nope")
    assert e.value.exit_code == 2
    assert "vault" in str(e.value) and "platform" in str(e.value)


def test_single_service_to_group_smoke_map(default_catalog):
    assert default_catalog.service_to_group_smoke == {
        "vaultwarden": "RALF Vault Smoke",
        "n8n": "RALF Automation Smoke",
        "synapse": "RALF Communication Smoke",
        "mail": "RALF Communication Smoke",
        "exo": "RALF AI Smoke",
    }


def test_a_new_service_in_the_file_yields_its_templates_without_code(write_platform, repo_root):
    from ralf.catalog import Catalog
    from ralf.loader import load_platform

    text = (repo_root / "platform.yaml").read_text() + "\n" + NEW_SERVICE_YAML
    c = Catalog(load_platform(write_platform(text)))
    assert c.template("RALF Grafana Apply").stacks == ("046-grafana-lxc", "047-grafana-config")
    assert c.template("RALF Automation Apply").stacks == (
        "044-n8n-lxc", "045-n8n-config", "046-grafana-lxc", "047-grafana-config")
    assert c.service_to_group_smoke["grafana"] == "RALF Automation Smoke"


def test_lab_platform_has_no_empty_templates(lab_platform):
    from ralf.catalog import Catalog

    c = Catalog(lab_platform)
    assert all(t.stacks for t in c.templates if t.kind == "apply")
    assert "RALF Phase1 Infra Apply" not in c.template_index  # the lab has no containers to create
    assert len(c.deploy_groups) >= 2


def test_inventory_has_one_group_per_service(default_platform, lab_platform):
    from ralf.inventory import inventory_dict, inventory_ini

    ini = inventory_ini(default_platform)
    assert "[n8n]\nn8n ansible_host=10.10.40.30\n" in ini
    assert "ansible_user=root" in ini
    lab = inventory_dict(lab_platform)
    assert lab["all"]["vars"] == {"ansible_connection": "local"}
    assert set(lab["all"]["children"]) == set(lab_platform.services)


def test_stacks_of_services_follow_execution_order_whatever_order_they_are_asked_in(default_catalog):
    c = default_catalog
    services = list(c.platform.services)
    everything = c.stacks_of_services(services)
    assert everything == tuple(s.name for s in c.stacks)
    assert c.stacks_of_services(reversed(services)) == everything
    assert c.stacks_of_services(services + services) == everything  # a service named twice counts once
    infra = c.stacks_of_services(services, "infra")
    assert infra == tuple(s.name for s in c.stacks if s.role == "infra")
    assert c.stacks_of_services(["n8n"]) == tuple(s.name for s in c.stacks if s.service == "n8n")
    assert c.stacks_of_services(["no-such-service"]) == ()
