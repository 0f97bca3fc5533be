"""The platform file's schema (pydantic) and the cross-checks that span several sections.

The platform file is the single source of truth: groups, services, stacks, checks, Proxmox,
state backend, Semaphore and secrets. Everything else in ralf (catalog, planner, inventory,
Semaphore templates, smoke checks) is derived from a validated :class:`Platform`.

Unknown keys are errors everywhere (``extra="forbid"``) so that a typo cannot pass silently.
"""


import ipaddress
import os
import re
from collections.abc import Callable, Sized
from pathlib import Path
from typing import Annotated, Any, Literal

from annotated_types import Ge, Gt, Le
from pydantic import Field

from ralf import settings
from ralf.frozen import Frozen, default_factory
from ralf.values import (
    AbsPath,
    AfterValidator,
    Bucket,
    Host,
    Hostname,
    IpAddress,
    KeyPrefix,
    Text,
    UnitName,
    Url,
    UserName,
    Word,
    https_url,
    ip,
)

STACK_NAME = re.compile(r"^[0-9]{3}-[a-z0-9][a-z0-9-]*\Z")
NAME = re.compile(r"^[a-z][a-z0-9_-]*\Z")
RANDOM_SECRET = r"^@random(?::(\d+))?\Z"  # compiled on first use: ralf plan never reads a secret


def _check_name(v: str) -> str:
    if not NAME.match(v):
        raise ValueError(f"expected a lower-case name (letters, digits, - or _), got {v!r}")
    return v


def _at_least_one(what: str) -> Callable[[Any], Any]:
    def check(v: Sized) -> Sized:
        if not v:
            raise ValueError(f"expected at least one {what}")
        return v

    return check


def _service_names(v: dict) -> dict:
    for name in v:
        _check_name(name)
    return _at_least_one("service")(v)


Port = Annotated[int, Ge(1), Le(65535)]


class Strict(Frozen):
    """Unknown keys are errors, no .inf / .nan anywhere (a deadline of .inf would retry forever), immutable."""


# --------------------------------------------------------------------------- checks


class _CheckBase(Strict):
    name: str | None = None
    timeout: Annotated[float, Gt(0)] = 5.0  # seconds for one attempt


class TcpCheck(_CheckBase):
    kind: Literal["tcp"]
    host: Host | None = None  # default: the service's IP
    port: Port


class HttpCheck(_CheckBase):
    kind: Literal["http", "https"]
    url: Url
    expect_status: list[int] | None = None  # default: any 2xx/3xx; redirects are not followed
    body_contains: str | None = None
    deadline: Annotated[float, Ge(0)] = 10.0  # keep retrying a failing endpoint this long
    server_name: Hostname | None = None  # name the certificate must match (and SNI/Host) when the URL holds an IP
    ca_file: str | None = None
    insecure: bool = False  # explicit: skip certificate verification


class TlsCheck(_CheckBase):
    kind: Literal["tls"]
    host: Host | None = None
    port: Port = 443
    server_name: Hostname | None = None  # hostname the certificate must match; default: host
    ca_file: str | None = None
    insecure: bool = False
    warn_days: Annotated[int, Ge(0)] = 14


class UnitCheck(_CheckBase):
    kind: Literal["unit"]
    unit: UnitName


class AppPortCheck(_CheckBase):
    kind: Literal["app_port"]
    port: Port
    host: Host = "127.0.0.1"


class PostgresCheck(_CheckBase):
    kind: Literal["postgres"]
    host: Host | None = None
    port: Port = 5432
    # With a CA (ca_file, else the platform's own CA): TLS required, the certificate verified for this name.
    server_name: Hostname | None = None  # default: host
    ca_file: str | None = None
    insecure: bool = False  # explicit: TLS when offered, never verified


class SmtpCheck(_CheckBase):
    kind: Literal["smtp"]
    host: Host | None = None
    port: Port = 25
    starttls: bool = True
    server_name: Hostname | None = None  # name the certificate must match; default: host
    ca_file: str | None = None
    insecure: bool = False


