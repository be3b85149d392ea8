"""Boxes from another detector: reading COCO-format detection results and matching them to frames.

Accepted (``oceanid identify --boxes DETECTIONS.json``):

- a COCO *results* list, as pycocotools ``loadRes`` and Megalodon / Ultralytics write it:
  ``[{"image_id": ..., "bbox": [x, y, w, h], "score": 0.9, "category_id": 1}, ...]``;
- or a COCO document ``{"images": [{"id", "file_name"}, ...], "annotations": [...]}``
  (``"detections"`` is read like ``"annotations"``); ``score`` may be missing there.

An ``image_id`` becomes a file by, in order: the ``images`` list's ``file_name`` for that
id; the id itself when it is a string (a file name or relative path); for an integer id,
the given frame whose file stem is that number (``000123.jpg`` is image 123). A file name
matches a frame given on the command line by its trailing path parts (``a/b.jpg`` matches
``/data/a/b.jpg``, ``b.jpg`` matches any frame named ``b.jpg``). With no frames given, names
are resolved against the detections file's folder (oceanid's own ``--coco`` output names each
frame relative to that folder, or by its absolute path: :func:`coco_file_name`). Each image that cannot be
found and each malformed entry is one line in ``skipped``; the rest is kept. Boxes are checked against the
frame when it is cut (:func:`index.ingest.crops.clip_box`).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from index.errors import InvalidInput, SourceError


@dataclass(frozen=True)
class DetectedBox:
    """One box of another tool: ``(x, y, w, h)`` pixels, its score (None when the file has none)."""

    box: tuple[float, float, float, float]
    score: float | None = None
    category_id: int | str | None = None


@dataclass
class MatchedDetections:
    """Frames with the boxes the file gives them (in frame order) and one line per entry left out."""

    frames: list[tuple[Path, list[DetectedBox]]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (item, one-line reason)


def read_detections(path: Path) -> tuple[list[dict], dict]:
    """The result entries and the ``{id: file_name}`` images map of a detections file.

    Raises SourceError (missing or unreadable) or InvalidInput (not JSON, wrong shape).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SourceError(f"{path}: no such detections file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SourceError(f"{path}: unreadable ({exc})") from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise InvalidInput(f"{path}: not JSON ({exc})") from None
    images: dict = {}
    if isinstance(data, dict):
        entries = data.get("annotations", data.get("detections"))
        if not isinstance(entries, list):
            raise InvalidInput(f"{path}: a COCO document needs an 'annotations' list")
        for image in data.get("images") or []:
            if isinstance(image, dict) and "id" in image and isinstance(image.get("file_name"), str):
                images[image["id"]] = image["file_name"]
    elif isinstance(data, list):
        entries = data
    else:
        raise InvalidInput(f"{path}: COCO results are a list of detections or a document with 'annotations'")
    return entries, images


def _box(entry: object) -> DetectedBox:
    if not isinstance(entry, dict):
        raise InvalidInput(f"entry is a {type(entry).__name__}, not an object")
    if "image_id" not in entry:
        raise InvalidInput("entry has no image_id")
    bbox = entry.get("bbox")
    if not isinstance(bbox, (list, tuple)) or len(bbox) != 4:
        raise InvalidInput(f"bbox {bbox!r} is not [x, y, w, h]")
    try:
        box = tuple(float(v) for v in bbox)
    except (TypeError, ValueError):
        raise InvalidInput(f"bbox {bbox!r} is not four numbers") from None
    score = entry.get("score")
    if score is not None:
        try:
            score = float(score)
        except (TypeError, ValueError):
            raise InvalidInput(f"score {score!r} is not a number") from None
        if not math.isfinite(score):
            raise InvalidInput(f"score {score!r} is not finite")
    return DetectedBox(box, score, entry.get("category_id"))  # type: ignore[arg-type]


def _by_name(name: str, frames: Sequence[Path]) -> Path | None:
    parts = Path(name).parts
    for frame in frames:
        if frame.parts[-len(parts) :] == parts:
            return frame
    return None


def _stem_number(path: Path) -> int | None:
    return int(path.stem) if path.stem.isdigit() else None


def match_detections(path: Path, frames: Sequence[Path] | None = None) -> MatchedDetections:
    """Read ``path`` and give each frame its boxes (see the module docstring for the rules).

    ``frames``: the frame files given (each gets an entry, with no boxes when the file names
    none for it); None: the frames are the files the detections name, found beside ``path``.
    Raises what :func:`read_detections` raises; every entry-level problem is in ``skipped``.
    """
    entries, images = read_detections(path)
    given = [Path(f).absolute() for f in frames] if frames else None
    by_number = {n: f for f in given or [] if (n := _stem_number(f)) is not None}
    out = MatchedDetections()
    boxes: dict[Path, list[DetectedBox]] = {f: [] for f in given or []}
    missing: dict[object, str] = {}
    resolved: dict[object, Path | None] = {}
    for n, entry in enumerate(entries):
        try:
            found = _box(entry)
        except InvalidInput as exc:
            out.skipped.append((f"detection {n}", str(exc)))
            continue
        image_id = entry["image_id"]
        key = (type(image_id).__name__, str(image_id))
        if key not in resolved:
            resolved[key] = _resolve(image_id, images, given, by_number, Path(os.path.realpath(path)).parent, missing)
        frame = resolved[key]
        if frame is None:
            continue
        boxes.setdefault(frame, []).append(found)
    for image_id, reason in missing.items():
        out.skipped.append((f"image_id {image_id}", reason))
    out.frames = list(boxes.items())
    return out


def _resolve(
    image_id: object,
    images: dict,
    given: list[Path] | None,
    by_number: dict[int, Path],
    base: Path,
    missing: dict[object, str],
) -> Path | None:
    if not isinstance(image_id, (int, str)) or isinstance(image_id, bool):
        missing[str(image_id)] = "an image_id is an integer or a file name"
        return None
    name = images.get(image_id)
    if name is None and isinstance(image_id, str):
        name = image_id
    if name is not None:
        if given is not None:
            frame = _by_name(name, given)
            if frame is None:
                missing[image_id] = f"{name} is not among the frames given"
            return frame
        candidate = Path(name) if Path(name).is_absolute() else base / name
        if not candidate.is_file():
            missing[image_id] = f"no image file {candidate}"
            return None
        return candidate
    if isinstance(image_id, int) and not isinstance(image_id, bool):
        frame = by_number.get(image_id)
        if frame is None:
            missing[image_id] = (
                "not in an images list, and no frame given is named by that number"
                if given is not None
                else "no images list maps it to a file (give the frames)"
            )
        return frame
    return None


def coco_file_name(source: str | Path | None, name: str, document: str | Path) -> str:
    """The ``file_name`` a COCO document written to ``document`` gives a frame, so that
    ``identify --boxes DOCUMENT`` finds it from any working folder: the frame's path relative to
    the document's folder when it lies below it, else its absolute path; ``name`` for a frame
    that has no file (an upload)."""
    if not source:
        return name
    frame = Path(os.path.realpath(source))
    base = Path(os.path.realpath(Path(document).absolute().parent))
    return frame.relative_to(base).as_posix() if frame.is_relative_to(base) else str(frame)


def coco_results(
    frames: Sequence[tuple[str, int, int, Sequence[tuple[tuple[float, float, float, float], float, str]]]],
    categories: Sequence[str],
    description: str,
) -> dict:
    """A COCO document of identified boxes: ``info``, ``images``, ``categories`` and
    ``annotations`` (each with ``score``; ``category_id`` = the named species).

    ``frames``: (file name, width, height, [(x, y, w, h), score, category name]) per frame;
    ``categories``: every category name, in id order (ids from 1). pycocotools reads it with
    ``COCO(path)``, and its ``annotations`` list is a results list for ``COCO.loadRes``.
    """
    ids = {name: i + 1 for i, name in enumerate(categories)}
    doc = {
        "info": {"description": description, "version": "1.0"},
        "images": [],
        "annotations": [],
        "categories": [{"id": i, "name": name, "supercategory": "organism"} for name, i in ids.items()],
    }
    for image_id, (name, width, height, boxes) in enumerate(frames, start=1):
        doc["images"].append({"id": image_id, "file_name": name, "width": int(width), "height": int(height)})
        for box, score, category in boxes:
            x, y, w, h = (round(float(v), 2) for v in box)
            doc["annotations"].append(
                {
                    "id": len(doc["annotations"]) + 1,
                    "image_id": image_id,
                    "category_id": ids[category],
                    "bbox": [x, y, w, h],
                    "area": round(w * h, 2),
                    "iscrowd": 0,
                    "score": round(float(score), 4),
                }
            )
    return doc


def write_coco(
    frames: Sequence[tuple[str, int, int, Sequence[tuple[tuple[float, float, float, float], float, str]]]],
    categories: Sequence[str],
    description: str,
    path: Path | None = None,
) -> dict:
    """The one COCO writer of ``detect --coco`` and ``identify --coco``: the :func:`coco_results`
    document, written atomically (indent 1) to ``path`` when given; returns the document."""
    from index.files import write_output

    doc = coco_results(frames, categories, description)
    if path is not None:  # a user's path: a link's target is written, a FIFO or device refused
        write_output(Path(path), json.dumps(doc, indent=1).encode("utf-8"), "--coco")
    return doc
