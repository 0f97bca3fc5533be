"""``ralf lab``: start, stop, break and fix the local lab; ``unit``/``port`` are its exec checks.

The platform is --platform FILE, else $RALF_LAB_PLATFORM, else examples/lab/platform.yaml.
"""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import click

from ralf.cli.common import emit_json, json_option, platform_option, platform_path
from ralf.hints import command, complete


def _platform():
    from ralf.lab.control import default_lab_platform
    from ralf.loader import load_platform

    ctx = click.get_current_context(silent=True)
    if platform_path() is None and ctx is not None and ctx.meta.get("ralf.real"):
        from ralf.lab.ctlab import default_ctlab_platform

        return load_platform(default_ctlab_platform())
    return load_platform(platform_path() or default_lab_platform())


def _remember_real(ctx: click.Context, param: click.Parameter, value: bool) -> bool:
    if value:
        ctx.meta["ralf.real"] = True
    return value


def real_option(f):
    """``--real``: the real-container lab (examples/ctlab/platform.yaml), before or after the subcommand."""
    return click.option("--real", is_flag=True, expose_value=False, is_eager=True, callback=_remember_real,
                        help="The real-container lab: real LXC containers on this machine (needs root).")(f)


@click.group()
@platform_option
@real_option
def lab() -> None:
    """Start, stop and break the local lab platform (examples/lab/platform.yaml).

    \b
      ralf lab up                   configure and start every lab service (the lab's stacks)
      ralf lab status               units, ports, certificate
      ralf lab break portal tls     break one layer: unit | nginx | tls | app
      ralf lab fix portal           repair whatever was broken
      ralf lab down                 stop everything

    With --real, the same commands work on the real-container lab (examples/ctlab/platform.yaml):
    PostgreSQL, Synapse and Postfix/Dovecot in real LXC containers made by ralf inside a
    network namespace of their own, converged by the platform's own roles (root, lxc, debootstrap).

    \b
      ralf lab up --real            node (CT template, package cache, namespace) and Phase 1
      ralf deploy --executor local --platform examples/ctlab/platform.yaml
      ralf lab break --real mail tls  unit | tls | app
      ralf lab down --real          remove every CT, the namespace and every process
    """


@lab.command()
@real_option
@platform_option
@json_option
@click.option("--plain", is_flag=True, help="Plain progress lines even on a terminal.")
def up(as_json: bool, plain: bool) -> None:
    """Configure and start the lab: `ralf stacks run --apply` over the lab platform."""
    from ralf.catalog import Catalog
    from ralf.lab.control import up as lab_up
    from ralf.lab.progress import StepProgress

    platform = _platform()
    if platform.lxc_host is not None:
        return _ctlab_up(platform, as_json)
    progress = None if as_json else StepProgress(len(Catalog(platform).stacks), plain=plain or None)
    result = lab_up(platform, progress=progress)
    if as_json:
        emit_json(result.to_dict())
    elif result.ok:
        click.echo(f"lab is up: `{command('ralf smoke platform', platform.source)}` checks it")
    if not result.ok:
        failed = result.steps[-1]
        click.echo(f"ralf: lab stack {failed['stack']} failed; log: {failed['log_path']}", err=True)
        sys.exit(1)


def _which(platform) -> str:
    """The option that names this lab again in a printed hint (empty for the default lab)."""
    if platform_path():
        return f" --platform {_shown(platform.source)}"
    return " --real" if platform.lxc_host is not None else ""


def _shown(source) -> str:
    """The platform file as the user would type it: relative when under the working directory."""
    import os

    if source is None:
        return "examples/lab/platform.yaml"
    rel = os.path.relpath(source)
    return str(source) if rel.startswith("..") else rel


@lab.command()
@real_option
@platform_option
def prepare() -> None:
    """Fetch what the real-container lab needs (CT template, packages), with network; once.

    Everything after it (`up`, deploys, tests) runs from that cache without any network.
    """
    from ralf.backends.lxc.node import LxcNode

    platform = _platform()
    if platform.lxc_host is None:
        raise click.UsageError("prepare is for the real-container lab: add --real")
    changes = LxcNode(platform, on_output=click.echo).prepare()
    click.echo("\n".join(changes) if changes else "the CT template and package cache are ready")


@lab.command()
@real_option
@platform_option
@json_option
def down(as_json: bool) -> None:
    """Stop every lab service (--real: remove every CT, the namespace and every process of the node)."""
    from ralf.lab.control import down as lab_down

    if click.get_current_context().meta.get("ralf.real") or platform_path():
        platform = _platform()
        if platform.lxc_host is not None:
            from ralf.lab import ctlab

            changes = ctlab.down(platform, on_output=(lambda line: None) if as_json else click.echo)
            if as_json:
                emit_json({"removed": changes})
            else:
                click.echo("\n".join(changes) if changes else "nothing to remove: the node is down")
            return
    result = lab_down()
    if as_json:
        emit_json(result)
        return
    for unit, what in result.items():
        click.echo(f"{unit}: {what}")
    if not result:
        click.echo("no lab units")


@lab.command()
@real_option
@platform_option
@json_option
def status(as_json: bool) -> None:
    """Lab units: running or not, listening or not, certificate days left (exit 3 unless all are up)."""
    from ralf.cli.common import table
    from ralf.lab.control import status as lab_status

    platform = _platform()
    if platform.lxc_host is not None:
        return _ctlab_status(platform, as_json)
    rows = lab_status(platform)
    if as_json:
        emit_json(rows)
    else:
        table("ralf lab", ["group", "service", "unit", "state", "pid", "listen", "cert days"],
              [[r["group"], r["service"], r["unit"], _state(r), r["pid"], r["listen"], r["cert_days_left"]]
               for r in rows])
    # like `systemctl status`: 0 only when every unit is up (running, and listening where it should)
    sys.exit(0 if rows and all(_state(r) == "active" for r in rows) else 3)