class ImapsCheck(_CheckBase):
    kind: Literal["imaps"]
    host: Host | None = None
    port: Port = 993
    server_name: Hostname | None = None  # name the certificate must match; default: host
    ca_file: str | None = None
    insecure: bool = False


class S3Check(_CheckBase):
    kind: Literal["s3"]
    endpoint: Url | None = None  # default: the state backend's endpoint
    bucket: Bucket | None = None  # default: the state backend's bucket


Check = Annotated[
    TcpCheck | HttpCheck | TlsCheck | UnitCheck | AppPortCheck | PostgresCheck | SmtpCheck | ImapsCheck | S3Check,
    Field(discriminator="kind"),
]


# --------------------------------------------------------------------------- sections


def _cidr(v: str) -> str:
    try:
        ipaddress.ip_network(v, strict=True)
    except ValueError as e:
        raise ValueError(f"expected a network like 10.10.0.0/16 ({e})") from None
    return v


def _ips(v: list[str]) -> list[str]:
    for address in v:
        ip(address)
    return v


# Checks of one field are Annotated[..., AfterValidator(f)] types rather than field_validator methods: the same
# check, place and message, and pydantic makes the model and its validator faster (ralf plan's start-up).


class Network(Strict):
    cidr: Annotated[str, AfterValidator(_cidr)]
    gateway: IpAddress | None = None
    dns: Annotated[list[str], AfterValidator(_ips)] = []

    @property
    def network(self) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
        return ipaddress.ip_network(self.cidr)


class ProxmoxNode(Strict):
    """Another node of a Proxmox cluster: where `pct exec` reaches the CTs that live on it."""

    ssh_host: Host | None = None


def _api_url(v: str) -> str:
    try:
        return https_url(v)
    except ValueError as e:
        raise ValueError(f"{e}; e.g. https://10.10.10.10:8006/api2/json") from None


class Proxmox(Strict):
    api_url: Annotated[str, AfterValidator(_api_url)]
    node: Hostname  # the default node of every service (services.<svc>.node picks another)
    storage: Word = "local-lvm"
    bridge: Word = "vmbr0"
    lxc_template: Text
    ssh_host: Host | None = None  # where `pct exec` runs (over SSH) for CTs on `node`; None = not configured
    ssh_user: UserName = "root"
    nodes: dict[str, ProxmoxNode] = {}  # the cluster's other nodes
    # PEM the API's certificate is verified with (Proxmox signs it with /etc/pve/pve-root-ca.pem);
    # relative = to the platform file (as semaphore.ca_file); None = the system trust store.
    ca_file: str | None = None
    insecure_tls: bool = False  # no verification at all: only when set explicitly, warned on every run
    credentials_file: str = "pve.env"  # in the secrets directory
    # PVE_TOKEN_ID / PVE_TOKEN_SECRET are read from credentials_file or the environment.

    def node_of(self, service: "Service") -> str:
        """The node a service's CT lives on."""
        return service.node or self.node

    def ssh_host_of(self, node: str) -> str | None:
        """Where `pct exec` runs for CTs on ``node``."""
        if node == self.node:
            return self.ssh_host
        other = self.nodes.get(node)
        return other.ssh_host if other else None



def _lxc_name(v: str) -> str:
    if not re.match(r"^[a-z][a-z0-9-]{0,20}\Z", v):
        raise ValueError("expected a short lower-case name (letters, digits, -; at most 21)")
    return v


