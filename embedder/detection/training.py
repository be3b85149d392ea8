"""Training the class-agnostic detector on frames with boxes.

Frames are resized once (longer side = ``image_size``) and kept in memory as
uint8 tensors; each epoch shuffles them, flips half horizontally, and steps
AdamW with a linear warm-up and cosine decay. torchvision's detectors compute
their own losses (FCOS: focal + GIoU + centerness; RetinaNet: focal + L1).
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from embedder.detection.model import DetectorConfig, build_detector, keep_bn_frozen
from embedder.detection.predict import frame_tensor
from index.errors import ModelError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DetectorTrainConfig:
    """How the detector is trained."""

    epochs: int = 8
    batch_size: int = 4
    lr: float = 1e-3  # AdamW peak learning rate
    weight_decay: float = 1e-4
    warmup_steps: int = 50
    seed: int = 0
    threads: int | None = None  # torch CPU threads (None: torch's default)
    ema: float = 0.0  # EMA of the weights (YOLOX's rule, ramped over ~100 steps), evaluated and kept (0: off)
    zoom: float = 0.0  # zoom-in jitter: a random window of (1 - zoom .. 1) of the frame, resized back (0: off)

    def to_dict(self) -> dict:
        return asdict(self)


def recipe(arch: str) -> dict:
    """The per-architecture training extras ``detect train`` uses (what ``bench/yolox.py finetune`` screened)."""
    return {"ema": 0.99, "zoom": 0.3} if arch == "yolox-nano" else {}


@dataclass
class DetectorTrainResult:
    """What a training run did: steps, final loss, seconds, per-epoch mean losses."""

    steps: int
    seconds: float
    frames: int
    boxes: int
    history: list[dict] = field(default_factory=list)
    epochs_done: int = 0  # epochs trained so far (all resumed runs together)

    def to_dict(self) -> dict:
        return asdict(self)


def _prepared(frames: Sequence[tuple], size: int) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """(uint8 frame tensor, boxes x1, y1, x2, y2, labels) per (image, boxes[, labels 1..k]) frame."""
    out = []
    for image, boxes, *rest in frames:
        tensor, scale = frame_tensor(image, size)
        xywh = np.asarray(boxes, dtype=np.float32).reshape(-1, 4) * scale
        xyxy = np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1)
        labels = (
            torch.as_tensor(np.asarray(rest[0]), dtype=torch.int64)
            if rest
            else torch.ones(len(xyxy), dtype=torch.int64)
        )
        out.append(((tensor * 255).to(torch.uint8), torch.from_numpy(xyxy), labels))
    return out


def _zoomed(
    image: torch.Tensor, boxes: torch.Tensor, labels: torch.Tensor, zoom: float, rng: np.random.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A random window of (1 - zoom .. 1) of the frame resized back to its size; boxes clipped to it
    (a box keeping under 40% of its area is dropped)."""
    h, w = image.shape[-2:]
    f = float(rng.uniform(1 - zoom, 1.0))
    ch, cw = max(8, round(h * f)), max(8, round(w * f))
    y0, x0 = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
    crop = torch.nn.functional.interpolate(
        image[None, :, y0 : y0 + ch, x0 : x0 + cw], size=(h, w), mode="bilinear", align_corners=False
    )[0]
    shifted = boxes - torch.tensor([x0, y0, x0, y0], dtype=boxes.dtype)
    clipped = torch.stack(
        [
            shifted[:, 0].clamp(0, cw),
            shifted[:, 1].clamp(0, ch),
            shifted[:, 2].clamp(0, cw),
            shifted[:, 3].clamp(0, ch),
        ],
        dim=1,
    )

    def area(b: torch.Tensor) -> torch.Tensor:
        return (b[:, 2] - b[:, 0]).clamp(min=0) * (b[:, 3] - b[:, 1]).clamp(min=0)

    keep = area(clipped) >= 0.4 * area(shifted).clamp(min=1e-6)
    scale = torch.tensor([w / cw, h / ch, w / cw, h / ch], dtype=boxes.dtype)
    return crop, clipped[keep] * scale, labels[keep]


def _target(
    tensor: torch.Tensor,
    xyxy: torch.Tensor,
    flip: bool,
    labels: torch.Tensor | None = None,
    zoom: float = 0.0,
    rng: np.random.Generator | None = None,
) -> tuple[torch.Tensor, dict]:
    image = tensor.float().div(255.0)
    boxes = xyxy.clone()
    labels = torch.ones(len(boxes), dtype=torch.int64) if labels is None else labels
    if zoom > 0 and rng is not None:
        image, boxes, labels = _zoomed(image, boxes, labels, zoom, rng)
    if flip:
        image = image.flip(-1)
        width = image.shape[-1]
        boxes = boxes.clone()
        boxes[:, [0, 2]] = width - boxes[:, [2, 0]]
    return image, {"boxes": boxes, "labels": labels}


def _ema(decay: float, ramp: float = 100.0):
    """YOLOX's EMA rule: decay ``decay x (1 - exp(-updates / ramp))``, so the first updates follow the
    weights closely and a short fine-tune is not held at its start."""

    def average(averaged: torch.Tensor, current: torch.Tensor, updates: torch.Tensor) -> torch.Tensor:
        d = decay * (1 - math.exp(-float(updates) / ramp))
        return averaged * d + current * (1 - d)

    return average


CHECKPOINT_FILE = "checkpoint.pt"  # resumable state: tensors and numbers only, read with weights_only=True


