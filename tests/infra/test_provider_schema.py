"""The LXC module against the copy of bpg/proxmox's documented arguments (tofu/providers/bpg-proxmox.yaml).

No provider can be downloaded here, so ``tofu validate`` cannot check the module's arguments; this
does: every argument and block the module sets exists in the provider's docs, and every required one
(and every required block) is set — recursively, for the one resource ralf uses and the provider block.
"""

from __future__ import annotations

import json
from pathlib import Path

import hcl2
import pytest
import yaml

from ralf import tofu_config

REPO = Path(__file__).resolve().parents[2]
SCHEMA = yaml.safe_load((REPO / "tofu" / "providers" / "bpg-proxmox.yaml").read_text())
META = {"lifecycle", "depends_on", "count", "for_each", "provider"}  # OpenTofu's, not the provider's


def _key(k: str) -> str:
    return k.strip('"')


def _blocks(body: dict) -> dict[str, list[dict]]:
    """Nested blocks of an hcl2 body (``dynamic "x"`` counts as block x) -> their bodies."""
    out: dict[str, list[dict]] = {}
    for k, v in body.items():
        if _key(k) == "dynamic":
            for dyn in v:
                for name, spec in dyn.items():
                    out.setdefault(_key(name), []).extend(spec.get("content", []))
        elif isinstance(v, list) and v and all(isinstance(x, dict) and x.get("__is_block__") for x in v):
            out.setdefault(_key(k), []).extend(v)
    return out


def _attributes(body: dict) -> set[str]:
    blocks = _blocks(body)
    return {_key(k) for k in body if not k.startswith("__") and _key(k) not in blocks and _key(k) != "dynamic"}


def check(body: dict, schema: dict, where: str) -> list[str]:
    """Problems of one body against its schema mapping (recursing into blocks)."""
    problems = []
    blocks = _blocks(body)
    for name in _attributes(body) - META:
        if name not in schema:
            problems.append(f"{where}.{name}: not a documented argument")
        elif isinstance(schema[name], dict):
            problems.append(f"{where}.{name}: documented as a block, set as an argument")
    for name, bodies in blocks.items():
        if name in META:
            continue
        if not isinstance(schema.get(name), dict):
            problems.append(f"{where}.{name}: not a documented block")
            continue
        for i, b in enumerate(bodies):
            problems += check(b, schema[name], f"{where}.{name}[{i}]")
    present = _attributes(body) | set(blocks)
    for name, spec in schema.items():
        if name.startswith("_"):
            continue
        required = spec == "required" or (isinstance(spec, dict) and spec.get("_required"))
        if required and name not in present:
            problems.append(f"{where}.{name}: required by the provider, not set")
    return problems


def _module_resource() -> dict:
    doc = hcl2.load(open(REPO / "tofu" / "modules" / "lxc" / "main.tf"))
    [res] = doc["resource"]
    [(rtype, named)] = res.items()
    assert _key(rtype) == tofu_config.CONTAINER_TYPE
    [(name, body)] = named.items()
    assert _key(name) == "this"
    return body


def test_every_module_argument_is_documented_and_every_required_one_is_set():
    assert check(_module_resource(), SCHEMA["resources"][tofu_config.CONTAINER_TYPE], "container") == []


def test_the_generated_provider_block_uses_documented_arguments(default_platform):
    doc = json.loads(tofu_config.render_stack(default_platform, "042-vaultwarden-lxc", REPO)["main.tf.json"])
    provider = doc["provider"]["proxmox"]
    args = SCHEMA["provider_arguments"]
    assert set(provider) <= set(args)
    assert {k for k, v in args.items() if v == "required"} <= set(provider)
    assert doc["terraform"]["required_providers"]["proxmox"]["version"] == SCHEMA["version"] == tofu_config.PROVIDER_VERSION


@pytest.mark.parametrize("broken, expected", [
    ('  vm_idd = 1\n', "container.vm_idd: not a documented argument"),
    ('  features {\n    nestng = true\n  }\n', "container.features[0].nestng: not a documented argument"),
    ('  network_interface {\n    bridge = "vmbr0"\n  }\n', "container.network_interface[0].name: required by the provider, not set"),
])
def test_the_check_catches_an_undocumented_or_missing_argument(tmp_path, broken, expected):
    text = (REPO / "tofu" / "modules" / "lxc" / "main.tf").read_text()
    text = text.replace("  unprivileged  = true\n", "  unprivileged  = true\n" + broken, 1)
    p = tmp_path / "main.tf"
    p.write_text(text)
    body = next(iter(next(iter(hcl2.load(open(p))["resource"][0].values())).values()))
    assert expected in check(body, SCHEMA["resources"][tofu_config.CONTAINER_TYPE], "container")


def test_a_missing_required_block_is_caught():
    body = dict(_module_resource())
    body.pop("operating_system")
    assert check(body, SCHEMA["resources"][tofu_config.CONTAINER_TYPE], "container") == [
        "container.operating_system: required by the provider, not set"]
