"""``oceanid identify`` and ``oceanid search``: what is it, and what looks like it."""

from __future__ import annotations

import csv
from pathlib import Path

import typer
from rich.table import Table

from app.cli import options
from app.cli.common import cli_errors, console, expand, fail, print_json, workspace

app = typer.Typer()


@app.command("identify")
@cli_errors
def identify(
    ctx: typer.Context,
    images: list[Path] = typer.Argument(..., help="Image files of crops (one organism each) or folders of them."),
    k: int = typer.Option(3, "--k", help="How many candidate species to list."),
    csv_path: Path = typer.Option(None, "--csv", help="Write one row per image to this CSV file."),
    model: str = options.MODEL,
    device: str = options.QUERY_DEVICE,
    as_json: bool = options.JSON,
) -> None:
    """Name the species in each crop, or 'unknown' when it matches no known species.

    Example: oceanid identify new_dive/ --csv identified.csv
    """
    files = expand(images)
    if not files:
        raise fail("no image files found in the given paths")
    results = workspace(ctx, device).identify(files, k=k, model=model, names=[str(p) for p in files],
                                      progress=not as_json)
    if csv_path is not None:
        with open(csv_path, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(["image", "species", "probability", "cosine", "unknown", "ood_scorer", "ood_score",
                             "ood_threshold", "candidates", "error"])
            for r in results:
                ood = r.ood.get(r.scorer or "", {})
                writer.writerow([r.name, r.species or "", f"{r.probability:.4f}" if r.probability is not None else "",
                                 f"{r.score:.4f}" if r.score is not None else "", r.unknown, r.scorer or "", f"{ood['score']:.4f}" if ood else "",
                                 f"{ood['threshold']:.4f}" if ood else "",
                                 "; ".join(f"{s} {v:.3f}" for s, v in r.top), r.error or ""])
    if as_json:
        print_json(results)
        return
    table = Table("image", "species", "probability", "unknown score / threshold", "candidates (probability)")
    for r in results:
        if r.error:
            table.add_row(r.name, "[red]unreadable[/red]", "", "", r.error)
            continue
        name = "[yellow]unknown[/yellow]" if r.unknown else r.species
        verdict = f"{r.unknown_score:.3f} {'<' if r.unknown else '>='} {r.unknown_threshold:.3f} ({r.scorer})"
        table.add_row(r.name, name, f"{r.probability:.2f}", verdict,
                      ", ".join(f"{s} {v:.2f}" for s, v in r.probabilities))
    console.print(table)
    if csv_path is not None:
        console.print(f"wrote {csv_path}", markup=False)


@app.command("search")
@cli_errors
def search(
    ctx: typer.Context,
    image: Path = typer.Argument(None, help="Query image (or use --crop)."),
    crop: int = typer.Option(None, "--crop", help="Query with a catalog crop id instead of an image."),
    k: int = typer.Option(10, "--k", help="Number of neighbours."),
    where: str = typer.Option(None, "--where", help="Filter: species, genus, family, depth, date, lat, lon, split, source."),
    model: str = options.MODEL,
    device: str = options.QUERY_DEVICE,
    as_json: bool = options.JSON,
) -> None:
    """Find the crops most similar to an image or a catalog crop, optionally filtered.

    Filters: species="Chromis chrysura", depth=100..500, date>=2020-06, lat=-20..-10,
    split in (val, test), source=fathomnet; join clauses with 'and' / 'or'.

    Example: oceanid search dive42.png --k 5 --where "depth=200..800 and date>=2021"
    """
    if (image is None) == (crop is None):
        raise fail("give either an IMAGE or --crop ID")
    hits = workspace(ctx, device).search(crop if crop is not None else image, k=k, where=where, model=model)
    if as_json:
        print_json(hits)
        return
    if not hits:
        console.print("no crops match", markup=False)
        return
    table = Table("crop", "score", "species", "depth m", "date", "lat, lon", "split", "source")
    for h in hits:
        place = f"{h.latitude:.2f}, {h.longitude:.2f}" if h.latitude is not None and h.longitude is not None else ""
        date = h.timestamp.date().isoformat() if hasattr(h.timestamp, "date") else ""
        depth = f"{h.depth_m:.0f}" if h.depth_m is not None else ""
        table.add_row(str(h.annotation_id), f"{h.score:.3f}", h.species, depth, date, place, h.split or "", h.source)
    console.print(table)
