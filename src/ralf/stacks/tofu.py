"""OpenTofu stacks (``*-lxc``): work directory, generated S3 backend, command lines, import-and-reapply.

Each stack gets ``<state_dir>/tofu/<stack>/`` holding the root module rendered from the platform
file (``ralf.tofu_config``) and, unless the stack keeps local state (``030-minio-lxc`` creates the
backend), ``backend.tf.json`` (an empty ``backend "s3" {}``) plus ``backend.hcl`` with the MinIO
settings, passed with ``-backend-config``. ``use_lockfile = true`` makes OpenTofu lock the state
object in the bucket, so two runs on different machines cannot corrupt it either.

Every run plans into a saved plan (``-out``), reads it with ``show -json`` and, before applying it,
stops when it deletes or replaces anything (a CT holds its service's data) unless the operator named
the stack with ``--allow-destroy``: the destroy guard. Semaphore's Apply templates cannot pass that
flag, so they never destroy. ``init``/``plan``/``apply`` run with ``-json``; ralf decides on those
messages (``ralf.stacks.tofu_json``) and logs their human text (``@message``).

When apply fails because the container already exists, it is adopted with an ``import`` block
(``ralf_import.tf.json``: the container's address and bpg/proxmox's documented id
``<node_name>/<vm_id>``), planned, guarded and applied again like any plan — so the import, too, is
read from ``-json`` (``tofu import`` has no machine-readable output). A container Proxmox is still
creating (locked, or not visible yet) makes that plan fail; it is planned again a few times with a
growing pause, as the original polled. The import file is removed when the run is done with it.

OpenTofu's diagnostics carry no codes: where ralf tells one error from another (the container
exists, is not importable yet, the state is locked) it matches the ``summary``/``detail`` fields of
the JSON diagnostic, never the rendered text.

Credentials never touch a file or an argument: MinIO's keys go in as ``AWS_ACCESS_KEY_ID`` /
``AWS_SECRET_ACCESS_KEY``, Proxmox's token as ``TF_VAR_pm_api_token_id`` / ``_secret``.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import TextIO

from ralf import backoff, settings
from ralf.catalog import Stack
from ralf.errors import ExternalToolError, SecretError
from ralf.model import Platform
from ralf.secrets import read_env_file
from ralf.stacks import tofu_json
from ralf.stacks.context import Outcome, RunContext
from ralf.stacks.process import ProcResult, run_streamed
from ralf.states import Result

BACKEND_STUB = "backend.tf.json"
BACKEND_CONFIG = "backend.hcl"
IMPORT_FILE = "ralf_import.tf.json"
SSH_PUBLIC_KEY = "ralf_ed25519.pub"

# Matched against diagnostics' summary and detail (tofu_json.errors), never against rendered output.
ALREADY_EXISTS = re.compile(r"already exists", re.IGNORECASE)
# The container is there but not importable yet: Proxmox still creating it (locked), or not visible.
NOT_YET = re.compile(r"non-existent remote object|does not exist|is locked", re.IGNORECASE)
MAX_IMPORT_DELAY = 60.0
STATE_LOCKED = re.compile(r"Error acquiring the state lock", re.IGNORECASE)


# --------------------------------------------------------------------------- binary


def tofu_binary_name(explicit: str | None, environ: dict[str, str]) -> str:
    return explicit or settings.get("RALF_TOFU", environ) or "tofu"


def resolve_tofu(explicit: str | None, environ: dict[str, str]) -> str:
    """The OpenTofu (or Terraform) executable's path, or one clear error."""
    name = tofu_binary_name(explicit, environ)
    found = shutil.which(name, path=settings.get("PATH", environ))
    if not found:
        raise ExternalToolError(
            f"OpenTofu binary {name!r} not found on PATH; install OpenTofu, or pick another binary "
            "with --tofu-binary or RALF_TOFU (e.g. terraform)"
        )
    return found


# --------------------------------------------------------------------------- files


