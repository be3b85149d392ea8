"""Ingesting a source into a home: every reader's SourcePlan lands through one path.

::

    index.sources.<reader> -> SourcePlan -> (source name) -> index.catalog.taxa.upsert
                                                         -> index.ingest.ingest.ingest_records -> IngestReport
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, replace
from pathlib import Path

from app.workspace.ingest_notes import keep_notes
from app.workspace.taxa import merge_lineages
from index.catalog.catalog import Catalog
from index.catalog.stats import source_ids
from index.catalog.taxa import read_lineage_csv
from index.catalog.taxa import upsert as upsert_taxa
from index.errors import InvalidInput
from index.home import Home
from index.ingest.crops import CropConfig
from index.ingest.ingest import check_source_name, ingest_records
from index.records import IngestReport, LineagesAttached, SourcePlan, Taxon


def ingest_plan(
    catalog: Catalog,
    home: Home,
    crop: CropConfig,
    source: str,
    plan: SourcePlan,
    progress: bool,
    source_name: str | None = None,
) -> IngestReport:
    """Land what a reader planned. ``source_name`` (``--source-name survey-2024``) replaces the
    reader's source name, so two surveys in one home can be told apart in ``--where source=...``.
    The report's notes are kept in the home (:mod:`app.workspace.ingest_notes`)."""
    records = plan.records
    if source_name is not None:
        source = check_source_name(source_name)
        records = [replace(r, source=source) for r in records]
    report = IngestReport(source)
    report.images_existing += len(plan.existing)
    for item, reason in plan.skipped:
        report.skip(item, reason)
    for item, text in plan.notes:
        report.note(item, text)
    catalog.ensure_schema()
    upsert_taxa(catalog, plan.taxa, plan.holdout_hints)
    return keep_notes(
        home,
        ingest_records(
            catalog, home.root, source, records, crop=crop, report=report, total=len(plan.records), progress=progress
        ),
    )


def synthetic_plan(home: Home, species: int, holdout: int, frames: int, seed: int) -> SourcePlan:
    """The synthetic reef's plan: drawn once into ``sources/`` (cached by its settings), then read as COCO."""
    from index.sources.coco import read_coco
    from index.sources.synthetic import generate_reef

    name = f"reef-s{species}-h{holdout}-f{frames}-seed{seed}"
    folder = home.sources / name
    json_path = folder / "annotations.json"
    if not json_path.exists():
        tmp = folder.with_name(f".{name}.tmp")
        generate_reef(tmp, species=species, holdout=holdout, frames=frames, seed=seed)
        if folder.exists():
            shutil.rmtree(folder)
        tmp.rename(folder)
    return read_coco(json_path, folder, source="synthetic", id_prefix=name)


def fathomnet_plan(
    catalog: Catalog,
    home: Home,
    concepts: list[str],
    max_per_concept: int | None,
    workers: int,
    min_depth: float | None,
    max_depth: float | None,
    progress: bool,
) -> SourcePlan:
    """Find and download (resuming) FathomNet frames with their boxes; frames the catalog
    already holds are not fetched again."""
    from index.sources.fathomnet import fetch_fathomnet

    catalog.ensure_schema()
    have = source_ids(catalog, "fathomnet")
    return fetch_fathomnet(
        concepts,
        home.sources / "fathomnet",
        max_per_concept=max_per_concept,
        workers=workers,
        min_depth=min_depth,
        max_depth=max_depth,
        have=lambda uuid: uuid in have,
        progress=progress,
    )


def coco_plan(annotations: Path, images: Path | None, split: str | None, source_name: str | None) -> SourcePlan:
    """A COCO detection file's plan (the source name is checked before the file is read)."""
    from index.sources.coco import read_coco

    if source_name is not None:
        check_source_name(source_name)
    return read_coco(annotations, images, split=split)


def yolo_plan(data_yaml: Path, source_name: str | None) -> SourcePlan:
    """A YOLO (Ultralytics / Roboflow) data set's plan, splits pinned as its folders say."""
    from index.sources.yolo import read_yolo

    if source_name is not None:
        check_source_name(source_name)
    return read_yolo(data_yaml)


LINEAGE_FILE = "lineages.csv"  # a folder ingest attaches DIR/lineages.csv when --lineages names no file


@dataclass(frozen=True)
class FolderLineages:
    """A lineage file read and checked before a folder ingest writes anything."""

    path: Path
    found: bool  # found at the folder's root (not named)
    taxa: list[Taxon]
    classes: frozenset[str]  # the folders' classes


