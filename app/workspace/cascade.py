"""The whole-frame cascade: find every organism in a frame, cut it like a training crop, identify it.

::

    frame -> box source (a detector folder, or another tool's COCO results file)
          -> index.ingest.crops.cut_crop (the same context padding as every training crop)
          -> app.workspace.identify.identify (species, calibrated probability, unknown verdict)
          -> FrameIdentification: one Identification per organism, its box and detection score

A *box source* is a path: a detector model folder (``config.json`` + ``weights.safetensors``,
:mod:`embedder.detection`) or a ``.json`` detections file (:mod:`index.sources.detections`). With
neither given, the newest detector folder under the home's ``models/`` is used.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from PIL import Image

from app.workspace.engine import Engine
from app.workspace.identify import ImageInput, decode, identify, input_name, input_source
from app.workspace.results import FrameIdentification
from index.ingest.crops import CropConfig, clip_box, cut_crop
from index.sources.detections import DetectedBox, match_detections
from index.errors import BadImage, Interrupted, InvalidInput, ModelError, NotFound

log = logging.getLogger(__name__)

MIN_FRAME_SIDE = 32  # px: a smaller frame cannot hold organisms a detector can find
FRAME_BATCH = 8  # frames decoded, searched for boxes and identified together
DEFAULT_MIN_SCORE = 0.3  # detector boxes below this score are dropped (bench/cascade.py measures it)
CONVERTED = {"L": "grayscale", "LA": "grayscale", "1": "black-and-white", "P": "palette", "CMYK": "CMYK",
             "I;16": "16-bit", "I;16B": "16-bit", "I;16L": "16-bit", "I": "32-bit integer", "F": "floating-point",
             "RGBA": "RGBA", "YCbCr": "YCbCr"}

#: frames (upright RGB) -> the boxes found in each, in frame order
BoxFinder = Callable[[Sequence[Image.Image], Sequence[Path | None]], list[list[DetectedBox]]]


@dataclass(frozen=True)
class BoxSource:
    """Where a frame's boxes come from: ``kind`` is ``detector`` (a model folder) or ``detections``
    (a COCO results file)."""

    kind: str
    path: Path

    def to_dict(self) -> dict:
        return {"kind": self.kind, "path": str(self.path)}


def is_detector_folder(path: Path) -> bool:
    """True when ``path`` is a folder holding a readable detector config."""
    from embedder.detection.model import read_detector_config

    if not (Path(path) / "config.json").is_file():
        return False
    try:
        read_detector_config(path)
    except ModelError:
        return False
    return True


def find_detector(models: Path) -> Path | None:
    """The newest detector folder directly under ``models`` (by its weights' time), or None."""
    if not Path(models).is_dir():
        return None
    found = [p for p in Path(models).iterdir() if p.is_dir() and (p / "weights.safetensors").is_file()
             and is_detector_folder(p)]
    return max(found, key=lambda p: ((p / "weights.safetensors").stat().st_mtime, p.name), default=None)


def box_source(path: Path | None, models: Path) -> BoxSource:
    """The box source a path names (a detector folder or a ``.json`` detections file); with no
    path, the newest detector under ``models``. Raises NotFound / InvalidInput with one line."""
    if path is None:
        found = find_detector(models)
        if found is None:
            raise NotFound(f"no detector under {models}",
                           hint="train one (`oceanid detect train`), or give --detector FOLDER or --boxes FILE")
        return BoxSource("detector", found)
    path = Path(path)
    if path.is_dir():
        if not is_detector_folder(path):
            raise InvalidInput(f"{path} is not a detector folder (no detector config.json)")
        return BoxSource("detector", path)
    if path.is_file():
        return BoxSource("detections", path)
    raise NotFound(f"{path}: no such detector folder or detections file")


def detector_finder(folder: Path, min_score: float, device: str = "cpu",
                    loaded: dict | None = None) -> BoxFinder:
    """A BoxFinder running the detector of ``folder``; ``loaded`` caches the loaded model by
    (folder, weights time) across calls."""
    from embedder.detection.model import load_detector
    from embedder.detection.predict import detect_images
    from embedder.device import resolve_device

    weights = Path(folder) / "weights.safetensors"
    key = (str(Path(folder).absolute()), weights.stat().st_mtime if weights.exists() else 0.0)
    cache = loaded if loaded is not None else {}
    if key not in cache:
        cache.clear()
        model, config = load_detector(folder)
        chosen = resolve_device(device)
        cache[key] = (model.to(chosen), config, chosen)
    model, config, chosen = cache[key]

    def find(images: Sequence[Image.Image], _: Sequence[Path | None]) -> list[list[DetectedBox]]:
        found = detect_images(model, config, list(images), min_score=min_score, device=chosen)
        return [[DetectedBox(tuple(float(v) for v in b), float(s)) for b, s in zip(f.boxes, f.scores)]
                for f in found]

    return find


def file_finder(boxes: dict[Path, list[DetectedBox]], min_score: float) -> BoxFinder:
    """A BoxFinder reading boxes from a matched detections file (boxes without a score are kept)."""

    def find(_: Sequence[Image.Image], frames: Sequence[Path | None]) -> list[list[DetectedBox]]:
        out = []
        for frame in frames:
            given = boxes.get(Path(frame).absolute(), []) if frame is not None else []
            out.append(sorted((b for b in given if b.score is None or b.score >= min_score),
                              key=lambda b: -(b.score if b.score is not None else float("inf"))))
        return out

    return find


def detections_frames(path: Path, frames: Sequence[Path] | None) -> tuple[list[Path], dict[Path, list[DetectedBox]],
                                                                             list[tuple[str, str]]]:
    """(frames to process, boxes per frame, skipped lines) of a detections file (:mod:`index.sources.detections`)."""
    matched = match_detections(path, frames)
    return [f for f, _ in matched.frames], dict(matched.frames), matched.skipped


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


def identify_frames(engine: Engine, frames: Sequence[ImageInput], find: BoxFinder, crop: CropConfig,
                    names: Sequence[str] | None = None, k: int = 5, tree: dict | None = None,
                    decode_method: str = "probable", boxes_from: str | None = None, batch: int | None = None,
                    progress: bool = False) -> list[FrameIdentification]:
    """Every organism ``find`` reports in each frame, cut with ``crop`` and identified.

    A frame that cannot be read, or is under ``MIN_FRAME_SIDE`` px, gets ``error`` (the rest
    go on); a box that lies outside its frame or is too small after clipping is one line in
    the frame's ``notes``; a frame with no box has no organisms. Boxes are clipped to the frame.
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
                        names[n], source, image.width, image.height, boxes_from=boxes_from,
                        error=f"{names[n]}: frame is only {image.width}x{image.height} px (under {MIN_FRAME_SIDE}): "
                              "too small to find organisms in")
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
            answers = identify(engine, crops, names=[f"{names[n]} #{owners[:i + 1].count(n)}" for i, n in
                                                     enumerate(owners)], k=k, tree=tree,
                               decode_method=decode_method) if crops else []
            per_frame: dict[int, list] = {n: [] for n in where}
            for answer, n, (box, score) in zip(answers, owners, boxes, strict=True):
                per_frame[n].append(replace(answer, source=input_source(frames[n]),
                                            box=tuple(round(float(v), 1) for v in box), detection_score=score,
                                            warning=None if answer.warning is None else f"small box: {answer.warning}"))
            for image, n in zip(images, where, strict=True):
                out[n] = FrameIdentification(names[n], input_source(frames[n]), image.width, image.height,
                                             tuple(per_frame[n]), None, tuple(notes[n]), boxes_from)
    except KeyboardInterrupt:  # the frames of the chunks finished before it are kept
        finished = min(n for n in range(len(frames) + 1) if n == len(frames) or n not in out)
        raise Interrupted([out[n] for n in range(finished)], finished, len(frames)) from None
    log.info("cascade: %d frames, %d organisms", len(out), sum(len(f.organisms) for f in out.values()))
    return [out[n] for n in range(len(frames))]


def predicted_records(result) -> list:
    """The frames of a :class:`~app.workspace.results.CascadeResult` with organisms, as
    ``predicted`` ImageRecords (one BoxRecord per organism, origin ``predicted``)."""
    from index.records import PREDICTED, BoxRecord, ImageRecord

    records = []
    for frame in result.frames:
        if frame.error or not frame.source or not frame.organisms:
            continue
        boxes = tuple(BoxRecord(o.species or "unknown", *o.box, group_key=f"predicted:{frame.source}",
                                origin=PREDICTED, detection_score=o.detection_score) for o in frame.organisms)
        records.append(ImageRecord("predicted", frame.source, Path(frame.source), boxes))
    return records
