"""COCO detection JSON: ``images``, ``annotations`` (``bbox`` = x, y, w, h) and ``categories``.

Optional extra fields are read when present: on images ``depth_m``,
``latitude``, ``longitude``, ``timestamp`` (ISO 8601), ``temperature_c``,
``salinity``, ``oxygen_ml_l``, ``imaging_type``; on categories any rank field
(``kingdom`` .. ``genus``, ``subfamily``, ...: the lineage), ``supercategory`` (at
the rank ``supercategory_rank`` names, else a family when it ends in -idae, else
not a rank) and ``holdout`` /
``holdout_kind`` (the synthetic reef's suggested held-out species).
Frames that share a ``video_id`` / ``sequence_id`` / ``seq_id`` / ``dive_id``
(see :data:`index.records.SEQUENCE_KEYS`) share a group key, so a split never
cuts one sequence.
"""

from __future__ import annotations

import json
import math
from datetime import datetime
from pathlib import Path

from index.errors import InvalidInput, SourceError
from index.records import SEQUENCE_KEYS, SPLITS, BoxRecord, ImageRecord, SourcePlan, Taxon, sequence_group
from index.taxon_rows import chain
from index.taxonomy import ALL_RANKS, normalise_rank


def _number(value) -> float | None:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def _timestamp(value) -> datetime | None:
    if not value:
        return None
    try:
        stamp = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return stamp.replace(tzinfo=None) if stamp.tzinfo else stamp


def _is_id(value) -> bool:
    """A usable COCO id: a string or a number (JSON lists, objects, booleans and null are not)."""
    return isinstance(value, (str, int, float)) and not isinstance(value, bool)


def _show(name: str) -> str:
    """A file name for a one-line report (control characters escaped)."""
    return name if name.isprintable() else repr(name)


def _text(value) -> str | None:
    """A metadata text: stripped string or number as text; None for empty or structured values."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return None
    return str(value).strip() or None


def _sequence(img: dict, source: str, prefix: str) -> str | None:
    for key in SEQUENCE_KEYS:
        group = sequence_group(source, prefix, img.get(key))
        if group is not None:
            return group
    return None


def _load(path: Path) -> dict:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SourceError(f"{path}: no such file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{path}: malformed JSON ({exc})") from None
    if not isinstance(data, dict):
        raise InvalidInput(f"{path}: a COCO file is a JSON object, found {type(data).__name__}")
    missing = [k for k in ("images", "annotations", "categories") if not isinstance(data.get(k), list)]
    if missing:
        raise InvalidInput(f"{path}: incomplete COCO JSON, missing list(s): {', '.join(missing)}")
    return data


def _taxa(categories: list, skipped: list) -> tuple[dict[int, str], list[Taxon], dict[str, str]]:
    names: dict[int, str] = {}
    taxa: dict[str, Taxon] = {}
    hints: dict[str, str] = {}
    for cat in categories:
        if not isinstance(cat, dict) or not _is_id(cat.get("id")) or _text(cat.get("name")) is None:
            skipped.append((f"category {cat!r:.60}", "category without id or name"))
            continue
        name = _text(cat["name"])
        names[cat["id"]] = name
        ranks = {r: _text(cat.get(r)) for r in ALL_RANKS if r != "species" and _text(cat.get(r))}
        sup = _text(cat.get("supercategory"))
        if sup and sup not in ranks.values():
            rank = normalise_rank(_text(cat.get("supercategory_rank"))) or (
                "family" if sup.endswith("idae") else None
            )  # zoological family names end in -idae
            if rank and rank not in ranks:
                ranks[rank] = sup
        for taxon in chain(name, ranks):
            if taxon.concept == name or taxon.concept not in taxa:
                taxa[taxon.concept] = taxon
        if cat.get("holdout"):
            hints[name] = _text(cat.get("holdout_kind")) or "other"
    return names, list(taxa.values()), hints


def read_coco(
    annotations: Path,
    images_dir: Path | None = None,
    split: str | None = None,
    source: str = "coco",
    id_prefix: str | None = None,
) -> SourcePlan:
    """Plan the ingest of a COCO file; frames are looked up under ``images_dir``
    (default: the JSON's folder).

    Raises SourceError/InvalidInput when the file itself is unusable; bad
    entries (unknown category, missing image, malformed bbox) are skipped with a reason.
    """
    annotations = Path(annotations)
    if split is not None and split not in SPLITS:
        raise InvalidInput(f"split must be one of {', '.join(SPLITS)}, not {split!r}")
    data = _load(annotations)
    images_dir = Path(images_dir) if images_dir else annotations.parent
    if not images_dir.is_dir():
        raise SourceError(f"{images_dir}: images folder not found")
    prefix = id_prefix if id_prefix is not None else str(annotations.resolve())
    skipped: list[tuple[str, str]] = []
    names, taxa, hints = _taxa(data["categories"], skipped)
    boxes: dict[object, list[BoxRecord]] = {}
    sequences = {
        img["id"]: _sequence(img, source, prefix)
        for img in data["images"]
        if isinstance(img, dict) and _is_id(img.get("id"))
    }
    for ann in data["annotations"]:
        if not isinstance(ann, dict) or not _is_id(ann.get("image_id")):
            skipped.append((f"annotation {ann!r:.60}", "annotation without image_id"))
            continue
        item = f"annotation {ann.get('id', '?')}"
        if not _is_id(ann.get("category_id")) or ann["category_id"] not in names:
            skipped.append((item, f"unknown category id {ann.get('category_id')!r}"))
            continue
        bbox = ann.get("bbox")
        if not (isinstance(bbox, list) and len(bbox) == 4 and all(_number(v) is not None for v in bbox)):
            skipped.append((item, f"bbox must be [x, y, w, h] numbers, got {bbox!r:.60}"))
            continue
        boxes.setdefault(ann["image_id"], []).append(
            BoxRecord(
                names[ann["category_id"]],
                *(float(v) for v in bbox),
                source_id=str(ann.get("id")) if ann.get("id") is not None else None,
                split=split,
                group_key=sequences.get(ann["image_id"]),
            )
        )
    records = []
    for img in data["images"]:
        if not isinstance(img, dict) or not _is_id(img.get("id")) or _text(img.get("file_name")) is None:
            skipped.append((f"image {img!r:.60}", "image entry without id or file_name"))
            continue
        file_name = str(img["file_name"])
        path = images_dir / file_name
        try:
            inside = path.resolve().is_relative_to(images_dir.resolve())
            found = inside and path.is_file()
        except (OSError, ValueError):  # a NUL byte, a name too long for the file system
            inside, found = True, False
        if not inside:
            skipped.append((_show(file_name), f"file_name points outside the images folder {images_dir}"))
            continue
        if not found:
            skipped.append((_show(file_name), f"image file not found under {images_dir}"))
            continue
        records.append(
            ImageRecord(
                source=source,
                source_id=f"{prefix}::{img['id']}",
                path=path,
                boxes=tuple(boxes.pop(img["id"], [])),
                depth_m=_number(img.get("depth_m")),
                latitude=_number(img.get("latitude")),
                longitude=_number(img.get("longitude")),
                timestamp=_timestamp(img.get("timestamp")),
                temperature_c=_number(img.get("temperature_c")),
                salinity=_number(img.get("salinity")),
                oxygen_ml_l=_number(img.get("oxygen_ml_l")),
                imaging_type=_text(img.get("imaging_type")),
            )
        )
    for image_id, orphan in boxes.items():
        skipped.append((f"image id {image_id}", f"{len(orphan)} annotation(s) for an image not in 'images'"))
    return SourcePlan(records, taxa, hints, skipped)
