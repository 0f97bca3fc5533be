"""Helpers shared by the CLI modules: the ``--platform`` and ``--json`` options, loading, output."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import click


def _remember_platform(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None:
        ctx.meta["ralf.platform"] = value
    return value


def _raise_verbosity(ctx: click.Context, param: click.Parameter, value: int) -> int:
    if value:
        from ralf import log

        ctx.meta["ralf.verbose"] = ctx.meta.get("ralf.verbose", 0) + value
        log.configure(ctx.meta["ralf.verbose"])
    return value


def platform_option(f: Callable) -> Callable:
    """The global options, accepted both before and after the subcommand: ``--platform FILE`` (the later one
    wins) and ``-v/--verbose`` (counted over both places: ``-v`` what ralf does, ``-vv`` in detail)."""
    verbose = click.option("-v", "--verbose", count=True, expose_value=False, is_eager=True,
                           callback=_raise_verbosity,
                           help="Show ralf's own diagnostics on stderr (-vv: every request and program in detail).")
    platform = click.option("--platform", "platform_file", metavar="FILE", default=None, expose_value=False,
                            is_eager=True, callback=_remember_platform,
                            help="Platform file (default: $RALF_PLATFORM, else ./platform.yaml).")
    return platform(verbose(f))


def json_option(f: Callable) -> Callable:
    return click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON instead of text.")(f)


def platform_path() -> str | None:
    ctx = click.get_current_context(silent=True)
    return ctx.meta.get("ralf.platform") if ctx else None


def load() -> Any:
    """The validated platform named by --platform / $RALF_PLATFORM / ./platform.yaml."""
    from ralf.loader import load_platform

    return load_platform(platform_path())


def load_catalog() -> Any:
    from ralf.catalog import Catalog

    return Catalog(load())


def emit_json(data: Any) -> None:
    from ralf.serial import dumps

    sys.stdout.write(dumps(data) + "\n")


def console(stderr: bool = False):
    """A rich console that stays plain (no colour, no cursor tricks) when output is piped."""
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    width = None if stream.isatty() else 160  # piped: do not squeeze tables into 80 columns
    return Console(file=stream, highlight=False, soft_wrap=True, width=width)


def table(title: str | None, columns: list[str], rows: list[list[Any]]) -> None:
    """A table: box-drawn on a terminal; piped, plain aligned columns, one unpadded line per row (never wrapped)."""
    from ralf.tables import plain_table, rich_table

    if sys.stdout.isatty():
        console().print(rich_table(title, columns, rows))
        return
    if title:
        click.echo(title)
    click.echo(plain_table(columns, rows), nl=False)
