"""``oceanid search``: what looks like it (an image, or a catalog crop), inside an optional filter."""

from __future__ import annotations

from pathlib import Path

import typer

from app.cli import options
from app.cli.common import (
    check_output_file,
    cli_errors,
    console,
    fail,
    fixed,
    print_json,
    workspace,
    write_csv,
)
from app.cli.tables import Column, print_table

app = typer.Typer()

SEARCH_TABLE = (
    Column("crop", 6, number=True),
    Column("cosine", 5, number=True),
    Column("species", 7, wrap=True, min_width=12),
    Column("depth", 3, number=True),
    Column("date", 2),
    Column("lat, lon", 0),
    Column("split", 1),
    Column("source", 1, wrap=True, min_width=8),
)
SEARCH_COLUMNS = [
    "crop_id",
    "cosine",
    "species",
    "genus",
    "family",
    "depth_m",
    "date",
    "latitude",
    "longitude",
    "split",
    "source",
    "crop_file",
]


@app.command("search")
@cli_errors
def search(
    ctx: typer.Context,
    image: Path = typer.Argument(None, help="Query image (or use --crop)."),
    crop: int = typer.Option(None, "--crop", help="Query with a catalog crop id instead of an image."),
    k: int = options.k_option(10, "Number of neighbours."),
    where: str = typer.Option(
        None, "--where", help="Filter: species, genus, family, depth, date, lat, lon, split, source."
    ),
    csv_path: Path = options.csv_option(
        "Write one row per hit to this CSV file (checked before the work; written atomically)."
    ),
    model: str = options.MODEL,
    space: str = typer.Option(
        None,
        "--space",
        help="Vector space: tuned, general or fused (default: fused where the model has a general space, else tuned).",
    ),
    device: str = options.QUERY_DEVICE,
    as_json: bool = options.JSON,
) -> None:
    """Find the crops most similar to an image or a catalog crop, optionally filtered.

    Filters: species="Chromis chrysura", depth=100..500, date>=2020-06, lat=-20..-10,
    split in (val, test), source=fathomnet; join clauses with 'and' / 'or'. A value that
    no crop has is an error that names it and suggests the nearest existing values.

    Example: oceanid search dive42.png --k 5 --where "depth=200..800 and date>=2021"
    """
    if (image is None) == (crop is None):
        raise fail("give either an IMAGE or --crop ID")
    check_output_file(csv_path, "--csv")
    hits = workspace(ctx, device).search(
        crop if crop is not None else image, k=k, where=where, model=model, space=space
    )
    if csv_path is not None:
        write_csv(
            csv_path,
            SEARCH_COLUMNS,
            [
                [
                    h.annotation_id,
                    fixed(h.score),
                    h.species,
                    h.genus or "",
                    h.family or "",
                    fixed(h.depth_m, 1),
                    h.timestamp.isoformat() if hasattr(h.timestamp, "isoformat") else "",
                    fixed(h.latitude, 5),
                    fixed(h.longitude, 5),
                    h.split or "",
                    h.source,
                    str(h.crop) if h.crop else "",
                ]
                for h in hits
            ],
        )
    if as_json:
        print_json(hits)
        return
    if not hits:
        console.print("no crops match", markup=False)
        return
    rows = []
    for h in hits:
        place = f"{h.latitude:.2f}, {h.longitude:.2f}" if h.latitude is not None and h.longitude is not None else ""
        date = h.timestamp.date().isoformat() if hasattr(h.timestamp, "date") else ""
        depth = f"{h.depth_m:.0f}" if h.depth_m is not None else ""
        rows.append((str(h.annotation_id), fixed(h.score, 3), h.species, depth, date, place, h.split or "", h.source))
    print_table(console, SEARCH_TABLE, rows)
    if csv_path is not None:
        console.print(f"wrote {csv_path}", markup=False)
