"""Tables and lines that fit the terminal without cutting a number, and are whole when piped.

At a terminal (or with ``$COLUMNS``) a table fits the width: numbers and names keep their
width (never cut), text columns wrap word by word, and when even that is too wide the columns of
lowest priority are dropped (``--csv`` / ``--json`` always hold every figure). Piped, the output
is the full plain text: every column at its natural width, one line per row.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

GAP = 3  # padding, divider, padding between columns (box SIMPLE_HEAD, no edges)


@dataclass(frozen=True)
class Column:
    """One column: how it gives way when the table is too wide."""

    header: str
    priority: int = 0  # columns are dropped lowest priority first (ties: the rightmost first)
    wrap: bool = False  # text that may wrap word by word (never a number)
    min_width: int = 12  # the narrowest a wrapping column is made
    number: bool = False  # right-justified


def output_width(console: Console) -> int | None:
    """The width to fit: ``$COLUMNS`` when set, the terminal's, or None when piped (no limit)."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    return console.width if console.is_terminal else None


def fit_table(columns: Sequence[Column], rows: Sequence[Sequence[str]], width: int | None) -> Table:
    """A table of ``rows`` (cells as rich markup) within ``width`` columns (None: no limit)."""
    natural = [
        max([len(c.header)] + [Text.from_markup(row[i]).cell_len for row in rows]) for i, c in enumerate(columns)
    ]
    kept = list(range(len(columns)))

    def need(keep: list[int]) -> int:
        return sum(min(natural[i], columns[i].min_width) if columns[i].wrap else natural[i] for i in keep) + GAP * (
            len(keep) - 1
        )

    if width is not None:
        while need(kept) > width and len(kept) > 1:
            kept.remove(min(kept, key=lambda i: (columns[i].priority, -i)))
    widths = {i: natural[i] for i in kept}
    wrapping = [i for i in kept if columns[i].wrap]
    if width is not None and sum(widths.values()) + GAP * (len(kept) - 1) > width and wrapping:
        room = width - GAP * (len(kept) - 1) - sum(natural[i] for i in kept if not columns[i].wrap)
        order = sorted(wrapping, key=lambda i: -columns[i].priority)  # the most important text first
        for n, i in enumerate(order):
            floor = min(natural[i], columns[i].min_width)
            later = sum(min(natural[j], columns[j].min_width) for j in order[n + 1 :])
            widths[i] = max(floor, min(natural[i], room - later))
            room -= widths[i]
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    for i in kept:
        c = columns[i]
        table.add_column(
            c.header, width=widths[i], no_wrap=not c.wrap, overflow="fold", justify="right" if c.number else "left"
        )
    for row in rows:
        table.add_row(*(row[i] for i in kept))
    return table


def print_table(console: Console, columns: Sequence[Column], rows: Sequence[Sequence[str]]) -> None:
    """Fit and print (piped: the whole table, however wide)."""
    width = output_width(console)
    table = fit_table(columns, rows, width)
    console.print(table, width=width or _natural_width(table, console))


def print_parts(console: Console, parts: Sequence[str]) -> None:
    """Print ``parts`` joined by spaces on one line when it fits, else each part on its own line
    (a line breaks between parts only, never inside "(model ..., index ...)")."""
    width = output_width(console)
    line = " ".join(p for p in parts if p)
    if width is None or len(line) <= width:
        console.print(line, markup=False, highlight=False, soft_wrap=True)
        return
    for part in (p for p in parts if p):
        console.print(part, markup=False, highlight=False, soft_wrap=True)


def _natural_width(table: Table, console: Console) -> int:
    """The width the table takes with no limit (piped output)."""
    return max(console.measure(table, options=console.options.update(width=100_000)).maximum, 1)
