"""The stack runner: selected stacks in order, under the state lock, one log per stack, a summary.

Every stack of a run shares a run directory ``<state_dir>/runs/<timestamp>-<id>/`` holding the
generated inventory, ``NN-<stack>.log`` per stack and ``summary.json`` (rewritten after every stack,
so a run that is killed still leaves a truthful record). The first failing stack stops the run:
later stacks build on earlier ones (a config stack needs its container). Everything that can be
checked before anything runs is: the selection, the programs, the playbooks and the credentials.
"""

from __future__ import annotations

import os
import secrets as _random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from ralf import serial, settings
from ralf.catalog import Catalog, Stack
from ralf.errors import PlatformError, RalfError, UsageError
from ralf.model import Platform
from ralf.serial import Record
from ralf.stacks import ansible, tofu, versions
from ralf.stacks.context import Outcome, RunContext
from ralf.stacks.lock import StackLock
from ralf.stacks.process import Redactor
from ralf.stacks.selection import parse_only, select_stacks
from ralf.states import Result


@dataclass
class StackResult(Record):
    json_fields = ("stack", "type", "service", "action", "result", "duration", "changed", "log_path", "note")

    stack: str
    type: str
    action: Literal["apply", "plan"]
    result: Result = Result.NOT_RUN  # then succeeded | failed | interrupted
    duration: float = 0.0
    log_path: Path | None = None
    changed: int | None = None
    note: str = ""
    service: str = ""

    @property
    def name(self) -> str:
        """Alias of ``stack`` (callers that think of results as named things)."""
        return self.stack

    def json_shape(self, data: dict) -> dict:
        data["duration"] = round(self.duration, 3)
        return data


@dataclass
class RunResult(Record):
    json_fields = ("ok", "exit_code", "mode", "interrupted", "changed", "run_dir", "started", "finished", "duration",
                   "stacks=results")

    results: list[StackResult]
    run_dir: Path
    apply: bool
    started: str
    finished: str | None = None
    duration: float = 0.0
    interrupted: bool = False

    @property
    def ok(self) -> bool:
        return bool(self.results) and not self.interrupted and all(r.result == Result.SUCCEEDED for r in self.results)

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return 130
        return 0 if self.ok else 1

    @property
    def mode(self) -> str:
        return "apply" if self.apply else "plan"

    def json_shape(self, data: dict) -> dict:
        data["duration"] = round(self.duration, 3)
        return data

    @property
    def changed(self) -> int | None:
        """Total changes over the stacks that report a count (None when none does)."""
        counts = [r.changed for r in self.results if r.changed is not None]
        return sum(counts) if counts else None


def _now() -> str:
    return datetime.now(UTC).astimezone().isoformat(timespec="seconds")


def new_run_dir(state_dir: Path) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    d = Path(state_dir) / "runs" / f"{stamp}-{_random.token_hex(3)}"
    try:
        # logs can hold what a playbook printed: readable by the owner only
        d.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(d.parent, 0o700)
        d.mkdir(mode=0o700)
    except OSError as e:
        raise RalfError(f"cannot create the run directory {d}: {e.strerror or e}") from None
    return d


def secret_values(platform: Platform) -> list[str]:
    """Every value held in the secrets directory (each ``KEY=value`` of its env files, the lines of any
    other file such as a private key), so a log line that prints one is redacted."""
    from ralf import envfile

    values: list[str] = []
    try:
        files = sorted(p for p in platform.secrets_path.iterdir() if p.is_file())
    except OSError:
        return values
    for path in files:
        try:
            if path.stat().st_size > 1_000_000:
                continue
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        env = envfile.parse(text)
        values += list(env.values()) if env else [ln.strip() for ln in text.splitlines() if len(ln.strip()) >= 8
                                                  and not ln.startswith("-----")]
    return values


