"""The Ansible inventory generated from the platform: one group per service, one host per group.

Same shape as the original ``inventory/hosts.ini`` (``[vaultwarden]`` → ``10.10.40.20``) so playbooks
written against ``hosts: <service>`` keep working; the lab uses ``ansible_connection=local``.
"""

from __future__ import annotations

from ralf.model import Platform


def all_vars(platform: Platform) -> dict[str, str]:
    """Variables for every host: connection, and on a local LXC node its host keys and package cache."""
    a = platform.ansible
    out: dict[str, str] = {}
    if a.connection == "local":
        out["ansible_connection"] = "local"
    else:
        out["ansible_user"] = a.user
        ssh_args = a.ssh_common_args
        if platform.lxc_host is not None:
            from ralf.backends.lxc.node import lxc_path

            # ralf recorded each CT's host key when it made the CT: check it strictly.
            ssh_args = f"-o StrictHostKeyChecking=yes -o UserKnownHostsFile={lxc_path(platform) / 'known_hosts'}"
        if ssh_args:
            out["ansible_ssh_common_args"] = ssh_args
    if a.python_interpreter:
        out["ansible_python_interpreter"] = a.python_interpreter
    if platform.lxc_host is not None:
        url = f"http://{platform.lxc_host.host_ip}:{platform.lxc_host.cache_port}"
        out.update(ralf_apt_mirror=f"{url}/debian", ralf_pip_find_links=f"{url}/pypi/",
                   ralf_npm_cache_url=f"{url}/npm/")
    return out


def host_vars(platform: Platform, service: str) -> dict[str, str]:
    """Per-host variables: where the service's certificate from the platform CA is (platforms with CTs)."""
    if platform.lxc_host is None and platform.proxmox is None:
        return {}
    from ralf.backends.lxc import tls

    return tls.host_vars(platform, service)


def inventory_ini(platform: Platform) -> str:
    """Render the inventory as INI text (what ansible-playbook -i and Semaphore's static inventory take)."""
    lines = ["[all:vars]"] + [f"{k}={v}" for k, v in all_vars(platform).items()]
    for name, svc in platform.services.items():
        extra = "".join(f" {k}={v}" for k, v in host_vars(platform, name).items())
        lines += ["", f"[{name}]", f"{svc.hostname} ansible_host={svc.ip}{extra}"]
    return "\n".join(lines) + "\n"


def inventory_dict(platform: Platform) -> dict:
    """The same inventory as a dict in Ansible's YAML/JSON inventory layout."""
    children = {
        name: {"hosts": {svc.hostname: {"ansible_host": svc.ip, **host_vars(platform, name)}}}
        for name, svc in platform.services.items()
    }
    return {"all": {"vars": all_vars(platform), "children": children}}
