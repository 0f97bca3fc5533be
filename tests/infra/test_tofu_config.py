"""The generated OpenTofu root modules of every *-lxc stack and the shared LXC module they call."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from ralf.errors import UsageError
from ralf.tofu_config import PROVIDER_SOURCE, RESOURCE_ADDRESS, import_id, module_inputs, render_stack

REPO = Path(__file__).resolve().parents[2]
MODULE = REPO / "tofu" / "modules" / "lxc"


def _tofu_stacks(platform):
    return [(n, s, r.name) for n, s in platform.services.items() for r in s.stack_refs if r.type == "tofu"]


def _module_variables() -> dict[str, bool]:
    """variable name -> has a default, parsed from the module's variables.tf."""
    text = (MODULE / "variables.tf").read_text()
    out = {}
    for m in re.finditer(r'variable\s+"(\w+)"\s*\{(.*?)\n\}', text, re.S):
        out[m.group(1)] = re.search(r"^\s*default\s*=", m.group(2), re.M) is not None
    return out


def _render(platform, stack):
    files = render_stack(platform, stack, REPO)
    assert set(files) == {"main.tf.json"}
    return json.loads(files["main.tf.json"])


def test_every_default_tofu_stack_renders(default_platform):
    stacks = _tofu_stacks(default_platform)
    assert len(stacks) == 9
    for service, svc, stack in stacks:
        doc = _render(default_platform, stack)
        req = doc["terraform"]["required_providers"]["proxmox"]
        assert req["source"] == PROVIDER_SOURCE and req["version"].startswith("~> ")
        assert "required_version" in doc["terraform"]
        assert "backend" not in doc["terraform"], "the stack runner writes the backend, not render_stack"
        prov = doc["provider"]["proxmox"]
        assert "var.pm_api_url" in prov["endpoint"]
        assert prov["api_token"] == "${var.pm_api_token_id}=${var.pm_api_token_secret}"
        assert prov["insecure"] is default_platform.proxmox.insecure_tls
        assert doc["variable"]["pm_api_token_id"]["sensitive"] is True
        assert doc["variable"]["pm_api_token_secret"]["sensitive"] is True
        assert {"pm_api_url", "ssh_public_key"} <= set(doc["variable"])
        mod = doc["module"]["lxc"]
        assert Path(mod["source"]).is_absolute() and Path(mod["source"]) == MODULE.resolve()
        assert mod["vm_id"] == svc.ct_id
        assert mod["hostname"] == svc.hostname
        assert mod["ipv4_address"] == f"{svc.ip}/16"
        assert mod["ipv4_gateway"] == default_platform.network.gateway
        assert mod["node_name"] == default_platform.proxmox.node
        assert mod["bridge"] == default_platform.proxmox.bridge
        assert mod["datastore_id"] == default_platform.proxmox.storage
        assert mod["template_file_id"] == default_platform.proxmox.lxc_template
        assert (mod["cores"], mod["memory_mb"], mod["disk_gb"], mod["swap_mb"]) == (
            svc.size.cores, svc.size.memory_mb, svc.size.disk_gb, svc.size.swap_mb)
        assert mod["nesting"] is svc.size.nesting
        assert mod["ssh_public_key"] == "${var.ssh_public_key}"
        assert mod["tags"] == sorted({"ralf", svc.group, service})  # as Proxmox stores them: no drift
        assert doc["moved"] == [{"from": f"proxmox_virtual_environment_container.{service}", "to": RESOURCE_ADDRESS}]


def test_every_ct_gets_nesting_for_systemds_sandboxed_units(default_platform):
    # Ubuntu 24.04's own units (logind, resolved, networkd) and packaged services (dovecot, synapse) use
    # systemd sandboxing, which an unprivileged CT only allows with nesting; Proxmox defaults it on.
    nesting = {s: _render(default_platform, st)["module"]["lxc"]["nesting"] for s, _, st in _tofu_stacks(default_platform)}
    assert set(nesting.values()) == {True} and len(nesting) == 9
    text = (MODULE / "main.tf").read_text()
    assert re.search(r"\n  features \{\n    nesting = var.nesting\n  \}", text)  # always written: no drift on false


def test_tags_are_stored_the_proxmox_way():
    from ralf.tofu_config import proxmox_tags

    assert proxmox_tags("ralf", "Web", "vaultwarden", "web") == ["ralf", "vaultwarden", "web"]