def _state(r: dict) -> str:
    if not r["active"]:
        return "inactive"
    return "active" if r["listening"] or not r["listen"] else "active, NOT LISTENING"


@lab.command("break")
@real_option
@platform_option
@json_option
@click.argument("service")
@click.argument("layer", type=click.Choice(["unit", "service", "nginx", "tls", "app"]))
def break_(service: str, layer: str, as_json: bool) -> None:
    """Break one LAYER of SERVICE on purpose (unit, service, nginx, tls, app)."""
    from ralf.lab.breaks import break_service

    platform = _platform()
    if platform.lxc_host is not None:
        from ralf.lab import ctlab

        out = ctlab.break_service(platform, service, layer)
    else:
        out = break_service(platform, service, layer)
    if as_json:
        emit_json(out.to_dict())
        return
    for a in out.actions:
        click.echo(f"broke {service}: {a}")
    click.echo(f"a smoke of {service} should now fail at: {out.expect}")
    click.echo(complete(f"repair: `ralf lab fix {service}{_which(platform)}`, then `ralf deploy --resume` continues a "
                        "failed deploy", platform.source))


@lab.command()
@real_option
@platform_option
@json_option
@click.argument("service")
def fix(service: str, as_json: bool) -> None:
    """Repair SERVICE after `ralf lab break`: new certificate, restart a hung app, start stopped units."""
    from ralf.lab.breaks import fix_service

    platform = _platform()
    if platform.lxc_host is not None:
        from ralf.lab import ctlab

        out = ctlab.fix_service(platform, service)
    else:
        out = fix_service(platform, service)
    if as_json:
        emit_json(out.to_dict())
        return
    for a in out.actions:
        click.echo(f"fixed {service}: {a}")
    if not out.actions:
        click.echo(f"{service}: nothing to fix")


@lab.command()
@click.argument("unit")
def unit(unit: str) -> None:
    """Exit 0 when lab UNIT is active (the lab's `systemctl is-active`)."""
    from ralf.lab.supervisor import is_active

    active = is_active(unit)
    click.echo("active" if active else "inactive")
    sys.exit(0 if active else 3)


@lab.command()
@click.argument("host")
@click.argument("port", type=click.IntRange(1, 65535))
@click.option("--timeout", type=float, default=3.0, show_default=True)
def port(host: str, port: int, timeout: float) -> None:
    """Exit 0 when something listens on HOST:PORT."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as e:
        click.echo(f"{host}:{port} closed ({e.strerror or e})")
        sys.exit(1)
    click.echo(f"{host}:{port} listening")


# ---------------------------------------------------------------- used by the lab's playbooks


@lab.command(hidden=True)
@platform_option
@click.argument("service")
def facts(service: str) -> None:
    """JSON settings of SERVICE for the lab's playbooks."""
    from ralf.lab.facts import service_facts

    emit_json(service_facts(_platform(), service))


def _unit_action(name: str, doc: str):
    @click.argument("unit")
    def cmd(unit: str) -> None:
        from ralf.lab import supervisor

        click.echo(f"{unit}: {getattr(supervisor, name)(unit)}")

    cmd.__doc__ = doc
    return lab.command(name, hidden=True)(cmd)


_unit_action("start", "Start lab UNIT unless it runs (prints started/running).")
_unit_action("stop", "Stop lab UNIT.")
_unit_action("restart", "Restart lab UNIT.")
_unit_action("reload", "Reload lab UNIT (HUP for nginx).")


@lab.command(hidden=True)
@click.argument("out_dir", type=click.Path(file_okay=False))
@click.option("--name", required=True, help="DNS name for the certificate.")
@click.option("--ip", "ips", multiple=True, help="IP address for the certificate (repeatable).")
def cert(out_dir: str, name: str, ips: tuple[str, ...]) -> None:
    """Issue a certificate from the lab CA into OUT_DIR unless a usable one is there."""
    from ralf.lab.certs import ensure_cert

    click.echo("issued" if ensure_cert(Path(out_dir), name, list(ips)) else "present")


def _ctlab_up(platform, as_json: bool) -> None:
    from ralf.lab import ctlab

    out = ctlab.up(platform, on_output=(lambda line: None) if as_json else click.echo)
    if as_json:
        emit_json(out.to_dict())
    elif out.ok:
        shown = _shown(platform.source)
        click.echo(f"real-container lab is up (Phase 1): `ralf deploy --executor local --platform {shown}` "
                   "runs the standard order on it")
    if not out.ok:
        click.echo("ralf: the real-container lab's Phase 1 failed (see the lines above)", err=True)
        sys.exit(1)


def _ctlab_status(platform, as_json: bool) -> None:
    from ralf.cli.common import table
    from ralf.lab import ctlab

    st = ctlab.status(platform)
    if as_json:
        emit_json(st)
        return
    click.echo(f"node {st['node']}: {'up' if st['up'] else 'down'} (namespace {st['netns']}, package cache "
               f"{'served' if st['cache_server'] else 'not served'} at {st['cache_url']})")
    table("ralf lab (real containers)", ["service", "ct", "ip", "state", "units", "cert days"],
          [[name, ct["ct_id"], ct["ip"], ct["state"], " ".join(f"{u}={a}" for u, a in ct["units"].items()),
            ct["cert_days_left"]] for name, ct in st["cts"].items()])
    if not st["up"] or any(ct["state"] != "RUNNING" or any(a != "active" for a in ct["units"].values())
                           for ct in st["cts"].values()):
        sys.exit(1)
