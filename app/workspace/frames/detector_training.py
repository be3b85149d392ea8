"""Training a class-agnostic detector on the catalog's frames with boxes (``oceanid detect train``).

::

    catalog frames (index.catalog.detectors) -> embedder.detection.training -> models/<detector-id>/

The folder holds the epoch with the best val mAP@0.5 (or the last epoch when there are no val frames),
``training.json`` (per-epoch losses and val metrics) and, while a training is unfinished,
``checkpoint.pt`` (``--resume`` continues it); the detector is listed in the catalog and made current.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import Any

from app.workspace.frames.detector import load_frames, predict_all
from index.catalog.catalog import Catalog
from index.catalog.detectors import DetectorRecord, detection_frames, detector_record, register_detector
from index.errors import EmptyIndex, InvalidInput, NotFound
from index.files import write_json_atomic
from index.home import Home
from index.metrics.boxes import box_metrics

log = logging.getLogger(__name__)

TRAINING_FILE = "training.json"
CHECKPOINT = "checkpoint.pt"


@dataclass(frozen=True)
class DetectorTraining:
    """What ``detect train`` did (``finished`` False: stopped early, ``--resume`` continues)."""

    detector_id: str
    folder: str
    arch: str
    image_size: int
    epochs: int
    epochs_done: int
    finished: bool
    best_epoch: int | None
    val_map50: float | None
    train_frames: int
    val_frames: int
    boxes: int
    straddled: int  # frames whose boxes' crop splits disagree (each put in one split, see index.catalog.detectors)
    skipped: tuple[tuple[str, str], ...]
    seconds: float
    history: tuple[dict, ...]

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["skipped"] = [list(s) for s in self.skipped]
        d["history"] = list(self.history)
        return d


def default_detector_id(arch: str, image_size: int) -> str:
    return f"detector-{arch}-{image_size}"


def train_detector(
    catalog: Catalog,
    paths: Home,
    *,
    arch: str | None = None,
    image_size: int | None = None,
    epochs: int | None = None,
    device: str = "cpu",
    detector_id: str | None = None,
    resume: bool = False,
    max_epochs_now: int | None = None,
    batch_size: int | None = None,
    lr: float | None = None,
    fpn_channels: int = 96,
    pretrained: bool = True,
    progress: bool = False,
) -> DetectorTraining:
    """Train a class-agnostic detector on the catalog's train frames, choosing the epoch by val mAP@0.5.

    A setting left out (None) is the architecture's default (:mod:`embedder.detection.defaults`); resuming
    keeps the detector's recorded architecture and input size unless given (``detector_id``, else with no
    ``arch`` either, the current detector: the one a stopped run left).

    Raises EmptyIndex when no train frame has a box; InvalidInput for bad settings.
    """
    from embedder.detection.defaults import ARCHITECTURES, DEFAULT_ARCH, arch_defaults
    from embedder.detection.model import detector_config, save_detector
    from embedder.detection.training import DetectorTrainConfig, recipe
    from embedder.detection.training import train_detector as fit
    from embedder.device import resolve_device

    if resume and detector_id is None and arch is None and catalog.exists():
        detector_id = catalog.current_detector()  # --resume alone: the current detector (a stopped run stays current)
    recorded = _previous_best(catalog, detector_id) if resume and detector_id else None
    arch = arch or (recorded.arch if recorded else DEFAULT_ARCH)
    if arch not in ARCHITECTURES:
        raise InvalidInput(f"unknown --arch {arch!r}; choose one of {', '.join(ARCHITECTURES)}")
    defaults = arch_defaults(arch)
    if image_size is None:
        image_size = recorded.image_size if recorded and recorded.arch == arch else defaults.image_size
    epochs = defaults.epochs if epochs is None else epochs
    batch_size = defaults.batch_size if batch_size is None else batch_size
    if not 64 <= image_size <= 2048 or image_size % 32:
        raise InvalidInput(f"--image-size must be a multiple of 32 within 64..2048, got {image_size}")
    if epochs < 1:
        raise InvalidInput(f"--epochs must be >= 1, got {epochs}")
    detector_id = detector_id or default_detector_id(arch, image_size)
    folder = paths.models / detector_id
    checkpoint = folder / CHECKPOINT
    if resume and not checkpoint.is_file():
        raise NotFound(
            f"nothing to resume: {checkpoint} does not exist",
            hint="the training finished, or never started; train without --resume",
        )
    frames = detection_frames(catalog)
    train_frames = [f for f in frames if f.split == "train"]
    val_frames = [f for f in frames if f.split == "val"]
    if not any(len(f.boxes) for f in train_frames):
        raise EmptyIndex(
            "no train frame has a box to learn from",
            hint="ingest frames with boxes (`oceanid ingest yolo|coco`) and run `oceanid split`",
        )
    train_images, train_frames, skipped = load_frames(paths, train_frames, image_size)
    val_images, val_frames, bad = load_frames(paths, val_frames, image_size)
    skipped += bad
    for item, reason in skipped:
        log.warning("detector training skips %s: %s", item, reason)
    config = detector_config(arch, image_size, fpn_channels)
    train_config = DetectorTrainConfig(
        epochs=epochs, batch_size=batch_size, lr=defaults.lr if lr is None else lr, **recipe(arch)
    )
    torch_device = resolve_device(device)
    previous = recorded if recorded is not None else (_previous_best(catalog, detector_id) if resume else None)
    best = {"map50": previous.val_map50 if previous else None, "epoch": previous.best_epoch if previous else None}

    def record(epochs_done: int, seconds: float) -> None:
        register_detector(
            catalog,
            DetectorRecord(
                detector_id,
                config.hash(),
                arch,
                image_size,
                len(train_frames),
                len(val_frames),
                epochs_done,
                best["epoch"],
                best["map50"],
                round(seconds, 1),
                None,
            ),
        )

    def on_epoch(epoch: int, row: dict, model) -> dict:
        if not val_frames:
            save_detector(model, config, folder)
            best["epoch"] = epoch
            record(epoch, row["seconds"])
            return {}
        found = predict_all(model, config, val_images, torch_device, config.score_thresh)
        metrics = box_metrics(
            [f.boxes for f in val_frames],
            [(f.width, f.height) for f in val_frames],
            [p.boxes for p in found],
            [p.scores for p in found],
        )
        if best["map50"] is None or metrics.map50 > best["map50"]:
            save_detector(model, config, folder)
            best.update(map50=metrics.map50, epoch=epoch)
            record(epoch, row["seconds"])
        return {"val_map50": metrics.map50, "val_map": metrics.map, "val_recall50": metrics.recall50}

    folder.mkdir(parents=True, exist_ok=True)
    _, result = fit(
        list(zip(train_images, [f.boxes for f in train_frames], strict=True)),
        config,
        train_config,
        device=torch_device,
        pretrained=pretrained,
        progress=progress,
        on_epoch=on_epoch,
        checkpoint=checkpoint,
        resume=resume,
        max_epochs_now=max_epochs_now,
    )
    finished = result.epochs_done >= epochs
    record(result.epochs_done, result.seconds)
    write_json_atomic(
        folder / TRAINING_FILE,
        {
            "train": train_config.to_dict(),
            "history": result.history,
            "best_epoch": best["epoch"],
            "val_map50": best["map50"],
            "seconds": result.seconds,
            "epochs_done": result.epochs_done,
        },
    )
    if finished:
        checkpoint.unlink(missing_ok=True)
    catalog.set_current_detector(detector_id)
    return DetectorTraining(
        detector_id,
        str(folder),
        arch,
        image_size,
        epochs,
        result.epochs_done,
        finished,
        best["epoch"],
        best["map50"],
        len(train_frames),
        len(val_frames),
        result.boxes,
        sum(f.straddled for f in frames),
        tuple(skipped),
        result.seconds,
        tuple(result.history),
    )


def _previous_best(catalog: Catalog, detector_id: str) -> DetectorRecord | None:
    try:
        return detector_record(catalog, detector_id)
    except NotFound:
        return None
