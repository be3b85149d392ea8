"""The catalog side of the class-agnostic detector: frames with their boxes and split, detector records.

A frame's detector split follows its boxes' crop splits so that no frame's boxes
straddle splits: a frame holding any ``test`` box is a test frame, else any
``val`` box a val frame, else any ``train`` box a train frame; a frame whose only
split boxes are ``holdout`` is a test frame; a frame without boxes (a YOLO frame
with no label file: no organisms) or with unsplit boxes only is a train frame
(it teaches the background). Every box of a frame is a target, whatever its
species' split: the detector names no species.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from index.catalog.catalog import Catalog
from index.errors import NotFound

DETECTOR_SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class DetectionFrame:
    """One catalog frame: ``path`` relative to the home, ``boxes`` (n, 4) float32 x, y, w, h pixels."""

    image_id: int
    path: str
    width: int
    height: int
    split: str  # train | val | test (see the module rule)
    boxes: np.ndarray
    straddled: bool  # its boxes' crop splits disagree (the frame follows the rule above)


@dataclass(frozen=True)
class DetectorRecord:
    """A detector as the catalog lists it."""

    detector_id: str
    config_hash: str
    arch: str
    image_size: int
    train_frames: int | None
    val_frames: int | None
    epochs: int | None
    best_epoch: int | None
    val_map50: float | None
    seconds: float | None
    created_at: str | None

    def to_dict(self) -> dict:
        return asdict(self)


def frame_split(box_splits: list[str | None]) -> str:
    """The detector split of a frame whose boxes have these crop splits (module rule)."""
    present = set(box_splits)
    for split in ("test", "val", "train"):
        if split in present:
            return split
    return "test" if "holdout" in present else "train"


def detection_frames(catalog: Catalog) -> list[DetectionFrame]:
    """Every ingested frame (added species' example images excepted) with its boxes and split."""
    with catalog.read() as con:
        images = con.execute(
            "SELECT image_id, path, width, height FROM images WHERE source <> 'added' ORDER BY image_id"
        ).fetchall()
        boxes = con.execute(
            "SELECT image_id, x, y, w, h, split FROM annotations "
            "WHERE coalesce(split, '') <> 'support' ORDER BY image_id, annotation_id"
        ).fetchall()
    per: dict[int, list] = {}
    for row in boxes:
        per.setdefault(row[0], []).append(row[1:])
    out = []
    for image_id, path, width, height in images:
        rows = per.get(image_id, [])
        splits = [r[4] for r in rows]
        known = {s for s in splits if s in DETECTOR_SPLITS or s == "holdout"}
        xywh = np.asarray([r[:4] for r in rows], dtype=np.float32).reshape(-1, 4)
        out.append(
            DetectionFrame(int(image_id), path, int(width), int(height), frame_split(splits), xywh, len(known) > 1)
        )
    return out


_COLUMNS = (
    "detector_id",
    "config_hash",
    "arch",
    "image_size",
    "train_frames",
    "val_frames",
    "epochs",
    "best_epoch",
    "val_map50",
    "seconds",
    "created_at",
)


def register_detector(catalog: Catalog, record: DetectorRecord) -> None:
    """Record (or update) a detector: one row per detector folder."""
    values = [getattr(record, c) for c in _COLUMNS[:-1]]
    with catalog.write() as con:
        con.execute("DELETE FROM detectors WHERE detector_id = ?", [record.detector_id])
        con.execute(
            f"INSERT INTO detectors ({', '.join(_COLUMNS[:-1])}) VALUES ({', '.join('?' * len(values))})", values
        )


def list_detectors(catalog: Catalog) -> list[DetectorRecord]:
    """Every recorded detector, oldest first."""
    if not catalog.exists():
        return []
    with catalog.read() as con:
        rows = con.execute(f"SELECT {', '.join(_COLUMNS)} FROM detectors ORDER BY created_at, detector_id").fetchall()
    return [DetectorRecord(*r[:-1], created_at=str(r[-1]) if r[-1] is not None else None) for r in rows]


def detector_record(catalog: Catalog, detector_id: str) -> DetectorRecord:
    """One detector's record. Raises NotFound listing the known ids."""
    found = {r.detector_id: r for r in list_detectors(catalog)}
    if detector_id not in found:
        raise NotFound(
            f"unknown detector {detector_id!r}; known: {', '.join(found) or 'none'}",
            hint="train one with `oceanid detect train`",
        )
    return found[detector_id]
