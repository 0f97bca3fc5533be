"""The Ansible inventory generated from the platform: one group per service, one host per group.

Same shape as the original ``inventory/hosts.ini`` (``[vaultwarden]`` → ``10.10.40.20``) so playbooks
written against ``hosts: <service>`` keep working; the lab uses ``ansible_connection=local``.
"""

from __future__ import annotations

from ralf.model import Platform


def inventory_ini(platform: Platform) -> str:
    """Render the inventory as INI text (what ansible-playbook -i and Semaphore's static inventory take)."""
    a = platform.ansible
    lines = ["[all:vars]"]
    if a.connection == "local":
        lines.append("ansible_connection=local")
    else:
        lines.append(f"ansible_user={a.user}")
        if a.ssh_common_args:
            lines.append(f"ansible_ssh_common_args={a.ssh_common_args}")
    if a.python_interpreter:
        lines.append(f"ansible_python_interpreter={a.python_interpreter}")
    for name, svc in platform.services.items():
        lines += ["", f"[{name}]", f"{svc.hostname} ansible_host={svc.ip}"]
    return "\n".join(lines) + "\n"


def inventory_dict(platform: Platform) -> dict:
    """The same inventory as a dict in Ansible's YAML/JSON inventory layout."""
    a = platform.ansible
    all_vars: dict[str, str] = {}
    if a.connection == "local":
        all_vars["ansible_connection"] = "local"
    else:
        all_vars["ansible_user"] = a.user
        if a.ssh_common_args:
            all_vars["ansible_ssh_common_args"] = a.ssh_common_args
    if a.python_interpreter:
        all_vars["ansible_python_interpreter"] = a.python_interpreter
    children = {
        name: {"hosts": {svc.hostname: {"ansible_host": svc.ip}}} for name, svc in platform.services.items()
    }
    return {"all": {"vars": all_vars, "children": children}}
