"""The whole-frame cascade: find every organism in a frame, cut it like a training crop, identify it.

::

    frame -> box source (the detector, or another tool's COCO results file)
          -> index.ingest.crops.cut_crop (the same context padding as every training crop)
          -> app.workspace.identify.identify (species, calibrated probability, unknown verdict)
          -> FrameIdentification: one Identification per organism, its box and detection score
    run_cascade      the Workspace's ``identify_frames``: options checked, boxes chosen -> CascadeResult
    write_coco       a CascadeResult as a COCO file (index.sources.detections.write_coco, as ``detect --coco``)

Boxes come from a ``.json`` detections file or from a detector (:mod:`app.workspace.frames.boxes`);
what was found is saved as predicted crops by :mod:`app.workspace.frames.predicted`. The steps take
the pieces they use (catalog, crop config, loaders), never the Workspace.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image

from app.workspace.engine import Engine
from app.workspace.frames.boxes import (
    BoxFinder,
    BoxSource,
    box_source,
    detections_frames,
    detector_finder,
    file_finder,
)
from app.workspace.frames.detector import MIN_FRAME_SIDE, LoadedDetector
from app.workspace.identify import Identification, ImageInput, decode, identify, input_name, input_source
from index.errors import BadImage, Interrupted, InvalidInput
from index.ingest.crops import CropConfig, clip_box, cut_crop

if TYPE_CHECKING:
    from index.catalog.catalog import Catalog

log = logging.getLogger(__name__)

FRAME_BATCH = 8  # frames decoded, searched for boxes and identified together

CONVERTED = {
    "L": "grayscale",
    "LA": "grayscale",
    "1": "black-and-white",
    "P": "palette",
    "CMYK": "CMYK",
    "I;16": "16-bit",
    "I;16B": "16-bit",
    "I;16L": "16-bit",
    "I": "32-bit integer",
    "F": "floating-point",
    "RGBA": "RGBA",
    "YCbCr": "YCbCr",
}


@dataclass(frozen=True)
class FrameIdentification:
    """One whole frame through the cascade: every organism found, each identified like a crop.

    ``organisms`` are :class:`Identification` records whose ``source`` is the frame, ``box`` the
    organism's box in it and ``detection_score`` the detector's score, best first; a frame with
    no organism has none (not an error). ``error`` is set when the frame itself cannot be used;
    ``notes`` are one line each for what was converted or left out (a box outside the frame).
    """

    name: str
    source: str | None = None
    width: int = 0
    height: int = 0
    organisms: tuple[Identification, ...] = ()
    error: str | None = None
    notes: tuple[str, ...] = ()
    boxes_from: str | None = None  # the detector folder or detections file the boxes came from

    def to_dict(self) -> dict[str, Any]:
        return {
            "frame": self.name,
            "source": self.source,
            "width": self.width,
            "height": self.height,
            "boxes_from": self.boxes_from,
            "error": self.error,
            "notes": list(self.notes),
            "organisms": [o.to_dict() for o in self.organisms],
        }


@dataclass(frozen=True)
class CascadeResult:
    """What ``identify --frames`` / ``--boxes`` did: every frame, and what the box source left out."""

    frames: tuple[FrameIdentification, ...]
    boxes_from: str  # "detector PATH" | "detections PATH"
    skipped: tuple[tuple[str, str], ...] = ()  # (item, one-line reason): detections for images not found, bad entries

    @property
    def organisms(self) -> list[Identification]:
        return [o for f in self.frames for o in f.organisms]

    def to_dict(self) -> dict[str, Any]:
        return {
            "boxes_from": self.boxes_from,
            "frames": [f.to_dict() for f in self.frames],
            "skipped": [{"item": i, "reason": r} for i, r in self.skipped],
        }


def _mode_note(item: ImageInput) -> str | None:
    """One line when a frame is not 8-bit RGB (it is converted like every image, and said so)."""
    try:
        if isinstance(item, bytes):
            with Image.open(io.BytesIO(item)) as im:
                mode = im.mode
        elif hasattr(item, "mode"):
            mode = item.mode
        else:
            with Image.open(item) as im:
                mode = im.mode
    except Exception:  # noqa: BLE001 - decode() reports an unreadable frame properly
        return None
    if mode == "RGB":
        return None
    what = CONVERTED.get(mode, mode)
    how = "rescaled to 8 bits over its own range" if mode.startswith("I") or mode == "F" else "converted to RGB"
    return f"{what} frame ({mode}): {how}"


def identify_frames(
    engine: Engine,
    frames: Sequence[ImageInput],
    find: BoxFinder,
    crop: CropConfig,
    names: Sequence[str] | None = None,
    k: int = 5,
    tree: dict | None = None,
    decode_method: str = "probable",
    boxes_from: str | None = None,
    batch: int | None = None,
    progress: bool = False,
    neighbours: int = 0,
    labels=None,
) -> list[FrameIdentification]:
    """Every organism ``find`` reports in each frame, cut with ``crop`` and identified.

    A frame that cannot be read, or is under ``MIN_FRAME_SIDE`` px, gets ``error`` (the rest
    go on); a box that lies outside its frame or is too small after clipping is one line in
    the frame's ``notes``; a frame with no box has no organisms. Boxes are clipped to the frame.
    ``neighbours`` / ``labels``: the nearest catalog crops behind each answer (:func:`identify`).
    Ctrl-C raises :class:`index.errors.Interrupted` carrying the frames answered before it.
    """
    from tqdm import tqdm

    frames = list(frames)
    names = list(names) if names else [input_name(f, n, "frame") for n, f in enumerate(frames)]
    out: dict[int, FrameIdentification] = {}
    batch = batch or FRAME_BATCH
    starts = range(0, len(frames), batch)
    try:
        for start in tqdm(starts, desc="frames", unit="batch", disable=not progress or len(starts) <= 1):
            chunk = range(start, min(start + batch, len(frames)))
            images, where, notes = [], [], {}
            for n in chunk:
                source = input_source(frames[n])
                try:
                    image = decode(frames[n], names[n])
                except BadImage as exc:
                    out[n] = FrameIdentification(names[n], source, error=str(exc), boxes_from=boxes_from)
                    continue
                if min(image.size) < MIN_FRAME_SIDE:
                    out[n] = FrameIdentification(
                        names[n],
                        source,
                        image.width,
                        image.height,
                        boxes_from=boxes_from,
                        error=f"{names[n]}: frame is only {image.width}x{image.height} px (under {MIN_FRAME_SIDE}): "
                        "too small to find organisms in",
                    )
                    continue
                note = _mode_note(frames[n])
                notes[n] = [note] if note else []
                images.append(image)
                where.append(n)
            if not images:
                continue
            keys = [Path(frames[n]).absolute() if isinstance(frames[n], (str, Path)) else None for n in where]
            found = find(images, keys)
            crops, owners, boxes = [], [], []
            for image, n, frame_boxes in zip(images, where, found, strict=True):
                for b in frame_boxes:
                    try:
                        clipped = clip_box(b.box, image.width, image.height, crop.min_side)
                        crops.append(cut_crop(image, clipped, crop))
                    except InvalidInput as exc:
                        notes[n].append(f"{exc}: left out")
                        continue
                    owners.append(n)
                    boxes.append((clipped, b.score))
            answers = (
                identify(
                    engine,
                    crops,
                    names=[f"{names[n]} #{owners[: i + 1].count(n)}" for i, n in enumerate(owners)],
                    k=k,
                    tree=tree,
                    decode_method=decode_method,
                    neighbours=neighbours,
                    labels=labels,
                )
                if crops
                else []
            )
            per_frame: dict[int, list] = {n: [] for n in where}
            for answer, n, (box, score) in zip(answers, owners, boxes, strict=True):
                per_frame[n].append(
                    replace(
                        answer,
                        source=input_source(frames[n]),
                        box=tuple(round(float(v), 1) for v in box),
                        detection_score=score,
                        warning=None if answer.warning is None else f"small box: {answer.warning}",
                    )
                )
            for image, n in zip(images, where, strict=True):
                out[n] = FrameIdentification(
                    names[n],
                    input_source(frames[n]),
                    image.width,
                    image.height,
                    tuple(per_frame[n]),
                    None,
                    tuple(notes[n]),
                    boxes_from,
                )
    except KeyboardInterrupt:  # the frames of the chunks finished before it are kept
        finished = min(n for n in range(len(frames) + 1) if n == len(frames) or n not in out)
        raise Interrupted([out[n] for n in range(finished)], finished, len(frames)) from None
    log.info("cascade: %d frames, %d organisms", len(out), sum(len(f.organisms) for f in out.values()))
    return [out[n] for n in range(len(frames))]


def run_cascade(
    catalog: Catalog,
    crop: CropConfig,
    load_engine: Callable[[], Engine],
    load_detector: Callable[[], LoadedDetector],
    frames: Sequence[ImageInput] = (),
    *,
    boxes: Path | None = None,
    min_score: float | None = None,
    k: int = 5,
    names: Sequence[str] | None = None,
    progress: bool = False,
    decode: str = "probable",
    neighbours: int = 0,
) -> CascadeResult:
    """``Workspace.identify_frames``: boxes from ``boxes`` (a COCO results file; with no ``frames``,
    the frames are the files it names) or else from the detector ``load_detector`` loads, each box
    cut with ``crop`` and identified by the engine ``load_engine`` loads (after the options are
    checked, before the detector). ``min_score`` drops weaker boxes (default: the detector's own,
    :attr:`LoadedDetector.min_score`; none of a file's; boxes without a score are kept). ``neighbours``: how many
    nearest catalog crops each answer lists (0: none)."""
    from index.catalog.lookup import crop_species
    from index.catalog.taxa import tree

    if min_score is not None and not 0.0 <= min_score <= 1.0:
        raise InvalidInput(f"--min-score must be within 0..1, got {min_score:g}")
    engine = load_engine()  # first: no index is a one-line error before a detector loads
    skipped: list[tuple[str, str]] = []
    if boxes is not None:
        source = box_source(Path(boxes))
        given = [Path(f) for f in frames] if frames else None
        files, matched, skipped = detections_frames(source.path, given)
        if given is None:
            base = source.path.absolute().parent
            frames, names = (
                files,
                [str(Path(f).relative_to(base)) if Path(f).is_relative_to(base) else Path(f).name for f in files],
            )
        find = file_finder(matched, 0.0 if min_score is None else float(min_score))
    else:
        loaded = load_detector()
        source = BoxSource("detector", loaded.folder)
        find = detector_finder(loaded, loaded.min_score if min_score is None else float(min_score))
    boxes_from = f"{source.kind} {source.path}"
    try:
        results = identify_frames(
            engine,
            list(frames),
            find,
            crop,
            names=names,
            k=k,
            tree=tree(catalog),
            decode_method=decode,
            boxes_from=boxes_from,
            progress=progress,
            neighbours=neighbours,
            labels=lambda ids: crop_species(catalog, ids),
        )
    except Interrupted as stop:  # the frames answered so far, as a result to write and save
        raise Interrupted(
            CascadeResult(tuple(stop.done), boxes_from, tuple(skipped)), stop.finished, stop.total
        ) from None
    return CascadeResult(tuple(results), boxes_from, tuple(skipped))


def write_coco(engine: Engine, result: CascadeResult, path: Path) -> Path:
    """Write the identified boxes as a COCO document (category = the species named, or
    ``unknown``); pycocotools reads it with ``COCO(path)``, its ``annotations`` with ``loadRes``;
    each frame is named relative to the document's folder, or absolute (``--boxes`` reads it back)."""
    from index.sources.detections import coco_file_name
    from index.sources.detections import write_coco as write

    categories = [*engine.prototypes.names, "unknown"]
    extra = sorted({o.species for o in result.organisms} - set(categories) - {None})
    write(
        [
            (
                coco_file_name(f.source, f.name, path),
                f.width,
                f.height,
                [(o.box, o.detection_score if o.detection_score is not None else 1.0, o.species) for o in f.organisms],
            )
            for f in result.frames
            if not f.error
        ],
        [*categories, *extra],
        f"oceanid identify: boxes from {result.boxes_from}, model {engine.model_id}",
        path,
    )
    return Path(path)
