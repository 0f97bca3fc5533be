"""The bootstrap's preflight: check each prerequisite of Phase 1, explain what is wrong, fix what ralf can.

On a Proxmox platform: the API answers with TLS verified (or says that it is not), the token is
accepted and holds the privileges the stacks need, the node, the CT storage and the bridge exist,
the LXC template is on its storage (downloaded through the API when missing), the SSH key pair
``ralf_ed25519`` exists (made when missing: the ``*-lxc`` stacks put the ``.pub`` into every CT, Ansible
uses the private key), and OpenTofu and Ansible are installed. On a platform with a local LXC host
(``lxc_host``), the node itself is brought up instead of the Proxmox checks. With ``dry_run`` nothing
is changed: what would be done is reported as ``would``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ralf.bootstrap.proxmox_api import ProxmoxApi, ProxmoxError
from ralf.errors import RalfError
from ralf.model import Platform
from ralf.serial import Record
from ralf.states import PreflightStatus

OK, WARN, FAIL, WOULD, INFO = (PreflightStatus.OK, PreflightStatus.WARN, PreflightStatus.FAIL, PreflightStatus.WOULD,
                              PreflightStatus.INFO)

# privileges the *-lxc stacks (bpg/proxmox container resources) and the template download need, per ACL path
VM_PRIVILEGES = ("VM.Allocate", "VM.Audit", "VM.Config.CPU", "VM.Config.Disk", "VM.Config.Memory",
                 "VM.Config.Network", "VM.Config.Options", "VM.PowerMgmt")


@dataclass
class Check(Record):
    name: str
    status: PreflightStatus
    detail: str
    fix: str = ""


@dataclass
class Preflight(Record):
    json_fields = ("ok", "checks", "actions")

    checks: list[Check] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)  # what the preflight changed (nothing on a ready node)

    @property
    def ok(self) -> bool:
        return all(c.status != FAIL for c in self.checks)

    def add(self, name: str, status: PreflightStatus, detail: str, fix: str = "") -> Check:
        c = Check(name, status, detail, fix)
        self.checks.append(c)
        return c


def run_preflight(platform: Platform, *, dry_run: bool = False, api: ProxmoxApi | None = None,
                  make_node: Callable | None = None, on_output: Callable[[str], None] | None = None,
                  node_runner: Callable | None = None) -> Preflight:
    pf = Preflight()
    if platform.proxmox is not None and platform.lxc_host is None:
        _proxmox(platform, pf, dry_run, api)
    elif platform.lxc_host is not None:
        _lxc_node(platform, pf, dry_run, make_node, on_output)
    _secrets(platform, pf, dry_run)
    _ssh_key(platform, pf, dry_run)
    if platform.proxmox is not None and platform.lxc_host is None:
        _pct_access(platform, pf, dry_run, node_runner)
    _tools(platform, pf)
    return pf


# ---------------------------------------------------------------------- Proxmox


def _proxmox(platform: Platform, pf: Preflight, dry_run: bool, api: ProxmoxApi | None) -> None:
    pm = platform.proxmox
    assert pm is not None
    cred_file = platform.secrets_path / pm.credentials_file
    token_fix = (f"create a token (`pveum user token add root@pam ralf --privsep 0`) and write PVE_TOKEN_ID and "
                 f"PVE_TOKEN_SECRET into {cred_file} (or the environment)")
    own = api is None
    if api is None:
        try:
            api = ProxmoxApi.from_platform(platform)
        except ProxmoxError as e:
            pf.add("Proxmox API", FAIL, str(e), "copy the cluster CA (/etc/pve/pve-root-ca.pem) to proxmox.ca_file")
            return
        except RalfError as e:
            pf.add("API token", FAIL, str(e), token_fix)
            return
    try:
        _proxmox_checks(platform, pf, dry_run, api, token_fix)
    finally:
        if own:
            api.close()


def _proxmox_checks(platform: Platform, pf: Preflight, dry_run: bool, api: ProxmoxApi, token_fix: str) -> None:
    pm = platform.proxmox
    assert pm is not None
    verify = api.verify
    try:
        version = api.version()
    except ProxmoxError as e:
        if e.status == 401:
            pf.add("Proxmox API", OK, f"{pm.api_url} answers")
            pf.add("API token", FAIL, f"the API rejected the token: {e}", token_fix)
        else:
            pf.add("Proxmox API", FAIL, str(e), f"check proxmox.api_url ({pm.api_url}) and that pveproxy runs")
        return
    tls = ("TLS verified against " + str(verify)) if isinstance(verify, str) else (
        "TLS verified (system trust store)" if verify else "TLS NOT verified (insecure_tls: true)")
    pf.add("Proxmox API", OK if verify else WARN, f"Proxmox VE {version.get('version', '?')} at {pm.api_url}; {tls}",
           "" if verify else "set proxmox.ca_file to the node's CA (/etc/pve/pve-root-ca.pem) to verify it")
    pf.add("API token", OK, "accepted")

    template_storage, _, template_name = pm.lxc_template.partition(":vztmpl/")
    perms = api.permissions()
    wanted = [("/vms", p) for p in VM_PRIVILEGES] + [
        (f"/nodes/{pm.node}", "Sys.Audit"),
        (f"/storage/{pm.storage}", "Datastore.AllocateSpace"), (f"/storage/{pm.storage}", "Datastore.Audit"),
        (f"/storage/{template_storage}", "Datastore.Audit"),
        (f"/storage/{template_storage}", "Datastore.AllocateTemplate"),
    ]
    missing = [f"{priv} on {path}" for path, priv in wanted if not _held(perms, path, priv)]
    if missing:
        pf.add("token privileges", FAIL, "missing: " + ", ".join(missing),
               "grant them, e.g. `pveum acl modify / --tokens <token id> --roles PVEAdmin`")
    else:
        pf.add("token privileges", OK, "VM, node and storage privileges present")

    nodes = {n.get("node"): n for n in api.nodes()}
    used = [pm.node] + sorted({s.node for s in platform.services.values() if s.node and s.node != pm.node})
    for node_name in used:
        _node_checks(pf, api, pm, node_name, nodes, template_storage, template_name, dry_run)


def _node_checks(pf: Preflight, api: ProxmoxApi, pm, node_name: str, nodes: dict, template_storage: str,
                 template_name: str, dry_run: bool) -> None:
    """Online, CT storage, bridge and template on one node (a cluster's services may name their node)."""
    on = "" if node_name == pm.node else f" on {node_name}"
    node = nodes.get(node_name)
    if node is None or node.get("status") != "online":
        state = "is missing" if node is None else f"is {node.get('status')}"
        where = "proxmox.node" if not on else f"the node of the services on {node_name} (services.<svc>.node)"
        pf.add("node" + on, FAIL, f"node {node_name!r} {state} (nodes: {', '.join(sorted(map(str, nodes))) or 'none'})",
               f"set {where} to the node's name (`pvecm nodes` / the web UI), or bring the node online")
        return
    pf.add("node" + on, OK, f"{node_name} online")

    storages = {s.get("storage"): s for s in api.storages(node_name)}
    st = storages.get(pm.storage)
    if st is None or not st.get("active") or "rootdir" not in str(st.get("content", "")).split(","):
        why = "is missing" if st is None else ("is not active" if not st.get("active") else
                                               "does not hold CT volumes (content lacks rootdir)")
        pf.add("storage" + on, FAIL, f"storage {pm.storage!r} {why}" + on,
               "set proxmox.storage to a storage with content rootdir")
    else:
        pf.add("storage" + on, OK, f"{pm.storage} active, holds CT volumes")

    bridges = {str(b["iface"]) for b in api.bridges(node_name) if b.get("iface")}
    if pm.bridge in bridges:
        pf.add("bridge" + on, OK, f"{pm.bridge} on {node_name}")
    else:
        pf.add("bridge" + on, FAIL,
               f"bridge {pm.bridge!r} not on {node_name} (bridges: {', '.join(sorted(bridges)) or 'none'})",
               "set proxmox.bridge, or create the bridge in the node's network settings")

    _template(pf, api, node_name, template_storage, template_name, pm.lxc_template, dry_run, on)


def _held(perms: dict[str, dict], path: str, priv: str) -> bool:
    """The token holds ``priv`` on ``path`` (listed on the path or a parent: ACLs propagate)."""
    parts = path.strip("/").split("/")
    return any(perms.get("/" + "/".join(parts[:i]), {}).get(priv) for i in range(len(parts), -1, -1))


def _template(pf: Preflight, api: ProxmoxApi, node: str, storage: str, name: str, volid: str, dry_run: bool,
              on: str = "") -> None:
    check = "LXC template" + on
    if not name:
        pf.add(check, FAIL, f"proxmox.lxc_template {volid!r} is not a vztmpl volume",
               "write it as <storage>:vztmpl/<file>, e.g. local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst")
        return
    try:
        present = {t.get("volid") for t in api.templates(node, storage)}
    except ProxmoxError as e:
        pf.add(check, FAIL, f"cannot list the templates on {storage}: {e}", "check proxmox.lxc_template")
        return
    if volid in present:
        pf.add(check, OK, f"{volid} present")
        return
    offered = {a.get("template") for a in api.appliances(node)}
    if name not in offered:
        pf.add(check, FAIL, f"{volid} is missing and not in the appliance index",
               f"`pveam update`, then `pveam available` to pick one, or upload it to {storage}")
        return
    if dry_run:
        pf.add(check, WOULD, f"{volid} is missing: would download it through the API")
        return
    upid = api.download_appliance(node, storage, name)
    status = api.wait_task(node, upid)
    if status.get("exitstatus") != "OK":
        pf.add(check, FAIL, f"download of {name} failed: {status.get('exitstatus')}",
               f"see the task {upid} in the Proxmox web UI")
        return
    pf.actions.append(f"downloaded the LXC template {volid}" + on)
    pf.add(check, OK, f"{volid} downloaded")


# ---------------------------------------------------------------------- local LXC node, key, tools


def _lxc_node(platform: Platform, pf: Preflight, dry_run: bool, make_node: Callable | None,
              on_output: Callable[[str], None] | None) -> None:
    lh = platform.lxc_host
    assert lh is not None
    if dry_run:
        pf.add("LXC node", WOULD, f"would bring up the local LXC node (namespace {lh.netns}, bridge {lh.bridge})")
        return
    if make_node is None:
        from ralf.backends.lxc.node import LxcNode
        make_node = LxcNode
    try:
        actions = make_node(platform, on_output=on_output or (lambda line: None)).up()
    except RalfError as e:
        pf.add("LXC node", FAIL, str(e), "`ralf lab prepare --real` (as root) fills the template and package cache")
        return
    pf.actions += actions
    pf.add("LXC node", OK, f"namespace {lh.netns}, bridge {lh.bridge}" + (f" ({len(actions)} change(s))" if actions else
                                                                          " (already up)"))


def _secrets(platform: Platform, pf: Preflight, dry_run: bool) -> None:
    """The services' secret files (what `ralf secrets init` makes): missing files and keys are made, values kept."""
    from ralf.secrets import init_secrets, read_env_file, required_secrets

    d = platform.secrets_path
    if dry_run:
        lacking = []
        for fname, spec in required_secrets(platform).items():
            try:
                have = read_env_file(d / fname)
            except RalfError:
                have = {}
            if any(k not in have for k in spec):
                lacking.append(fname)
        if lacking:
            pf.add("secrets", WOULD, f"would make the missing secrets in {d}: {', '.join(lacking)}")
        else:
            pf.add("secrets", OK, f"{d} holds every secret the services need")
        return
    try:
        report = init_secrets(platform)
    except RalfError as e:
        pf.add("secrets", FAIL, str(e), "make the secrets directory writable for ralf (0700)")
        return
    made = [f.file for f in report.files if f.status in ("created", "updated")]
    if made:
        pf.actions.append(f"made the missing secrets in {d}: {', '.join(made)}")
    pf.add("secrets", OK, f"{d} holds every secret the services need" + (f" (made: {', '.join(made)})" if made else ""))


def _ssh_key(platform: Platform, pf: Preflight, dry_run: bool) -> None:
    from ralf.backends.lxc.node import SSH_KEY, ssh_key

    key = platform.secrets_path / SSH_KEY
    pub = key.with_suffix(".pub")
    where = "the *-lxc stacks put the .pub into every CT; Ansible logs in with the private key"
    if key.is_file() and pub.is_file():
        pf.add("SSH key pair", OK, f"{key} ({where})")
    elif dry_run:
        pf.add("SSH key pair", WOULD, f"would make {key} and {pub.name} ({where})")
    else:
        try:
            ssh_key(platform)
        except RalfError as e:
            pf.add("SSH key pair", FAIL, str(e), "install openssh-client (ssh-keygen)")
            return
        pf.actions.append(f"made the SSH key pair {key}")
        pf.add("SSH key pair", OK, f"made {key} ({where})")


def _pct_access(platform: Platform, pf: Preflight, dry_run: bool, node_runner: Callable | None) -> None:
    """Each Proxmox node that holds a CT lets ralf in with its key: `pct exec` (checks inside CTs) needs it."""
    from ralf.backends.lxc.node import SSH_KEY
    from ralf.transport import PctTransport, transport_for

    pm = platform.proxmox
    assert pm is not None
    if platform.exec.transport != "pct":
        return
    t = transport_for(platform)
    if not isinstance(t, PctTransport):
        pf.add("pct exec access", WARN, "proxmox.ssh_host is not set: checks inside CTs (`pct exec`) cannot run",
               "set proxmox.ssh_host to the node's address")
        return
    if node_runner is not None:
        t.runner = node_runner
    key = platform.resolve_path(platform.exec.ssh_key_file) if platform.exec.ssh_key_file else (
        platform.secrets_path / SSH_KEY)
    t.key_file = str(key)
    pub = key.with_name(key.name + ".pub")
    try:
        wanted = " ".join(pub.read_text().split()[:2])
    except OSError:
        if dry_run:
            pf.add("pct exec access", WOULD, f"would check that the Proxmox nodes accept {pub.name} once it exists")
        else:
            pf.add("pct exec access", FAIL, f"{pub} is missing (exec.ssh_key_file's public half)",
                   f"point exec.ssh_key_file at {platform.secrets_path / SSH_KEY} (the key pair ralf makes)")
        return
    nodes = sorted({pm.node_of(s) for s in platform.services.values() if s.ct_id is not None} | {pm.node})
    for node in nodes:
        name = "pct exec access" + ("" if node == pm.node else f" on {node}")
        host = pm.ssh_host_of(node)
        if not host:
            pf.add(name, FAIL, f"node {node} holds CTs but has no ssh_host", f"set proxmox.nodes.{node}.ssh_host")
            continue
        target = f"{pm.ssh_user}@{host}"
        copy = f"once: `ssh-copy-id -i {pub} {target}` (Proxmox keeps it in /etc/pve/priv/authorized_keys)"
        res = t.on_node(host, ["cat", ".ssh/authorized_keys"], 15.0)
        if res.transport_error:
            refused = "Permission denied" in res.transport_error
            pf.add(name, FAIL, f"{target} refuses ralf's key {key}" if refused else res.transport_error,
                   copy if refused else f"check that {host} is node {node} and that its sshd answers")
        elif res.rc != 0:
            pf.add(name, FAIL, f"cannot read ~/.ssh/authorized_keys on {target} (exit {res.rc})", copy)
        elif wanted not in _authorized(res.stdout):
            pf.add(name, FAIL, f"~/.ssh/authorized_keys on {target} does not hold {pub.name}", copy)
        else:
            pf.add(name, OK, f"{target} holds {pub.name}: `pct exec` reaches the CTs on {node}")


_KEY_TYPES = ("ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521",
              "sk-ssh-ed25519@openssh.com", "sk-ecdsa-sha2-nistp256@openssh.com")


def _authorized(text: str) -> set[str]:
    """``type base64`` of each key in an authorized_keys file (options before the type are skipped)."""
    keys = set()
    for line in text.splitlines():
        words = line.split()
        for i, w in enumerate(words[:-1]):
            if w in _KEY_TYPES:
                keys.add(f"{w} {words[i + 1]}")
                break
    return keys


def _tools(platform: Platform, pf: Preflight) -> None:
    """OpenTofu and ansible-core at the versions the stacks need: the stack runner's own check (stacks.versions)."""
    import os

    from ralf.catalog import Catalog
    from ralf.stacks import ansible, tofu, versions

    environ = dict(os.environ)
    quiet = tofu.child_env(environ, {})
    kinds = {s.type for s in Catalog(platform).stacks}
    if "tofu" in kinds and platform.lxc_host is None:  # on a local LXC host ralf realises the *-lxc stacks itself
        _tool(pf, "OpenTofu", lambda: tofu.resolve_tofu(None, environ), lambda b: versions.check_tofu(b, quiet),
              "install OpenTofu >= " + versions.dotted(versions.TOFU_MIN) + " (https://opentofu.org/docs/intro/install/)")
    _tool(pf, "Ansible", lambda: ansible.resolve_ansible(environ), lambda b: versions.check_ansible(b, quiet),
          "pip install 'ansible-core>=" + versions.dotted(versions.ANSIBLE_CORE_MIN) + ",<2.20' into ralf's environment")


def _tool(pf: Preflight, name: str, find: Callable[[], str], check: Callable[[str], tuple], fix: str) -> None:
    from ralf.stacks.versions import dotted

    try:
        binary = find()
        version = check(binary)
    except RalfError as e:
        pf.add(name, FAIL, str(e), fix)
        return
    pf.add(name, OK, f"{binary} {dotted(version)}")
