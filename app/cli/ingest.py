"""``oceanid ingest synthetic|coco|yolo|folders|fathomnet``."""

from __future__ import annotations

from pathlib import Path

import typer

from app.cli import options
from app.cli.common import cli_errors, console, print_json, workspace
from app.cli.tables import print_parts

app = typer.Typer(help="Bring images and boxes into the catalog (and cut crops).", no_args_is_help=True)

SHOW_SKIPPED = 20


SHOW_NOTES = typer.Option(
    False,
    "--show-notes",
    help="List every note (duplicate frames, tiny images, renamed folders); --json always holds them.",
)
SOURCE_NAME = typer.Option(
    None,
    "--source-name",
    help="Name this source (e.g. survey-2024) so that `--where source=survey-2024` tells it from others.",
)


def show_report(report, as_json: bool, show_notes: bool = False) -> None:
    """An IngestReport as JSON, or one summary line plus the first skipped items (and the
    notes with ``show_notes``; their count otherwise)."""
    if as_json:
        print_json(report)
        return
    print_parts(
        console,
        [  # a line breaks between these only, never inside "(N already there)"
            f"{report.source}: {report.images_added} images added ({report.images_existing} already there),",
            f"{report.crops_added} crops added ({report.crops_existing} already there),",
            f"{len(report.skipped)} skipped" + (f", {len(report.notes)} notes" if report.notes else ""),
        ],
    )
    for item, reason in report.skipped[:SHOW_SKIPPED]:
        console.print(f"  skipped {item}: {reason}", markup=False, soft_wrap=True)
    if len(report.skipped) > SHOW_SKIPPED:
        console.print(f"  ... and {len(report.skipped) - SHOW_SKIPPED} more (use --json for all)", markup=False)
    kept = f" or in {report.notes_file}" if report.notes_file else ""
    if show_notes:
        for item, text in report.notes:
            console.print(f"  note {item}: {text}", markup=False, soft_wrap=True)
        if not report.notes and report.earlier_notes:
            console.print(
                f"  no new notes; the {len(report.earlier_notes)} of the run that added these images:",
                markup=False,
                soft_wrap=True,
            )
            for item, text in report.earlier_notes:
                console.print(f"  note {item}: {text}", markup=False, soft_wrap=True)
    elif report.notes:
        console.print(
            f"  ({len(report.notes)} notes: see them with --show-notes, --json{kept})", markup=False, soft_wrap=True
        )


@app.command("synthetic")
@cli_errors
def synthetic(
    ctx: typer.Context,
    species: int = options.count(16, "--species", "Number of species drawn (known + held out)."),
    holdout: int = options.count(
        4, "--holdout", "Species flagged as held out (a near sibling and a far body plan among them).", minimum=0
    ),
    frames: int = options.count(400, "--frames", "Number of frames drawn."),
    seed: int = typer.Option(0, help="Random seed; the same seed draws the same reef."),
    show_notes: bool = SHOW_NOTES,
    as_json: bool = options.JSON,
) -> None:
    """Draw the built-in offline synthetic reef and ingest it.

    Example: oceanid ingest synthetic --species 16 --holdout 4 --frames 400 --seed 0
    """
    report = workspace(ctx).ingest_synthetic(species, holdout, frames, seed, progress=not as_json)
    show_report(report, as_json, show_notes)


@app.command("coco")
@cli_errors
def coco(
    ctx: typer.Context,
    annotations: Path = typer.Argument(..., help="COCO annotations JSON."),
    images: Path = typer.Option(
        None, "--images", help="Folder the file_name entries are relative to (default: the JSON's folder)."
    ),
    split: str = options.PIN_SPLIT,
    source_name: str = SOURCE_NAME,
    show_notes: bool = SHOW_NOTES,
    as_json: bool = options.JSON,
) -> None:
    """Ingest a COCO detection file (boxes become crops).

    Example: oceanid ingest coco survey/annotations.json --images survey/frames --split test
    """
    report = workspace(ctx).ingest_coco(annotations, images, split, progress=not as_json, source_name=source_name)
    show_report(report, as_json, show_notes)