class LxcHost(Strict):
    """A local LXC host: ralf makes the ``*-lxc`` stacks' CTs itself with LXC (``ralf.backends.lxc``).

    The CTs live in the network namespace ``ralf-<name>`` with a bridge at ``host_ip`` in the
    platform's network (which must be a range of the node's own) and no route out.
    """

    name: Annotated[str, AfterValidator(_lxc_name)]
    host_ip: IpAddress  # the bridge's address: the CTs' gateway and where the package cache is served
    bridge: Annotated[str, Field(max_length=15, pattern=r"^[a-z][a-z0-9]*$")] = "ralfbr0"
    distro: Literal["debian-12"] = "debian-12"
    lxc_path: str | None = None  # default: /var/lib/ralf/lxc/<name>
    cache_dir: str = "/var/cache/ralf/lxc"
    cache_port: Port = 8000
    boot_timeout: Annotated[float, Gt(0)] = 120.0

    @property
    def netns(self) -> str:
        return f"ralf-{self.name}"


class StateBackend(Strict):
    kind: Literal["s3"] = "s3"
    endpoint: Url
    bucket: Bucket
    key_prefix: KeyPrefix = "ralf"
    region: Word = "us-east-1"
    local_state_stacks: list[str] = []  # stacks that keep local state (the one creating the backend)
    credentials_file: str = "minio.env"
    access_key_var: str = "MINIO_ROOT_USER"
    secret_key_var: str = "MINIO_ROOT_PASSWORD"


class SemaphoreRepository(Strict):
    name: str = "RALF Local"
    git_url: str | None = None  # None: the platform's mirror in Gitea (``mirror.clone_url``)
    branch: str = "main"


GO_DURATION = re.compile(r"^(0|(?=\d)(\d+h)?(\d+m)?(\d+s)?)\Z")


def _interval(v: str) -> str:
    if not GO_DURATION.match(v):
        raise ValueError(f"expected a duration like 10m, 1h or 1h30m, got {v!r}")
    return v


class Mirror(Strict):
    """The internal repository: a pull mirror, in the platform's Gitea, of the operator's remote.

    Semaphore's tasks clone it (``semaphore.repository`` defaults to it), so what the operator pushes
    to ``source_url`` is what the next task runs once Gitea has fetched it (every ``interval``, or
    at once on ``ralf mirror sync``).
    """

    service: str = "gitea"  # the service running Gitea (bootstrap makes the mirror right after its pair)
    url: Url  # Gitea's root as the platform reaches it (nginx with the platform CA's certificate)
    source_url: str  # the operator's remote (what `git push` sends to)
    owner: Word = "ralf"  # the Gitea user (or organisation) holding the mirror
    name: Word = "RALF"
    interval: Annotated[str, AfterValidator(_interval)] = "10m"  # Go duration; Gitea refuses less than its MIN_INTERVAL (10m); "0" = no periodic sync
    private: bool = True
    ca_file: str | None = None  # PEM Gitea's certificate is verified with; None = the platform CA
    credentials_file: str = "gitea.env"
    user_var: str = "GITEA_ADMIN_USER"
    password_var: str = "GITEA_ADMIN_PASSWORD"
    semaphore_key: str = "RALF Gitea"  # Semaphore's login_password key for cloning (Gitea asks for a sign-in)

    @property
    def clone_url(self) -> str:
        return f"{self.url.rstrip('/')}/{self.owner}/{self.name}.git"


class Semaphore(Strict):
    url: Url
    project: Text
    ca_file: str | None = None
    template_prefix: str = "RALF"
    inventory_name: str = "RALF Inventory"
    repository: SemaphoreRepository
    apply_command: str = "ralf stacks run"
    smoke_command: str = "ralf smoke {target}"
    credentials_file: str = "semaphore.env"


class Secrets(Strict):
    dir: str


class Exec(Strict):
    """How commands run "inside a CT" for unit and app-port checks."""

    transport: Literal["pct", "lxc", "ssh", "local", "none"] = "pct"
    ssh_user: UserName = "root"
    ssh_key_file: str | None = None
    unit_command: str = "systemctl is-active {unit}"
    # {host} and {port} are passed as arguments, never pasted into the inner script
    port_command: str = "timeout 3 bash -c '</dev/tcp/$1/$2' app_port {host} {port}"


