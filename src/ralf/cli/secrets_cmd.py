"""``ralf secrets init`` / ``ralf secrets check``: the secret files, never their values."""

from __future__ import annotations

import sys

import click

from ralf.cli.common import console, emit_json, json_option, load, platform_option, table


@click.group()
@platform_option
def secrets() -> None:
    """Create or check the <service>.env files in the secrets directory."""


@secrets.command("init")
@platform_option
@json_option
def init_cmd(as_json: bool) -> None:
    """Create missing secret files (random values for @random) and add newly required keys.

    Existing values are never changed. Directory 0700, files 0600.
    """
    from ralf.secrets import init_secrets

    report = init_secrets(load())
    if as_json:
        emit_json(report.to_dict())
        return
    table(f"Secrets in {report.dir}", ["file", "status", "keys"],
          [[f.file, f.status, ", ".join(f.keys)] for f in report.files])
    console().print("created or updated secret files" if report.changed else "nothing to do: every secret exists")


@secrets.command("check")
@platform_option
@json_option
def check_cmd(as_json: bool) -> None:
    """Say which secret files and keys are missing (exit 1 when any is, or a mode is too open)."""
    from ralf.secrets import check_secrets

    report = check_secrets(load())
    if as_json:
        emit_json(report.to_dict())
    else:
        table(f"Secrets in {report.dir}", ["file", "status", "missing keys", "note"],
              [[f.file, f.status, ", ".join(f.keys), f.note] for f in report.files])
        console().print("all secrets present" if report.ok else "secrets missing: run `ralf secrets init` "
                        "and provide the credentials it cannot generate")
    if not report.ok:
        sys.exit(1)  # click swallows its Exit when not standalone; SystemExit passes through