def folder_lineages(root: Path, lineages: Path | None, plan: SourcePlan) -> FolderLineages | None:
    """The lineage file a folder ingest attaches: ``lineages`` when given, else ``root/lineages.csv``
    when it exists, else None. Read with ``taxa import``'s parser before anything is ingested, so a
    bad file stops the ingest whole. Raises SourceError (unreadable, no concept column), InvalidInput
    (the file names none of the folders' classes)."""
    found = lineages is None
    path = Path(root) / LINEAGE_FILE if found else Path(lineages)
    if found and not path.is_file():
        return None
    taxa = read_lineage_csv(path)
    classes = frozenset(box.concept for record in plan.records for box in record.boxes)
    if not classes & {t.concept for t in taxa}:
        raise InvalidInput(
            f"{path}: none of its {len(taxa)} concepts is a class of {root} "
            f"(classes: {', '.join(sorted(classes)[:3])}{', ...' if len(classes) > 3 else ''})"
        )
    return FolderLineages(path, found, taxa, classes)


def attach_lineages(catalog: Catalog, report: IngestReport, lineages: FolderLineages) -> IngestReport:
    """Merge the checked lineage file into the catalog (what ``taxa import`` does; the file's names win)
    and say so in the report, with the classes the file does not name."""
    merged = merge_lineages(catalog, lineages.taxa, lineages.path)
    named = {t.concept for t in lineages.taxa}
    report.lineages = LineagesAttached(
        path=str(lineages.path),
        found=lineages.found,
        classes=len(lineages.classes),
        matched=len(lineages.classes & named),
        written=merged.written,
        missing=tuple(sorted(lineages.classes - named)),
    )
    return report


def folders_plan(root: Path, group_pattern: str | None, split: str | None, source_name: str | None) -> SourcePlan:
    """Class folders' plan (one folder per species, every file a crop)."""
    from index.sources.folders import read_folders

    if source_name is not None:
        check_source_name(source_name)
    return read_folders(root, group_pattern=group_pattern, split=split)


# -- one step per source (the Workspace's ingest_* methods) ----------------------------------------------


def ingest_synthetic(
    catalog: Catalog, home: Home, crop: CropConfig, species: int, holdout: int, frames: int, seed: int, progress: bool
) -> IngestReport:
    """Draw the synthetic reef (cached under sources/) and ingest it."""
    plan = synthetic_plan(home, species, holdout, frames, seed)
    return ingest_plan(catalog, home, crop, "synthetic", plan, progress)


def ingest_coco(
    catalog: Catalog,
    home: Home,
    crop: CropConfig,
    annotations: Path,
    images: Path | None,
    split: str | None,
    progress: bool,
    source_name: str | None,
) -> IngestReport:
    """Ingest a COCO detection file (boxes become crops); ``split`` pins every crop."""
    plan = coco_plan(annotations, images, split, source_name)
    return ingest_plan(catalog, home, crop, "coco", plan, progress, source_name)


def ingest_yolo(
    catalog: Catalog, home: Home, crop: CropConfig, data_yaml: Path, progress: bool, source_name: str | None
) -> IngestReport:
    """Ingest a YOLO (Ultralytics / Roboflow) data set; splits pinned as its folders say."""
    return ingest_plan(catalog, home, crop, "yolo", yolo_plan(data_yaml, source_name), progress, source_name)


def ingest_folders(
    catalog: Catalog,
    home: Home,
    crop: CropConfig,
    root: Path,
    group_pattern: str | None,
    split: str | None,
    progress: bool,
    source_name: str | None,
    lineages: Path | None,
) -> IngestReport:
    """Ingest class folders (one per species, every file a crop); ``lineages`` (else
    ``root/lineages.csv`` if there) is checked first and attached as ``taxa import`` would."""
    plan = folders_plan(root, group_pattern, split, source_name)
    found = folder_lineages(root, lineages, plan)
    report = ingest_plan(catalog, home, crop, "folders", plan, progress, source_name)
    return attach_lineages(catalog, report, found) if found else report


def ingest_fathomnet(
    catalog: Catalog,
    home: Home,
    crop: CropConfig,
    concepts: list[str],
    max_per_concept: int | None,
    workers: int,
    min_depth: float | None,
    max_depth: float | None,
    progress: bool,
) -> IngestReport:
    """Find, download (resuming) and ingest FathomNet frames with their boxes."""
    plan = fathomnet_plan(catalog, home, concepts, max_per_concept, workers, min_depth, max_depth, progress)
    return ingest_plan(catalog, home, crop, "fathomnet", plan, progress)
