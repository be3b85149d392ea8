"""The detector steps over a home: which detector, load it (cached), detect, evaluate, list (training:
:mod:`app.workspace.frames.detector_training`).

::

    resolve_detector   the one rule: a detector named by id or folder, else the catalog's current one
    DetectorCache      the Workspace's one cache: the loaded detector (LoadedDetector), reloaded on new weights
    detect_frames      frames -> FrameDetection per frame (bad frames: an ``error`` line, the rest go on)
    evaluate_detector  held-out frames (held_out_split) -> pycocotools (index.metrics.boxes) -> DetectorEvaluation
    detections_coco    detections -> a COCO document (index.sources.detections.write_coco), written when asked

A detector is a model folder ``models/<detector-id>/`` (config.json + weights.safetensors,
:mod:`embedder.detection.model`) recorded in the catalog's ``detectors`` table; the folder
holds the epoch with the best val mAP@0.5 (or the last epoch when there are no val frames),
``training.json`` (per-epoch losses and val metrics) and, while a training is unfinished,
``checkpoint.pt`` (``--resume`` continues it; :mod:`app.workspace.frames.detector_training`).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from index.catalog.catalog import Catalog
from index.catalog.detectors import DetectorRecord, detection_frames, detector_record, list_detectors
from index.errors import BadImage, EmptyIndex, InvalidInput, ModelError, NotFound
from index.home import Home
from index.imaging import open_image
from index.metrics.boxes import BoxMetrics, box_metrics

log = logging.getLogger(__name__)

MIN_FRAME_SIDE = 32  # px: a smaller frame cannot hold organisms: refused (one line), the batch goes on


@dataclass(frozen=True)
class FrameDetection:
    """The boxes found in one frame, best first (``boxes``: x, y, w, h pixels); ``error`` when the
    frame could not be used (then no boxes), ``warning`` for a frame used after a conversion."""

    name: str
    width: int | None
    height: int | None
    boxes: tuple[tuple[float, float, float, float], ...] = ()
    scores: tuple[float, ...] = ()
    error: str | None = None
    warning: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "width": self.width,
            "height": self.height,
            "boxes": [list(b) for b in self.boxes],
            "scores": list(self.scores),
            "error": self.error,
            "warning": self.warning,
        }


@dataclass(frozen=True)
class DetectionRun:
    """``oceanid detect``: one FrameDetection per input, the detector and the time per frame."""

    detector_id: str
    min_score: float
    frames: tuple[FrameDetection, ...]
    seconds_per_frame: float | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "detector_id": self.detector_id,
            "min_score": self.min_score,
            "seconds_per_frame": self.seconds_per_frame,
            "frames": [f.to_dict() for f in self.frames],
        }


@dataclass(frozen=True)
class DetectorEvaluation:
    """``oceanid detect evaluate``: pycocotools metrics of one detector on one split's frames."""

    detector_id: str
    split: str
    metrics: BoxMetrics
    seconds_per_frame: float
    skipped: tuple[tuple[str, str], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "detector_id": self.detector_id,
            "split": self.split,
            **self.metrics.to_dict(),
            "seconds_per_frame": self.seconds_per_frame,
            "skipped": [list(s) for s in self.skipped],
        }


@dataclass(frozen=True)
class LoadedDetector:
    """A detector ready to run: its id (the folder's name), folder, model (eval mode, on
    ``device``) and :class:`embedder.detection.model.DetectorConfig`."""

    detector_id: str
    folder: Path
    model: Any  # torch nn.Module
    config: Any  # DetectorConfig
    device: Any  # torch.device the model is on

    @property
    def min_score(self) -> float:
        """The box score below which this detector's boxes are dropped when none is asked for: its
        architecture's (``embedder.detection.defaults``; FCOS 0.3, YOLOX-Nano 0.1)."""
        from embedder.detection.defaults import box_score

        return box_score(getattr(self.config, "arch", None))


