"""Class folders: ``DIR/<class>/<image>``, one crop per file.

The class is the folder name unless ``DIR/species.csv`` (columns folder,
species, and any rank columns: kingdom, phylum, class, order, family, subfamily,
genus, ...) names it and its lineage; without one, ``_`` in a folder name becomes a
space (``Testus_badus`` -> ``Testus badus``, noted in the plan). A name equal to one of
its rank cells (a family folder "Scaridae" whose family is Scaridae) is stored at that
rank. ``group_pattern``'s first regex group on the file name is the group key that keeps
near-duplicate frames together in one split (``fish_(\\d+)_`` for fish4knowledge tracks).
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

from index.errors import InvalidInput, SourceError
from index.imaging import is_image_name
from index.records import SPLITS, BoxRecord, ImageRecord, SourcePlan, Taxon
from index.taxon_rows import chain
from index.taxonomy import ALL_RANKS, normalise_rank


def _read_species_csv(path: Path) -> dict[str, dict[str, str]]:
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise SourceError(f"{path}: cannot read species.csv ({exc})") from None
    if not rows or "folder" not in rows[0] or "species" not in rows[0]:
        raise SourceError(f"{path}: species.csv needs the columns folder,species[,genus,family,order,...]")
    return {r["folder"]: r for r in rows if r.get("folder")}


def folder_species(name: str) -> str:
    """A species name from a folder name: ``_`` as spaces, runs of blanks as one."""
    return " ".join(name.replace("_", " ").split())


def read_folders(root: Path, group_pattern: str | None = None, split: str | None = None) -> SourcePlan:
    """Plan the ingest of class folders under ``root``.

    Raises SourceError when ``root`` is missing or holds no class folder with an
    image, InvalidInput for a bad regex or split name. Files that are not images
    by extension are listed as skipped; their content is checked at ingest.
    """
    root = Path(root)
    if not root.is_dir():
        raise SourceError(f"{root}: no such folder")
    if split is not None and split not in SPLITS:
        raise InvalidInput(f"split must be one of {', '.join(SPLITS)}, not {split!r}")
    try:
        pattern = re.compile(group_pattern) if group_pattern else None
    except re.error as exc:
        raise InvalidInput(f"--group-pattern {group_pattern!r} is not a valid regex ({exc})") from None
    if pattern is not None and pattern.groups < 1:
        raise InvalidInput(f"--group-pattern {group_pattern!r} needs one capturing group, e.g. 'fish_(\\d+)_'")
    names = _read_species_csv(root / "species.csv") if (root / "species.csv").exists() else {}
    records: list[ImageRecord] = []
    taxa: dict[str, Taxon] = {}
    skipped: list[tuple[str, str]] = []
    notes: list[tuple[str, str]] = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        info = names.get(folder.name, {})
        concept = (info.get("species") or "").strip() or folder_species(folder.name)  # a blank cell names nothing
        if not (info.get("species") or "").strip() and concept != folder.name.strip():
            notes.append((folder.name, f"folder {folder.name!r} read as species {concept!r}"))
        ranks = {r: v for r, v in info.items() if r not in ("folder", "species") and normalise_rank(r) in ALL_RANKS}
        for taxon in chain(concept, ranks):
            if taxon.concept == concept or taxon.concept not in taxa:
                taxa[taxon.concept] = taxon
        for file in sorted(folder.rglob("*")):
            if not file.is_file() or file.name.startswith("."):
                continue
            rel = file.relative_to(root).as_posix()
            if not is_image_name(file):
                skipped.append((rel, "not an image file name (extension); skipped"))
                continue
            group = None
            if pattern is not None:
                match = pattern.search(file.name)
                group = f"{root.name}:{match.group(1)}" if match else None
            records.append(
                ImageRecord(
                    source="folders",
                    source_id=f"{root.resolve()}::{rel}",
                    path=file,
                    boxes=(BoxRecord(concept, 0, 0, 1e12, 1e12, group_key=group, split=split),),
                )
            )
    if not records:
        raise SourceError(f"{root}: no images found (expected one sub-folder of images per class)")
    return SourcePlan(records, list(taxa.values()), skipped=skipped, notes=notes)
