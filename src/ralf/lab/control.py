"""Bring the lab up (its stacks through the stack runner), take it down, and say how it is.

``up`` is exactly ``ralf stacks run --apply`` over the lab platform, one stack at a time so that
progress can say "step i of N". It refuses a platform that is not a lab (anything that would
reach beyond this machine: OpenTofu stacks, SSH connections, a non-local exec transport).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ralf import settings
from ralf.errors import UsageError
from ralf.lab import certs, paths, supervisor
from ralf.lab.facts import tls_port
from ralf.model import Platform
from ralf.serial import Record
from ralf.states import Result

LAB_PLATFORM_ENV = "RALF_LAB_PLATFORM"


def bundled_platform(env_var: str, example: str) -> Path:
    """``$env_var``, else ``examples/<example>/platform.yaml`` here or in ralf's own checkout."""
    env = settings.get(env_var)
    if env:
        return Path(env)
    here = Path("examples") / example / "platform.yaml"
    if here.exists():
        return here
    return Path(__file__).resolve().parents[3] / here


def default_lab_platform() -> Path:
    """``$RALF_LAB_PLATFORM``, else ``examples/lab/platform.yaml`` here or in ralf's own checkout."""
    return bundled_platform(LAB_PLATFORM_ENV, "lab")


def ensure_lab(platform: Platform) -> None:
    """Refuse to treat a real platform as the lab."""
    from ralf.catalog import Catalog

    problems = []
    if platform.exec.transport != "local":
        problems.append(f"exec.transport is {platform.exec.transport!r}, not 'local'")
    if platform.ansible.connection != "local":
        problems.append(f"ansible.connection is {platform.ansible.connection!r}, not 'local'")
    if any(s.type == "tofu" for s in Catalog(platform).stacks):
        problems.append("it has OpenTofu stacks")
    if problems:
        where = platform.source or platform.name
        raise UsageError(f"{where} is not a lab platform ({'; '.join(problems)}); "
                         "pass --platform examples/lab/platform.yaml")


@dataclass
class UpResult(Record):
    ok: bool
    steps: list[dict] = field(default_factory=list)  # stack, result, duration, changed, log_path


def up(platform: Platform, *, progress=None, on_output: Callable[[str], None] | None = None) -> UpResult:
    """Apply every lab stack in order through the stack runner; stop at the first failure."""
    from ralf.catalog import Catalog

    ensure_lab(platform)
    try:
        from ralf.stacks import run_stacks
    except ImportError:
        raise UsageError("the stack runner (ralf.stacks) is not installed in this checkout") from None
    stacks = Catalog(platform).stacks
    out = UpResult(ok=True)
    env_before = os.environ.get(LAB_PLATFORM_ENV)
    if platform.source is not None:
        # The playbooks read their settings from this platform file.
        os.environ[LAB_PLATFORM_ENV] = str(Path(platform.source).resolve())
    try:
        for st in stacks:
            if progress:
                progress.start(st.name)
            cb = progress.line if progress else on_output
            res = run_stacks(platform, only=[st.name], apply=True, on_output=cb)
            r = res.results[0] if res.results else None
            step = {
                "stack": st.name,
                "result": r.result if r else (Result.SUCCEEDED if res.ok else Result.FAILED),
                "duration": round(r.duration, 2) if r and r.duration is not None else None,
                "changed": r.changed if r else None,
                "log_path": str(r.log_path) if r and r.log_path else None,
            }
            out.steps.append(step)
            if progress:
                progress.finish(step["result"], "" if step["changed"] is None else f"changed={step['changed']}")
            if not res.ok:
                out.ok = False
                break
    finally:
        if env_before is None:
            os.environ.pop(LAB_PLATFORM_ENV, None)
        else:
            os.environ[LAB_PLATFORM_ENV] = env_before
    return out


def down() -> dict[str, str]:
    """Stop every lab unit."""
    return supervisor.stop_all()


def status(platform: Platform) -> list[dict]:
    """One row per unit of each lab service: active, pid, listen address, certificate days left."""
    rows = []
    for name, svc in platform.services.items():
        cert_days = None
        if tls_port(platform, name) is not None:
            ci = certs.info(paths.tls_dir() / name)
            cert_days = ci.days_left if ci else None
        for unit in svc.units:
            st = supervisor.state(unit)
            listening = st.ready is not None and st.active and supervisor.listening(*st.ready, timeout=0.5)
            rows.append({"service": name, "group": svc.group, **st.to_dict(), "listening": listening,
                         "cert_days_left": cert_days if "nginx" in unit else None})
    return rows
