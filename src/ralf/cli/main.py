"""Entry point: the ``ralf`` group, lazy subcommand loading and the one place errors become exit codes.

Subcommands live in their own modules and are imported only when used, so ``ralf --help`` and
``ralf plan`` start fast. A module listed in ``COMMANDS`` that does not exist yet is simply not offered.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys

import click

from ralf.cli.common import platform_option

# name -> "module:attribute"; order is the order of `ralf --help`.
COMMANDS: dict[str, str] = {
    "validate": "ralf.cli.platform_cmd:validate",
    "catalog": "ralf.cli.platform_cmd:catalog",
    "plan": "ralf.cli.plan_cmd:plan",
    "bootstrap": "ralf.cli.bootstrap_cmd:bootstrap",
    "deploy": "ralf.cli.deploy_cmd:deploy",
    "smoke": "ralf.cli.smoke_cmd:smoke",
    "stacks": "ralf.cli.stacks_cmd:stacks",
    "secrets": "ralf.cli.secrets_cmd:secrets",
    "semaphore": "ralf.cli.semaphore_cmd:semaphore",
    "mirror": "ralf.cli.mirror_cmd:mirror",
    "history": "ralf.cli.journal_cmd:history",
    "status": "ralf.cli.status_cmd:status",
    "lab": "ralf.cli.lab_cmd:lab",
    "inventory": "ralf.cli.platform_cmd:inventory",
}

# One-line help shown by `ralf --help` without importing the command's module.
SHORT_HELP: dict[str, str] = {
    "validate": "Check the platform file and cross-check its references.",
    "catalog": "Show stacks, smoke targets, Semaphore templates or path ownership derived from the platform.",
    "plan": "Print the runbook steps for a request, without running anything.",
    "bootstrap": "From an empty node to a running Phase 1: preflight, the pairs in order, seeding, smoke.",
    "deploy": "Run the runbook's steps through Semaphore (or locally), with triage and resume.",
    "smoke": "Run layered smoke checks for a service, group, phase1 or the platform.",
    "stacks": "List or run the OpenTofu and Ansible stacks (what Apply templates run).",
    "secrets": "Create or check the secret files in the secrets directory.",
    "semaphore": "Seed and inspect the Semaphore project (what stack 041 does).",
    "mirror": "The repository mirror in Gitea that Semaphore's tasks run: make it, show it, sync it now.",
    "history": "Show recent runs from the journal.",
    "status": "Show the platform at a glance: last apply and smoke per service.",
    "lab": "Start, stop and break the local lab platform.",
    "inventory": "Print the Ansible inventory generated from the platform.",
}


def _available(name: str) -> bool:
    module = COMMANDS[name].split(":")[0]
    return importlib.util.find_spec(module) is not None


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return [n for n in COMMANDS if _available(n)]

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS or not _available(name):
            return None
        module, attr = COMMANDS[name].split(":")
        return getattr(importlib.import_module(module), attr)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(n, SHORT_HELP.get(n, "")) for n in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(
    cls=LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog=(
        "Typical use:\n\n"
        "\b\n"
        "  ralf validate                 check platform.yaml\n"
        "  ralf plan                     the runbook's standard order\n"
        "  ralf plan n8n                 pattern A for one service\n"
        "  ralf plan --changed-from origin/main\n"
        "  ralf deploy vault             run it through Semaphore\n"
        "\n"
        "The platform file is --platform FILE, else $RALF_PLATFORM, else ./platform.yaml."
    ),
)
@click.version_option(package_name="ralf", prog_name="ralf")
@platform_option
def cli() -> None:
    """ralf runs a Proxmox homelab platform Semaphore-first: every deployment is an Apply task
    followed by the matching Smoke task, failures are triaged in the runbook's order, and a local
    runner stays ready for break-glass recovery."""


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; every :class:`ralf.errors.RalfError` becomes one message and its exit code."""
    from ralf.errors import RalfError

    # ralf uses no pydantic plugins; without this pydantic reads every installed package's entry points
    # when it builds the platform model's validator (a few milliseconds of every start-up).
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    try:
        rc = cli.main(args=argv, prog_name="ralf", standalone_mode=False)
        # standalone_mode=False turns ctx.exit(n) into a return value
        sys.exit(rc if isinstance(rc, int) else 0)
    except click.exceptions.Abort:
        click.echo("ralf: aborted", err=True)
        sys.exit(130)
    except KeyboardInterrupt:
        click.echo("ralf: interrupted", err=True)
        sys.exit(130)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except click.ClickException as e:
        e.show()
        sys.exit(2 if isinstance(e, click.UsageError) else e.exit_code)
    except RalfError as e:
        for line in str(e).splitlines() or [type(e).__name__]:
            click.echo(f"ralf: {line}", err=True)
        sys.exit(e.exit_code)
    except BrokenPipeError:
        sys.exit(1)
    except OSError as e:  # the machine, not ralf: a full disk, a vanished directory, too many open files
        where = f" ({e.filename})" if getattr(e, "filename", None) else ""
        click.echo(f"ralf: {e.strerror or e}{where}", err=True)
        sys.exit(1)
    finally:
        if "ralf.log" in sys.modules:  # -v was given: the next in-process run starts quiet again
            sys.modules["ralf.log"].reset()


if __name__ == "__main__":
    main()
