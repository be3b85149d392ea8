"""Normalised records every source produces before they reach the catalog.

A source turns its own format (FathomNet DTOs, COCO JSON, class folders, the
synthetic reef) into :class:`ImageRecord` + :class:`BoxRecord` lists; the
catalog and the crop cutter only ever see these.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

#: The split vocabulary, written once. ``SPLITS`` are the fractions ``oceanid split``
#: assigns (and a source may pin); held-out species get ``HOLDOUT``; the few
#: examples of a species added without retraining get ``SUPPORT``.
TRAIN, VAL, TEST = "train", "val", "test"
SPLITS = (TRAIN, VAL, TEST)
HOLDOUT = "holdout"
SUPPORT = "support"
ALL_SPLITS = (*SPLITS, HOLDOUT, SUPPORT)

#: Where a box came from: drawn by a person or a data set (``TRUTH``), or found and named by
#: the whole-frame cascade (``PREDICTED``, ``oceanid identify --frames --save``).
TRUTH, PREDICTED = "truth", "predicted"


SEQUENCE_KEYS = ("video_id", "sequence_id", "seq_id", "dive_id", "dive", "video", "sequence")
"""Metadata names (COCO image fields, FathomNet tag keys) that tie frames of one dive / video / sequence."""


def sequence_group(source: str, scope: str, value: object) -> str | None:
    """The group key shared by frames of one sequence, or None when ``value`` is empty."""
    if value is None or isinstance(value, (dict, list)) or not str(value).strip():
        return None
    return f"{source}:sequence:{scope}:{str(value).strip()}"


@dataclass(frozen=True)
class BoxRecord:
    """One annotated object: a concept and a pixel box (top-left x, y, width, height)."""

    concept: str
    x: float
    y: float
    w: float
    h: float
    group_key: str | None = None  # near-duplicates share a key; splits never cut a group
    source_id: str | None = None  # the box's id in its source (FathomNet uuid, COCO id)
    split: str | None = None  # pinned split ('train'|'val'|'test') or None
    origin: str = TRUTH  # TRUTH | PREDICTED (never given a split, never trains)
    detection_score: float | None = None  # the detector's score of a PREDICTED box


@dataclass(frozen=True)
class ImageRecord:
    """One source frame stored locally, with the metadata FathomNet carries."""

    source: str  # 'synthetic' | 'coco' | 'folders' | 'fathomnet'
    source_id: str  # the image's id within its source (uuid, relative path, COCO id)
    path: Path  # local file holding the bytes
    boxes: tuple[BoxRecord, ...] = ()
    depth_m: float | None = None
    latitude: float | None = None
    longitude: float | None = None
    timestamp: datetime | None = None
    temperature_c: float | None = None
    salinity: float | None = None
    oxygen_ml_l: float | None = None
    imaging_type: str | None = None
    url: str | None = None


@dataclass(frozen=True)
class Taxon:
    """A node of the taxonomy: a concept, its rank and its parent concept."""

    concept: str
    rank: str | None = None  # 'species' | 'genus' | 'family' | ...
    parent: str | None = None


@dataclass
class SourcePlan:
    """What a source reader returns: the records to ingest, their taxa, and what it skipped.

    Every reader (COCO, class folders, FathomNet, the synthetic reef through COCO)
    returns one, so the Workspace ingests them all the same way.
    """

    records: list[ImageRecord]
    taxa: list[Taxon]
    holdout_hints: dict[str, str] = field(default_factory=dict)  # concept -> near | far | other
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (item, one-line reason)
    existing: list[str] = field(default_factory=list)  # source ids left out because already catalogued
    notes: list[tuple[str, str]] = field(default_factory=list)  # (item, one line) worth telling the user


@dataclass(frozen=True)
class LineagesAttached:
    """The lineage file a folder ingest attached (``--lineages CSV``, or ``lineages.csv`` at the folder's root)."""

    path: str
    found: bool  # True: lineages.csv found at the folder's root; False: named with --lineages
    classes: int  # classes (concepts) in the folders
    matched: int  # of them, named by the file
    written: int  # taxa rows inserted or changed
    missing: tuple[str, ...] = ()  # classes the file does not name (they keep the lineage they had, if any)

    def to_dict(self) -> dict:
        return {
            "path": self.path,
            "found": self.found,
            "classes": self.classes,
            "matched": self.matched,
            "written": self.written,
            "missing": list(self.missing),
        }


@dataclass
class IngestReport:
    """What an ingest did: counts, and one line per skipped item with its reason."""

    source: str
    images_added: int = 0
    images_existing: int = 0
    crops_added: int = 0
    crops_existing: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (item, one-line reason)
    notes: list[tuple[str, str]] = field(default_factory=list)  # ingested, but worth a line
    # the notes of the earlier run that added these images (a re-run has none of its own), and the
    # file in the home that keeps them (``app.workspace.ingest_notes``)
    earlier_notes: list[tuple[str, str]] = field(default_factory=list)
    notes_file: str | None = None
    lineages: LineagesAttached | None = None  # folder ingest only: the lineage file attached

    def skip(self, item: str, reason: str) -> None:
        self.skipped.append((item, reason))

    def note(self, item: str, text: str) -> None:
        self.notes.append((item, text))

    def to_dict(self) -> dict:
        return {
            "source": self.source,
            "images_added": self.images_added,
            "images_existing": self.images_existing,
            "crops_added": self.crops_added,
            "crops_existing": self.crops_existing,
            "skipped": [{"item": i, "reason": r} for i, r in self.skipped],
            "notes": [{"item": i, "note": n} for i, n in self.notes],
            "earlier_notes": [{"item": i, "note": n} for i, n in self.earlier_notes],
            "notes_file": self.notes_file,
            "lineages": self.lineages.to_dict() if self.lineages else None,
        }