def _hcl_string(value: str) -> str:
    return json.dumps(value).replace("${", "$${").replace("%{", "%%{")


def remote_state(platform: Platform, stack: Stack) -> bool:
    return platform.state_backend is not None and not stack.local_state


def state_key(platform: Platform, stack_name: str) -> str:
    sb = platform.state_backend
    assert sb is not None
    prefix = sb.key_prefix.strip("/")
    return f"{prefix}/{stack_name}/terraform.tfstate" if prefix else f"{stack_name}/terraform.tfstate"


def backend_stub() -> str:
    return json.dumps({"terraform": {"backend": {"s3": {}}}}, indent=2) + "\n"


def backend_config(platform: Platform, stack_name: str) -> str:
    """The ``-backend-config`` file for MinIO (argument names as in OpenTofu's S3 backend docs)."""
    sb = platform.state_backend
    assert sb is not None
    rows = [
        ("bucket", _hcl_string(sb.bucket)),
        ("key", _hcl_string(state_key(platform, stack_name))),
        ("region", _hcl_string(sb.region)),
        ("endpoints", "{ s3 = " + _hcl_string(sb.endpoint) + " }"),
        ("use_path_style", "true"),
        ("skip_credentials_validation", "true"),
        ("skip_region_validation", "true"),
        ("skip_requesting_account_id", "true"),
        ("skip_metadata_api_check", "true"),
        ("skip_s3_checksum", "true"),
        ("use_lockfile", "true"),
    ]
    width = max(len(k) for k, _ in rows)
    body = "".join(f"{k:<{width}} = {v}\n" for k, v in rows)
    return f"# Generated by ralf for {stack_name}; credentials come from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY.\n{body}"


def workdir(state_dir: Path, stack_name: str) -> Path:
    return Path(state_dir) / "tofu" / stack_name


def root_module(platform: Platform, stack_name: str, repo_root: Path) -> dict[str, str]:
    """The stack's root module from ``ralf.tofu_config`` (empty when that module is not available)."""
    try:
        from ralf import tofu_config
    except ImportError:
        return {}
    return tofu_config.render_stack(platform, stack_name, repo_root)


def prepare_workdir(platform: Platform, stack: Stack, state_dir: Path, repo_root: Path) -> Path:
    d = workdir(state_dir, stack.name)
    d.mkdir(parents=True, exist_ok=True)
    for name, text in root_module(platform, stack.name, repo_root).items():
        (d / name).write_text(text, encoding="utf-8")
    (d / IMPORT_FILE).unlink(missing_ok=True)  # left by a run that was killed while adopting the container
    if remote_state(platform, stack):
        (d / BACKEND_STUB).write_text(backend_stub(), encoding="utf-8")
        (d / BACKEND_CONFIG).write_text(backend_config(platform, stack.name), encoding="utf-8")
    else:
        for name in (BACKEND_STUB, BACKEND_CONFIG):
            (d / name).unlink(missing_ok=True)
    return d


# --------------------------------------------------------------------------- commands

PLAN_FILE = "ralf.tfplan"


def init_command(binary: str, remote: bool) -> list[str]:
    cmd = [binary, "init", "-input=false", "-json"]
    if remote:
        # -reconfigure: the backend file is generated each run; an edited endpoint must not stop init.
        cmd += ["-reconfigure", f"-backend-config={BACKEND_CONFIG}"]
    return cmd


def plan_command(binary: str) -> list[str]:
    return [binary, "plan", "-input=false", "-json", f"-out={PLAN_FILE}"]


def show_command(binary: str) -> list[str]:
    return [binary, "show", "-json", PLAN_FILE]


def apply_command(binary: str) -> list[str]:
    # A saved plan applies without a prompt, and exactly what the destroy guard has seen.
    return [binary, "apply", "-input=false", "-json", PLAN_FILE]


def import_block(address: str, import_id: str) -> str:
    """The ``import`` block that adopts an existing container (a root-module file, JSON syntax)."""
    return json.dumps({"import": [{"to": address, "id": import_id}]}, indent=2) + "\n"


