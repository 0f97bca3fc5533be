"""The OpenTofu root module of each ``*-lxc`` stack, generated from the platform file.

Every LXC stack is the same shape: the bpg/proxmox provider, four variables (API URL, token id and
secret, SSH public key) and one call of the shared module ``tofu/modules/lxc`` with the service's
CT values (node, id, hostname, IP/prefix, gateway, bridge, storage, template, size), and a ``moved``
block from the original RALF's address (``proxmox_virtual_environment_container.<service>``) so a
running platform's state is adopted without replacing a CT. Writing those values
into nine hand-copied directories was how the original drifted, so ralf renders them per run into
``main.tf.json`` (JSON syntax: generated, never edited, checkable with ``json``). The S3 backend
block is not written here: the stack runner adds it, because it knows whether the stack keeps
local state.
"""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path

from ralf.errors import UsageError
from ralf.model import Platform
from ralf.stacks.versions import TOFU_MIN

CONTAINER_TYPE = "proxmox_virtual_environment_container"
RESOURCE_ADDRESS = f"module.lxc.{CONTAINER_TYPE}.this"
PROVIDER_SOURCE = "bpg/proxmox"
PROVIDER_VERSION = "~> 0.66"
# The S3 backend ralf writes uses use_lockfile (OpenTofu >= 1.10); the run checks the binary against the same.
REQUIRED_VERSION = ">= " + ".".join(map(str, TOFU_MIN))
MODULE_DIR = Path("tofu") / "modules" / "lxc"


def _tofu_service(platform: Platform, stack_name: str):
    """The service owning a tofu stack, or a UsageError naming the problem."""
    for sname, svc in platform.services.items():
        for ref in svc.stack_refs:
            if ref.name != stack_name:
                continue
            if ref.type != "tofu":
                raise UsageError(f"stack {stack_name!r} is an Ansible stack, not an OpenTofu (LXC) stack")
            return sname, svc
    known = [r.name for s in platform.services.values() for r in s.stack_refs if r.type == "tofu"]
    raise UsageError(f"unknown OpenTofu stack {stack_name!r}; known: {', '.join(known) or 'none'}")


def _proxmox(platform: Platform):
    if platform.proxmox is None:
        raise UsageError("the platform has no proxmox section; OpenTofu stacks need one")
    return platform.proxmox


def import_id(platform: Platform, stack_name: str) -> str:
    """The import id of the stack's container for bpg/proxmox: ``<node>/<ct_id>`` (the service's node)."""
    _, svc = _tofu_service(platform, stack_name)
    return f"{_proxmox(platform).node_of(svc)}/{svc.ct_id}"


def proxmox_tags(*tags: str) -> list[str]:
    """Tags as Proxmox stores them (lower case, sorted, once each): anything else drifts on every plan."""
    return sorted({t.lower() for t in tags if t})


def original_address(service_name: str, resource_type: str = CONTAINER_TYPE) -> str:
    """Where the original RALF stacks kept the service's CT in the state: ``<type>.<service>``."""
    return f"{resource_type}.{service_name}"


def moved_blocks(service_name: str, resource_type: str = CONTAINER_TYPE) -> list[dict]:
    """``moved`` from the original's address to ralf's: a running platform's state is adopted, not replaced.

    A moved block whose ``from`` is not in the state does nothing, so every stack carries it."""
    return [{"from": original_address(service_name, resource_type), "to": f"module.lxc.{resource_type}.this"}]


def module_inputs(platform: Platform, stack_name: str) -> dict:
    """The CT values passed to the LXC module, straight from the platform file."""
    sname, svc = _tofu_service(platform, stack_name)
    px = _proxmox(platform)
    if svc.size is None:
        raise UsageError(f"service {sname!r} has no size; its OpenTofu stack {stack_name!r} needs one")
    if svc.ct_id is None:
        raise UsageError(f"service {sname!r} has no ct_id; its OpenTofu stack {stack_name!r} needs one")
    prefix = ipaddress.ip_network(platform.network.cidr).prefixlen
    return {
        "node_name": px.node_of(svc),
        "vm_id": svc.ct_id,
        "hostname": svc.hostname,
        "description": f"{sname} ({stack_name}), managed by ralf",
        "ipv4_address": f"{svc.ip}/{prefix}",
        "ipv4_gateway": platform.network.gateway,
        "dns_servers": list(platform.network.dns),
        "dns_domain": platform.internal_domain,
        "bridge": px.bridge,
        "datastore_id": px.storage,
        "template_file_id": px.lxc_template,
        "cores": svc.size.cores,
        "memory_mb": svc.size.memory_mb,
        "swap_mb": svc.size.swap_mb,
        "disk_gb": svc.size.disk_gb,
        "nesting": svc.size.nesting,
        "tags": proxmox_tags("ralf", svc.group, sname),
    }


def literal(value):
    """A platform value as a literal in OpenTofu's JSON syntax: ``${`` and ``%{`` escaped (``$${``, ``%%{``),
    so a hostname like ``x${file("/etc/passwd")}`` is text, never an expression OpenTofu evaluates."""
    if isinstance(value, str):
        return value.replace("${", "$${").replace("%{", "%%{")
    if isinstance(value, list):
        return [literal(v) for v in value]
    if isinstance(value, dict):
        return {k: literal(v) for k, v in value.items()}
    return value


def render_stack(platform: Platform, stack_name: str, repo_root: Path) -> dict[str, str]:
    """Render the root module of a ``*-lxc`` stack: ``{"main.tf.json": <JSON text>}``."""
    px = _proxmox(platform)
    sname, _ = _tofu_service(platform, stack_name)
    inputs = literal(module_inputs(platform, stack_name))
    module_source = (Path(repo_root).resolve() / MODULE_DIR).as_posix()
    # bpg's endpoint is the bare https://host:port; the platform (like the original) may give .../api2/json.
    endpoint = '${trimsuffix(trimsuffix(var.pm_api_url, "/"), "/api2/json")}'
    doc = {
        "//": f"Generated by ralf from the platform file for stack {stack_name}; do not edit.",
        "terraform": {
            "required_version": REQUIRED_VERSION,
            "required_providers": {"proxmox": {"source": PROVIDER_SOURCE, "version": PROVIDER_VERSION}},
        },
        "variable": {
            "pm_api_url": {"type": "string", "default": px.api_url},
            "pm_api_token_id": {"type": "string", "sensitive": True},
            "pm_api_token_secret": {"type": "string", "sensitive": True},
            "ssh_public_key": {
                "type": "string",
                "default": "",
                "description": "public key for root in the CT; empty = none (set once, at creation)",
            },
        },
        "provider": {
            "proxmox": {
                "endpoint": endpoint,
                "api_token": "${var.pm_api_token_id}=${var.pm_api_token_secret}",
                # verified unless insecure_tls is set explicitly; the CA reaches the provider as SSL_CERT_FILE
                "insecure": px.insecure_tls,
            }
        },
        "module": {
            "lxc": {
                "source": module_source,
                **inputs,
                "ssh_public_key": "${var.ssh_public_key}",
            }
        },
        "moved": moved_blocks(sname),
        "output": {
            "ct_id": {"value": "${module.lxc.vm_id}"},
            "ipv4_address": {"value": "${module.lxc.ipv4_address}"},
        },
    }
    return {"main.tf.json": json.dumps(doc, indent=2, sort_keys=False) + "\n"}