def preflight(
    platform: Platform, stacks: list[Stack], environ: dict[str, str], tofu_binary: str | None
) -> tuple[str | None, str | None, dict[str, str]]:
    """Programs, playbooks and credentials for the selected stacks, or the one error that stops the run."""
    tofu_stacks = [s for s in stacks if s.type == "tofu"]
    ansible_stacks = [s for s in stacks if s.type == "ansible"]
    tofu_path = tofu.resolve_tofu(tofu_binary, environ) if tofu_stacks else None
    ansible_path = ansible.resolve_ansible(environ) if ansible_stacks else None
    quiet_env = tofu.child_env(environ, {})  # CHECKPOINT_DISABLE: terraform's version check would phone home
    if tofu_path:
        versions.check_tofu(tofu_path, quiet_env)
    if ansible_path:
        versions.check_ansible(ansible_path, quiet_env)
    missing = [str(ansible.playbook_path(platform, s.name)) for s in ansible_stacks
               if not ansible.playbook_path(platform, s.name).is_file()]
    if missing:
        raise PlatformError([f"stack playbook missing: {m}" for m in missing])
    creds = tofu.credentials(platform, tofu_stacks, environ) if tofu_stacks else {}
    return tofu_path, ansible_path, creds


def _allowed_destroys(stacks: list[Stack], names: Iterable[str]) -> frozenset[str]:
    allowed = frozenset(n for n in names if n)
    tofu_names = {s.name for s in stacks if s.type == "tofu"}
    unknown = sorted(allowed - tofu_names)
    if unknown:
        raise UsageError(f"--allow-destroy {', '.join(unknown)}: not an OpenTofu stack of this run "
                         f"(selected: {', '.join(sorted(tofu_names)) or 'none'})")
    return allowed


def run_stacks(
    platform: Platform,
    only: str | list[str] | None = None,
    start_at: str | None = None,
    *,
    apply: bool,
    state_dir: Path | None = None,
    on_output: Callable[[str], None] | None = None,
    wait: bool = False,
    tofu_binary: str | None = None,
    repo_root: Path | None = None,
    environ: dict[str, str] | None = None,
    ansible_retries: int | None = None,
    ansible_retry_delay: float | None = None,
    command: str | None = None,
    on_start: Callable[[Path], None] | None = None,
    import_retries: int | None = None,
    import_retry_delay: float | None = None,
    only_source: str = "ONLY_STACKS",
    start_source: str = "START_AT",
    allow_destroy: Iterable[str] = (),
) -> RunResult:
    """Run the selected stacks; raises :class:`RalfError` for anything detected before the first stack.

    ``only_source`` / ``start_source`` name where ``only`` / ``start_at`` came from (variable or flag) in errors.
    ``allow_destroy`` names the OpenTofu stacks whose plan may delete or replace resources (the
    destroy guard stops every other one before apply); there is deliberately no variable for it.
    """
    from ralf.paths import state_dir as default_state_dir

    env = dict(os.environ if environ is None else environ)
    catalog = Catalog(platform)
    stacks = select_stacks(catalog, parse_only(only), start_at, only_source=only_source,
                           start_source=start_source)
    allowed = _allowed_destroys(stacks, allow_destroy)
    tofu_path, ansible_path, creds = preflight(platform, stacks, env, tofu_binary)
    retries = ansible_retries if ansible_retries is not None else settings.number("RALF_ANSIBLE_RETRIES", 3, env)
    delay = (ansible_retry_delay if ansible_retry_delay is not None
             else settings.number("RALF_ANSIBLE_RETRY_DELAY", 5.0, env, cast=float))
    i_retries = import_retries if import_retries is not None else settings.number("RALF_IMPORT_RETRIES", 3, env)
    i_delay = (import_retry_delay if import_retry_delay is not None
               else settings.number("RALF_IMPORT_RETRY_DELAY", 5.0, env, cast=float))
    sd = Path(state_dir) if state_dir is not None else default_state_dir()
    root = Path(repo_root) if repo_root else (platform.source.parent if platform.source else Path.cwd())
    action: Literal["apply", "plan"] = "apply" if apply else "plan"

    lock = StackLock(sd, wait=wait, command=command, on_wait=(lambda m: on_output(f"[ralf] {m}")) if on_output else None)
    with lock:
        run_dir = new_run_dir(sd)
        ctx = RunContext(
            platform=platform, state_dir=sd, run_dir=run_dir, repo_root=root, environ=env,
            tofu_binary=tofu_path, ansible_binary=ansible_path, on_output=on_output,
            redact=Redactor([v for k, v in creds.items() if k in tofu.SECRET_ENV] + secret_values(platform)),
            ansible_retries=int(retries), ansible_retry_delay=float(delay),
            import_retries=int(i_retries), import_retry_delay=float(i_delay), allow_destroy=allowed,
        )
        if on_start:
            on_start(run_dir)
        result = RunResult(
            [StackResult(s.name, s.type, action, service=s.service) for s in stacks], run_dir, apply, _now()
        )
        _execute(ctx, stacks, result, creds)
    return result


