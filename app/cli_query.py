"""``oceanid identify``, ``oceanid search`` and ``oceanid species add|remove``."""

from __future__ import annotations

import csv
from pathlib import Path

import typer
from rich.table import Table
from tqdm import tqdm

from app.cli_common import cli_errors, console, fail, print_json, workspace
from index.imaging import is_image_name

MODEL = typer.Option(None, "--model", help="Model id (default: the last trained).")
BATCH = 64


def expand(paths: list[Path]) -> list[Path]:
    """Files as given; folders become the image files below them (sorted)."""
    out = []
    for path in paths:
        if path.is_dir():
            out += sorted(p for p in path.rglob("*") if p.is_file() and is_image_name(p))
        else:
            out.append(path)
    return out


@cli_errors
def identify(
    ctx: typer.Context,
    images: list[Path] = typer.Argument(..., help="Image files (crops or whole images) or folders of them."),
    k: int = typer.Option(3, "--k", help="How many candidate species to list."),
    csv_path: Path = typer.Option(None, "--csv", help="Write one row per image to this CSV file."),
    model: str = MODEL,
    as_json: bool = typer.Option(False, "--json", help="Print results as JSON."),
) -> None:
    """Name the species in each image, or 'unknown' when it matches no known species.

    Example: oceanid identify new_dive/ --csv identified.csv
    """
    files = expand(images)
    if not files:
        raise fail("no image files found in the given paths")
    ws = workspace(ctx)
    results = []
    for start in tqdm(range(0, len(files), BATCH), desc="identify", unit="batch", disable=as_json or len(files) <= BATCH):
        results += ws.identify(files[start:start + BATCH], k=k, model=model,
                               names=[str(p) for p in files[start:start + BATCH]])
    if csv_path is not None:
        with open(csv_path, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(["image", "species", "score", "unknown", "ood_scorer", "ood_score", "ood_threshold",
                             "candidates", "error"])
            for r in results:
                ood = r.ood.get(r.scorer or "", {})
                writer.writerow([r.name, r.species or "", f"{r.score:.4f}" if r.score is not None else "",
                                 r.unknown, r.scorer or "", f"{ood['score']:.4f}" if ood else "",
                                 f"{ood['threshold']:.4f}" if ood else "",
                                 "; ".join(f"{s} {v:.3f}" for s, v in r.top), r.error or ""])
    if as_json:
        print_json([r.to_dict() for r in results])
        return
    table = Table("image", "species", "score", "candidates")
    for r in results:
        if r.error:
            table.add_row(r.name, "[red]unreadable[/red]", "", r.error)
            continue
        name = f"[yellow]unknown[/yellow]" if r.unknown else r.species
        table.add_row(r.name, name, f"{r.score:.3f}", ", ".join(f"{s} {v:.2f}" for s, v in r.top))
    console.print(table)
    if csv_path is not None:
        console.print(f"wrote {csv_path}", markup=False)


@cli_errors
def search(
    ctx: typer.Context,
    image: Path = typer.Argument(None, help="Query image (or use --crop)."),
    crop: int = typer.Option(None, "--crop", help="Query with a catalog crop id instead of an image."),
    k: int = typer.Option(10, "--k", help="Number of neighbours."),
    where: str = typer.Option(None, "--where", help="Filter: species, genus, family, depth, date, lat, lon, split, source."),
    model: str = MODEL,
    as_json: bool = typer.Option(False, "--json", help="Print results as JSON."),
) -> None:
    """Find the crops most similar to an image or a catalog crop, optionally filtered.

    Filters: species="Chromis chrysura", depth=100..500, date>=2020-06, lat=-20..-10,
    split in (val, test), source=fathomnet; join clauses with 'and' / 'or'.

    Example: oceanid search dive42.png --k 5 --where "depth=200..800 and date>=2021"
    """
    if (image is None) == (crop is None):
        raise fail("give either an IMAGE or --crop ID")
    hits = workspace(ctx).search(crop if crop is not None else image, k=k, where=where, model=model)
    if as_json:
        print_json([h.to_dict() for h in hits])
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


species_app = typer.Typer(help="Add or remove species without retraining.", no_args_is_help=True)


@species_app.command("add")
@cli_errors
def species_add(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="The new species' name."),
    images: list[Path] = typer.Argument(..., help="A few example crops (files or folders)."),
    genus: str = typer.Option(None, "--genus", help="Its genus."),
    family: str = typer.Option(None, "--family", help="Its family."),
    model: str = MODEL,
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Add a species from a few examples: embed them, add prototypes and vectors, no retraining.

    Example: oceanid species add "Poralia rufescens" examples/poralia/ --family Ulmaridae
    """
    files = expand(images)
    if not files:
        raise fail("no image files found in the given paths")
    result = workspace(ctx).species_add(name, files, genus, family, model)
    if as_json:
        print_json(result)
        return
    console.print(f"added {result['species']} from {result['examples']} example(s); index {result['generation']} "
                  "is live", markup=False)
    for s in result["skipped"]:
        console.print(f"  skipped {s['item']}: {s['reason']}", markup=False)


@species_app.command("remove")
@cli_errors
def species_remove(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="A species added with `oceanid species add`."),
    model: str = MODEL,
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Remove an added species (its prototypes, example crops and vectors).

    Example: oceanid species remove "Poralia rufescens"
    """
    result = workspace(ctx).species_remove(name, model)
    if as_json:
        print_json(result)
        return
    console.print(f"removed {result['species']} ({result['removed_vectors']} vectors); index "
                  f"{result['generation']} is live", markup=False)


def register(app: typer.Typer) -> None:
    app.command("identify")(identify)
    app.command("search")(search)
    app.add_typer(species_app, name="species")