def load_frames(paths: Home, frames, size: int | None = None) -> tuple[list, list, list[tuple[str, str]]]:
    """Decode frames; with ``size``, each resized so its longer side is ``size`` (what the detector
    sees) with its boxes scaled alike, so hundreds of large frames fit in memory."""
    from PIL import Image

    images, kept, skipped = [], [], []
    for frame in frames:
        try:
            image = open_image(paths.resolve(frame.path))
        except BadImage as exc:
            skipped.append((frame.path, str(exc)))
            continue
        if size is not None and max(image.size) != size:
            scale = size / max(image.size)
            image = image.resize(
                (max(1, round(image.width * scale)), max(1, round(image.height * scale))), Image.Resampling.BILINEAR
            )
            frame = dataclasses.replace(
                frame,
                boxes=(frame.boxes * np.float32(scale)).astype(np.float32),
                width=image.width,
                height=image.height,
            )
        images.append(image)
        kept.append(frame)
    return images, kept, skipped


def predict_all(model, config, images, device: str, min_score: float):
    from embedder.detection.predict import detect_images

    return detect_images(model, config, images, min_score=min_score, device=device)


def detectors(catalog: Catalog) -> list[DetectorRecord]:
    """The catalog's detectors, oldest first."""
    return list_detectors(catalog)


def current_detector(catalog: Catalog) -> str | None:
    """The detector id every command uses when none is named (the last trained); None in a home without a catalog."""
    return catalog.current_detector() if catalog.exists() else None


def resolve_detector(catalog: Catalog, paths: Home, detector: str | Path | None = None) -> tuple[str, Path]:
    """(detector id, folder): the one rule every command follows. ``detector`` names a detector
    folder (its name is its id) or a catalog detector id; None: the catalog's current detector
    (``detect train`` makes it current; ``detect list`` marks it).

    Raises NotFound (one line) when the home has no current detector or the id is unknown,
    InvalidInput when the folder or file named is not a detector folder."""
    from embedder.detection.model import read_detector_config

    if detector is None:
        current = catalog.current_detector() if catalog.exists() else None
        if current is None:
            raise NotFound("this home has no detector", hint="train one (`oceanid detect train`) or give --detector")
        folder = paths.models / current
        if not folder.is_dir():
            raise NotFound(f"the current detector {current!r} has no folder {folder}", hint="see `oceanid detect list`")
        return current, folder
    path = Path(detector)
    if path.is_dir():
        try:
            read_detector_config(path)
        except ModelError:
            raise InvalidInput(f"{path} is not a detector folder (no detector config.json)") from None
        return path.name, path
    if path.is_file():
        raise InvalidInput(f"--detector {detector} is a file; give a detector folder or id (or use --boxes)")
    detector_record(catalog, str(detector))  # NotFound listing the known ids
    return str(detector), paths.models / str(detector)


class DetectorCache:
    """The loaded detector of a home (one at a time), reloaded when its folder, weights or device change."""

    def __init__(self) -> None:
        self._key: tuple | None = None
        self._value: LoadedDetector | None = None

    def get(
        self, catalog: Catalog, paths: Home, detector: str | Path | None = None, device: str = "cpu"
    ) -> LoadedDetector:
        """The detector :func:`resolve_detector` names, loaded on ``device`` (auto | cpu | cuda).

        Raises what :func:`resolve_detector` raises, ModelError for unusable weights."""
        from embedder.detection.model import WEIGHTS_FILE, load_detector
        from embedder.device import resolve_device

        detector_id, folder = resolve_detector(catalog, paths, detector)
        weights = folder / WEIGHTS_FILE
        key = (detector_id, str(folder.absolute()), weights.stat().st_mtime_ns if weights.exists() else None, device)
        if self._key != key:
            model, config = load_detector(folder)
            chosen = resolve_device(device)
            self._key, self._value = key, LoadedDetector(detector_id, folder, model.to(chosen), config, chosen)
        return self._value


def _frame_input(path: Path) -> tuple[Any, str | None]:
    """The upright RGB frame of ``path`` and a warning for a converted one; raises BadImage."""
    from PIL import Image

    image = open_image(path)
    if min(image.size) < MIN_FRAME_SIDE:
        raise BadImage(
            f"{path.name}: {image.width}x{image.height} is too small to hold organisms "
            f"(frames need >= {MIN_FRAME_SIDE} px a side)"
        )
    try:
        with Image.open(path) as raw:
            mode = raw.mode
    except OSError:
        mode = "RGB"
    warning = None
    if mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        warning = f"16-bit frame ({mode}) stretched to 8 bits over its own range"
    elif mode in ("L", "LA", "1"):
        warning = "grayscale frame: detected on its gray level in all three channels"
    return image, warning


