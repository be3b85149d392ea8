"""``oceanid stats`` and ``oceanid split``."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from app.cli import options
from app.cli.common import check_output_folder, cli_errors, console, print_json, workspace

app = typer.Typer()


@app.command("stats")
@cli_errors
def stats(
    ctx: typer.Context,
    plots: Path = typer.Option(None, "--plots", help="Write PNG charts to this folder."),
    as_json: bool = options.JSON,
) -> None:
    """Survey the catalog: crops per species, splits, sources, depth distribution.

    Example: oceanid stats --plots reports/survey
    """
    check_output_folder(plots, "--plots")
    ws = workspace(ctx)
    s = ws.stats()
    written = [str(p) for p in ws.stats_plots(s, plots)] if plots is not None else []
    if as_json:
        print_json({**s.to_dict(), "plots": written})
        return
    console.print(f"{s.images} images, {s.crops} crops, {s.species} species", markup=False)
    if s.crops_per_species:
        c = s.crops_per_species
        console.print(
            f"crops per species: mean {c['mean']:.1f}, median {c['median']:.1f}, max {c['max']}, min {c['min']}",
            markup=False,
        )
    table = Table("species", "crops")
    for name, n in s.per_species.items():
        table.add_row(name, str(n))
    console.print(table)
    if any(v["crops"] for v in s.per_rank.values()):
        console.print(
            "ranks: "
            + ", ".join(
                f"{rank} {v['taxa']} taxa / {v['crops']} crops"
                + (f" ({v['labelled']} labelled there)" if v["labelled"] and rank != "species" else "")
                for rank, v in s.per_rank.items()
                if v["crops"]
            ),
            markup=False,
        )
    console.print("splits: " + ", ".join(f"{k} {v}" for k, v in s.per_split.items()), markup=False)
    console.print(
        f"duplicates: {s.duplicate_frames} repeated frames; {s.groups_merged} groups merged so no copy crosses a split",
        markup=False,
    )
    if s.depth.get("count"):
        d = s.depth
        console.print(
            f"depth (m), {d['count']} crops: min {d['min']:.0f}, median {d['median']:.0f}, max {d['max']:.0f}",
            markup=False,
        )
    for path in written:
        console.print(f"wrote {path}", markup=False)


@app.command("split")
@cli_errors
def split(
    ctx: typer.Context,
    train: float = typer.Option(0.7, help="Fraction of each species' crops for training."),
    val: float = typer.Option(0.15, help="Fraction for validation (model selection, OOD thresholds)."),
    test: float = typer.Option(0.15, help="Fraction for testing."),
    min_images: int = typer.Option(1, "--min-images", help="Leave out species with fewer crops."),
    max_images: int = typer.Option(None, "--max-images", help="Keep at most this many crops per species."),
    classes: int = typer.Option(None, "--classes", help="Keep the N species with the most crops."),
    holdout: list[str] = typer.Option(
        None,
        "--holdout",
        help="Species held out as unknown: a name (repeatable), a count N, or 'rest' (all not kept by --classes).",
    ),
    seed: int = typer.Option(0, help="Random seed."),
    force: bool = typer.Option(
        False,
        "--force",
        help="Re-split even though models were trained on the current "
        "split; they are marked stale (see `oceanid models`).",
    ),
    as_json: bool = options.JSON,
) -> None:
    """Assign train/val/test splits (groups never cut; pinned crops kept) and hold species out.

    With no --holdout, the synthetic reef's suggested held-out species are used. A split that
    moves crops under trained models is refused unless --force, which marks them stale.

    Example: oceanid split --classes 15 --holdout rest --seed 0
    """
    from app.workspace import SplitConfig

    config = SplitConfig(
        train=train,
        val=val,
        test=test,
        min_images=min_images,
        max_images=max_images,
        classes=classes,
        holdout=tuple(holdout or ()),
        seed=seed,
    )
    summary = workspace(ctx).split(config, force=force)
    if as_json:
        print_json(summary)
        return
    table = Table("species", "train", "val", "test", "holdout", "unused")
    for name, counts in summary.counts.items():
        table.add_row(name, *(str(counts.get(k, 0)) for k in ("train", "val", "test", "holdout", "unused")))
    console.print(table)
    console.print(
        f"held out: {', '.join(summary.held_out) or 'none'}; excluded: "
        f"{', '.join(summary.excluded) or 'none'}; pinned crops left alone: {summary.pinned}",
        markup=False,
    )
    console.print(
        f"duplicates merged: {summary.groups_merged} groups ({summary.duplicate_frames} repeated frames "
        "share a group with their copies)",
        markup=False,
    )
    console.print(f"{summary.changed} crops changed split", markup=False)
    if summary.stale_models:
        console.print(
            f"marked stale (trained on the old split; retrain them): {', '.join(summary.stale_models)}", markup=False
        )