def test_a_service_on_another_cluster_node(write_platform, repo_root):
    from ralf.loader import load_platform

    text = (repo_root / "platform.yaml").read_text()
    text = text.replace("  ssh_user: root\n  # The API", "  ssh_user: root\n  nodes:\n    pve-2: {ssh_host: 10.10.10.11}\n  # The API", 1)
    text = text.replace("    ct_id: 4020\n", "    ct_id: 4020\n    node: pve-2\n", 1)
    p = load_platform(write_platform(text))
    assert module_inputs(p, "042-vaultwarden-lxc")["node_name"] == "pve-2"
    assert import_id(p, "042-vaultwarden-lxc") == "pve-2/4020"
    assert module_inputs(p, "044-n8n-lxc")["node_name"] == "pve-deploy"  # the default node


def test_an_unknown_node_is_a_validation_error(write_platform, repo_root):
    from ralf.errors import PlatformError
    from ralf.loader import load_platform

    text = (repo_root / "platform.yaml").read_text().replace("    ct_id: 4020\n", "    ct_id: 4020\n    node: pve-9\n", 1)
    with pytest.raises(PlatformError, match=r"services.vaultwarden.node.*unknown Proxmox node 'pve-9'; expected one of pve-deploy"):
        load_platform(write_platform(text))


def test_module_inputs_match_the_module_variables(default_platform):
    declared = _module_variables()
    required = {k for k, has_default in declared.items() if not has_default}
    for _, _, stack in _tofu_stacks(default_platform):
        passed = set(_render(default_platform, stack)["module"]["lxc"]) - {"source"}
        assert required <= passed, f"{stack}: missing {required - passed}"
        assert passed <= set(declared), f"{stack}: unknown module inputs {passed - set(declared)}"


def test_module_declares_the_container_resource():
    text = (MODULE / "main.tf").read_text()
    assert RESOURCE_ADDRESS == "module.lxc.proxmox_virtual_environment_container.this"
    assert len(re.findall(r'resource\s+"proxmox_virtual_environment_container"\s+"this"', text)) == 1
    for needle in ("node_name", "vm_id", "unprivileged  = true", "started       = true", "start_on_boot = true",
                   "initialization", "hostname", "ip_config", "ipv4", "user_account", "network_interface",
                   "disk", "datastore_id", "memory", "dedicated", "cpu", "cores", "operating_system",
                   "template_file_id", 'type             = "ubuntu"', "nesting"):
        assert needle in text, needle
    versions = (MODULE / "versions.tf").read_text()
    assert 'source  = "bpg/proxmox"' in versions and 'version = "~>' in versions


def test_import_id_is_node_slash_ct_id(default_platform):
    assert import_id(default_platform, "112-mail-lxc") == "pve-deploy/11020"
    assert import_id(default_platform, "030-minio-lxc") == "pve-deploy/3010"


@pytest.mark.parametrize("stack", ["031-minio-config", "999-nope-lxc"])
def test_non_tofu_or_unknown_stack_is_a_usage_error(default_platform, stack):
    with pytest.raises(UsageError):
        render_stack(default_platform, stack, REPO)
    with pytest.raises(UsageError):
        import_id(default_platform, stack)


def test_values_follow_the_platform_file(write_platform, repo_root):
    from ralf.loader import load_platform

    text = (repo_root / "platform.yaml").read_text()
    text = text.replace("bridge: vmbr0", "bridge: vmbr9").replace("ct_id: 4020", "ct_id: 4999")
    text = text.replace("cidr: 10.10.0.0/16", "cidr: 10.10.0.0/17")
    p = load_platform(write_platform(text))
    inputs = module_inputs(p, "042-vaultwarden-lxc")
    assert (inputs["bridge"], inputs["vm_id"], inputs["ipv4_address"]) == ("vmbr9", 4999, "10.10.40.20/17")
    assert import_id(p, "042-vaultwarden-lxc") == "pve-deploy/4999"


def test_module_is_formatted_hcl():
    exe = shutil.which("tofu") or shutil.which("terraform")
    if exe is None:
        pytest.skip("neither tofu nor terraform is installed; the structural checks above still ran")
    r = subprocess.run([exe, "fmt", "-check", "-diff", str(MODULE)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