def import_target(platform: Platform, stack_name: str) -> tuple[str, str]:
    """(resource address, import id) of the stack's container: ``<node>/<ct_id>`` for bpg/proxmox."""
    from ralf import tofu_config

    return tofu_config.RESOURCE_ADDRESS, tofu_config.import_id(platform, stack_name)


def commands_for(platform: Platform, stack: Stack, binary: str, apply: bool) -> list[list[str]]:
    """The command lines of a normal run (without the import recovery)."""
    cmds = [init_command(binary, remote_state(platform, stack)), plan_command(binary), show_command(binary)]
    return cmds + [apply_command(binary)] if apply else cmds


# --------------------------------------------------------------------------- environment


def credentials(platform: Platform, stacks: list[Stack], environ: dict[str, str]) -> dict[str, str]:
    """The secret environment the tofu stacks need; a missing one is a SecretError naming file and key."""
    env: dict[str, str] = {}
    px = platform.proxmox
    if px is not None:
        tid, tsecret = settings.get("PVE_TOKEN_ID", environ), settings.get("PVE_TOKEN_SECRET", environ)
        if not (tid and tsecret):
            path = platform.secrets_path / px.credentials_file
            values = read_env_file(path) if path.exists() else {}
            tid = tid or values.get("PVE_TOKEN_ID")
            tsecret = tsecret or values.get("PVE_TOKEN_SECRET")
            missing = [k for k, v in (("PVE_TOKEN_ID", tid), ("PVE_TOKEN_SECRET", tsecret)) if not v]
            if missing:
                raise SecretError(
                    f"Proxmox credentials missing: {', '.join(missing)} (set them in the environment or in {path})"
                )
        env["TF_VAR_pm_api_url"] = px.api_url
        ca = proxmox_ca_file(platform)
        if ca is not None:
            # bpg/proxmox has no CA argument; Go reads the trusted roots from SSL_CERT_FILE
            env["SSL_CERT_FILE"] = str(ca)
        env["TF_VAR_pm_api_token_id"] = tid or ""
        env["TF_VAR_pm_api_token_secret"] = tsecret or ""
    pub = platform.secrets_path / SSH_PUBLIC_KEY
    if pub.is_file():
        try:
            env["TF_VAR_ssh_public_key"] = pub.read_text(encoding="utf-8").strip().splitlines()[0]
        except (OSError, IndexError, UnicodeDecodeError):
            pass
    if any(remote_state(platform, s) for s in stacks):
        sb = platform.state_backend
        assert sb is not None
        path = platform.secrets_path / sb.credentials_file
        values = read_env_file(path)
        missing = [k for k in (sb.access_key_var, sb.secret_key_var) if not values.get(k)]
        if missing:
            raise SecretError(f"state backend credentials missing: {', '.join(missing)} in {path}")
        env["AWS_ACCESS_KEY_ID"] = values[sb.access_key_var]
        env["AWS_SECRET_ACCESS_KEY"] = values[sb.secret_key_var]
    return env


def proxmox_ca_file(platform: Platform) -> Path | None:
    """The PEM the Proxmox API is verified with (None: system store), or a SecretError when it is missing."""
    px = platform.proxmox
    if px is None or px.ca_file is None or px.insecure_tls:
        return None
    path = platform.resolve_path(px.ca_file)  # as semaphore.ca_file: relative to the platform file
    try:
        pem = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        raise SecretError(
            f"Proxmox CA file missing: {path} (proxmox.ca_file); copy /etc/pve/pve-root-ca.pem from the "
            "Proxmox node there, e.g. scp root@<node>:/etc/pve/pve-root-ca.pem " + str(path)
        ) from None
    if "-----BEGIN CERTIFICATE-----" not in pem:
        raise SecretError(f"Proxmox CA file {path} holds no PEM certificate (proxmox.ca_file)")
    return path