class Ansible(Strict):
    connection: Literal["ssh", "local"] = "ssh"
    user: UserName = "root"
    # extra ssh options; host keys are checked against ralf's known_hosts (see ralf.paths.known_hosts)
    ssh_common_args: Text = ""
    python_interpreter: AbsPath | None = None


class SharedPath(Strict):
    path: str
    smokes: Literal["all", "touched", "phase1"] = "touched"
    why: str | None = None


class Repository(Strict):
    """Which repository paths belong to which service and which form the shared base."""

    service_paths: list[str] = ["stacks/{stack}/", "ansible/roles/{service}/"]
    shared_base: list[SharedPath] = []
    ignore: list[str] = []


class Group(Strict):
    name: Annotated[str, AfterValidator(_check_name)]
    word: str
    phase1: bool = False
    description: str | None = None


class StackRef(Strict):
    name: str
    type: Literal["tofu", "ansible"]


class Size(Strict):
    cores: Annotated[int, Ge(1)]
    memory_mb: Annotated[int, Ge(64)]
    disk_gb: Annotated[int, Ge(1)]
    swap_mb: Annotated[int, Ge(0)] = 0
    # systemd's sandboxed units need nesting in an unprivileged CT (Proxmox's own default for Ubuntu/Debian)
    nesting: bool = True


class Service(Strict):
    word: str
    group: str
    ip: IpAddress
    hostname: Hostname
    ct_id: Annotated[int, Ge(100), Le(999_999_999)] | None = None
    node: Hostname | None = None  # Proxmox node of the CT; None = proxmox.node
    size: Size | None = None
    stacks: Annotated[list[str | StackRef], AfterValidator(_at_least_one("stack"))]
    units: list[UnitName] = []
    app_port: Port | None = None
    endpoint: Url | None = None
    # Names the service answers to from outside (e.g. Synapse: matrix.<domain>, and <domain> for its
    # .well-known): its certificate carries them and its reverse proxy serves them.
    public_names: list[Hostname] = []
    checks: list[Check] = []
    secrets: dict[str, str] = {}
    paths: list[str] = []
    description: str | None = None

    @property
    def stack_refs(self) -> list[StackRef]:
        """Each stack with its type; a name whose type cannot be told is left out (validation reports it)."""
        return [ref for ref in map(_stack_ref, self.stacks) if ref is not None]


class Platform(Strict):
    version: Literal[1] = 1
    name: Text
    domain: Hostname | None = None
    internal_domain: Hostname | None = None
    network: Network
    proxmox: Proxmox | None = None
    lxc_host: LxcHost | None = None
    state_backend: StateBackend | None = None
    semaphore: Semaphore | None = None
    mirror: Mirror | None = None
    secrets: Secrets
    # made from the defaults alone: no validator is built for a section the file leaves out
    exec: Exec = default_factory(lambda: Exec.model_construct())
    ansible: Ansible = default_factory(lambda: Ansible.model_construct())
    repository: Repository = default_factory(lambda: Repository.model_construct())
    stacks_dir: str = "stacks"  # Ansible stack directories (<stacks_dir>/<stack>/playbook.yml), relative to this file
    groups: Annotated[list[Group], AfterValidator(_at_least_one("group"))]
    services: Annotated[dict[str, Service], AfterValidator(_service_names)]

    _source: Path | None = None

    @property
    def source(self) -> Path | None:
        """The platform file this was loaded from (None when built in memory)."""
        return self._source

    def resolve_path(self, value: str | os.PathLike) -> Path:
        """Expand ``{state_dir}``, ``~`` and ``$VARS``; a relative path is relative to the platform file."""
        text = str(value)
        if "{state_dir}" in text:
            from ralf.paths import state_dir

            text = text.replace("{state_dir}", str(state_dir()))
        p = Path(os.path.expandvars(os.path.expanduser(text)))
        if not p.is_absolute() and self._source is not None:
            p = self._source.parent / p
        return p

    @property
    def stacks_path(self) -> Path:
        return self.resolve_path(self.stacks_dir)

    @property
    def secrets_path(self) -> Path:
        """The secrets directory; ``$RALF_SECRETS_DIR`` overrides the file (e.g. on the Semaphore host)."""
        return self.resolve_path(settings.get("RALF_SECRETS_DIR") or self.secrets.dir)

    def group(self, name: str) -> Group:
        return next(g for g in self.groups if g.name == name)

    @property
    def semaphore_git_url(self) -> str:
        """The URL Semaphore's repository clones: as written, else the platform's mirror in Gitea."""
        assert self.semaphore is not None
        if self.semaphore.repository.git_url:
            return self.semaphore.repository.git_url
        assert self.mirror is not None  # cross_check demands one of the two
        return self.mirror.clone_url

    @property
    def phase1_group(self) -> Group:
        return next(g for g in self.groups if g.phase1)


