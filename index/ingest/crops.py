"""Cutting object crops out of frames: box validation, context padding, the crop cache.

A box is ``(x, y, w, h)`` in pixels of the upright frame. Boxes partly outside
the frame are clipped; empty, degenerate or fully outside boxes are refused
with a one-line reason.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from index.errors import InvalidInput
from index.files import atomic_writer

log = logging.getLogger(__name__)

#: Boxes smaller than this many pixels on a side after clipping are refused.
MIN_BOX_SIDE = 2


@dataclass(frozen=True)
class CropConfig:
    """How crops are cut and cached."""

    padding: float = 0.1  # context added on each side, as a fraction of the box side
    max_side: int = 384  # longer crops are downscaled to this (training uses far less)
    min_side: float = MIN_BOX_SIDE  # smaller clipped boxes are refused

    def to_dict(self) -> dict:
        return {"padding": self.padding, "max_side": self.max_side, "min_side": self.min_side}


def clip_box(
    box: tuple[float, float, float, float], width: int, height: int, min_side: float = MIN_BOX_SIDE
) -> tuple[float, float, float, float]:
    """Clip ``(x, y, w, h)`` to a ``width`` x ``height`` frame.

    Raises InvalidInput with a one-line reason for non-finite, zero or negative
    sizes, boxes wholly outside the frame, or boxes under ``min_side`` after clipping.
    """
    x, y, w, h = (float(v) for v in box)
    if not all(math.isfinite(v) for v in (x, y, w, h)):
        raise InvalidInput(f"box {box} has a non-finite coordinate")
    if w <= 0 or h <= 0:
        raise InvalidInput(f"box {box} has zero or negative size")
    x0, y0 = max(0.0, x), max(0.0, y)
    x1, y1 = min(float(width), x + w), min(float(height), y + h)
    if x1 <= x0 or y1 <= y0:
        raise InvalidInput(f"box {box} lies outside the {width}x{height} frame")
    if (x1 - x0) < min_side or (y1 - y0) < min_side:
        raise InvalidInput(f"box {box} is under {min_side:g} px after clipping to the frame")
    return (x0, y0, x1 - x0, y1 - y0)


def cut_crop(image: Image.Image, box: tuple[float, float, float, float], config: CropConfig) -> Image.Image:
    """Cut a clipped box with context padding (itself clipped) and cap its longer side."""
    x, y, w, h = clip_box(box, image.width, image.height, config.min_side)
    pad_x, pad_y = w * config.padding, h * config.padding
    left = max(0, int(math.floor(x - pad_x)))
    top = max(0, int(math.floor(y - pad_y)))
    right = min(image.width, int(math.ceil(x + w + pad_x)))
    bottom = min(image.height, int(math.ceil(y + h + pad_y)))
    crop = image.crop((left, top, right, bottom))
    longest = max(crop.size)
    if longest > config.max_side:
        scale = config.max_side / longest
        size = (max(1, round(crop.width * scale)), max(1, round(crop.height * scale)))
        crop = crop.resize(size, Image.Resampling.LANCZOS)
    return crop


def save_atomic(image: Image.Image, path: Path) -> None:
    """Write a PNG via a temporary file and rename, so a killed run leaves no half file.

    Not fsynced: the crop cache is re-cut by ``ingest.repair_crops`` when a file is lost.
    """
    with atomic_writer(path, durable=False) as fh:
        image.save(fh, format="PNG", compress_level=1)


def crop_relpath(annotation_id: int) -> str:
    """Where the crop of an annotation is cached, relative to the home folder."""
    return f"crops/{annotation_id // 1000:04d}/{annotation_id}.png"
