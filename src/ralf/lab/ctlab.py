"""The real-container lab: the platform's roles in real LXC containers on a local node.

``up`` brings the node up (CT template, package cache, namespace) and Phase 1 in its pairs (each
Phase 1 service's ``*-lxc`` and ``*-config`` stacks, then its smoke), as the bootstrap does before
Semaphore exists; ``ralf deploy --executor local`` then runs the runbook's order on it. ``down``
removes every CT, the namespace and every process of the node. ``break``/``fix`` put a fault into
one layer of a service for the tour: a stopped unit in its CT, an expired certificate from the
platform CA, a hung app (SIGSTOP).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ralf.backends.lxc import tls
from ralf.backends.lxc.node import LxcNode
from ralf.errors import UsageError
from ralf.lab.breaks import Outcome
from ralf.model import Platform
from ralf.serial import Record
from ralf.states import Result

CTLAB_PLATFORM_ENV = "RALF_CTLAB_PLATFORM"
LAYERS = ("unit", "tls", "app")


def default_ctlab_platform() -> Path:
    """``$RALF_CTLAB_PLATFORM``, else ``examples/ctlab/platform.yaml`` here or in ralf's own checkout."""
    from ralf.lab.control import bundled_platform

    return bundled_platform(CTLAB_PLATFORM_ENV, "ctlab")


@dataclass
class UpResult(Record):
    ok: bool = True
    actions: list[str] = field(default_factory=list)  # what bring-up changed
    steps: list[dict] = field(default_factory=list)  # each stack's result, then each smoke


def up(platform: Platform, on_output: Callable[[str], None] = print) -> UpResult:
    """Node, then each Phase 1 service's stacks and smoke, stopping at the first failure."""
    from ralf.catalog import Catalog
    from ralf.secrets import init_secrets
    from ralf.smoke.engine import run_smoke
    from ralf.stacks import run_stacks

    init_secrets(platform)  # back-fills what is missing, never changes a value that is there
    node = LxcNode(platform, on_output=on_output)
    out = UpResult(actions=node.up())
    catalog = Catalog(platform)
    for service in catalog.target("phase1").services:
        stacks = [s.name for s in catalog.stacks if s.service == service]
        res = run_stacks(platform, only=stacks, apply=True, on_output=on_output)
        out.steps += [r.to_dict() for r in res.results]
        if not res.ok:
            out.ok = False
            return out
        report = run_smoke(service, platform)
        out.steps.append({"smoke": service, "result": Result.SUCCEEDED if report.ok else Result.FAILED})
        if not report.ok:
            out.ok = False
            return out
    return out


def down(platform: Platform, on_output: Callable[[str], None] = print) -> list[str]:
    return LxcNode(platform, on_output=on_output).down()


def status(platform: Platform) -> dict:
    node = LxcNode(platform)
    st = node.status()
    for name, ct in st["cts"].items():
        svc = platform.services[name]
        ct["units"] = {}
        if ct["state"] == "RUNNING":
            for unit in svc.units:
                proc = node.containers.attach(str(svc.ct_id), ["systemctl", "is-active", unit], timeout=15)
                ct["units"][unit] = proc.stdout.strip() or "unknown"
        info = tls.ca(platform).info(tls.cert_dir(platform, name))
        ct["cert_days_left"] = info.days_left if info else None
    return st


def _running_ct(platform: Platform, service: str) -> tuple[LxcNode, str]:
    if service not in platform.services:
        raise UsageError(f"unknown service {service!r}; expected one of {', '.join(platform.services)}")
    node = LxcNode(platform)
    ct = str(platform.services[service].ct_id)
    if node.containers.state(ct) != "RUNNING":
        raise UsageError(f"CT {ct} ({service}) is not running: run `ralf lab up` and deploy first")
    return node, ct


def _app_unit(platform: Platform, service: str) -> str:
    units = [u for u in platform.services[service].units if u != "nginx"]
    if not units:
        raise UsageError(f"{service} has no app unit to break")
    return units[0]


def break_service(platform: Platform, service: str, layer: str) -> Outcome:
    node, ct = _running_ct(platform, service)
    svc = platform.services[service]
    out = Outcome(service)
    if layer == "unit":
        unit = _app_unit(platform, service)
        node.containers.attach(ct, ["systemctl", "stop", unit])
        out.actions.append(f"stopped {unit} in CT {ct}")
        out.expect = "service in CT"
    elif layer == "tls":
        if not tls.serves_tls(svc):
            raise UsageError(f"{service} serves no TLS; break tls on a service behind nginx or the mail service")
        d = tls.cert_dir(platform, service)
        tls.issue(platform, service, expired=True)
        _push_cert(node, ct, d, service, svc.units)
        out.actions.append(f"CT {ct} now serves a certificate that expired 3 days ago")
        out.expect = "nginx/TLS" if "nginx" in svc.units else "public endpoint"
    elif layer == "app":
        unit = _app_unit(platform, service)
        node.containers.attach(ct, ["systemctl", "kill", "--signal=SIGSTOP", unit])
        out.actions.append(f"{unit} in CT {ct} is hung (SIGSTOP): its port accepts but never answers")
        out.expect = "app port"
    else:
        raise UsageError(f"unknown layer {layer!r}; expected one of {', '.join(LAYERS)}")
    return out


def fix_service(platform: Platform, service: str) -> Outcome:
    node, ct = _running_ct(platform, service)
    svc = platform.services[service]
    out = Outcome(service)
    for unit in svc.units:
        node.containers.attach(ct, ["systemctl", "kill", "--signal=SIGCONT", unit])
        state = node.containers.attach(ct, ["systemctl", "is-active", unit]).stdout.strip()
        if state != "active":
            node.containers.attach(ct, ["systemctl", "start", unit])
            out.actions.append(f"started {unit} in CT {ct}")
    if tls.serves_tls(svc):
        d = tls.cert_dir(platform, service)
        info = tls.ca(platform).info(d)
        if info is None or info.days_left <= tls.RENEW_DAYS:
            tls.issue(platform, service)
            _push_cert(node, ct, d, service, svc.units)
            out.actions.append(f"CT {ct} serves a fresh certificate from the platform CA")
    return out


# Where the roles put a service's certificate, and what reloads it (nginx_tls: per site; postgres:
# its own dir, owned by the server's user; mail: one dir).
MAIL_TLS_DIR = "/etc/ssl/homelab-mail"
POSTGRES_TLS_DIR = "/etc/ssl/ralf-postgres"


def _push_cert(node: LxcNode, ct: str, cert_dir: Path, site: str, units: list[str]) -> None:
    """Install cert and key where the role put them, then reload what serves them."""
    owner = "root"
    if "nginx" in units:
        target_dir, reload = f"/etc/nginx/tls/{site}", [["systemctl", "reload", "nginx"]]
    elif "postgresql" in units:
        target_dir, reload, owner = POSTGRES_TLS_DIR, [["systemctl", "reload", "postgresql"]], "postgres"
    else:
        target_dir, reload = MAIL_TLS_DIR, [["systemctl", "restart", u] for u in units]
    for src, dest in ((cert_dir / "cert.pem", "fullchain.pem"), (cert_dir / "key.pem", "privkey.pem")):
        # The target is built from validated names (service, unit) and passed as $1, never as code.
        node.containers.attach(ct, ["sh", "-c", 'umask 077; cat > "$1.new" && chown "$2:" "$1.new" && mv "$1.new" "$1"',
                                    "sh", f"{target_dir}/{dest}", owner], input_text=src.read_text())
    for argv in reload:
        node.containers.attach(ct, argv)