def detect_frames(
    loaded: LoadedDetector, files: Sequence[Path], names: Sequence[str] | None = None, min_score: float | None = None
) -> DetectionRun:
    """Boxes with score >= ``min_score`` (default: the detector's, :attr:`LoadedDetector.min_score`) in each
    frame file; a frame that cannot be used gets ``error`` (one line) and the rest are still processed."""
    min_score = loaded.min_score if min_score is None else min_score
    if not 0.0 <= min_score <= 1.0:
        raise InvalidInput(f"--min-score must be within 0..1, got {min_score:g}")
    names = list(names) if names is not None else [Path(f).name for f in files]
    out: list[FrameDetection] = []
    spent, used = 0.0, 0
    for path, name in zip(files, names, strict=True):
        try:
            image, warning = _frame_input(Path(path))
        except BadImage as exc:
            out.append(FrameDetection(name, None, None, error=str(exc)))
            continue
        start = time.perf_counter()
        found = predict_all(loaded.model, loaded.config, [image], loaded.device, min_score)[0]
        spent += time.perf_counter() - start
        used += 1
        out.append(
            FrameDetection(
                name,
                image.width,
                image.height,
                tuple(tuple(round(float(v), 1) for v in b) for b in found.boxes),
                tuple(round(float(s), 4) for s in found.scores),
                warning=warning,
            )
        )
    return DetectionRun(loaded.detector_id, min_score, tuple(out), round(spent / used, 4) if used else None)


def detections_coco(run: DetectionRun, path: Path | None = None) -> dict:
    """The detections of a run as a COCO document: ``images`` (id, file_name, width, height),
    ``categories`` (1 = organism) and ``annotations``, a COCO results list (image_id,
    category_id, bbox [x, y, w, h], score) that ``COCO.loadRes`` reads; written to ``path`` when
    given. Frames with an error are left out. The one COCO writer (``identify --coco`` uses it too)."""
    from index.sources.detections import write_coco

    used = [f for f in run.frames if f.error is None]
    return write_coco(
        [
            (
                f.name,
                f.width,
                f.height,
                [(tuple(box), float(score), "organism") for box, score in zip(f.boxes, f.scores, strict=False)],
            )
            for f in used
        ],
        ["organism"],
        f"oceanid detect, detector {run.detector_id}, min score {run.min_score:g}",
        path,
    )


def held_out_split(splits: Iterable[str]) -> str:
    """The split detectors and the cascade are graded on: ``test`` when any frame is a test frame, else ``val``."""
    return "test" if "test" in set(splits) else "val"


def evaluate_detector(
    catalog: Catalog, paths: Home, loaded: LoadedDetector, split: str | None = None
) -> DetectorEvaluation:
    """pycocotools mAP@0.5, mAP@0.5:0.95 and recall@0.5 of the detector on ``split``'s frames
    (default: :func:`held_out_split`). Raises EmptyIndex when there is none."""
    frames = detection_frames(catalog)
    if split is None:
        split = held_out_split(f.split for f in frames)
    if split not in ("train", "val", "test"):
        raise InvalidInput(f"unknown --split {split!r}; choose train, val or test")
    chosen = [f for f in frames if f.split == split]
    if not chosen:
        raise EmptyIndex(f"no {split} frames to evaluate on", hint="ingest frames with boxes and run `oceanid split`")
    images, chosen, skipped = load_frames(paths, chosen, loaded.config.image_size)
    start = time.perf_counter()
    found = predict_all(loaded.model, loaded.config, images, loaded.device, loaded.config.score_thresh)
    seconds = (time.perf_counter() - start) / max(1, len(images))
    metrics = box_metrics(
        [f.boxes for f in chosen],
        [(f.width, f.height) for f in chosen],
        [p.boxes for p in found],
        [p.scores for p in found],
    )
    return DetectorEvaluation(loaded.detector_id, split, metrics, round(seconds, 4), tuple(skipped))
