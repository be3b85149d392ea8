"""``oceanid species add|remove``: species added from a few examples, without retraining."""

from __future__ import annotations

from pathlib import Path

import typer

from app.cli import options
from app.cli.common import cli_errors, console, err_console, expand, fail, print_json, workspace

app = typer.Typer(help="Add or remove species without retraining.", no_args_is_help=True)


@app.command("add")
@cli_errors
def species_add(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="The new species' name."),
    images: list[Path] = typer.Argument(..., help="A few example crops (files or folders)."),
    genus: str = typer.Option(None, "--genus", help="Its genus."),
    family: str = typer.Option(None, "--family", help="Its family."),
    correct: bool = typer.Option(
        False,
        "--correct",
        help="Let --genus/--family replace what the catalog already knows (default: only fill what is missing).",
    ),
    model: str = options.MODEL,
    as_json: bool = options.JSON,
) -> None:
    """Add a species from a few examples: embed them, add prototypes and vectors, no retraining.

    Example: oceanid species add "Poralia rufescens" examples/poralia/ --family Ulmaridae
    """
    files = expand(images)
    if not files:
        raise fail("no image files found in the given paths")
    result = workspace(ctx).species_add(name, files, genus, family, model, correct=correct)
    if as_json:
        print_json(result)
        return
    console.print(
        f"added {result.species} from {result.examples} example(s); index {result.generation} is live", markup=False
    )
    for item, reason in result.skipped:
        console.print(f"  skipped {item}: {reason}", markup=False)
    for warning in result.warnings:
        err_console.print(f"warning: {warning}", markup=False, highlight=False, soft_wrap=True)
    for concept, rank, kept, given in result.taxonomy_kept:
        console.print(f"  kept {rank} {kept!r} of {concept} (given {given!r}; --correct replaces it)", markup=False)


@app.command("remove")
@cli_errors
def species_remove(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="A species added with `oceanid species add`."),
    model: str = options.MODEL,
    as_json: bool = options.JSON,
) -> None:
    """Remove an added species (its prototypes, example crops and vectors).

    Example: oceanid species remove "Poralia rufescens"
    """
    result = workspace(ctx).species_remove(name, model)
    if as_json:
        print_json(result)
        return
    console.print(
        f"removed {result.species} ({result.removed_vectors} vectors); index {result.generation} is live", markup=False
    )
