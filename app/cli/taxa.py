"""``oceanid taxa show|import``: the lineages (kingdom .. species) the catalog holds."""

from __future__ import annotations

from pathlib import Path

import typer

from app.cli import options
from app.cli.common import cli_errors, console, print_json, workspace

app = typer.Typer(help="Show or import taxonomic lineages.", no_args_is_help=True)


@app.command("show")
@cli_errors
def taxa_show(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="A concept of the catalog (species, genus, family, ...)."),
    as_json: bool = options.JSON,
) -> None:
    """Print a concept's rank and lineage, top down.

    Example: oceanid taxa show "Chaetodon lunulatus"
    """
    lineage = workspace(ctx).taxa_show(name)
    if as_json:
        print_json(lineage)
        return
    console.print(f"{lineage.concept} ({lineage.rank or 'rank unknown'})", markup=False, highlight=False)
    for rank, taxon in lineage.ranks:
        console.print(f"  {rank:<10} {taxon}", markup=False, highlight=False)


@app.command("import")
@cli_errors
def taxa_import(
    ctx: typer.Context,
    path: Path = typer.Argument(
        ...,
        help="A lineage CSV: a 'concept' column (or 'species') and rank columns "
        "(kingdom, phylum, class, order, family, genus, ...).",
    ),
    as_json: bool = options.JSON,
) -> None:
    """Fill or correct the lineages of concepts already ingested (the file's names win).

    Example: oceanid taxa import lineages.csv
    """
    result = workspace(ctx).taxa_import(path)
    if as_json:
        print_json(result)
        return
    console.print(f"read {result.rows} lineage row(s); {result.written} taxa written", markup=False)
    if result.unknown:
        console.print(f"  not in the catalog (skipped): {', '.join(result.unknown)}", markup=False)
