"""The Ultralytics / Roboflow YOLO layout: ``data.yaml`` + ``images/`` + ``labels/``.

``data.yaml`` names the classes (``names``: a list, or a mapping index -> name) and
the split folders (``train`` / ``val`` / ``test``: a folder, a ``.txt`` list of
image paths, or a list of either), relative to ``path`` (default: the YAML's
folder). Folders are resolved the way Ultralytics' ``check_det_dataset`` does:
``root / value``, and when that does not exist and the value starts with
``../`` (Roboflow exports write ``../train/images``), ``root / value[3:]``.
Every folder read is reported as a note.

A label file sits where the image does with the last ``images`` folder replaced
by ``labels`` and the extension by ``.txt`` (Ultralytics' ``img2label_paths``);
each line is ``class cx cy w h`` normalised to the upright frame, or
``class x1 y1 x2 y2 ...`` (a segment polygon, whose bounding box is taken).
A frame without a label file, or with an empty one, holds no organisms: it is
ingested with no boxes. Splits are pinned as the folders say. Boxes become
crops exactly like COCO boxes (the same :class:`~index.records.BoxRecord`).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from index.errors import InvalidInput, SourceError
from index.imaging import is_image_name
from index.records import TEST, TRAIN, VAL, BoxRecord, ImageRecord, SourcePlan, Taxon

#: data.yaml keys -> the split the boxes are pinned to
SPLIT_KEYS = {"train": TRAIN, "val": VAL, "test": TEST}
_SWAP_ORIENTATIONS = (5, 6, 7, 8)  # EXIF orientations that turn the frame by 90 degrees


def load_data_yaml(path: Path) -> dict:
    """Parse ``data.yaml``. Raises SourceError (missing) or InvalidInput (malformed)."""
    import yaml

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SourceError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{path}: unreadable ({exc})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" at line {where.line + 1}" if where is not None else ""
        raise InvalidInput(
            f"{path}: malformed YAML{line} ({getattr(exc, 'problem', None) or 'syntax error'})"
        ) from None
    if not isinstance(data, dict):
        raise InvalidInput(f"{path}: a YOLO data.yaml is a mapping, found {type(data).__name__}")
    return data


def class_names(data: dict, path: Path) -> dict[int, str]:
    """``names`` as index -> name. Raises InvalidInput when missing or malformed."""
    names = data.get("names")
    if isinstance(names, list):
        out = dict(enumerate(names))
    elif isinstance(names, dict):
        try:
            out = {int(k): v for k, v in names.items()}
        except (TypeError, ValueError):
            raise InvalidInput(f"{path}: 'names' keys must be class indexes (0, 1, ...)") from None
    else:
        raise InvalidInput(f"{path}: no 'names' list of class names")
    bad = [k for k, v in out.items() if not isinstance(v, (str, int, float)) or not str(v).strip()]
    if bad or not out:
        raise InvalidInput(f"{path}: 'names' has empty or non-text entries (index {bad[:3]})")
    nc = data.get("nc")
    if isinstance(nc, int) and nc != len(out):
        raise InvalidInput(f"{path}: nc is {nc} but 'names' lists {len(out)} classes")
    return {k: str(v).strip() for k, v in out.items()}


def dataset_root(data: dict, path: Path) -> Path:
    """``path`` of data.yaml (relative to the YAML's folder), else the YAML's folder."""
    root = data.get("path")
    if root in (None, ""):
        return path.parent.resolve()
    root = Path(str(root)).expanduser()
    return (root if root.is_absolute() else path.parent / root).resolve()


def resolve_entry(root: Path, value: str) -> Path:
    """One split entry resolved like Ultralytics: ``root/value``, else ``root/value[3:]`` for ``../``."""
    candidate = Path(value).expanduser()
    if candidate.is_absolute():
        return candidate
    first = (root / value).resolve()
    if not first.exists() and value.startswith("../"):
        return (root / value[3:]).resolve()
    return first


def label_path(image: Path) -> Path:
    """Ultralytics' ``img2label_paths``: the last ``images`` folder becomes ``labels``, suffix ``.txt``."""
    sa, sb = f"{os.sep}images{os.sep}", f"{os.sep}labels{os.sep}"
    text = str(image)
    if sa in text:
        head, tail = text.rsplit(sa, 1)
        text = head + sb + tail
    return Path(text).with_suffix(".txt")


def _images_of(entry: Path, skipped: list) -> list[Path]:
    if entry.is_dir():
        return sorted(p for p in entry.rglob("*") if p.is_file() and is_image_name(p))
    if entry.is_file() and entry.suffix == ".txt":  # a list of image paths, relative to its folder
        out = []
        for line in entry.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.strip():
                p = Path(line.strip())
                p = p if p.is_absolute() else (entry.parent / p).resolve()
                if p.is_file():
                    out.append(p)
                else:
                    skipped.append((line.strip(), f"image listed in {entry.name} not found"))
        return out
    skipped.append((str(entry), "split folder not found"))
    return []


def upright_size(path: Path) -> tuple[int, int]:
    """Width and height after EXIF orientation, read from the header only. Raises OSError."""
    with Image.open(path) as image:
        width, height = image.size
        orientation = image.getexif().get(0x0112, 1)
    return (height, width) if orientation in _SWAP_ORIENTATIONS else (width, height)


def parse_label_line(
    line: str, names: dict[int, str], width: int, height: int
) -> tuple[str, float, float, float, float]:
    """One label line -> ``(concept, x, y, w, h)`` in pixels. Raises InvalidInput (one line)."""
    parts = line.split()
    try:
        numbers = [float(v) for v in parts]
    except ValueError:
        raise InvalidInput(f"not numbers: {line.strip()[:60]!r}") from None
    if len(numbers) < 5 or (len(numbers) > 5 and len(numbers) % 2 == 0):
        raise InvalidInput(f"expected 'class cx cy w h' or a polygon, got {len(numbers)} values")
    if not all(math.isfinite(v) for v in numbers):
        raise InvalidInput("non-finite value")
    cls = numbers[0]
    if cls != int(cls) or int(cls) not in names:
        raise InvalidInput(f"class index {parts[0]} is outside names (0..{max(names)})")
    if len(numbers) == 5:
        cx, cy, w, h = numbers[1:]
        x0, y0, x1, y1 = cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2
    else:
        xs, ys = numbers[1::2], numbers[2::2]
        x0, y0, x1, y1 = min(xs), min(ys), max(xs), max(ys)
    if not (-0.01 <= x0 and -0.01 <= y0 and x1 <= 1.01 and y1 <= 1.01):
        raise InvalidInput(f"coordinates must be normalised to 0..1, got {' '.join(parts[1:5])}")
    if x1 <= x0 or y1 <= y0:
        raise InvalidInput("box has zero or negative size")
    return names[int(cls)], x0 * width, y0 * height, (x1 - x0) * width, (y1 - y0) * height


def _frame(
    image: Path, root: Path, split: str, names: dict[int, str], source: str, prefix: str, skipped: list
) -> ImageRecord | None:
    rel = os.path.relpath(image, root)
    try:
        width, height = upright_size(image)
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        skipped.append((rel, f"unreadable image ({str(exc).splitlines()[0][:80] if str(exc) else type(exc).__name__})"))
        return None
    boxes = []
    labels = label_path(image)
    if labels.is_file():
        lines = labels.read_text(encoding="utf-8", errors="replace").splitlines()
        for n, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                concept, x, y, w, h = parse_label_line(line, names, width, height)
            except InvalidInput as exc:
                skipped.append((f"{os.path.relpath(labels, root)} line {n}", str(exc)))
                continue
            boxes.append(BoxRecord(concept, x, y, w, h, source_id=f"{rel}:{n}", split=split))
    return ImageRecord(source=source, source_id=f"{prefix}::{rel}", path=image, boxes=tuple(boxes))


def read_yolo(data_yaml: Path, source: str = "yolo", id_prefix: str | None = None) -> SourcePlan:
    """Plan the ingest of a YOLO data set described by ``data_yaml``.

    Returns a SourcePlan whose ``notes`` say which folders were read for which split.
    Raises SourceError/InvalidInput when the YAML itself is unusable; bad label
    lines, class indexes outside ``names``, label files without an image and
    unreadable images are skipped with a one-line reason.
    """
    data_yaml = Path(data_yaml)
    data = load_data_yaml(data_yaml)
    names = class_names(data, data_yaml)
    root = dataset_root(data, data_yaml)
    prefix = id_prefix if id_prefix is not None else str(data_yaml.resolve())
    skipped: list[tuple[str, str]] = []
    notes: list[tuple[str, str]] = []
    records: list[ImageRecord] = []
    seen: set[Path] = set()
    wanted = [k for k in SPLIT_KEYS if data.get(k) not in (None, "")]
    if not wanted:
        raise InvalidInput(f"{data_yaml}: names no train / val / test folder")
    for key in wanted:
        values = data[key] if isinstance(data[key], list) else [data[key]]
        for value in values:
            entry = resolve_entry(root, str(value))
            notes.append((f"{key}: {value}", f"read {entry}"))
            images = _images_of(entry, skipped)
            for image in images:
                if image in seen:
                    skipped.append((os.path.relpath(image, root), f"listed again under {key}; kept in its first split"))
                    continue
                seen.add(image)
                record = _frame(image, root, SPLIT_KEYS[key], names, source, prefix, skipped)
                if record is not None:
                    records.append(record)
            if entry.is_dir():
                _orphan_labels(entry, images, root, skipped)
    taxa = [Taxon(name, None, None) for name in dict.fromkeys(names.values())]
    return SourcePlan(records, taxa, {}, skipped, notes=notes)


def _orphan_labels(images_dir: Path, images: list[Path], root: Path, skipped: list) -> None:
    """A label file whose image is missing: one line each."""
    labels_dir = label_path(images_dir / "x.jpg").parent
    if labels_dir == images_dir or not labels_dir.is_dir():
        return
    have = {label_path(p) for p in images}
    for label in sorted(labels_dir.rglob("*.txt")):
        if label not in have:
            skipped.append((os.path.relpath(label, root), "label file without an image (image missing)"))
