"""Every environment variable ralf reads, in one table, and the one function that reads them.

Code elsewhere never calls ``os.environ.get`` for a setting: it calls :func:`get` (or :func:`number`) with
a name listed in :data:`VARIABLES`, optionally with its own mapping (tests, a child's environment). The
README's table of variables is :func:`markdown_table`; a test keeps the two equal. A variable marked
``secret`` has its value handed to the log redactor (:mod:`ralf.log`) when read, so a diagnostic that
happens to print it shows ``***`` instead.
"""

import os
from collections.abc import Mapping
from typing import NamedTuple

from ralf.errors import UsageError


class Variable(NamedTuple):  # a NamedTuple like the catalog's records (see there)
    name: str
    meaning: str
    default: str = ""
    secret: bool = False


VARIABLES: dict[str, Variable] = {v.name: v for v in (
    Variable("RALF_PLATFORM", "the platform file when `--platform` is not given", "`./platform.yaml`"),
    Variable("RALF_STATE_DIR", "where runs, logs, the journal, locks and OpenTofu work directories live",
             "`$XDG_STATE_HOME/ralf`"),
    Variable("XDG_STATE_HOME", "the base of the state directory when `RALF_STATE_DIR` is not set",
             "`~/.local/state`"),
    Variable("RALF_SECRETS_DIR", "the secrets directory, overriding `secrets.dir` of the platform file",
             "`secrets.dir`"),
    Variable("RALF_LAB_PLATFORM", "the loopback lab's platform file (`ralf lab`)", "`examples/lab/platform.yaml`"),
    Variable("RALF_CTLAB_PLATFORM", "the real-container lab's platform file (`ralf lab --real`)",
             "`examples/ctlab/platform.yaml`"),
    Variable("RALF_TOFU", "the OpenTofu (or Terraform) executable `ralf stacks run` uses", "`tofu`"),
    Variable("RALF_ANSIBLE_RETRIES", "how often an Ansible stack is retried for the hosts that were "
             "unreachable (a failed task is never retried)", "`3`"),
    Variable("RALF_ANSIBLE_RETRY_DELAY", "seconds before the first Ansible retry (doubling, at most 60)", "`5`"),
    Variable("RALF_IMPORT_RETRIES", "how often `tofu import` of a container that is not importable yet is retried",
             "`3`"),
    Variable("RALF_IMPORT_RETRY_DELAY", "seconds before the first import retry (doubling, at most 60)", "`5`"),
    Variable("ONLY_STACKS", "the stacks an Apply runs (Semaphore's template variable; `--only` wins)", "all"),
    Variable("START_AT", "the stack prefix an Apply starts at (`--start-at` wins)", "the first"),
    Variable("AUTO_APPLY", "`1`: `ralf stacks run` applies instead of planning (`--apply` / `--plan` win)", "plan"),
    Variable("SEMAPHORE_URL", "Semaphore's URL, overriding `semaphore.url`", "`semaphore.url`"),
    Variable("SEMAPHORE_CA_FILE", "the CA that signed Semaphore's certificate, overriding `semaphore.ca_file`",
             "the platform's CA"),
    Variable("SEMAPHORE_ALLOW_HTTP", "`1`: allow a plain `http://` Semaphore URL on another machine", "refused"),
    Variable("SEMAPHORE_TOKEN", "Semaphore API token", "the admin in `semaphore.env` of the secrets directory",
             secret=True),
    Variable("SEMAPHORE_USER", "Semaphore user (with `SEMAPHORE_PASSWORD`) when there is no token", ""),
    Variable("SEMAPHORE_PASSWORD", "that user's password", "", secret=True),
    Variable("PVE_TOKEN_ID", "Proxmox API token id, overriding the Proxmox credentials file", "credentials file"),
    Variable("PVE_TOKEN_SECRET", "Proxmox API token secret", "credentials file", secret=True),
    Variable("AWS_ACCESS_KEY_ID", "S3 key for the state backend's smoke check when its credentials file has none",
             "credentials file"),
    Variable("AWS_SECRET_ACCESS_KEY", "S3 secret for that check", "credentials file", secret=True),
    Variable("PATH", "where ralf finds `tofu`, `ansible-playbook`, `git`, `ssh` and the LXC tools", "the system's"),
)}


def _variable(name: str) -> Variable:
    try:
        return VARIABLES[name]
    except KeyError:
        raise KeyError(f"{name} is not a variable ralf reads: add it to ralf.settings.VARIABLES") from None


def get(name: str, environ: Mapping[str, str] | None = None) -> str | None:
    """The variable's value in ``environ`` (default: this process's environment), None when unset."""
    var = _variable(name)
    value = (os.environ if environ is None else environ).get(name)
    if value and var.secret:
        from ralf import log

        log.redact(value)
    return value


def number(name: str, default: float, environ: Mapping[str, str] | None = None, *, cast: type = int) -> float:
    """A non-negative number from the variable, ``default`` when unset or empty; bad text is a usage error."""
    raw = get(name, environ)
    if raw is None or raw == "":
        return default
    try:
        value = cast(raw)
    except ValueError:
        raise UsageError(f"{name}={raw!r} is not a number") from None
    if value < 0:
        raise UsageError(f"{name}={raw!r} must not be negative")
    return value


def markdown_table() -> str:
    """The README's table of variables."""
    lines = ["| variable | what it sets | default |", "|---|---|---|"]
    lines += [f"| `{v.name}` | {v.meaning}{' (secret: never logged)' if v.secret else ''} | {v.default or '-'} |"
              for v in VARIABLES.values()]
    return "\n".join(lines) + "\n"