def tls_warning(platform: Platform) -> str | None:
    """The warning every run prints while the Proxmox API's certificate is not verified."""
    if platform.proxmox is None or not platform.proxmox.insecure_tls:
        return None
    return ("proxmox.insecure_tls is true: the API certificate is NOT verified, so the API token goes to "
            "whoever answers at " + platform.proxmox.api_url + "; set proxmox.ca_file (the node's "
            "/etc/pve/pve-root-ca.pem) and remove insecure_tls")


SECRET_ENV = ("TF_VAR_pm_api_token_id", "TF_VAR_pm_api_token_secret", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")


def child_env(base: dict[str, str], creds: dict[str, str]) -> dict[str, str]:
    env = dict(base)
    env.update(creds)
    env["TF_IN_AUTOMATION"] = "1"
    env["TF_INPUT"] = "0"
    env.setdefault("CHECKPOINT_DISABLE", "1")  # terraform's version check would phone home
    return env


# --------------------------------------------------------------------------- run


def destroy_refusal(stack_name: str, plan: tofu_json.Plan) -> str:
    """Why the run stops before apply: the resources OpenTofu would delete or replace, and why."""
    whys = "; ".join(c.why() for c in plan.destructive)
    return (f"refused: the plan destroys data ({whys}); nothing was applied. If that is intended, run "
            f"`ralf stacks run --apply --only {stack_name} --allow-destroy {stack_name}` on the runner "
            "(Semaphore's Apply templates never destroy)")


def run_tofu_stack(ctx: RunContext, stack: Stack, apply: bool, env: dict[str, str], log: TextIO) -> Outcome:
    assert ctx.tofu_binary is not None
    d = prepare_workdir(ctx.platform, stack, ctx.state_dir, ctx.repo_root)
    try:
        return _StackRun(ctx, stack, env, log, ctx.tofu_binary, d).run(apply)
    finally:
        # the saved plan holds every variable's value, the Proxmox token included
        (d / PLAN_FILE).unlink(missing_ok=True)
        (d / IMPORT_FILE).unlink(missing_ok=True)


class _StackRun:
    """One stack's command sequence: init, plan, show, (guard), apply — and the adoption of an existing CT."""

    def __init__(self, ctx: RunContext, stack: Stack, env: dict[str, str], log: TextIO, binary: str, d: Path):
        self.ctx, self.stack, self.env, self.log, self.binary, self.d = ctx, stack, env, log, binary, d
        self.outcome = Outcome(Result.SUCCEEDED)

    def exec(self, argv: list[str], quiet: bool = False) -> ProcResult:
        self.outcome.commands.append(argv)
        header = f"$ {' '.join(argv)}    (in {self.d})"
        self.log.write(header + "\n")
        self.ctx.say(f"[ralf] {header}")
        show = (lambda line: None) if quiet else tofu_json.human
        # resend_on_startup=False: a second SIGINT would make tofu drop its state lock
        return run_streamed(argv, cwd=self.d, env=self.env, log=self.log, on_line=self.ctx.on_output,
                            redact=self.ctx.redact, guard=self.ctx.guard, resend_on_startup=False, show=show)

    def stop(self, res: ProcResult, note: str) -> Outcome:
        self.outcome.result = Result.INTERRUPTED if res.interrupted else Result.FAILED
        self.outcome.note = "interrupted" if res.interrupted else note
        return self.outcome

    def say(self, line: str) -> None:
        self.log.write(line + "\n")
        self.ctx.say(line)

    def planned(self, step: str = "plan") -> tuple[ProcResult | None, tofu_json.Plan | None]:
        """plan + show -json: (None, plan), or (the failed or interrupted run, None)."""
        res = self.exec(plan_command(self.binary))
        if res.returncode != 0 or res.interrupted:
            self.stop(res, _failure_note(res.lines, step))
            return res, None
        res = self.exec(show_command(self.binary), quiet=True)  # the JSON holds variable values: never logged
        if res.returncode != 0 or res.interrupted:
            self.stop(res, "reading the saved plan failed")
            return res, None
        return None, tofu_json.read_plan(res.output)

    def refused(self, plan: tofu_json.Plan) -> bool:
        """The destroy guard: True (and the outcome says why) when the plan deletes and was not allowed to."""
        if not plan.destructive:
            return False
        for c in plan.destructive:
            self.say(f"[ralf] destroy guard: {c.why()}")
        if self.stack.name in self.ctx.allow_destroy:
            self.ctx.say(f"[ralf] --allow-destroy {self.stack.name}: applying the plan with its deletions")
            return False
        self.outcome.result = Result.FAILED
        self.outcome.note = destroy_refusal(self.stack.name, plan)
        return True

    def run(self, apply: bool) -> Outcome:
        res = self.exec(init_command(self.binary, remote_state(self.ctx.platform, self.stack)))
        if res.returncode != 0 or res.interrupted:
            return self.stop(res, _failure_note(res.lines, "init"))
        _, plan = self.planned()
        if plan is None:
            return self.outcome
        if not apply:
            self.outcome.changed = plan.change_count
            if plan.destructive:
                self.outcome.note = "the plan destroys: " + "; ".join(c.why() for c in plan.destructive)
            return self.outcome
        if self.refused(plan):
            return self.outcome
        res = self.exec(apply_command(self.binary))
        if res.interrupted:
            return self.stop(res, "")
        if res.returncode != 0 and _already_exists(res.lines):
            return self.adopt()
        if res.returncode != 0:
            return self.stop(res, _failure_note(res.lines, "apply"))
        self.outcome.changed = tofu_json.change_count(res.lines)
        return self.outcome

    def adopt(self) -> Outcome:
        """Import the existing container with an import block, plan (again while it is not importable yet),
        guard, apply."""
        address, import_id = import_target(self.ctx.platform, self.stack.name)
        self.ctx.say(f"[ralf] the container already exists: importing it as {address} ({import_id}) and applying again")
        (self.d / IMPORT_FILE).write_text(import_block(address, import_id), encoding="utf-8")
        step = f"import of {import_id}"
        attempt = 0
        while True:
            failed, plan = self.planned(step)
            if plan is not None:
                break
            assert failed is not None
            errs = tofu_json.errors(failed.lines)
            waiting = [e for e in errs if NOT_YET.search(e)]
            if failed.interrupted or not waiting or any(STATE_LOCKED.search(e) for e in errs) \
                    or attempt >= self.ctx.import_retries:
                if attempt and not failed.interrupted:
                    self.outcome.note += f" after {attempt + 1} attempts"
                return self.outcome
            attempt += 1
            delay = backoff.delay(attempt, self.ctx.import_retry_delay, MAX_IMPORT_DELAY)
            why = waiting[0].split(": ", 1)[0]
            self.say(f"[ralf] container {import_id} not importable yet ({why}); "
                     f"retry {attempt}/{self.ctx.import_retries} in {delay:g}s")
            if self.ctx.guard.sleep(delay):
                self.outcome.result, self.outcome.note = Result.INTERRUPTED, "interrupted"
                return self.outcome
        if self.refused(plan):
            return self.outcome
        res = self.exec(apply_command(self.binary))
        if res.returncode != 0 or res.interrupted:
            return self.stop(res, _failure_note(res.lines, "apply after import"))
        (self.d / IMPORT_FILE).unlink(missing_ok=True)
        self.outcome.result = Result.SUCCEEDED
        self.outcome.note = f"imported existing container {import_id}"
        self.outcome.changed = tofu_json.change_count(res.lines)
        return self.outcome


def _already_exists(lines: list[str]) -> bool:
    return any(ALREADY_EXISTS.search(e) for e in tofu_json.errors(lines))


def _failure_note(lines: list[str], step: str) -> str:
    errs = tofu_json.errors(lines)
    if any(STATE_LOCKED.search(e) for e in errs):
        return f"{step}: the state is locked by another OpenTofu run (see the log for the lock id)"
    if errs:
        return f"{step} failed: {errs[0].splitlines()[0][:200]}"
    return f"{step} failed"