# --------------------------------------------------------------------------- helpers


def stack_type(name: str) -> Literal["tofu", "ansible"]:
    """The naming convention: ``*-lxc`` stacks are OpenTofu, ``*-config`` stacks are Ansible."""
    if name.endswith("-lxc"):
        return "tofu"
    if name.endswith("-config"):
        return "ansible"
    raise ValueError(
        f"cannot tell the type of stack {name!r}: name it *-lxc (tofu) or *-config (ansible), "
        "or write {name: ..., type: tofu|ansible}"
    )


def random_secret_length(value: str) -> int | None:
    """``@random`` or ``@random:N`` mark a generated secret; returns its length, else None."""
    m = re.match(RANDOM_SECRET, value)
    if not m:
        return None
    return max(32, int(m.group(1) or 32))




def cross_check(p: Platform) -> list[tuple[str, str]]:
    """Checks that span sections. Returns (place, what is expected) pairs, empty when all is well."""
    problems: list[tuple[str, str]] = []
    group_names = [g.name for g in p.groups]
    seen: dict[str, int] = {}
    for i, g in enumerate(p.groups):
        if g.name in seen:
            problems.append((f"groups[{i}].name", f"group name {g.name!r} is used twice (also groups[{seen[g.name]}])"))
        seen[g.name] = i
    if sum(g.phase1 for g in p.groups) != 1:
        problems.append(("groups", "expected exactly one group with phase1: true (the bootstrap group)"))
    words: dict[str, str] = {}
    for i, g in enumerate(p.groups):
        _unique(problems, words, g.word.lower(), f"groups[{i}].word", "template word")
    for name, s in p.services.items():
        _unique(problems, words, s.word.lower(), f"services.{name}.word", "template word")

    network = p.network.network
    ips: dict[str, str] = {}
    hostnames: dict[str, str] = {}
    ct_ids: dict[int, str] = {}
    stacks: dict[str, str] = {}
    members: dict[str, int] = {g: 0 for g in group_names}
    for name, s in p.services.items():
        place = f"services.{name}"
        if s.group not in members:
            problems.append((f"{place}.group", f"unknown group {s.group!r}; expected one of {', '.join(group_names)}"))
        else:
            members[s.group] += 1
        if not _ipa_in(s.ip, network):
            problems.append((f"{place}.ip", f"{s.ip} is outside the network {p.network.cidr}"))
        _unique(problems, ips, s.ip, f"{place}.ip", "IP")
        _unique(problems, hostnames, s.hostname.lower(), f"{place}.hostname", "hostname")
        if s.ct_id is not None:
            _unique(problems, ct_ids, s.ct_id, f"{place}.ct_id", "CT id")
        for j, raw in enumerate(s.stacks):
            sname = raw if isinstance(raw, str) else raw.name
            splace = f"{place}.stacks[{j}]"
            if not STACK_NAME.match(sname):
                problems.append((splace, f"expected a stack name like 042-vaultwarden-lxc, got {sname!r}"))
                continue
            if isinstance(raw, str):
                try:
                    stack_type(raw)
                except ValueError as e:
                    problems.append((splace, str(e)))
            _unique(problems, stacks, sname, splace, "stack name")
        for key in s.secrets:
            if not re.match(r"^[A-Z_][A-Z0-9_]*\Z", key):
                problems.append((f"{place}.secrets.{key}", "expected an environment variable name (A-Z, 0-9, _)"))
        if s.node is not None and p.proxmox is not None and s.node != p.proxmox.node and s.node not in p.proxmox.nodes:
            known = ", ".join([p.proxmox.node, *p.proxmox.nodes])
            problems.append((f"{place}.node", f"unknown Proxmox node {s.node!r}; expected one of {known} "
                             "(list other cluster nodes under proxmox.nodes)"))
        if any(r.type == "tofu" for r in s.stack_refs) and s.ct_id is None:
            problems.append((f"{place}.ct_id", "expected a CT id: the service has an OpenTofu (LXC) stack"))
    for gname, count in members.items():
        if count == 0:
            problems.append((f"groups[{group_names.index(gname)}]",
                             f"group {gname!r} has no services; every group needs one"))
    has_tofu = any(r.type == "tofu" for s in p.services.values() for r in s.stack_refs)
    if has_tofu and p.proxmox is None and p.lxc_host is None:
        problems.append(("proxmox", "expected a proxmox (or lxc_host) section: the platform has *-lxc stacks"))
    if has_tofu and p.lxc_host is None and p.state_backend is None:
        problems.append(("state_backend", "expected a state_backend section: the platform has OpenTofu stacks"))
    if p.state_backend is not None:
        for j, sname in enumerate(p.state_backend.local_state_stacks):
            if sname not in stacks:
                problems.append((f"state_backend.local_state_stacks[{j}]", f"unknown stack {sname!r}"))
    if p.lxc_host is not None:
        if not _ipa_in(p.lxc_host.host_ip, network):
            problems.append(("lxc_host.host_ip", f"{p.lxc_host.host_ip} is outside the network {p.network.cidr}"))
        _unique(problems, ips, p.lxc_host.host_ip, "lxc_host.host_ip", "IP")
    if p.exec.transport == "lxc" and p.lxc_host is None:
        problems.append(("exec.transport", "transport lxc needs an lxc_host section"))
    if p.semaphore is not None and "--allow-destroy" in p.semaphore.apply_command:
        problems.append(("semaphore.apply_command", "must not pass --allow-destroy: Semaphore's Apply templates "
                         "run unattended and never destroy a CT; destroy on the runner with ralf stacks run"))
    if p.semaphore is not None and not p.semaphore.repository.git_url and p.mirror is None:
        problems.append(("semaphore.repository.git_url", "expected a git URL, or a mirror section (Semaphore "
                         "then clones the platform's mirror in Gitea)"))
    if p.mirror is not None and p.mirror.service not in p.services:
        problems.append(("mirror.service", f"unknown service {p.mirror.service!r}; expected the one running Gitea"))
    if p.network.gateway is not None and not _ipa_in(p.network.gateway, network):
        problems.append(("network.gateway", f"{p.network.gateway} is outside the network {p.network.cidr}"))
    return problems


def _stack_ref(raw: "str | StackRef") -> StackRef | None:
    if isinstance(raw, StackRef):
        return raw
    try:  # model_construct: both values are known good, and StackRef's own validator would be built for this
        return StackRef.model_construct(name=raw, type=stack_type(raw))
    except ValueError:
        return None


def _ipa_in(ip: str, network) -> bool:
    return ipaddress.ip_address(ip) in network


def _unique(problems: list, seen: dict, key, place: str, what: str) -> None:
    if key in seen:
        problems.append((place, f"{what} {key!r} is already used by {seen[key]}"))
    else:
        seen[key] = place