def _execute(ctx: RunContext, stacks: list[Stack], result: RunResult, creds: dict[str, str]) -> None:
    t0 = time.monotonic()
    has_cts = ctx.platform.lxc_host is not None or ctx.platform.proxmox is not None
    if result.apply and has_cts and any(s.type == "ansible" for s in stacks):  # renewal is part of each Apply
        from ralf.backends.lxc import tls

        for service in tls.ensure_certs(ctx.platform):
            ctx.say(f"[ralf] issued a certificate for {service} from the platform CA")
    inventory = ansible.write_inventory(ctx.platform, ctx.run_dir) if any(s.type == "ansible" for s in stacks) else None
    tofu_env = tofu.child_env(ctx.environ, creds)
    ansible_env = ansible.ansible_env(ctx.environ, ctx.platform, ctx.run_dir, ctx.repo_root)
    _write_summary(result)
    ctx.say(f"[ralf] {'apply' if result.apply else 'plan'}: {len(stacks)} stack(s): {' '.join(s.name for s in stacks)}")
    ctx.say(f"[ralf] logs: {ctx.run_dir}")
    warning = tofu.tls_warning(ctx.platform) if any(s.type == "tofu" for s in stacks) else None
    if warning:
        ctx.say(f"[ralf] warning: {warning}")
    with ctx.guard:
        for i, (stack, sr) in enumerate(zip(stacks, result.results, strict=False), 1):
            if ctx.guard.requested:
                result.interrupted = True
                break
            sr.log_path = ctx.run_dir / f"{i:02d}-{stack.name}.log"
            ctx.say(f"[ralf] === {stack.name} ({stack.type}, {sr.action}) [{i}/{len(stacks)}] ===")
            start = time.monotonic()
            with open(sr.log_path, "w", encoding="utf-8", opener=_private) as log:
                log.write(f"# {stack.name} ({stack.type}, {sr.action}) started {_now()}\n")
                try:
                    if stack.type == "lxc":  # realised by ralf on the local LXC host: no OpenTofu
                        from ralf.backends.lxc.stack import run_lxc_stack

                        out = run_lxc_stack(ctx, stack, result.apply, log)
                    elif stack.type == "tofu":
                        out = tofu.run_tofu_stack(ctx, stack, result.apply, tofu_env, log)
                    else:
                        assert inventory is not None
                        from ralf.backends.lxc.node import platform_network

                        with platform_network(ctx.platform):  # a local LXC node's CTs: SSH inside its namespace
                            out = ansible.run_ansible_stack(ctx, stack, result.apply, inventory, ansible_env, log)
                except RalfError as e:
                    out = Outcome(Result.FAILED, note=str(e))
                    log.write(f"[ralf] error: {e}\n")
                    ctx.say(f"[ralf] error: {e}")
                sr.duration = time.monotonic() - start
                if out.result == Result.INTERRUPTED:
                    out.note = _stopped_by(ctx.guard.signum)
                sr.result, sr.changed, sr.note = out.result, out.changed, out.note
                log.write(f"# {stack.name}: {sr.result} after {sr.duration:.1f}s{' — ' + sr.note if sr.note else ''}\n")
            ctx.say(f"[ralf] {stack.name}: {sr.result}{' — ' + sr.note if sr.note else ''} ({sr.duration:.1f}s)")
            _write_summary(result)
            if out.result == Result.INTERRUPTED or ctx.guard.requested:
                result.interrupted = True
                break
            if out.result != Result.SUCCEEDED:
                break
    result.finished = _now()
    result.duration = time.monotonic() - t0
    _write_summary(result)


def _private(path: str, flags: int) -> int:
    return os.open(path, flags, 0o600)


def _stopped_by(signum: int | None) -> str:
    """Which signal stopped the stack (SIGINT is Ctrl-C or a deploy deadline; SIGTERM, Semaphore's stop)."""
    import signal

    return f"stopped by {signal.Signals(signum).name}" if signum else "stopped"


def _write_summary(result: RunResult) -> None:
    path = result.run_dir / "summary.json"
    tmp = path.with_suffix(".json.tmp")
    with open(tmp, "w", encoding="utf-8", opener=_private) as f:
        f.write(serial.dumps(result) + "\n")
    os.replace(tmp, path)


__all__ = ["RunResult", "StackResult", "run_stacks", "preflight"]
