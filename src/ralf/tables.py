"""The one table printer: rich tables, box-drawn for a terminal or plain aligned columns for pipes and logs."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

#: wide enough that no row of a plain table is ever wrapped
_NO_WRAP = 100_000


def _cells(rows: Sequence[Sequence[Any]]) -> list[list[Any]]:
    """Each value as literal text (never read as rich markup or emoji codes); None is empty."""
    from rich.text import Text

    return [[Text("" if v is None else str(v)) for v in r] for r in rows]


def plain_table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Aligned columns two spaces apart, without box drawing or colour, one unwrapped line per row (grep-able)."""
    from rich.console import Console
    from rich.table import Table

    t = Table(box=None, pad_edge=False, padding=(0, 1), show_header=True, header_style="", show_edge=False)
    for c in columns:
        t.add_column(c, no_wrap=True, overflow="ignore")
    for r in _cells(rows):
        t.add_row(*r)
    buf = io.StringIO()
    Console(file=buf, width=_NO_WRAP, no_color=True, highlight=False, force_terminal=False,
            color_system=None, legacy_windows=False).print(t)
    return "".join(line.rstrip() + "\n" for line in buf.getvalue().splitlines())


def rich_table(title: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]],
               row_styles: Sequence[str] | None = None) -> Any:
    """A box-drawn rich table for a terminal; ``row_styles`` gives each row's style (e.g. ``"bold red"``)."""
    from rich import box
    from rich.table import Table

    t = Table(title=title, show_lines=False, header_style="bold", title_justify="left", box=box.HEAVY_HEAD)
    for c in columns:
        t.add_column(c, overflow="fold")
    for i, r in enumerate(_cells(rows)):
        t.add_row(*r, style=(row_styles[i] if row_styles else "") or None)
    return t