def _save_checkpoint(
    path: Path,
    model: torch.nn.Module,
    optimizer,
    scheduler,
    epoch: int,
    steps: int,
    seconds: float,
    history: list[dict],
    extra: dict,
) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(
        {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "epoch": epoch,
            "steps": steps,
            "seconds": seconds,
            "history": history,
            "extra": extra,
        },
        tmp,
    )
    os.replace(tmp, path)


def read_checkpoint(path: Path) -> dict:
    """A checkpoint written by :func:`train_detector` (safe load: no pickled code). Raises ModelError."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ModelError(f"no checkpoint at {path}") from None
    except Exception as exc:  # noqa: BLE001 - truncated, foreign or changed file: one line
        raise ModelError(f"{path}: unreadable checkpoint ({str(exc).splitlines()[0][:100]})") from None


def train_detector(
    frames: Sequence[tuple[Image.Image, np.ndarray]],
    config: DetectorConfig,
    train: DetectorTrainConfig = DetectorTrainConfig(),
    device: torch.device | str = "cpu",
    pretrained: bool = True,
    progress: bool = False,
    on_epoch: Callable[[int, dict, torch.nn.Module], dict | None] | None = None,
    checkpoint: Path | str | None = None,
    resume: bool = False,
    max_epochs_now: int | None = None,
    model: torch.nn.Module | None = None,
) -> tuple[torch.nn.Module, DetectorTrainResult]:
    """Train a detector on ``frames``: (RGB image, boxes (n, 4) x, y, w, h pixels) pairs.

    Frames without boxes are kept (they teach the background). Returns the model
    (eval mode) and a result with per-epoch mean losses.

    ``on_epoch(epoch, row, model)`` runs after each epoch (the model in eval mode); what it
    returns is merged into that epoch's history row (e.g. the val mAP). With ``checkpoint``
    (a file path) the whole training state is written after each epoch; ``resume`` continues
    from it (same frames and configs). ``max_epochs_now`` stops after that many epochs of this
    call (``result.epochs_done`` < ``train.epochs`` then: resume later), so a long training can
    be split over several sessions. ``model``: train this module instead of building one from ``config``
    (e.g. a YOLOX with 7 class heads; frames then carry labels 1..k as a third item).
    """
    if train.threads:
        torch.set_num_threads(train.threads)
    torch.manual_seed(train.seed)
    model = (model if model is not None else build_detector(config, pretrained=pretrained and not resume)).to(device)
    data = _prepared(frames, config.image_size)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=train.lr, weight_decay=train.weight_decay)
    per_epoch = math.ceil(len(data) / train.batch_size)
    total = max(1, per_epoch * train.epochs)

    def schedule(step: int) -> float:
        if step < train.warmup_steps:
            return (step + 1) / train.warmup_steps
        return 0.5 * (
            1 + math.cos(math.pi * min(1.0, (step - train.warmup_steps) / max(1, total - train.warmup_steps)))
        )

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    ema = None
    if train.ema:  # torch's AveragedModel (restarted from the current weights on --resume)
        from torch.optim.swa_utils import AveragedModel

        ema = AveragedModel(model, avg_fn=_ema(train.ema))  # parameters only: YOLOX has no batch statistics
    result = DetectorTrainResult(0, 0.0, len(data), int(sum(len(b) for _, b, _ in data)))
    first, spent = 0, 0.0
    stamp = {"config": config.hash(), "train": train.to_dict(), "frames": len(data), "boxes": result.boxes}
    if resume:
        state = read_checkpoint(Path(checkpoint))
        if state.get("extra") != stamp:
            raise ModelError(f"{checkpoint} was written for other frames or settings; train afresh without --resume")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        first, result.steps, spent, result.history = state["epoch"], state["steps"], state["seconds"], state["history"]
    last = train.epochs if max_epochs_now is None else min(train.epochs, first + max_epochs_now)
    start = time.perf_counter()
    for epoch in range(first, last):
        model.train()
        keep_bn_frozen(model)
        rng = np.random.default_rng([train.seed, epoch])  # per epoch: a resumed run draws what a whole one would
        order = rng.permutation(len(data))
        sums: dict[str, float] = {}
        bar = tqdm(range(per_epoch), desc=f"detector epoch {epoch + 1}/{train.epochs}", disable=not progress)
        for b in bar:
            batch = [
                _target(data[i][0], data[i][1], bool(rng.random() < 0.5), data[i][2], train.zoom, rng)
                for i in order[b * train.batch_size : (b + 1) * train.batch_size]
            ]
            images = [im.to(device) for im, _ in batch]
            targets = [{k: v.to(device) for k, v in t.items()} for _, t in batch]
            losses = model(images, targets)
            loss = sum(losses.values())
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 10.0)
            optimizer.step()
            scheduler.step()
            if ema is not None:
                ema.update_parameters(model)
            result.steps += 1
            for k, v in losses.items():
                sums[k] = sums.get(k, 0.0) + v.item()
            bar.set_postfix(loss=f"{loss.item():.3f}")
        row = {
            "epoch": epoch + 1,
            **{k: round(v / per_epoch, 4) for k, v in sums.items()},
            "seconds": round(spent + time.perf_counter() - start, 1),
        }
        if on_epoch is not None:
            model.eval()
            row.update(on_epoch(epoch + 1, row, ema.module.eval() if ema is not None else model) or {})
        result.history.append(row)
        log.info("detector epoch %d: %s", epoch + 1, row)
        if checkpoint is not None:
            _save_checkpoint(
                Path(checkpoint),
                model,
                optimizer,
                scheduler,
                epoch + 1,
                result.steps,
                spent + time.perf_counter() - start,
                result.history,
                stamp,
            )
    result.seconds = round(spent + time.perf_counter() - start, 1)
    result.epochs_done = last
    return (ema.module if ema is not None else model).eval(), result
