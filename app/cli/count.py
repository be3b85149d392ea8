"""``oceanid count``: organisms per taxon in a set of images or catalog crops, raw and adjusted."""

from __future__ import annotations

from pathlib import Path

import typer

from app.cli import options
from app.cli.common import check_output_file, cli_errors, console, expand, fail, print_json, workspace, write_csv
from app.cli.tables import Column, print_parts, print_table

app = typer.Typer()

COUNT_TABLE = (
    Column("taxon", 4, wrap=True, min_width=12),
    Column("raw", 3, number=True),
    Column("adjusted", 3, number=True),
    Column("interval", 2),
)
COUNT_COLUMNS = ["taxon", "raw", "adjusted", "low", "high"]


def _figure(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


def _rows(result) -> list:
    """(taxon, raw, adjusted, low, high) per taxon, the unknown crops last."""
    return [(t.taxon, t.raw, t.adjusted, t.low, t.high) for t in (*result.taxa, result.unknown)]


@app.command("count")
@cli_errors
def count(
    ctx: typer.Context,
    images: list[Path] = typer.Argument(None, help="Image files of crops (one organism each) or folders of them."),
    where: str = typer.Option(
        None,
        "--where",
        help="Count catalog crops instead (their stored vectors), e.g. 'source=survey-2024' or "
        "'origin=predicted' (the organisms `identify --save` kept).",
    ),
    csv_path: Path = options.csv_option("Write one row per taxon (taxon, raw, adjusted, low, high) to this CSV file."),
    model: str = options.MODEL,
    device: str = options.QUERY_DEVICE,
    as_json: bool = options.JSON,
) -> None:
    """Count the organisms per taxon in a set of crops: raw counts (each crop counted as its answer) and
    counts adjusted for the classifier's known confusion (adjusted classify-and-count with the confusion
    measured on validation crops at `index build`), with a 90% bootstrap interval. Crops answered
    unknown are counted apart.

    Example: oceanid count new_dive/ --csv counts.csv

    Example: oceanid count --where "split=test" --json
    """
    check_output_file(csv_path, "--csv")
    ws = workspace(ctx, device)  # a bad --home is its one-line error before anything else
    if images and where is not None:
        raise fail("give image paths or --where, not both")
    files = expand(images or [])
    if where is None and not files:
        raise fail("no image files found in the given paths", "give crops (files or folders) or --where FILTER")
    result = ws.count(files, where=where, model=model)
    if result.crops == 0 and where is None:
        raise fail(f"none of the {result.unreadable} images could be read")
    if csv_path is not None:
        write_csv(csv_path, COUNT_COLUMNS, [list(r) for r in _rows(result)])
    if as_json:
        print_json(result)
        return
    level = f"{round(result.level * 100)}%"
    rows = [
        (taxon, str(raw), _figure(adjusted), f"{low:.1f}–{high:.1f}" if low is not None else "")
        for taxon, raw, adjusted, low, high in _rows(result)
    ]
    print_table(console, COUNT_TABLE, rows)
    print_parts(
        console,
        [
            f"{result.crops} crops counted,",
            f"{result.unknown.raw} unknown" + (f", {result.unreadable} unreadable" if result.unreadable else ""),
            f"(model {result.model}, index {result.generation});",
            f"adjusted with {result.adjusted_with}, {level} intervals" if result.adjusted_with else "raw counts only",
        ],
    )
    for note in result.notes:
        console.print(f"  note: {note}", markup=False, soft_wrap=True)
    if csv_path is not None:
        console.print(f"wrote {csv_path}", markup=False)