@app.command("yolo")
@cli_errors
def yolo(
    ctx: typer.Context,
    data_yaml: Path = typer.Argument(..., help="The data set's data.yaml (Ultralytics / Roboflow layout)."),
    source_name: str = SOURCE_NAME,
    show_notes: bool = SHOW_NOTES,
    as_json: bool = options.JSON,
) -> None:
    """Ingest a YOLO data set: classes from `names`, splits pinned from its train/val/test folders.

    Roboflow's `../train/images` entries are resolved as Ultralytics does; the folders read are listed.

    Example: oceanid ingest yolo ../shared/data/aquarium/data.yaml
    """
    report = workspace(ctx).ingest_yolo(data_yaml, progress=not as_json, source_name=source_name)
    show_report(report, as_json, show_notes)
    if not as_json and not show_notes:  # the folders read, always (--show-notes prints every note)
        for item, text in report.notes:
            if item.split(":", 1)[0] in ("train", "val", "test"):
                console.print(f"  {item} -> {text}", markup=False, soft_wrap=True)
    if report.images_added + report.images_existing == 0:
        raise typer.Exit(1)


@app.command("folders")
@cli_errors
def folders(
    ctx: typer.Context,
    root: Path = typer.Argument(..., help="Folder with one sub-folder of images per class (optional species.csv)."),
    group_pattern: str = typer.Option(
        None, "--group-pattern", help="Regex whose first group on the file name keeps near-duplicates together."
    ),
    split: str = options.PIN_SPLIT,
    source_name: str = SOURCE_NAME,
    lineages: Path = typer.Option(
        None,
        "--lineages",
        help="A lineage CSV (the `taxa import` format: concept,kingdom,phylum,class,order,family,genus) attached "
        "at ingest. Default: DIR/lineages.csv when the folder has one. Checked before anything is ingested.",
    ),
    show_notes: bool = SHOW_NOTES,
    as_json: bool = options.JSON,
) -> None:
    """Ingest class folders: one folder per species, every file a crop. Without a species.csv,
    '_' in a folder name becomes a space (Testus_badus -> "Testus badus"; a note says so).
    A lineage file (--lineages, or lineages.csv at the folder's root) gives the classes their ranks.

    Example: oceanid ingest folders ../shared/data/fish4knowledge --group-pattern 'fish_(\\d+)_' --source-name f4k

    Example: oceanid ingest folders ../shared/data/pwssc_plankton --lineages bench/lineages/pwssc_plankton.csv
    """
    report = workspace(ctx).ingest_folders(
        root, group_pattern, split, progress=not as_json, source_name=source_name, lineages=lineages
    )
    show_report(report, as_json, show_notes)
    if report.lineages and not as_json:
        show_lineages(report.lineages)


def show_lineages(attached) -> None:
    """One line on the lineage file a folder ingest attached, one more on the classes it does not name."""
    how = "found at the folder's root" if attached.found else "named with --lineages"
    console.print(
        f"lineages: {attached.path} ({how}): {attached.matched} of {attached.classes} classes named, "
        f"{attached.written} taxa written",
        markup=False,
        soft_wrap=True,
    )
    if attached.missing:
        console.print(
            f"  not in the lineage file ({len(attached.missing)}; no rank known): {', '.join(attached.missing)}",
            markup=False,
            soft_wrap=True,
        )


@app.command("fathomnet")
@cli_errors
def fathomnet(
    ctx: typer.Context,
    concept: list[str] = typer.Option(..., "--concept", help="Concept to fetch (repeat for several)."),
    max_per_concept: int = options.count(None, "--max-per-concept", "At most this many images per concept."),
    workers: int = options.count(16, "--workers", "Parallel downloads."),
    min_depth: float = typer.Option(None, "--min-depth", help="Only frames at least this deep (m)."),
    max_depth: float = typer.Option(None, "--max-depth", help="Only frames at most this deep (m)."),
    show_notes: bool = SHOW_NOTES,
    as_json: bool = options.JSON,
) -> None:
    """Find FathomNet images by concept, download them (resuming) and ingest their boxes.

    Set FATHOMNET_API_URL to use another server.

    Example: oceanid ingest fathomnet --concept Aurelia --concept "Chrysaora fuscescens" --max-per-concept 200
    """
    report = workspace(ctx).ingest_fathomnet(
        list(concept), max_per_concept, workers, min_depth, max_depth, progress=not as_json
    )
    show_report(report, as_json, show_notes)
