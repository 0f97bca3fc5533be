"""The programs a stack run needs, at versions that understand what ralf hands them.

ralf writes ``use_lockfile = true`` into every S3 backend configuration, which OpenTofu only knows
from 1.10 (Terraform: 1.10 too), so an older binary fails at ``init`` half-way through a run. The
version is read before anything runs, from the engine's machine output (``tofu version -json``,
key ``terraform_version`` in OpenTofu and Terraform alike). ansible-core has no machine-readable
version output (no ``--version`` JSON, nothing in ``ansible-config dump``); its ``--version`` first
line (``ansible-playbook [core 2.18.6]``, this form since ansible-core 2.11) is the one text ralf reads
from an engine — a banner checked before anything runs, never a run's result (those come from the
JSON events of :mod:`ralf.stacks.ansible_events`). A banner ralf cannot read stops the run with one
message instead of guessing.

The minimums here are the single source: the root modules' ``required_version`` and the Semaphore
host's pinned OpenTofu (role ``semaphore``) are tested against them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable

from ralf import process
from ralf.errors import ExternalToolError

TOFU_MIN = (1, 10, 0)  # use_lockfile in the S3 backend
ANSIBLE_CORE_MIN = (2, 16, 0)  # what the roles are written and tested for (pyproject: ansible-core>=2.16)
TIMEOUT = 60.0

_VERSION = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)")
_ANSIBLE_CORE = re.compile(r"\[core (\d+\.\d+\.\d+)")


def parse_version(text: str) -> tuple[int, int, int] | None:
    m = _VERSION.match(text.strip())
    return (int(m[1]), int(m[2]), int(m[3])) if m else None


def dotted(v: tuple[int, ...]) -> str:
    return ".".join(map(str, v))


def _run(argv: list[str], env: dict[str, str]) -> str:
    try:
        proc = process.run(argv, env=env, timeout=TIMEOUT)
    except OSError as e:
        raise ExternalToolError(f"cannot ask {argv[0]} for its version: {e}") from None
    if proc.timed_out:
        raise ExternalToolError(f"cannot ask {argv[0]} for its version: no answer within {TIMEOUT} s")
    if proc.returncode != 0:
        first = next((ln for ln in (proc.stderr + proc.stdout).splitlines() if ln.strip()), "")
        raise ExternalToolError(f"`{' '.join(argv)}` failed (exit {proc.returncode}): {first.strip()}")
    return proc.stdout


def tofu_version_command(binary: str) -> list[str]:
    return [binary, "version", "-json"]


def ansible_version_command(binary: str) -> list[str]:
    return [binary, "--version"]


def tofu_version(binary: str, env: dict[str, str]) -> tuple[int, int, int]:
    out = _run(tofu_version_command(binary), env)
    try:
        raw = json.loads(out)["terraform_version"]
    except (ValueError, KeyError, TypeError):
        raise ExternalToolError(f"{binary} gave no version in `version -json` (is it OpenTofu or Terraform?)") from None
    v = parse_version(str(raw))
    if v is None:
        raise ExternalToolError(f"{binary} reports an unreadable version {raw!r}")
    return v


def ansible_core_version(binary: str, env: dict[str, str]) -> tuple[int, int, int]:
    out = _run(ansible_version_command(binary), env)
    m = _ANSIBLE_CORE.search(out.splitlines()[0] if out else "")
    if not m:
        raise ExternalToolError(f"{binary} --version does not name its ansible-core version")
    v = parse_version(m[1])
    assert v is not None
    return v


def _at_least(v: tuple[int, int, int], minimum: tuple[int, int, int],
              too_old: Callable[[str, str], str]) -> tuple[int, int, int]:
    if v < minimum:
        raise ExternalToolError(too_old(dotted(v), dotted(minimum)))
    return v


def check_tofu(binary: str, env: dict[str, str]) -> tuple[int, int, int]:
    """The engine's version, or one clear error when it is older than :data:`TOFU_MIN`."""
    return _at_least(tofu_version(binary, env), TOFU_MIN, lambda have, need: (
        f"{binary} is version {have}, but ralf's OpenTofu stacks need >= {need} (the S3 state backend is "
        "configured with use_lockfile, unknown before 1.10); on the Semaphore host rerun 041-semaphore-config, "
        "which installs the pinned OpenTofu, elsewhere upgrade OpenTofu"))


def check_ansible(binary: str, env: dict[str, str]) -> tuple[int, int, int]:
    """ansible-core's version, or one clear error when it is older than :data:`ANSIBLE_CORE_MIN`."""
    return _at_least(ansible_core_version(binary, env), ANSIBLE_CORE_MIN, lambda have, need: (
        f"{binary} runs ansible-core {have}, but ralf's playbooks need >= {need}; upgrade ansible-core "
        "(on the Semaphore host: rerun 041-semaphore-config)"))
