"""``ralf status``: per group and service, the last apply and smoke, result, age, certificate days left.

Only the runs of the platform in use count (the journal is shared by every platform of this state
directory); smokes run on their own (``ralf smoke``) count as much as those inside ``ralf deploy``.

A terminal table by default, ``--json`` for machines, ``--html FILE`` for a self-contained page.
Exit 0 when nothing failed, 1 when a service's last apply or smoke failed.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from ralf.cli.common import console, emit_json, json_option, load_catalog, platform_option


def journal_rows(catalog) -> list[dict]:
    """The journal's rows for this platform only; every service "never run" when there is no journal yet."""

    from ralf.journal import Journal, default_path

    if not Path(default_path()).exists():
        return [{"group": g, "service": s, "last_apply": None, "last_smoke": None}
                for g in catalog.group_names for s in catalog.services_of(g)]
    from ralf.journal import PlatformId

    with Journal() as j:
        return j.service_status(catalog, platform=PlatformId.of(catalog.platform))


@click.command()
@platform_option
@json_option
@click.option("--html", "html_file", metavar="FILE", type=click.Path(dir_okay=False),
              help="Also write the board as one self-contained HTML page.")
def status(as_json: bool, html_file: str | None) -> None:
    """The platform at a glance: last apply and smoke per service, from the journal."""
    from ralf.board import LABEL, TEXT_COLUMNS, board_rows, render_html, summary, text_rows
    from ralf.tables import plain_table, rich_table

    catalog = load_catalog()
    board = board_rows(journal_rows(catalog))
    if html_file:
        page = render_html(board, title=f"ralf status · {catalog.platform.name}")
        tmp = Path(f"{html_file}.tmp{os.getpid()}")
        try:
            tmp.write_text(page, encoding="utf-8")
            os.replace(tmp, html_file)
        except OSError as e:
            tmp.unlink(missing_ok=True)
            from ralf.errors import RalfError

            raise RalfError(f"cannot write {html_file}: {e.strerror or e}") from None
    counts = summary(board)
    if as_json:
        emit_json({"platform": catalog.platform.name, "counts": counts, "services": board})
    elif not sys.stdout.isatty():
        click.echo(f"ralf status · {catalog.platform.name}")
        click.echo(plain_table(TEXT_COLUMNS, text_rows(board)), nl=False)
        click.echo(" · ".join(f"{n} {LABEL[k]}" for k, n in counts.items() if n) or "no services")
        if html_file:
            click.echo(f"board written to {html_file}")
    else:
        styles = {"OK": "green", "WARN": "yellow", "FAIL": "bold red", "NEVER RUN": "dim"}
        rows = text_rows(board)
        con = console()
        con.print(rich_table(f"ralf status · {catalog.platform.name}", TEXT_COLUMNS, rows,
                             [styles.get(row[2], "") for row in rows]))
        con.print(" · ".join(f"{n} {LABEL[k]}" for k, n in counts.items() if n) or "no services")
        if html_file:
            con.print(f"board written to {html_file}")
    sys.exit(1 if counts["fail"] else 0)
