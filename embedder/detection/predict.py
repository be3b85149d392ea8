"""Running a detector on frames: PIL images in, ``(x, y, w, h)`` boxes with scores out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from torch import nn

from embedder.detection.model import DetectorConfig


@dataclass(frozen=True)
class FrameBoxes:
    """The boxes of one frame: ``boxes`` (n, 4) float32 x, y, w, h pixels; ``scores`` (n,) float32, descending."""

    boxes: np.ndarray
    scores: np.ndarray

    def to_dict(self) -> dict:
        return {"boxes": self.boxes.round(2).tolist(), "scores": self.scores.round(4).tolist()}


def frame_tensor(image: Image.Image, size: int) -> tuple[torch.Tensor, float]:
    """A frame resized so its longer side is ``size`` -> ((3, h, w) float in [0, 1], scale applied)."""
    scale = size / max(image.size)
    if scale != 1.0:
        image = image.resize(
            (max(1, round(image.width * scale)), max(1, round(image.height * scale))), Image.Resampling.BILINEAR
        )
    array = np.array(image.convert("RGB"), dtype=np.uint8)
    return torch.from_numpy(array).permute(2, 0, 1).float().div_(255.0), scale


@torch.inference_mode()
def detect_images(
    model: nn.Module,
    config: DetectorConfig,
    images: Sequence[Image.Image],
    min_score: float = 0.3,
    device: torch.device | str = "cpu",
    batch_size: int = 4,
) -> list[FrameBoxes]:
    """Boxes with score >= ``min_score`` for each RGB frame, in that frame's own pixels."""
    model.eval()
    out: list[FrameBoxes] = []
    for start in range(0, len(images), batch_size):
        batch = [frame_tensor(im, config.image_size) for im in images[start : start + batch_size]]
        preds = model([t.to(device) for t, _ in batch])
        for (_, scale), pred, image in zip(batch, preds, images[start : start + batch_size], strict=True):
            keep = pred["scores"] >= min_score
            xyxy = pred["boxes"][keep].cpu().numpy().astype(np.float64) / scale
            xyxy[:, [0, 2]] = xyxy[:, [0, 2]].clip(0, image.width)
            xyxy[:, [1, 3]] = xyxy[:, [1, 3]].clip(0, image.height)
            boxes = np.stack([xyxy[:, 0], xyxy[:, 1], xyxy[:, 2] - xyxy[:, 0], xyxy[:, 3] - xyxy[:, 1]], axis=1)
            scores = pred["scores"][keep].cpu().numpy()
            order = np.argsort(-scores, kind="stable")
            out.append(FrameBoxes(boxes[order].astype(np.float32).reshape(-1, 4), scores[order].astype(np.float32)))
    return out
